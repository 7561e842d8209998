//! CPU kernels of [`crate::ops::reduce`].

use super::broadcast::{broadcast_to, reduce_to_shape};
use super::math::Arith;
use crate::kernels::{Context, CpuKernel, KernelError};
use crate::ops::reduce::*;
use crate::tensor::DType;
use crate::tensor::Tensor;

/// The input shape with reduced axes set to 1.
pub(crate) fn kept_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    let mut kept = shape.to_vec();
    for &a in axes {
        kept[a] = 1;
    }
    kept
}

impl CpuKernel for Reduce {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let axes = normalize_axes(&self.axes, x.rank())?;
        let kept = kept_shape(x.shape(), &axes);
        let count: usize = axes.iter().map(|&a| x.shape()[a]).product();
        let pool = &mut *ctx.pool;
        let reduced = if self.kind == ReduceKind::Mean && !x.dtype().is_float() {
            // Integers are summed in f64 so that the sum cannot wrap; the mean truncates
            // toward zero, as TensorFlow's integer mean does.
            let wide = x.cast(DType::F64);
            let mut sum = reduce_to_shape::<f64>(pool, &wide, &kept, 0.0, |a, b| a + b)?;
            let n = count.max(1) as f64;
            sum.as_mut_slice::<f64>()?.iter_mut().for_each(|v| *v /= n);
            Ok(sum.cast(x.dtype()))
        } else {
            numeric_kernel!(x.dtype(), T => match self.kind {
                ReduceKind::Sum | ReduceKind::Mean => {
                    let mut sum = reduce_to_shape::<T>(pool, x, &kept, 0 as T, Arith::add_wrapping)?;
                    if self.kind == ReduceKind::Mean {
                        let n = count.max(1) as T;
                        for v in sum.as_mut_slice::<T>()? {
                            *v /= n;
                        }
                    }
                    Ok(sum)
                }
                ReduceKind::Max => {
                    if count == 0 {
                        return Err(KernelError::Message("max of an empty axis".into()));
                    }
                    // Every output starts at the lowest value; NaN wins over any number.
                    reduce_to_shape::<T>(pool, x, &kept, <T as Arith>::LOWEST, |a, b| if b > a || b.partial_cmp(&b).is_none() { b } else { a })
                }
            })
        }?;
        let out_shape: Vec<usize> = if self.keep_dims {
            kept
        } else {
            x.shape()
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect()
        };
        Ok(vec![reduced.reshape(&out_shape)?])
    }
}

impl CpuKernel for BroadcastLike {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (dy, x) = (inputs[0], inputs[1]);
        let axes = normalize_axes(&self.axes, x.rank())?;
        let kept = dy.reshape(&kept_shape(x.shape(), &axes))?;
        let out = any_kernel!(dy.dtype(), T => broadcast_to::<T>(ctx.pool, &kept, x.shape()))?;
        Ok(vec![out])
    }
}

impl CpuKernel for SumToLike {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (g, like) = (inputs[0], inputs[1]);
        if g.shape() == like.shape() {
            return Ok(vec![g.clone()]);
        }
        // Leading axes that `like` lacks are summed away first.
        let extra = g.rank().saturating_sub(like.rank());
        let mut target = vec![1; extra];
        target.extend_from_slice(like.shape());
        let out = numeric_kernel!(g.dtype(), T => reduce_to_shape::<T>(ctx.pool, g, &target, 0 as T, Arith::add_wrapping))?;
        Ok(vec![out.reshape(like.shape())?])
    }
}

impl CpuKernel for ArgMax {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let axis = normalize_axes(&[self.axis], x.rank())?[0];
        let shape = x.shape();
        let (outer, n): (usize, usize) = (shape[..axis].iter().product(), shape[axis]);
        let inner: usize = shape[axis + 1..].iter().product();
        if n == 0 {
            return Err(KernelError::Message("argmax over an empty axis".into()));
        }
        let mut out = ctx.pool.alloc::<i64>(outer * inner);
        numeric_kernel!(x.dtype(), T => {
            let xs = x.as_slice::<T>()?;
            for o in 0..outer {
                for i in 0..inner {
                    let mut best = 0;
                    for k in 1..n {
                        if xs[(o * n + k) * inner + i] > xs[(o * n + best) * inner + i] {
                            best = k;
                        }
                    }
                    out[o * inner + i] = best as i64;
                }
            }
            Ok::<(), KernelError>(())
        })?;
        let mut dims = shape.to_vec();
        dims.remove(axis);
        Ok(vec![Tensor::new(&dims, out)?])
    }
}
