//! Elementwise arithmetic with NumPy broadcasting, unary math, and comparisons.

#[cfg(feature = "engine")]
use super::broadcast::binary_map;
use super::broadcast::broadcast_shapes;
use super::{build, expect_float, expect_inputs, Attrs, GradContext, GradientError, Op};
#[cfg(feature = "engine")]
use super::{Context, KernelError};
use crate::graph::{AttrValue, Output, TypeShape};
use crate::ops::array::select;
use crate::ops::reduce::sum_to_like;
use crate::tensor::DType;
#[cfg(feature = "engine")]
use crate::tensor::{Float, Tensor};

/// Elementwise arithmetic for every numeric dtype. Integers wrap on overflow, as NumPy's
/// fixed-width integers do, instead of panicking (`i32::MIN / -1` included), and integer
/// division truncates toward zero, giving 0 for a zero divisor.
pub trait Arith: Copy {
    /// The smallest value (-inf for floats): where a running maximum starts.
    const LOWEST: Self;
    fn add_wrapping(self, other: Self) -> Self;
    fn sub_wrapping(self, other: Self) -> Self;
    fn mul_wrapping(self, other: Self) -> Self;
    fn div_or_zero(self, other: Self) -> Self;
}

macro_rules! float_arith {
    ($($t:ty),*) => {$(
        impl Arith for $t {
            const LOWEST: Self = <$t>::NEG_INFINITY;
            fn add_wrapping(self, other: Self) -> Self { self + other }
            fn sub_wrapping(self, other: Self) -> Self { self - other }
            fn mul_wrapping(self, other: Self) -> Self { self * other }
            fn div_or_zero(self, other: Self) -> Self { self / other }
        }
    )*};
}

macro_rules! int_arith {
    ($($t:ty),*) => {$(
        impl Arith for $t {
            const LOWEST: Self = <$t>::MIN;
            fn add_wrapping(self, other: Self) -> Self { self.wrapping_add(other) }
            fn sub_wrapping(self, other: Self) -> Self { self.wrapping_sub(other) }
            fn mul_wrapping(self, other: Self) -> Self { self.wrapping_mul(other) }
            fn div_or_zero(self, other: Self) -> Self {
                if other == 0 { 0 } else { self.wrapping_div(other) }
            }
        }
    )*};
}

float_arith!(f32, f64);
int_arith!(i32, i64, u8);

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

    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (a, b) = (inputs[0], inputs[1]);
        let pool = &mut *ctx.pool;
        let out = match self.0 {
            BinaryKind::Add => {
                numeric_kernel!(a.dtype(), T => binary_map::<T, T>(pool, a, b, Arith::add_wrapping))
            }
            BinaryKind::Sub => {
                numeric_kernel!(a.dtype(), T => binary_map::<T, T>(pool, a, b, Arith::sub_wrapping))
            }
            BinaryKind::Mul => {
                numeric_kernel!(a.dtype(), T => binary_map::<T, T>(pool, a, b, Arith::mul_wrapping))
            }
            BinaryKind::Div => {
                numeric_kernel!(a.dtype(), T => binary_map::<T, T>(pool, a, b, Arith::div_or_zero))
            }
            BinaryKind::Pow => {
                float_kernel!(a.dtype(), T => binary_map::<T, T>(pool, a, b, num_traits::Float::powf))
            }
            BinaryKind::Maximum => {
                numeric_kernel!(a.dtype(), T => binary_map::<T, T>(pool, a, b, |x, y| if x >= y { x } else { y }))
            }
            BinaryKind::Minimum => {
                numeric_kernel!(a.dtype(), T => binary_map::<T, T>(pool, a, b, |x, y| if x <= y { x } else { y }))
            }
        }?;
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

#[cfg(feature = "engine")]
/// Applies `f` to every element of a float tensor.
pub(crate) fn unary_map<T: Float>(
    ctx: &mut Context,
    x: &Tensor,
    f: impl Fn(T) -> T,
) -> Result<Tensor, KernelError> {
    let xs = x.as_slice::<T>()?;
    let mut out = ctx.pool.alloc::<T>(xs.len());
    for (o, &v) in out.iter_mut().zip(xs) {
        *o = f(v);
    }
    Ok(Tensor::new(x.shape(), out)?)
}

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

    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let out = float_kernel!(x.dtype(), T => match self.0 {
            UnaryKind::Neg => unary_map::<T>(ctx, x, |v| -v),
            UnaryKind::Exp => unary_map::<T>(ctx, x, num_traits::Float::exp),
            UnaryKind::Log => unary_map::<T>(ctx, x, num_traits::Float::ln),
            UnaryKind::Sqrt => unary_map::<T>(ctx, x, num_traits::Float::sqrt),
            UnaryKind::Square => unary_map::<T>(ctx, x, |v| v * v),
            UnaryKind::Abs => unary_map::<T>(ctx, x, num_traits::Float::abs),
            UnaryKind::Sign => unary_map::<T>(ctx, x, |v| {
                if v > 0.0 as T { 1.0 } else if v < 0.0 as T { -1.0 } else { 0.0 }
            }),
        })?;
        Ok(vec![out])
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

    // `x > y` on bools is meant: false < true, as in NumPy.
    #[allow(clippy::bool_comparison)]
    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (a, b, pool) = (inputs[0], inputs[1], &mut *ctx.pool);
        let out = any_kernel!(a.dtype(), T => match self.0 {
            CompareKind::Equal => binary_map::<T, bool>(pool, a, b, |x, y| x == y),
            CompareKind::NotEqual => binary_map::<T, bool>(pool, a, b, |x, y| x != y),
            CompareKind::Greater => binary_map::<T, bool>(pool, a, b, |x, y| x > y),
            CompareKind::GreaterEqual => binary_map::<T, bool>(pool, a, b, |x, y| x >= y),
            CompareKind::Less => binary_map::<T, bool>(pool, a, b, |x, y| x < y),
            CompareKind::LessEqual => binary_map::<T, bool>(pool, a, b, |x, y| x <= y),
        })?;
        Ok(vec![out])
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

    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let value = self.0;
        let out = any_kernel!(x.dtype(), T => {
            let mut v = ctx.pool.alloc::<T>(x.len());
            v.fill(<T as crate::tensor::Element>::from_f64(value));
            Tensor::new(x.shape(), v).map_err(KernelError::from)
        })?;
        Ok(vec![out])
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
