//! CPU kernels of [`crate::ops::array`].

use super::indexing::row_major_strides;
use crate::kernels::{Context, CpuKernel, KernelError};
use crate::ops::array::*;
use crate::ops::reduce::normalize_axes;
use crate::tensor::Tensor;

/// Number of joined rows when each row holds `widths[i]` elements of part `i` side by side.
fn outer_rows(len: usize, widths: &[usize]) -> usize {
    let total: usize = widths.iter().sum();
    len.checked_div(total).unwrap_or(0)
}

/// Copies the parts, row by row, into `whole`.
fn join_chunks<T: Copy>(whole: &mut [T], parts: &[&[T]], widths: &[usize]) {
    let mut at = 0;
    for o in 0..outer_rows(whole.len(), widths) {
        for (part, &w) in parts.iter().zip(widths) {
            whole[at..at + w].copy_from_slice(&part[o * w..(o + 1) * w]);
            at += w;
        }
    }
}

/// Copies the rows of `whole` back out into the parts.
fn split_chunks<T: Copy>(whole: &[T], parts: &mut [Vec<T>], widths: &[usize]) {
    let mut at = 0;
    for o in 0..outer_rows(whole.len(), widths) {
        for (part, &w) in parts.iter_mut().zip(widths) {
            part[o * w..(o + 1) * w].copy_from_slice(&whole[at..at + w]);
            at += w;
        }
    }
}

/// Checks run-time shapes for a concatenation along `axis`; gives the joined shape and the
/// width of each part within one outer row.
pub(crate) fn concat_runtime(
    shapes: &[&[usize]],
    axis: usize,
) -> Result<(Vec<usize>, Vec<usize>), String> {
    let first = shapes.first().ok_or("needs at least one input")?;
    if axis >= first.len() {
        return Err(format!("axis {axis} is out of range for shape {first:?}"));
    }
    let mut joined = first.to_vec();
    joined[axis] = 0;
    let mut widths = Vec::with_capacity(shapes.len());
    for s in shapes {
        let fits = s.len() == first.len()
            && s.iter()
                .zip(first.iter())
                .enumerate()
                .all(|(a, (d, e))| a == axis || d == e);
        if !fits {
            return Err(format!(
                "cannot concatenate shapes {first:?} and {s:?} along axis {axis}"
            ));
        }
        joined[axis] += s[axis];
        widths.push(s[axis..].iter().product());
    }
    Ok((joined, widths))
}

impl CpuKernel for Cast {
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        Ok(vec![inputs[0].cast(self.to)])
    }
}

impl CpuKernel for Identity {
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        Ok(vec![inputs[0].clone()])
    }
}

impl CpuKernel for Reshape {
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let shape = self.resolve(x.len())?;
        Ok(vec![x.reshape(&shape)?])
    }
}

impl CpuKernel for ReshapeLike {
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        Ok(vec![inputs[0].reshape(inputs[1].shape())?])
    }
}

impl CpuKernel for Select {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        use super::broadcast::{broadcast_concrete, broadcast_to};
        let (c, a, b) = (inputs[0], inputs[1], inputs[2]);
        let shape = broadcast_concrete(c.shape(), &broadcast_concrete(a.shape(), b.shape())?)?;
        let expand =
            |t: &Tensor, pool: &mut crate::kernels::BufferPool| -> Result<Tensor, KernelError> {
                if t.shape() == shape.as_slice() {
                    return Ok(t.clone());
                }
                let mut dims = vec![1; shape.len() - t.rank()];
                dims.extend_from_slice(t.shape());
                let t = t.reshape(&dims)?;
                any_kernel!(t.dtype(), T => broadcast_to::<T>(pool, &t, &shape))
            };
        let (c, a, b) = (
            expand(c, ctx.pool)?,
            expand(a, ctx.pool)?,
            expand(b, ctx.pool)?,
        );
        let cs = c.as_slice::<bool>()?;
        let out = any_kernel!(a.dtype(), T => {
            let (xs, ys) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
            let mut out = ctx.pool.alloc::<T>(cs.len());
            for (i, o) in out.iter_mut().enumerate() {
                *o = if cs[i] { xs[i] } else { ys[i] };
            }
            Tensor::new(&shape, out).map_err(KernelError::from)
        })?;
        Ok(vec![out])
    }
}

impl CpuKernel for Transpose {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        if !self.check(x.rank()) {
            return Err(KernelError::Message(format!(
                "perm {:?} does not fit shape {:?}",
                self.perm,
                x.shape()
            )));
        }
        let in_strides = row_major_strides(x.shape());
        let shape: Vec<usize> = self.perm.iter().map(|&p| x.shape()[p]).collect();
        let strides: Vec<usize> = self.perm.iter().map(|&p| in_strides[p]).collect();
        let out = any_kernel!(x.dtype(), T => {
            let xs = x.as_slice::<T>()?;
            let mut out = ctx.pool.alloc::<T>(xs.len());
            let mut index = vec![0usize; shape.len()];
            let mut offset = 0usize;
            for o in out.iter_mut() {
                *o = xs[offset];
                // Odometer over the output index, tracking the input offset.
                for axis in (0..shape.len()).rev() {
                    index[axis] += 1;
                    offset += strides[axis];
                    if index[axis] < shape[axis] {
                        break;
                    }
                    offset -= strides[axis] * shape[axis];
                    index[axis] = 0;
                }
            }
            Tensor::new(&shape, out).map_err(KernelError::from)
        })?;
        Ok(vec![out])
    }
}

impl CpuKernel for Concat {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let first = inputs
            .first()
            .ok_or("needs at least one input".to_string())?;
        let axis = normalize_axes(&[self.axis], first.rank())?[0];
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
        let (joined, widths) = concat_runtime(&shapes, axis)?;
        let out = any_kernel!(first.dtype(), T => {
            let parts = inputs
                .iter()
                .map(|t| t.as_slice::<T>())
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = ctx.pool.alloc::<T>(joined.iter().product());
            join_chunks(&mut out, &parts, &widths);
            Tensor::new(&joined, out).map_err(KernelError::from)
        })?;
        Ok(vec![out])
    }
}

impl CpuKernel for ConcatGrad {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (dy, xs) = inputs
            .split_first()
            .ok_or("takes dy and the inputs".to_string())?;
        let axis = normalize_axes(&[self.axis], dy.rank())?[0];
        let shapes: Vec<&[usize]> = xs.iter().map(|t| t.shape()).collect();
        let (joined, widths) = concat_runtime(&shapes, axis)?;
        if joined != dy.shape() {
            return Err(KernelError::Message(format!(
                "dy has shape {:?}, but the inputs join to {joined:?}",
                dy.shape()
            )));
        }
        any_kernel!(dy.dtype(), T => {
            let mut parts: Vec<Vec<T>> =
                xs.iter().map(|t| ctx.pool.alloc::<T>(t.len())).collect();
            split_chunks(dy.as_slice::<T>()?, &mut parts, &widths);
            parts
                .into_iter()
                .zip(xs)
                .map(|(p, x)| Tensor::new(x.shape(), p).map_err(KernelError::from))
                .collect()
        })
    }
}
