//! The small kernel description GPU code is generated from: a scalar expression over a
//! kernel's inputs and the output element's coordinates (tinygrad's lesson: a few primitives,
//! generated code). One description, one emitter per GPU language ([`Dialect`]): WGSL for wgpu
//! and CUDA C for NVRTC. Programs around an expression (maps, reductions) are in
//! [`super::program`].

pub use crate::devices::Dialect;
use crate::tensor::DType;

/// Scalar types a GPU kernel computes with: 32-bit ones only (WGSL has no others). Bools are
/// stored as one 32-bit word each (0 or 1) since storage buffers cannot hold `bool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    pub fn dtype(self) -> DType {
        match self {
            Scalar::F32 => DType::F32,
            Scalar::I32 => DType::I32,
            Scalar::Bool => DType::Bool,
        }
    }

    /// The WGSL type of a stored element.
    pub fn wgsl_storage(self) -> &'static str {
        self.storage(Dialect::Wgsl)
    }

    /// The type of a stored element in `dialect`.
    pub fn storage(self, dialect: Dialect) -> &'static str {
        match (dialect, self) {
            (Dialect::Wgsl, Scalar::F32) => "f32",
            (Dialect::Wgsl, Scalar::I32) => "i32",
            (Dialect::Wgsl, Scalar::Bool) => "u32",
            (Dialect::Cuda, Scalar::F32) => "float",
            (Dialect::Cuda, Scalar::I32) => "int",
            (Dialect::Cuda, Scalar::Bool) => "unsigned int",
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
    Tanh,
    /// Whether an f32 is NaN or infinite (a bool), from its exponent bits: WGSL compilers may
    /// assume there are no NaNs and fold `x != x` away.
    NotFinite,
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
    /// `x` to the power `y` (f32 only), with C's `pow` rules, as the CPU computes it.
    Pow,
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

    fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Max | BinaryOp::Min | BinaryOp::Pow => "",
        }
    }
}

/// A scalar expression: the value of one output element.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// The element of input `i` that the output element reads (through the input's view).
    Input(usize),
    /// A constant of the given type.
    Literal(Scalar, f64),
    /// The output element's coordinate along an axis, as an i32.
    Coord(usize),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `if cond { then } else { otherwise }`, with a bool condition.
    Select(Box<Expr>, Box<Expr>, Box<Expr>),
    /// Conversion, as Rust's `as` (floats to integers saturate and truncate).
    Cast(Scalar, Box<Expr>),
    /// Element `index` (an i32) of input `i`, read directly rather than through the input's
    /// view: gathers and windows. An index outside the input reads its nearest end, so a
    /// read never leaves the buffer; kernels that may compute one select another value.
    Load(usize, Box<Expr>),
}

impl Expr {
    pub fn input(i: usize) -> Expr {
        Expr::Input(i)
    }

    pub fn f32(v: f32) -> Expr {
        Expr::Literal(Scalar::F32, f64::from(v))
    }

    pub fn unary(op: UnaryOp, x: Expr) -> Expr {
        Expr::Unary(op, Box::new(x))
    }

    pub fn binary(op: BinaryOp, a: Expr, b: Expr) -> Expr {
        Expr::Binary(op, Box::new(a), Box::new(b))
    }

    pub fn select(cond: Expr, then: Expr, otherwise: Expr) -> Expr {
        Expr::Select(Box::new(cond), Box::new(then), Box::new(otherwise))
    }

    pub fn cast(to: Scalar, x: Expr) -> Expr {
        Expr::Cast(to, Box::new(x))
    }

    pub fn load(input: usize, index: Expr) -> Expr {
        Expr::Load(input, Box::new(index))
    }

    pub fn i32(v: i32) -> Expr {
        Expr::Literal(Scalar::I32, f64::from(v))
    }

    /// Whether the expression reads input `k` through its view (as `Input(k)`).
    pub fn reads_view(&self, k: usize) -> bool {
        match self {
            Expr::Input(i) => *i == k,
            Expr::Coord(_) | Expr::Literal(..) => false,
            Expr::Unary(_, x) | Expr::Cast(_, x) | Expr::Load(_, x) => x.reads_view(k),
            Expr::Binary(_, a, b) => a.reads_view(k) || b.reads_view(k),
            Expr::Select(c, a, b) => c.reads_view(k) || a.reads_view(k) || b.reads_view(k),
        }
    }

    /// Whether the expression reads input `k` at all (through its view or by index).
    pub fn uses_input(&self, k: usize) -> bool {
        match self {
            Expr::Input(i) => *i == k,
            Expr::Load(i, x) => *i == k || x.uses_input(k),
            Expr::Coord(_) | Expr::Literal(..) => false,
            Expr::Unary(_, x) | Expr::Cast(_, x) => x.uses_input(k),
            Expr::Binary(_, a, b) => a.uses_input(k) || b.uses_input(k),
            Expr::Select(c, a, b) => c.uses_input(k) || a.uses_input(k) || b.uses_input(k),
        }
    }

    /// The expression with input `i` renamed `to[i]`.
    pub fn renumber(&self, to: &[usize]) -> Expr {
        let r = |x: &Expr| Box::new(x.renumber(to));
        match self {
            Expr::Input(i) => Expr::Input(to.get(*i).copied().unwrap_or(*i)),
            Expr::Load(i, x) => Expr::Load(to.get(*i).copied().unwrap_or(*i), r(x)),
            Expr::Coord(_) | Expr::Literal(..) => self.clone(),
            Expr::Unary(op, x) => Expr::Unary(*op, r(x)),
            Expr::Cast(ty, x) => Expr::Cast(*ty, r(x)),
            Expr::Binary(op, a, b) => Expr::Binary(*op, r(a), r(b)),
            Expr::Select(c, a, b) => Expr::Select(r(c), r(a), r(b)),
        }
    }

    /// The expression with each `Input(i)` replaced by `inputs[i]`: an op's expression over
    /// the expressions of its inputs, for fusing elementwise chains. Only for expressions that
    /// read their inputs through views (no [`Expr::Load`], which names an input buffer).
    pub fn compose(&self, inputs: &[Expr]) -> Expr {
        let c = |x: &Expr| Box::new(x.compose(inputs));
        match self {
            Expr::Input(i) => inputs.get(*i).cloned().unwrap_or(Expr::Input(*i)),
            Expr::Load(i, x) => Expr::Load(*i, c(x)),
            Expr::Coord(_) | Expr::Literal(..) => self.clone(),
            Expr::Unary(op, x) => Expr::Unary(*op, c(x)),
            Expr::Cast(ty, x) => Expr::Cast(*ty, c(x)),
            Expr::Binary(op, a, b) => Expr::Binary(*op, c(a), c(b)),
            Expr::Select(cond, a, b) => Expr::Select(c(cond), c(a), c(b)),
        }
    }

    /// How many nodes the expression has.
    pub fn size(&self) -> usize {
        1 + match self {
            Expr::Input(_) | Expr::Coord(_) | Expr::Literal(..) => 0,
            Expr::Unary(_, x) | Expr::Cast(_, x) | Expr::Load(_, x) => x.size(),
            Expr::Binary(_, a, b) => a.size() + b.size(),
            Expr::Select(c, a, b) => c.size() + a.size() + b.size(),
        }
    }

    /// Whether the expression loads elements of input `k` by index.
    pub fn loads_from(&self, k: usize) -> bool {
        match self {
            Expr::Load(i, x) => *i == k || x.loads_from(k),
            Expr::Input(_) | Expr::Coord(_) | Expr::Literal(..) => false,
            Expr::Unary(_, x) | Expr::Cast(_, x) => x.loads_from(k),
            Expr::Binary(_, a, b) => a.loads_from(k) || b.loads_from(k),
            Expr::Select(c, a, b) => c.loads_from(k) || a.loads_from(k) || b.loads_from(k),
        }
    }

    /// Whether the expression loads elements by index.
    pub fn loads(&self) -> bool {
        match self {
            Expr::Load(..) => true,
            Expr::Input(_) | Expr::Coord(_) | Expr::Literal(..) => false,
            Expr::Unary(_, x) | Expr::Cast(_, x) => x.loads(),
            Expr::Binary(_, a, b) => a.loads() || b.loads(),
            Expr::Select(c, a, b) => c.loads() || a.loads() || b.loads(),
        }
    }

    /// Whether the expression reads output coordinates.
    pub fn uses_coords(&self) -> bool {
        match self {
            Expr::Coord(_) => true,
            Expr::Input(_) | Expr::Literal(..) => false,
            Expr::Unary(_, x) | Expr::Cast(_, x) | Expr::Load(_, x) => x.uses_coords(),
            Expr::Binary(_, a, b) => a.uses_coords() || b.uses_coords(),
            Expr::Select(c, a, b) => c.uses_coords() || a.uses_coords() || b.uses_coords(),
        }
    }

    /// The scalar type of the expression given its inputs' types, or why it has none.
    pub fn scalar(&self, inputs: &[Scalar]) -> Result<Scalar, String> {
        Ok(match self {
            Expr::Input(i) => *inputs
                .get(*i)
                .ok_or_else(|| format!("input {i} of {}", inputs.len()))?,
            Expr::Literal(ty, _) => *ty,
            Expr::Coord(_) => Scalar::I32,
            Expr::Load(i, index) => {
                if index.scalar(inputs)? != Scalar::I32 {
                    return Err("a load whose index is not an i32".into());
                }
                *inputs
                    .get(*i)
                    .ok_or_else(|| format!("input {i} of {}", inputs.len()))?
            }
            Expr::Cast(ty, x) => {
                x.scalar(inputs)?;
                *ty
            }
            Expr::Unary(op, x) => match (op, x.scalar(inputs)?) {
                (_, Scalar::Bool) => return Err(format!("{op:?} of a bool")),
                (UnaryOp::NotFinite, Scalar::F32) => Scalar::Bool,
                (UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign, ty) => ty,
                (_, Scalar::F32) => Scalar::F32,
                (op, ty) => return Err(format!("{op:?} of {ty:?}")),
            },
            Expr::Binary(op, a, b) => {
                let (ta, tb) = (a.scalar(inputs)?, b.scalar(inputs)?);
                if ta != tb {
                    return Err(format!("{op:?} of {ta:?} and {tb:?}"));
                }
                match (op.is_comparison(), ta) {
                    (true, _) => Scalar::Bool,
                    (false, Scalar::Bool) => return Err(format!("{op:?} of bools")),
                    (false, Scalar::I32) if *op == BinaryOp::Pow => {
                        return Err("Pow of integers".into())
                    }
                    (false, ty) => ty,
                }
            }
            Expr::Select(c, a, b) => {
                if c.scalar(inputs)? != Scalar::Bool {
                    return Err("a select whose condition is not a bool".into());
                }
                let (ta, tb) = (a.scalar(inputs)?, b.scalar(inputs)?);
                if ta != tb {
                    return Err(format!("a select of {ta:?} or {tb:?}"));
                }
                ta
            }
        })
    }

    /// The expression's value in `dialect`, in the storage type of its scalar (a 0/1 word for
    /// bools), where input `i`'s element is the variable `x{i}` and the output coordinate
    /// along axis `a` is the variable `c{a}`.
    pub fn emit(&self, dialect: Dialect, inputs: &[Scalar]) -> Result<String, String> {
        let ty = self.scalar(inputs)?;
        let wgsl = dialect == Dialect::Wgsl;
        Ok(match self {
            Expr::Input(i) => format!("x{i}"),
            Expr::Coord(axis) if wgsl => format!("i32(c{axis})"),
            Expr::Coord(axis) => format!("((int)c{axis})"),
            Expr::Literal(ty, v) => literal(dialect, *ty, *v),
            // `len{i}` is the input's length in elements (at least 1: buffers hold a word).
            Expr::Load(i, index) => {
                let index = index.emit(dialect, inputs)?;
                if wgsl {
                    format!("in{i}[u32(clamp({index}, 0, i32(len{i}) - 1))]")
                } else {
                    format!("in{i}[(unsigned int)min(max({index}, 0), (int)len{i} - 1)]")
                }
            }
            Expr::Cast(to, x) => {
                let from = x.scalar(inputs)?;
                let v = x.emit(dialect, inputs)?;
                cast(dialect, from, *to, &v)
            }
            Expr::Unary(op, x) => {
                let v = x.emit(dialect, inputs)?;
                match (op, ty, wgsl) {
                    (UnaryOp::Neg, Scalar::I32, false) => {
                        format!("((int)(0u - (unsigned int)({v})))")
                    }
                    (UnaryOp::Neg, _, _) => format!("(-{v})"),
                    (UnaryOp::Abs, _, true) => format!("abs({v})"),
                    (UnaryOp::Abs, Scalar::F32, false) => format!("fabsf({v})"),
                    (UnaryOp::Abs, _, false) => {
                        format!(
                            "((int)(({v}) < 0 ? 0u - (unsigned int)({v}) : (unsigned int)({v})))"
                        )
                    }
                    (UnaryOp::Sign, _, true) => format!("sign({v})"),
                    (UnaryOp::Sign, ty, false) => {
                        let t = ty.storage(dialect);
                        format!("(({t})(({v}) > 0) - ({t})(({v}) < 0))")
                    }
                    (UnaryOp::Exp, _, true) => format!("exp({v})"),
                    (UnaryOp::Log, _, true) => format!("log({v})"),
                    (UnaryOp::Sqrt, _, true) => format!("sqrt({v})"),
                    (UnaryOp::Tanh, _, true) => format!("tanh({v})"),
                    (UnaryOp::Exp, _, false) => format!("expf({v})"),
                    (UnaryOp::Log, _, false) => format!("logf({v})"),
                    (UnaryOp::Sqrt, _, false) => format!("sqrtf({v})"),
                    (UnaryOp::Tanh, _, false) => format!("tanhf({v})"),
                    (UnaryOp::NotFinite, _, true) => {
                        format!("select(0u, 1u, (bitcast<u32>({v}) & 0x7f800000u) == 0x7f800000u)")
                    }
                    (UnaryOp::NotFinite, _, false) => format!(
                        "((unsigned int)((__float_as_uint({v}) & 0x7f800000u) == 0x7f800000u))"
                    ),
                }
            }
            Expr::Binary(op, a, b) => {
                let operand = a.scalar(inputs)?;
                let (x, y) = (a.emit(dialect, inputs)?, b.emit(dialect, inputs)?);
                binary(dialect, *op, operand, &x, &y)
            }
            Expr::Select(c, a, b) => {
                let c = c.emit(dialect, inputs)?;
                let (x, y) = (a.emit(dialect, inputs)?, b.emit(dialect, inputs)?);
                if wgsl {
                    format!("select({y}, {x}, {c} != 0u)")
                } else {
                    format!("(({c}) != 0u ? ({x}) : ({y}))")
                }
            }
        })
    }

    /// WGSL for the expression's value (see [`Expr::emit`]).
    pub fn wgsl(&self, inputs: &[Scalar]) -> Result<String, String> {
        self.emit(Dialect::Wgsl, inputs)
    }
}

/// A constant, written through its bits for floats so that every value (infinities, NaN,
/// subnormals) is exact in both languages.
pub(super) fn literal(dialect: Dialect, ty: Scalar, v: f64) -> String {
    match (dialect, ty) {
        (Dialect::Wgsl, Scalar::F32) => format!("bitcast<f32>({:#x}u)", (v as f32).to_bits()),
        (Dialect::Cuda, Scalar::F32) => format!("__int_as_float({:#x})", (v as f32).to_bits()),
        (Dialect::Wgsl, Scalar::I32) => format!("i32({})", v as i32),
        (Dialect::Cuda, Scalar::I32) => format!("((int){})", v as i32),
        (_, Scalar::Bool) => if v != 0.0 { "1u" } else { "0u" }.to_string(),
    }
}

/// `v` of type `from` as a `to`, as Rust's `as` converts.
fn cast(dialect: Dialect, from: Scalar, to: Scalar, v: &str) -> String {
    let wgsl = dialect == Dialect::Wgsl;
    match (from, to) {
        (a, b) if a == b => v.to_string(),
        (_, Scalar::Bool) if wgsl => format!("select(0u, 1u, {v} != {})", zero(dialect, from)),
        (_, Scalar::Bool) => format!("((unsigned int)(({v}) != {}))", zero(dialect, from)),
        // WGSL's conversion clamps to the integer range (NaN gives some value; Rust gives 0).
        (Scalar::F32, Scalar::I32) if wgsl => {
            format!("select(i32({v}), 0, {})", is_nan(dialect, v))
        }
        // A saturating conversion toward zero, NaN to 0: Rust's `as`.
        (Scalar::F32, Scalar::I32) => format!("__float2int_rz({v})"),
        (_, to) if wgsl => format!("{}({v})", to.storage(dialect)),
        (_, to) => format!("(({})({v}))", to.storage(dialect)),
    }
}

fn zero(dialect: Dialect, ty: Scalar) -> String {
    literal(dialect, ty, 0.0)
}

fn binary(dialect: Dialect, op: BinaryOp, ty: Scalar, x: &str, y: &str) -> String {
    let wgsl = dialect == Dialect::Wgsl;
    let sym = op.symbol();
    if op.is_comparison() {
        return if wgsl {
            format!("select(0u, 1u, {x} {sym} {y})")
        } else {
            format!("((unsigned int)(({x}) {sym} ({y})))")
        };
    }
    match (op, ty, wgsl) {
        (BinaryOp::Pow, _, true) => format!("sluice_pow({x}, {y})"),
        (BinaryOp::Pow, _, false) => format!("powf({x}, {y})"),
        (BinaryOp::Max, Scalar::F32, _) => format!("sluice_max({x}, {y})"),
        (BinaryOp::Min, Scalar::F32, _) => format!("sluice_min({x}, {y})"),
        (BinaryOp::Max, _, true) => format!("max({x}, {y})"),
        (BinaryOp::Min, _, true) => format!("min({x}, {y})"),
        (BinaryOp::Max, _, false) => format!("max({x}, {y})"),
        (BinaryOp::Min, _, false) => format!("min({x}, {y})"),
        // WGSL gives the dividend for a zero divisor; the engine gives 0.
        (BinaryOp::Div, Scalar::I32, true) => format!("select({x} / {y}, 0, {y} == 0)"),
        // C leaves a zero divisor and INT_MIN / -1 undefined; the engine gives 0 and wraps.
        (BinaryOp::Div, Scalar::I32, false) => format!(
            "(({y}) == 0 ? 0 : ({y}) == -1 ? (int)(0u - (unsigned int)({x})) : ({x}) / ({y}))"
        ),
        // WGSL integers wrap; C's signed overflow is undefined, so CUDA wraps in unsigned.
        (_, Scalar::I32, false) => {
            format!("((int)((unsigned int)({x}) {sym} (unsigned int)({y})))")
        }
        _ => format!("({x} {sym} {y})"),
    }
}

/// C's `pow(x, y)` in WGSL, whose own `pow` is `exp2(y * log2(x))`, undefined for `x <= 0`:
/// the magnitude from `|x|` (zeros, infinities and infinite powers by C's table), the sign
/// from `x`'s sign bit and whether `y` is an odd integer, NaN for a finite negative base to a
/// non-integer power; and first the exact cases, `pow(x, 0) = pow(1, y) = 1` even for NaN.
/// Infinities and NaN are tested from the bits (WGSL compilers may assume there are none).
/// `exp2(y * log2(|x|))` is less accurate than CUDA's `powf` for bases near 1 and large
/// powers: WGSL allows `log2` an absolute error of 2^-21.
fn wgsl_pow(x: &str, y: &str) -> String {
    let f = |v: f64| literal(Dialect::Wgsl, Scalar::F32, v);
    let (inf, nan, one, zero) = (f(f64::INFINITY), f(f64::NAN), f(1.0), f(0.0));
    let infinite = |v: &str| format!("((bitcast<u32>({v}) & 0x7fffffffu) == 0x7f800000u)");
    let a = format!("abs({x})");
    let up = format!("({y} > 0.0)");
    let (a_inf, y_inf) = (infinite(&a), infinite(y));
    let mut m = format!("exp2({y} * log2({a}))");
    m = format!("select({m}, select(select({inf}, {zero}, ({a} < 1.0) == {up}), {one}, {a} == 1.0), {y_inf})");
    m = format!("select({m}, select({zero}, {inf}, {up}), {a_inf})");
    m = format!("select({m}, select({inf}, {zero}, {up}), {a} == 0.0)");
    let negative = format!("((bitcast<u32>({x}) >> 31u) == 1u)");
    let integer = format!("(floor({y}) == {y})");
    let odd = format!("({integer} && abs({y}) < 16777216.0 && fract({y} * 0.5) != 0.0)");
    let signed = format!("({m} * select(1.0, -1.0, {negative} && {odd}))");
    let invalid = format!(
        "({negative} && {a} != 0.0 && !{a_inf} && !{integer}) || {} || {}",
        is_nan(Dialect::Wgsl, x),
        is_nan(Dialect::Wgsl, y)
    );
    format!("select(select(select({signed}, {nan}, {invalid}), {one}, {x} == {one}), {one}, {y} == 0.0)")
}

/// The CPU's `maximum` (`x >= y ? x : y`) or `minimum` (`x <= y ? x : y`) of two f32s `x`
/// and `y`: a NaN second operand wins, a NaN first one loses, in both languages (CUDA's
/// `fmaxf` and WGSL's `max` treat NaN otherwise).
fn float_extreme(dialect: Dialect, cmp: &str) -> String {
    let nan = format!("{} || {}", is_nan(dialect, "x"), is_nan(dialect, "y"));
    match dialect {
        Dialect::Wgsl => format!("select(select(y, x, x {cmp} y), y, {nan})"),
        Dialect::Cuda => format!("(({nan}) ? y : (x {cmp} y ? x : y))"),
    }
}

/// The functions that emitted expressions call (`sluice_max`, `sluice_min`, and on WGSL
/// `sluice_pow`), defined once before a program's entry point for those that `value` calls:
/// each operand is then written once, however deep the expression (a max pool's window is a
/// chain of maxima).
pub(super) fn helpers(dialect: Dialect, value: &str) -> String {
    let mut defined = String::new();
    let mut define = |name: &str, body: String| {
        if value.contains(&format!("{name}(")) {
            defined.push_str(&match dialect {
                Dialect::Wgsl => format!("fn {name}(x: f32, y: f32) -> f32 {{ return {body}; }}\n"),
                Dialect::Cuda => format!(
                    "__device__ __forceinline__ float {name}(float x, float y) {{ return {body}; }}\n"
                ),
            });
        }
    };
    define("sluice_max", float_extreme(dialect, ">="));
    define("sluice_min", float_extreme(dialect, "<="));
    if dialect == Dialect::Wgsl {
        define("sluice_pow", wgsl_pow("x", "y"));
    }
    defined
}

/// Whether the f32 `v` is NaN, from its bits: WGSL compilers may assume there are no NaNs
/// and fold `v != v` to false (Mesa's does).
pub(super) fn is_nan(dialect: Dialect, v: &str) -> String {
    match dialect {
        Dialect::Wgsl => format!("((bitcast<u32>({v}) & 0x7fffffffu) > 0x7f800000u)"),
        Dialect::Cuda => format!("((__float_as_uint({v}) & 0x7fffffffu) > 0x7f800000u)"),
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
        let code = e
            .emit(Dialect::Cuda, &[Scalar::I32, Scalar::I32])
            .expect("CUDA i32 division");
        assert!(code.starts_with("((x1) == 0 ? 0"), "{code}");
    }

    #[test]
    fn comparisons_store_bools_as_words() {
        let e = Expr::binary(BinaryOp::Lt, Expr::input(0), Expr::input(1));
        assert_eq!(e.scalar(&[Scalar::F32, Scalar::F32]), Ok(Scalar::Bool));
        assert_eq!(
            e.wgsl(&[Scalar::F32, Scalar::F32]).expect("compare"),
            "select(0u, 1u, x0 < x1)"
        );
    }

    #[test]
    fn float_literals_are_exact_bits() {
        let e = Expr::binary(BinaryOp::Add, Expr::input(0), Expr::f32(f32::NEG_INFINITY));
        assert_eq!(
            e.wgsl(&[Scalar::F32]).expect("add"),
            "(x0 + bitcast<f32>(0xff800000u))"
        );
        assert_eq!(
            e.emit(Dialect::Cuda, &[Scalar::F32]).expect("add"),
            "(x0 + __int_as_float(0xff800000))"
        );
    }

    #[test]
    fn what_gpus_cannot_do_is_an_error() {
        let log = Expr::unary(UnaryOp::Log, Expr::input(0));
        assert!(log.wgsl(&[Scalar::I32]).is_err());
        let add = Expr::binary(BinaryOp::Add, Expr::input(0), Expr::input(1));
        assert!(add.wgsl(&[Scalar::F32, Scalar::I32]).is_err());
        assert!(add.wgsl(&[Scalar::F32]).is_err(), "a missing input");
        let select = Expr::select(Expr::input(0), Expr::input(0), Expr::input(0));
        assert!(select.wgsl(&[Scalar::F32]).is_err(), "a float condition");
    }
}
