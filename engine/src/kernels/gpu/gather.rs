//! GPU kernels of [`crate::ops::indexing`]'s gathers. The indices are read on the host
//! ([`GpuKernel::host_inputs`]) and checked there as on the CPU, so an index out of range is
//! an error that names it, not a read the GPU would have to report; they reach the GPU as i32
//! row numbers. The gradient sums the gathered rows back by the row they came from, each row
//! in gather order (the CPU's order), with no atomics.

use super::array::reshaped;
use super::buffer;
use super::elementwise::map_views;
use super::expr::{Expr, Scalar};
use super::index::{add, int, mul};
use super::program::{word, SegmentSumProgram, View};
use crate::devices::gpu::GpuDevice;
use crate::devices::{Device, DeviceTensor, Storage};
use crate::graph::TypeShape;
use crate::kernels::cpu::indexing::{checked_rows, index_values};
use crate::kernels::{GpuContext, GpuKernel, KernelError};
use crate::ops::{Gather, GatherGrad, UnsortedSegmentSum};
use crate::tensor::{DType, Tensor};

impl GpuKernel for Gather {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        inputs.len() == 2 && Scalar::of(inputs[0].dtype).is_some()
    }

    fn host_inputs(&self) -> &'static [usize] {
        &[1]
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let (params, indices) = (inputs[0], inputs[1]);
        let (n, rest) = first_axis(params)?;
        let rows = rows(gpu, indices, n)?;
        let inner: usize = rest.iter().product();
        let mut shape = indices.shape.clone();
        shape.extend_from_slice(rest);
        let numbers = upload_i32(gpu, rows.iter().copied())?;
        // out[j, k] = params[rows[j] * inner + k]
        let at = add(
            mul(Expr::load(1, Expr::Coord(0)), int(inner)),
            Expr::Coord(1),
        );
        let out = map_views(
            gpu,
            &Expr::load(0, at),
            &[(params, View::unread(2)), (&numbers, View::unread(2))],
            &[rows.len(), inner],
        )?;
        Ok(vec![reshaped(&out, shape)?])
    }
}

impl GpuKernel for GatherGrad {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        inputs.len() == 3 && inputs[0].dtype == DType::F32 && inputs[2].dtype == DType::F32
    }

    fn host_inputs(&self) -> &'static [usize] {
        &[1]
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let (dy, indices, params) = (inputs[0], inputs[1], inputs[2]);
        let (n, rest) = first_axis(params)?;
        let rows = rows(gpu, indices, n)?;
        let mut want = indices.shape.clone();
        want.extend_from_slice(rest);
        if dy.shape != want {
            return Err(KernelError::Message(format!(
                "dy has shape {:?}, but the gather gives {want:?}",
                dy.shape
            )));
        }
        Ok(vec![sum_by_row(gpu, dy, &rows, &params.shape)?])
    }
}

/// Sums the gathered rows of the ids' data into rows `0..num_segments`, as the gather's
/// gradient does (the same program, the CPU's order).
impl GpuKernel for UnsortedSegmentSum {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        self.num_segments.is_some() && inputs.len() == 2 && inputs[0].dtype == DType::F32
    }

    fn host_inputs(&self) -> &'static [usize] {
        &[1]
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let (data, ids) = (inputs[0], inputs[1]);
        let Some(n) = self.num_segments else {
            return Err(KernelError::Message(
                "a segment sum without a segment count runs on the host".into(),
            ));
        };
        let r = ids.shape.len();
        if data.shape.len() < r || data.shape[..r] != ids.shape[..] {
            return Err(KernelError::Message(format!(
                "data has shape {:?}, but its leading axes must be the ids' shape {:?}",
                data.shape, ids.shape
            )));
        }
        let rows = rows(gpu, ids, n)?;
        let mut shape = vec![n];
        shape.extend_from_slice(&data.shape[r..]);
        Ok(vec![sum_by_row(gpu, data, &rows, &shape)?])
    }
}

/// A tensor of `shape` whose row r is the sum of the rows j of `data` with `rows[j] == r`,
/// added in ascending j.
fn sum_by_row(
    gpu: &GpuDevice,
    data: &DeviceTensor,
    rows: &[usize],
    shape: &[usize],
) -> Result<DeviceTensor, KernelError> {
    let Some((&n, rest)) = shape.split_first() else {
        return Err(KernelError::Message(
            "the sum must have rank 1 or more".into(),
        ));
    };
    let inner: usize = rest.iter().product();
    let out = gpu.alloc(DType::F32, shape)?;
    if out.is_empty() {
        // (Before any host vector sized by the rows: [2^40, 0] holds nothing.)
        return Ok(out);
    }
    // Row r of the result sums the rows of data in segment r of `order`: the positions j
    // (ascending) whose index is r.
    let mut offsets = vec![0usize; n + 1];
    for &r in rows {
        offsets[r + 1] += 1;
    }
    for r in 0..n {
        offsets[r + 1] += offsets[r];
    }
    let mut next = offsets.clone();
    let mut order = vec![0usize; rows.len()];
    for (j, &r) in rows.iter().enumerate() {
        order[next[r]] = j;
        next[r] += 1;
    }
    let offsets = upload_i32(gpu, offsets.into_iter())?;
    let order = upload_i32(gpu, order.into_iter())?;
    let buffers = [
        buffer(data)?,
        buffer(&offsets)?,
        buffer(&order)?,
        buffer(&out)?,
    ];
    let params = [word(out.len())?, word(inner)?];
    gpu.launch(&SegmentSumProgram, &buffers, &params, out.len())?;
    Ok(out)
}

/// The size of `params`' first axis and the shape of one of its rows.
fn first_axis(params: &DeviceTensor) -> Result<(usize, &[usize]), KernelError> {
    match params.shape.split_first() {
        Some((&n, rest)) => Ok((n, rest)),
        None => Err(KernelError::Message(
            "params must have rank 1 or more".into(),
        )),
    }
}

/// The indices as rows of `params` (`n` of them), checked as the CPU checks them.
fn rows(gpu: &GpuDevice, indices: &DeviceTensor, n: usize) -> Result<Vec<usize>, KernelError> {
    let host = match &indices.storage {
        Storage::Host(t) => t.clone(),
        // Indices that a GPU kernel computed: read back, which waits for the GPU.
        Storage::Gpu(_) => gpu.download(indices)?,
    };
    checked_rows(&index_values(&host)?, n)
}

/// Numbers (rows, offsets) as an i32 vector on the GPU; kernels index in i32.
fn upload_i32(
    gpu: &GpuDevice,
    values: impl ExactSizeIterator<Item = usize>,
) -> Result<DeviceTensor, KernelError> {
    let len = values.len();
    let words = values
        .map(|v| {
            i32::try_from(v).map_err(|_| {
                KernelError::Message(format!("{v} is too large for a GPU gather's i32 indexing"))
            })
        })
        .collect::<Result<Vec<i32>, _>>()?;
    Ok(gpu.upload(&Tensor::new(&[len], words)?)?)
}
