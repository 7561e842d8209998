//! CPU kernels of [`crate::ops::sparse`].

use super::indexing::{checked_rows, index_values};
use super::math::Arith;
use crate::kernels::{Context, CpuKernel, KernelError};
use crate::ops::sparse::*;
use crate::ops::AssignKind;
use crate::tensor::{DType, Element, Tensor};
use std::collections::HashMap;

/// The rows of `data` (one per id) and the elements in each: `data`'s leading axes must be
/// the ids' shape.
fn rows_of(data: &Tensor, ids: &Tensor) -> Result<usize, KernelError> {
    let r = ids.shape().len();
    if data.shape().len() < r || data.shape()[..r] != *ids.shape() {
        return Err(KernelError::Message(format!(
            "data has shape {:?}, but its leading axes must be the ids' shape {:?}",
            data.shape(),
            ids.shape()
        )));
    }
    Ok(data.shape()[r..].iter().product())
}

/// Sums rows of `data` into `segments` output rows at `rows` (checked ids), as a tensor of
/// shape `[segments, rest..]`, held to the step's budget before it is made.
pub(super) fn sum_rows(
    ctx: &mut Context,
    data: &Tensor,
    rows: &[usize],
    segments: usize,
    rest: &[usize],
) -> Result<Tensor, KernelError> {
    let mut shape = vec![segments];
    shape.extend_from_slice(rest);
    ctx.step.budget.check(data.dtype(), &shape)?;
    let inner: usize = rest.iter().product();
    numeric_kernel!(data.dtype(), T => {
        let src = data.as_slice::<T>()?;
        let mut out = ctx.pool.zeros::<T>(segments * inner);
        for (j, &s) in rows.iter().enumerate() {
            let row = &src[j * inner..(j + 1) * inner];
            for (o, &d) in out[s * inner..(s + 1) * inner].iter_mut().zip(row) {
                *o = o.add_wrapping(d);
            }
        }
        Tensor::new(&shape, out).map_err(KernelError::from)
    })
}

/// The number of segments that ids up to `max` make, checked to be countable.
fn segments_up_to(ids: &[i64]) -> Result<usize, KernelError> {
    let Some(&max) = ids.iter().max() else {
        return Ok(0);
    };
    (usize::try_from(max).ok())
        .and_then(|m| m.checked_add(1))
        .ok_or_else(|| KernelError::Message(format!("segment id {max} is not a row number")))
}

impl CpuKernel for UnsortedSegmentSum {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (data, ids) = (inputs[0], inputs[1]);
        rows_of(data, ids)?;
        let values = index_values(ids)?;
        let segments = match self.num_segments {
            Some(n) => n,
            None => segments_up_to(&values)?,
        };
        let rows = checked_segments(&values, segments)?;
        let rest = data.shape()[ids.shape().len()..].to_vec();
        Ok(vec![sum_rows(ctx, data, &rows, segments, &rest)?])
    }
}

/// Segment ids checked against the segment count; the message names the bad one.
fn checked_segments(ids: &[i64], segments: usize) -> Result<Vec<usize>, KernelError> {
    (ids.iter().enumerate())
        .map(|(j, &id)| {
            (usize::try_from(id).ok().filter(|&s| s < segments)).ok_or_else(|| {
                KernelError::Message(format!(
                    "segment id {id} (at position {j}) is out of range [0, {segments})"
                ))
            })
        })
        .collect()
}

/// Sorted segment ids as rows, and the segment count (the last id plus one).
fn sorted_segments(ids: &Tensor) -> Result<(Vec<usize>, usize), KernelError> {
    let values = index_values(ids)?;
    if let Some(j) = (1..values.len()).find(|&j| values[j] < values[j - 1]) {
        return Err(KernelError::Message(format!(
            "segment ids must be sorted: {} at position {j} follows {}",
            values[j],
            values[j - 1]
        )));
    }
    let segments = segments_up_to(&values)?;
    Ok((checked_segments(&values, segments)?, segments))
}

impl CpuKernel for SegmentReduce {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (data, ids) = (inputs[0], inputs[1]);
        let inner = rows_of(data, ids)?;
        let (rows, segments) = sorted_segments(ids)?;
        let rest = data.shape()[1..].to_vec();
        let sums = sum_rows(ctx, data, &rows, segments, &rest)?;
        if self.kind == SegmentKind::Sum {
            return Ok(vec![sums]);
        }
        let counts = counts(&rows, segments);
        let mean = float_kernel!(sums.dtype(), T => {
            let mut out = sums.to_vec::<T>()?;
            for (s, &n) in counts.iter().enumerate() {
                let n = T::from_f64(n.max(1) as f64);
                out[s * inner..(s + 1) * inner].iter_mut().for_each(|v| *v /= n);
            }
            Tensor::new(sums.shape(), out).map_err(KernelError::from)
        })?;
        Ok(vec![mean])
    }
}

fn counts(rows: &[usize], segments: usize) -> Vec<usize> {
    let mut counts = vec![0usize; segments];
    for &s in rows {
        counts[s] += 1;
    }
    counts
}

impl CpuKernel for SegmentMeanGrad {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (dy, ids) = (inputs[0], inputs[1]);
        let Some((&segments, rest)) = dy.shape().split_first() else {
            return Err(KernelError::Message("dy must have rank 1 or more".into()));
        };
        let inner: usize = rest.iter().product();
        let rows = checked_segments(&index_values(ids)?, segments)?;
        let counts = counts(&rows, segments);
        let mut shape = vec![rows.len()];
        shape.extend_from_slice(rest);
        ctx.step.budget.check(dy.dtype(), &shape)?;
        let out = float_kernel!(dy.dtype(), T => {
            let src = dy.as_slice::<T>()?;
            let mut out = ctx.pool.alloc::<T>(rows.len() * inner);
            for (j, &s) in rows.iter().enumerate() {
                let n = T::from_f64(counts[s] as f64);
                let row = &src[s * inner..(s + 1) * inner];
                for (o, &d) in out[j * inner..(j + 1) * inner].iter_mut().zip(row) {
                    *o = d / n;
                }
            }
            Tensor::new(&shape, out).map_err(KernelError::from)
        })?;
        Ok(vec![out])
    }
}

impl CpuKernel for Unique {
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let values = index_values(x)?;
        let mut first: HashMap<i64, i64> = HashMap::with_capacity(values.len());
        let mut distinct = Vec::new();
        let mut positions = Vec::with_capacity(values.len());
        for (j, &v) in values.iter().enumerate() {
            let p = *first.entry(v).or_insert_with(|| {
                distinct.push(j);
                (distinct.len() - 1) as i64
            });
            positions.push(p);
        }
        let y = numeric_kernel!(x.dtype(), T => {
            let xs = x.as_slice::<T>()?;
            Ok::<Tensor, KernelError>(Tensor::from_vec(distinct.iter().map(|&j| xs[j]).collect()))
        })?;
        Ok(vec![y, Tensor::from_vec(positions)])
    }
}

impl CpuKernel for HashBucket {
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let buckets = self.buckets as u64;
        let hashed: Vec<i64> = (index_values(x)?.into_iter())
            .map(|v| bucket_of(v, buckets))
            .collect();
        Ok(vec![Tensor::new(x.shape(), hashed)?])
    }
}

impl CpuKernel for Scatter {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (indices, updates) = (inputs[0], inputs[1]);
        let var = ctx.variables.get_mut(self.var)?;
        let Some((&n, rest)) = var.shape().split_first() else {
            return Err(KernelError::Message(
                "the variable must have rank 1 or more".into(),
            ));
        };
        let inner: usize = rest.iter().product();
        let rows = checked_rows(&index_values(indices)?, n)?;
        let mut want = indices.shape().to_vec();
        want.extend_from_slice(rest);
        if updates.shape() != want.as_slice() || updates.dtype() != var.dtype() {
            return Err(KernelError::Message(format!(
                "updates are {} {:?}, but rows {:?} of the variable take {} {want:?}",
                updates.dtype(),
                updates.shape(),
                indices.shape(),
                var.dtype()
            )));
        }
        if var.dtype() == DType::Bool {
            return scatter_set::<bool>(var, updates, &rows, inner);
        }
        let kind = self.kind;
        numeric_kernel!(var.dtype(), T => {
            if kind == AssignKind::Set {
                return scatter_set::<T>(var, updates, &rows, inner);
            }
            let src = updates.as_slice::<T>()?;
            let dst = var.as_mut_slice::<T>()?;
            for (j, &r) in rows.iter().enumerate() {
                let row = &src[j * inner..(j + 1) * inner];
                for (o, &u) in dst[r * inner..(r + 1) * inner].iter_mut().zip(row) {
                    *o = if kind == AssignKind::Add {
                        o.add_wrapping(u)
                    } else {
                        o.sub_wrapping(u)
                    };
                }
            }
            Ok::<(), KernelError>(())
        })?;
        Ok(vec![])
    }
}

fn scatter_set<T: Element>(
    var: &mut Tensor,
    updates: &Tensor,
    rows: &[usize],
    inner: usize,
) -> Result<Vec<Tensor>, KernelError> {
    let src = updates.as_slice::<T>()?;
    let dst = var.as_mut_slice::<T>()?;
    for (j, &r) in rows.iter().enumerate() {
        dst[r * inner..(r + 1) * inner].copy_from_slice(&src[j * inner..(j + 1) * inner]);
    }
    Ok(vec![])
}

impl CpuKernel for ShardIds {
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let ids = checked_rows(&index_values(inputs[0])?, self.rows)?;
        let n = self.shards;
        let mut rows: Vec<Vec<i64>> = vec![Vec::new(); n];
        let mut positions: Vec<Vec<i64>> = vec![Vec::new(); n];
        for (j, &id) in ids.iter().enumerate() {
            let (p, local) = self.strategy.locate(id, self.rows, n);
            rows[p].push(local as i64);
            positions[p].push(j as i64);
        }
        Ok(rows
            .into_iter()
            .chain(positions)
            .map(Tensor::from_vec)
            .collect())
    }
}

impl CpuKernel for DynamicStitch {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (positions, data) = inputs.split_at(self.parts);
        let first = data[0];
        let row = first.shape().get(1..).unwrap_or_default().to_vec();
        let inner: usize = row.iter().product();
        let mut lists = Vec::with_capacity(self.parts);
        for (p, (at, rows)) in positions.iter().zip(data).enumerate() {
            let at = index_values(at)?;
            let fits = rows.shape().first() == Some(&at.len()) && rows.shape()[1..] == row[..];
            if !fits || rows.dtype() != first.dtype() {
                return Err(KernelError::Message(format!(
                    "part {p} has {} positions and rows {} {:?}: one row of {:?} per position",
                    at.len(),
                    rows.dtype(),
                    rows.shape(),
                    row
                )));
            }
            lists.push(at);
        }
        let count = segments_up_to(&lists.concat())?;
        let mut shape = vec![count];
        shape.extend_from_slice(&row);
        ctx.step.budget.check(first.dtype(), &shape)?;
        let out = any_kernel!(first.dtype(), T => {
            let mut out = ctx.pool.zeros::<T>(count * inner);
            for (at, rows) in lists.iter().zip(data) {
                let src = rows.as_slice::<T>()?;
                let targets = checked_segments(at, count)?;
                for (j, &t) in targets.iter().enumerate() {
                    out[t * inner..(t + 1) * inner].copy_from_slice(&src[j * inner..(j + 1) * inner]);
                }
            }
            Tensor::new(&shape, out).map_err(KernelError::from)
        })?;
        Ok(vec![out])
    }
}

impl CpuKernel for WeightedRows {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (weight, indices, values) = (inputs[0], inputs[1], inputs[2]);
        let w = weight
            .scalar_f64()
            .ok_or_else(|| KernelError::Message("the weight must be a scalar".into()))?;
        if w == 0.0 {
            let mut empty = values.shape().to_vec();
            if let Some(rows) = empty.first_mut() {
                *rows = 0;
            }
            return Ok(vec![
                Tensor::zeros(indices.dtype(), &[0]),
                Tensor::zeros(values.dtype(), &empty),
            ]);
        }
        let scaled = float_kernel!(values.dtype(), T => {
            let w = T::from_f64(w);
            let mut out = ctx.pool.alloc::<T>(values.len());
            for (o, &v) in out.iter_mut().zip(values.as_slice::<T>()?) {
                *o = v * w;
            }
            Tensor::new(values.shape(), out).map_err(KernelError::from)
        })?;
        Ok(vec![indices.clone(), scaled])
    }
}
