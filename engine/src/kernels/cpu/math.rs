//! CPU kernels of [`crate::ops::math`].

use super::broadcast::binary_map;
use crate::kernels::{Context, CpuKernel, KernelError};
use crate::ops::math::*;
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

impl CpuKernel for Binary {
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
}

impl CpuKernel for Unary {
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
}

impl CpuKernel for Compare {
    // `x > y` on bools is meant: false < true, as in NumPy.
    #[allow(clippy::bool_comparison)]
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
}

impl CpuKernel for FillLike {
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
}
