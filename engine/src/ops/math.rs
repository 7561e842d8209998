//! Elementwise arithmetic with NumPy broadcasting, unary math, and comparisons.

use super::broadcast::broadcast_shapes;
use super::{build, expect_float, expect_inputs, Attrs, GradContext, GradientError, Op};

use crate::graph::{AttrValue, Output, TypeShape};
use crate::ops::array::select;
use crate::ops::reduce::sum_to_like;
use crate::tensor::DType;

/// Binary arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryKind {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Maximum,
    Minimum,
}

#[derive(Debug, Clone)]
pub struct Binary(pub BinaryKind);

fn infer_binary(inputs: &[TypeShape]) -> Result<TypeShape, String> {
    expect_inputs(inputs, 2)?;
    let (a, b) = (&inputs[0], &inputs[1]);
    if a.dtype != b.dtype {
        return Err(format!(
            "operands have different dtypes: {} and {} (cast one of them)",
            a, b
        ));
    }
    Ok(TypeShape::new(
        a.dtype,
        broadcast_shapes(&a.shape, &b.shape)?,
    ))
}

/// The gradient of a broadcast operand, summed back to the operand's shape.
fn unbroadcast(g: Output, x: Output, x_type: &TypeShape, out_type: &TypeShape) -> Output {
    if x_type.shape == out_type.shape && x_type.shape.to_known().is_some() {
        g
    } else {
        sum_to_like(g, x)
    }
}

impl Op for Binary {
    fn type_name(&self) -> &'static str {
        match self.0 {
            BinaryKind::Add => "Add",
            BinaryKind::Sub => "Sub",
            BinaryKind::Mul => "Mul",
            BinaryKind::Div => "Div",
            BinaryKind::Pow => "Pow",
            BinaryKind::Maximum => "Maximum",
            BinaryKind::Minimum => "Minimum",
        }
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        let out = infer_binary(inputs)?;
        if matches!(self.0, BinaryKind::Pow) {
            expect_float(&out, "pow's operands")?;
        }
        if out.dtype == DType::Bool {
            return Err("arithmetic is not defined for bool (cast to a number first)".into());
        }
        Ok(vec![out])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let (a, b, y, dy) = (g.x(0), g.x(1), g.y(), g.dy());
        let (da, db) = match self.0 {
            BinaryKind::Add => (dy, dy),
            BinaryKind::Sub => (dy, -dy),
            BinaryKind::Mul => (dy * b, dy * a),
            BinaryKind::Div => (dy / b, -(dy * y) / b),
            BinaryKind::Pow => {
                let positive = greater(a, zeros_like(a));
                let log_a = select(
                    positive,
                    log(select(positive, a, ones_like(a))),
                    zeros_like(a),
                );
                (dy * b * pow(a, b - 1.0), dy * y * log_a)
            }
            BinaryKind::Maximum | BinaryKind::Minimum => {
                let a_wins = if self.0 == BinaryKind::Maximum {
                    greater_equal(a, b)
                } else {
                    less_equal(a, b)
                };
                let zero = zeros_like(dy);
                (select(a_wins, dy, zero), select(a_wins, zero, dy))
            }
        };
        let out_type = &g.output_types[0];
        Ok(vec![
            Some(unbroadcast(da, a, &g.input_types[0], out_type)),
            Some(unbroadcast(db, b, &g.input_types[1], out_type)),
        ])
    }
}

pub fn add(a: Output, b: Output) -> Output {
    build(Binary(BinaryKind::Add), &[a, b])
}
pub fn sub(a: Output, b: Output) -> Output {
    build(Binary(BinaryKind::Sub), &[a, b])
}
pub fn mul(a: Output, b: Output) -> Output {
    build(Binary(BinaryKind::Mul), &[a, b])
}
pub fn div(a: Output, b: Output) -> Output {
    build(Binary(BinaryKind::Div), &[a, b])
}
/// `a` to the power `b`, elementwise.
pub fn pow(a: Output, b: impl IntoOperand) -> Output {
    let b = b.into_operand(a);
    build(Binary(BinaryKind::Pow), &[a, b])
}
pub fn maximum(a: Output, b: impl IntoOperand) -> Output {
    let b = b.into_operand(a);
    build(Binary(BinaryKind::Maximum), &[a, b])
}
pub fn minimum(a: Output, b: impl IntoOperand) -> Output {
    let b = b.into_operand(a);
    build(Binary(BinaryKind::Minimum), &[a, b])
}

/// A second operand: another handle, or a number made into a constant of the first's dtype.
pub trait IntoOperand {
    fn into_operand(self, like: Output) -> Output;
}
impl IntoOperand for Output {
    fn into_operand(self, _: Output) -> Output {
        self
    }
}
impl IntoOperand for f32 {
    fn into_operand(self, like: Output) -> Output {
        like.constant_like(self as f64)
    }
}
impl IntoOperand for f64 {
    fn into_operand(self, like: Output) -> Output {
        like.constant_like(self)
    }
}

/// Elementwise functions of one float tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryKind {
    Neg,
    Exp,
    Log,
    Sqrt,
    Square,
    Abs,
    Sign,
}

#[derive(Debug, Clone)]
pub struct Unary(pub UnaryKind);

impl Op for Unary {
    fn type_name(&self) -> &'static str {
        match self.0 {
            UnaryKind::Neg => "Neg",
            UnaryKind::Exp => "Exp",
            UnaryKind::Log => "Log",
            UnaryKind::Sqrt => "Sqrt",
            UnaryKind::Square => "Square",
            UnaryKind::Abs => "Abs",
            UnaryKind::Sign => "Sign",
        }
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        expect_float(&inputs[0], "the input")?;
        Ok(vec![inputs[0].clone()])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let (x, y, dy) = (g.x(0), g.y(), g.dy());
        let dx = match self.0 {
            UnaryKind::Neg => -dy,
            UnaryKind::Exp => dy * y,
            UnaryKind::Log => dy / x,
            UnaryKind::Sqrt => dy / (y * 2.0),
            UnaryKind::Square => dy * x * 2.0,
            UnaryKind::Abs => dy * sign(x),
            UnaryKind::Sign => return Ok(vec![None]),
        };
        Ok(vec![Some(dx)])
    }
}

pub fn neg(x: Output) -> Output {
    build(Unary(UnaryKind::Neg), &[x])
}
pub fn exp(x: Output) -> Output {
    build(Unary(UnaryKind::Exp), &[x])
}
pub fn log(x: Output) -> Output {
    build(Unary(UnaryKind::Log), &[x])
}
pub fn sqrt(x: Output) -> Output {
    build(Unary(UnaryKind::Sqrt), &[x])
}
pub fn square(x: Output) -> Output {
    build(Unary(UnaryKind::Square), &[x])
}
pub fn abs(x: Output) -> Output {
    build(Unary(UnaryKind::Abs), &[x])
}
pub fn sign(x: Output) -> Output {
    build(Unary(UnaryKind::Sign), &[x])
}

/// Elementwise comparisons, giving bool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareKind {
    Equal,
    NotEqual,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
}

#[derive(Debug, Clone)]
pub struct Compare(pub CompareKind);

impl Op for Compare {
    fn type_name(&self) -> &'static str {
        match self.0 {
            CompareKind::Equal => "Equal",
            CompareKind::NotEqual => "NotEqual",
            CompareKind::Greater => "Greater",
            CompareKind::GreaterEqual => "GreaterEqual",
            CompareKind::Less => "Less",
            CompareKind::LessEqual => "LessEqual",
        }
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        let out = infer_binary(inputs)?;
        Ok(vec![TypeShape::new(DType::Bool, out.shape)])
    }

    fn gradient(&self, _: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![None, None])
    }
}

pub fn equal(a: Output, b: impl IntoOperand) -> Output {
    let b = b.into_operand(a);
    build(Compare(CompareKind::Equal), &[a, b])
}
pub fn not_equal(a: Output, b: impl IntoOperand) -> Output {
    let b = b.into_operand(a);
    build(Compare(CompareKind::NotEqual), &[a, b])
}
pub fn greater(a: Output, b: impl IntoOperand) -> Output {
    let b = b.into_operand(a);
    build(Compare(CompareKind::Greater), &[a, b])
}
pub fn greater_equal(a: Output, b: impl IntoOperand) -> Output {
    let b = b.into_operand(a);
    build(Compare(CompareKind::GreaterEqual), &[a, b])
}
pub fn less(a: Output, b: impl IntoOperand) -> Output {
    let b = b.into_operand(a);
    build(Compare(CompareKind::Less), &[a, b])
}
pub fn less_equal(a: Output, b: impl IntoOperand) -> Output {
    let b = b.into_operand(a);
    build(Compare(CompareKind::LessEqual), &[a, b])
}

/// A tensor of the same shape and dtype as the input, every element `value`.
#[derive(Debug, Clone)]
pub struct FillLike(pub f64);

impl Op for FillLike {
    fn type_name(&self) -> &'static str {
        if self.0 == 0.0 {
            "ZerosLike"
        } else {
            "FillLike"
        }
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        if self.0 == 0.0 {
            vec![]
        } else {
            vec![("value", AttrValue::Float(self.0))]
        }
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        Ok(vec![inputs[0].clone()])
    }

    fn gradient(&self, _: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![None])
    }
}

pub fn zeros_like(x: Output) -> Output {
    build(FillLike(0.0), &[x])
}
pub fn ones_like(x: Output) -> Output {
    build(FillLike(1.0), &[x])
}
pub fn fill_like(x: Output, value: f64) -> Output {
    build(FillLike(value), &[x])
}
