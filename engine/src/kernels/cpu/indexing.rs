//! CPU kernels of [`crate::ops::indexing`].

use crate::kernels::{Context, CpuKernel, KernelError};
use crate::ops::indexing::*;
use crate::ops::reduce::normalize_axes;
use crate::tensor::DType;
use crate::tensor::Tensor;

/// Row-major strides of a shape, in elements.
pub(crate) fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * shape[a + 1];
    }
    strides
}

/// Calls `f(box_offset, full_offset, len)` for each innermost row of the box of shape `size`
/// placed at `begin` inside a row-major tensor of shape `full` (the box must fit).
fn box_rows(
    full: &[usize],
    begin: &[usize],
    size: &[usize],
    mut f: impl FnMut(usize, usize, usize),
) {
    let r = full.len();
    if r == 0 {
        f(0, 0, 1);
        return;
    }
    if size.contains(&0) {
        return;
    }
    let strides = row_major_strides(full);
    let row = size[r - 1];
    let rows: usize = size[..r - 1].iter().product();
    let mut index = vec![0usize; r - 1];
    for k in 0..rows {
        let offset: usize = (0..r - 1)
            .map(|a| (begin[a] + index[a]) * strides[a])
            .sum::<usize>()
            + begin[r - 1];
        f(k * row, offset, row);
        for a in (0..r - 1).rev() {
            index[a] += 1;
            if index[a] < size[a] {
                break;
            }
            index[a] = 0;
        }
    }
}

/// Index values as i64, from an i32, i64 or u8 tensor.
pub(crate) fn index_values(t: &Tensor) -> Result<Vec<i64>, KernelError> {
    match t.dtype() {
        DType::I32 => Ok(t.as_slice::<i32>()?.iter().map(|&i| i as i64).collect()),
        DType::I64 => Ok(t.to_vec::<i64>()?),
        DType::U8 => Ok(t.as_slice::<u8>()?.iter().map(|&i| i as i64).collect()),
        other => Err(KernelError::Message(format!(
            "indices must be i32 or i64, got {other}"
        ))),
    }
}

/// Checks gather indices against the size of axis 0; the message names the bad index.
pub(crate) fn checked_rows(indices: &[i64], n: usize) -> Result<Vec<usize>, KernelError> {
    indices
        .iter()
        .enumerate()
        .map(|(j, &i)| {
            usize::try_from(i)
                .ok()
                .filter(|&i| i < n)
                .ok_or_else(|| {
                    KernelError::Message(format!(
                        "index {i} (at flat position {j} of the indices) is out of range [0, {n}) for params of size {n} on axis 0"
                    ))
                })
        })
        .collect()
}

impl Slice {
    /// The slice's dimensions within a tensor of this (run-time) shape.
    pub(crate) fn resolve(&self, shape: &[usize]) -> Result<Vec<usize>, String> {
        let dims: Vec<Option<usize>> = shape.iter().map(|&d| Some(d)).collect();
        self.sizes(&dims)?
            .into_iter()
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| format!("cannot resolve the slice of {shape:?}"))
    }
}

impl CpuKernel for Slice {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let size = self.resolve(x.shape())?;
        let out = any_kernel!(x.dtype(), T => {
            let xs = x.as_slice::<T>()?;
            let mut out = ctx.pool.alloc::<T>(size.iter().product());
            box_rows(x.shape(), &self.begin, &size, |o, i, n| {
                out[o..o + n].copy_from_slice(&xs[i..i + n]);
            });
            Tensor::new(&size, out).map_err(KernelError::from)
        })?;
        Ok(vec![out])
    }
}

impl CpuKernel for SliceGrad {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (dy, x) = (inputs[0], inputs[1]);
        let size = self.slice().resolve(x.shape())?;
        if size != dy.shape() {
            return Err(KernelError::Message(format!(
                "dy has shape {:?}, but the slice of {:?} has shape {size:?}",
                dy.shape(),
                x.shape()
            )));
        }
        let out = any_kernel!(dy.dtype(), T => {
            let ds = dy.as_slice::<T>()?;
            let mut out = ctx.pool.zeros::<T>(x.len());
            box_rows(x.shape(), &self.begin, &size, |o, i, n| {
                out[i..i + n].copy_from_slice(&ds[o..o + n]);
            });
            Tensor::new(x.shape(), out).map_err(KernelError::from)
        })?;
        Ok(vec![out])
    }
}

impl CpuKernel for Gather {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (params, indices) = (inputs[0], inputs[1]);
        let Some((&n, rest)) = params.shape().split_first() else {
            return Err(KernelError::Message(
                "params must have rank 1 or more".into(),
            ));
        };
        let rows = checked_rows(&index_values(indices)?, n)?;
        let inner: usize = rest.iter().product();
        let mut shape = indices.shape().to_vec();
        shape.extend_from_slice(rest);
        let out = any_kernel!(params.dtype(), T => {
            let ps = params.as_slice::<T>()?;
            let mut out = ctx.pool.alloc::<T>(rows.len() * inner);
            for (j, &r) in rows.iter().enumerate() {
                out[j * inner..(j + 1) * inner].copy_from_slice(&ps[r * inner..(r + 1) * inner]);
            }
            Tensor::new(&shape, out).map_err(KernelError::from)
        })?;
        Ok(vec![out])
    }
}

impl CpuKernel for GatherGrad {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (dy, indices, params) = (inputs[0], inputs[1], inputs[2]);
        let Some((&n, rest)) = params.shape().split_first() else {
            return Err(KernelError::Message(
                "params must have rank 1 or more".into(),
            ));
        };
        let rows = checked_rows(&index_values(indices)?, n)?;
        let mut want = indices.shape().to_vec();
        want.extend_from_slice(rest);
        if dy.shape() != want.as_slice() {
            return Err(KernelError::Message(format!(
                "dy has shape {:?}, but the gather gives {want:?}",
                dy.shape()
            )));
        }
        Ok(vec![super::sparse::sum_rows(ctx, dy, &rows, n, rest)?])
    }
}

impl CpuKernel for OneHot {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let indices = inputs[0];
        let values = index_values(indices)?;
        let depth = self.depth;
        let count = values.len().checked_mul(depth).ok_or_else(|| {
            KernelError::Message(format!(
                "one_hot of {} indices at depth {depth} has more elements than a tensor can hold",
                values.len()
            ))
        })?;
        let mut out = ctx.pool.zeros::<f32>(count);
        for (j, &i) in values.iter().enumerate() {
            if let Some(i) = usize::try_from(i).ok().filter(|&i| i < depth) {
                out[j * depth + i] = 1.0;
            }
        }
        let mut shape = indices.shape().to_vec();
        shape.push(depth);
        Ok(vec![Tensor::new(&shape, out)?])
    }
}

impl CpuKernel for ExpandDims {
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let axis = normalize_axes(&[self.axis], x.rank() + 1)?[0];
        let mut shape = x.shape().to_vec();
        shape.insert(axis, 1);
        Ok(vec![x.reshape(&shape)?])
    }
}

impl CpuKernel for Squeeze {
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let dims: Vec<Option<usize>> = x.shape().iter().map(|&d| Some(d)).collect();
        let dropped = self.dropped(&dims)?;
        let shape: Vec<usize> = (0..x.rank())
            .filter(|a| !dropped.contains(a))
            .map(|a| x.shape()[a])
            .collect();
        Ok(vec![x.reshape(&shape)?])
    }
}
