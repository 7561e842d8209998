//! The small kernel description GPU code is generated from: a scalar expression over a
//! kernel's inputs (tinygrad's lesson: a few primitives, generated code). One description,
//! one code generator per GPU language; WGSL for now.

use crate::tensor::DType;

/// Scalar types a GPU kernel computes with. WGSL has 32-bit types only; bools are stored as
/// one u32 each (0 or 1) since storage buffers cannot hold `bool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    F32,
    I32,
    Bool,
}

impl Scalar {
    /// The GPU scalar of a dtype, if GPUs hold it.
    pub fn of(dtype: DType) -> Option<Scalar> {
        match dtype {
            DType::F32 => Some(Scalar::F32),
            DType::I32 => Some(Scalar::I32),
            DType::Bool => Some(Scalar::Bool),
            _ => None,
        }
    }

    /// The WGSL type of a stored element.
    pub fn wgsl_storage(self) -> &'static str {
        match self {
            Scalar::F32 => "f32",
            Scalar::I32 => "i32",
            Scalar::Bool => "u32",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    Sign,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    /// Integer division truncates toward zero and gives 0 for a zero divisor, as on the CPU.
    Div,
    Max,
    Min,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinaryOp {
    fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
        )
    }
}

/// A scalar expression: the value of one output element.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// The element of input `i` (broadcast to the output's shape).
    Input(usize),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
}

impl Expr {
    pub fn input(i: usize) -> Expr {
        Expr::Input(i)
    }

    pub fn unary(op: UnaryOp, x: Expr) -> Expr {
        Expr::Unary(op, Box::new(x))
    }

    pub fn binary(op: BinaryOp, a: Expr, b: Expr) -> Expr {
        Expr::Binary(op, Box::new(a), Box::new(b))
    }

    /// The scalar type of the expression, given its inputs' types.
    pub fn scalar(&self, inputs: &[Scalar]) -> Option<Scalar> {
        match self {
            Expr::Input(i) => inputs.get(*i).copied(),
            Expr::Unary(_, x) => x.scalar(inputs),
            Expr::Binary(op, a, _) if op.is_comparison() => a.scalar(inputs).map(|_| Scalar::Bool),
            Expr::Binary(_, a, _) => a.scalar(inputs),
        }
    }

    /// WGSL for the expression's value, in the storage type of its scalar (`u32` for bools),
    /// where input `i`'s element is the variable `x{i}`.
    pub fn wgsl(&self, inputs: &[Scalar]) -> Result<String, String> {
        Ok(match self {
            Expr::Input(i) => {
                if *i >= inputs.len() {
                    return Err(format!("input {i} of {}", inputs.len()));
                }
                format!("x{i}")
            }
            Expr::Unary(op, x) => {
                let ty = x.scalar(inputs).ok_or("untyped operand")?;
                let v = x.wgsl(inputs)?;
                match (op, ty) {
                    (_, Scalar::Bool) => return Err(format!("{op:?} of a bool")),
                    (UnaryOp::Neg, _) => format!("(-{v})"),
                    (UnaryOp::Abs, _) => format!("abs({v})"),
                    (UnaryOp::Sign, _) => format!("sign({v})"),
                    (UnaryOp::Exp, Scalar::F32) => format!("exp({v})"),
                    (UnaryOp::Log, Scalar::F32) => format!("log({v})"),
                    (UnaryOp::Sqrt, Scalar::F32) => format!("sqrt({v})"),
                    (op, ty) => return Err(format!("{op:?} of {ty:?}")),
                }
            }
            Expr::Binary(op, a, b) => {
                let ty = a.scalar(inputs).ok_or("untyped operand")?;
                if b.scalar(inputs) != Some(ty) {
                    return Err(format!("{op:?} of mixed types"));
                }
                let (x, y) = (a.wgsl(inputs)?, b.wgsl(inputs)?);
                let cmp = |sym: &str| format!("select(0u, 1u, {x} {sym} {y})");
                match op {
                    BinaryOp::Add => format!("({x} + {y})"),
                    BinaryOp::Sub => format!("({x} - {y})"),
                    BinaryOp::Mul => format!("({x} * {y})"),
                    BinaryOp::Div if ty == Scalar::F32 => format!("({x} / {y})"),
                    // WGSL gives the dividend for a zero divisor; the engine gives 0.
                    BinaryOp::Div => format!("select({x} / {y}, 0, {y} == 0)"),
                    BinaryOp::Max => format!("max({x}, {y})"),
                    BinaryOp::Min => format!("min({x}, {y})"),
                    BinaryOp::Eq => cmp("=="),
                    BinaryOp::Ne => cmp("!="),
                    BinaryOp::Lt => cmp("<"),
                    BinaryOp::Le => cmp("<="),
                    BinaryOp::Gt => cmp(">"),
                    BinaryOp::Ge => cmp(">="),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_division_by_zero_is_zero_as_on_the_cpu() {
        let e = Expr::binary(BinaryOp::Div, Expr::input(0), Expr::input(1));
        let code = e.wgsl(&[Scalar::I32, Scalar::I32]).expect("i32 division");
        assert_eq!(code, "select(x0 / x1, 0, x1 == 0)");
        let code = e.wgsl(&[Scalar::F32, Scalar::F32]).expect("f32 division");
        assert_eq!(code, "(x0 / x1)");
    }

    #[test]
    fn comparisons_store_bools_as_words() {
        let e = Expr::binary(BinaryOp::Lt, Expr::input(0), Expr::input(1));
        assert_eq!(e.scalar(&[Scalar::F32, Scalar::F32]), Some(Scalar::Bool));
        assert_eq!(
            e.wgsl(&[Scalar::F32, Scalar::F32]).expect("compare"),
            "select(0u, 1u, x0 < x1)"
        );
    }

    #[test]
    fn what_wgsl_cannot_do_is_an_error() {
        let log = Expr::unary(UnaryOp::Log, Expr::input(0));
        assert!(log.wgsl(&[Scalar::I32]).is_err());
        let add = Expr::binary(BinaryOp::Add, Expr::input(0), Expr::input(1));
        assert!(add.wgsl(&[Scalar::F32, Scalar::I32]).is_err());
        assert!(add.wgsl(&[Scalar::F32]).is_err(), "a missing input");
    }
}
