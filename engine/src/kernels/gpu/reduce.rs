//! Sums, means and maxima over axes (the program is [`ReduceProgram`]), and the gradients
//! of reductions and broadcasts.

use super::array::{held, reshaped};
use super::elementwise::map_views;
use super::expr::Expr;
use super::expr::Scalar;
use super::program::View;
use super::program::{word, ArgMaxProgram, ReduceProgram};
use crate::devices::gpu::GpuDevice;
use crate::devices::{DeviceTensor, Storage};
use crate::graph::TypeShape;
use crate::kernels::cpu::broadcast::broadcast_strides;
use crate::kernels::cpu::indexing::row_major_strides;
use crate::kernels::cpu::reduce::kept_shape;
use crate::kernels::{GpuContext, GpuKernel, KernelError};
use crate::ops::reduce::normalize_axes;
use crate::ops::{ArgMax, BroadcastLike, Reduce, ReduceKind, SumToLike};
use crate::tensor::DType;

/// The scalar a GPU reduces `dtype` in, where it computes `kind` as the CPU does (not bools,
/// nor integer means, which the CPU takes in f64).
fn reduced_scalar(kind: ReduceKind, dtype: DType) -> Option<Scalar> {
    let scalar = Scalar::of(dtype)?;
    (scalar != Scalar::Bool && (kind != ReduceKind::Mean || scalar == Scalar::F32))
        .then_some(scalar)
}

/// `op` of `x` on `gpu`; `None` where the GPU does not compute it as the CPU does.
pub fn reduce(
    gpu: &GpuDevice,
    op: &Reduce,
    x: &DeviceTensor,
) -> Option<Result<DeviceTensor, KernelError>> {
    let scalar = reduced_scalar(op.kind, x.dtype)?;
    Some(run(gpu, op, x, scalar))
}

impl GpuKernel for Reduce {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        inputs.len() == 1 && reduced_scalar(self.kind, inputs[0].dtype).is_some()
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        match reduce(gpu, self, inputs[0]) {
            Some(out) => Ok(vec![out?]),
            None => Err(KernelError::Message(format!(
                "no GPU kernel for {:?} of {}",
                self.kind, inputs[0].dtype
            ))),
        }
    }
}

fn run(
    gpu: &GpuDevice,
    op: &Reduce,
    x: &DeviceTensor,
    scalar: Scalar,
) -> Result<DeviceTensor, KernelError> {
    let axes = normalize_axes(&op.axes, x.shape.len())?;
    let strides = row_major_strides(&x.shape);
    let (mut kept, mut reduced) = (Vec::new(), Vec::new());
    for (axis, (&dim, &stride)) in x.shape.iter().zip(&strides).enumerate() {
        if axes.contains(&axis) {
            reduced.push((dim, stride));
        } else {
            kept.push((dim, stride));
        }
    }
    let count: usize = reduced.iter().map(|r| r.0).product();
    if op.kind == ReduceKind::Max && count == 0 {
        return Err(KernelError::Message("max of an empty axis".into()));
    }
    let out_shape: Vec<usize> = if op.keep_dims {
        (x.shape.iter().enumerate())
            .map(|(a, &d)| if axes.contains(&a) { 1 } else { d })
            .collect()
    } else {
        kept.iter().map(|k| k.0).collect()
    };
    let out_len: usize = out_shape.iter().product();
    // Few long reductions (a loss summed over a batch) would leave most of a GPU idle with a
    // thread per output: each output is split into chunks summed in parallel first.
    if count >= 4 * CHUNK && out_len < 4096 && out_len > 0 {
        return chunked(gpu, op, x, scalar, (&kept, &reduced), count, out_shape);
    }
    let out = gpu.alloc(x.dtype, &out_shape)?;
    if out_len == 0 {
        return Ok(out);
    }
    let params = reduce_params(out_len, count, &kept, &reduced, None)?;
    let program = ReduceProgram {
        kind: op.kind,
        scalar,
        chunked: false,
    };
    dispatch(gpu, &program, x, &out, &params, out_len)?;
    Ok(out)
}

/// Reduced elements per thread in the first pass of a chunked reduction.
const CHUNK: usize = 1024;

type Axes = Vec<(usize, usize)>;

/// A long reduction in two passes: partial results of `CHUNK` elements each, in parallel,
/// then their reduction (a mean divides the sum last).
fn chunked(
    gpu: &GpuDevice,
    op: &Reduce,
    x: &DeviceTensor,
    scalar: Scalar,
    (kept, reduced): (&Axes, &Axes),
    count: usize,
    out_shape: Vec<usize>,
) -> Result<DeviceTensor, KernelError> {
    let out_len: usize = kept.iter().map(|k| k.0).product();
    let chunks = count.div_ceil(CHUNK);
    let threads = out_len
        .checked_mul(chunks)
        .ok_or_else(|| KernelError::Message("a reduction too large for the GPU".into()))?;
    let kind = match op.kind {
        ReduceKind::Mean => ReduceKind::Sum,
        kind => kind,
    };
    let partials = gpu.alloc(x.dtype, &[out_len, chunks])?;
    let params = reduce_params(threads, count, kept, reduced, Some((chunks, CHUNK)))?;
    let program = ReduceProgram {
        kind,
        scalar,
        chunked: true,
    };
    dispatch(gpu, &program, x, &partials, &params, threads)?;
    let second = Reduce {
        kind,
        axes: vec![1],
        keep_dims: false,
    };
    let mut out = run(gpu, &second, &partials, scalar)?;
    gpu.recycle(partials);
    if op.kind == ReduceKind::Mean {
        let mean = Expr::binary(
            super::expr::BinaryOp::Div,
            Expr::input(0),
            Expr::f32(count as f32),
        );
        let sum = out;
        out = super::elementwise::map(gpu, &mean, &[&sum])?;
        gpu.recycle(sum);
    }
    reshaped(&out, out_shape)
}

/// `[threads, count, kept rank, reduced rank, kept dims, kept strides, reduced dims, reduced
/// strides]`, then `[chunks, chunk size]` for a chunked pass.
fn reduce_params(
    threads: usize,
    count: usize,
    kept: &Axes,
    reduced: &Axes,
    chunks: Option<(usize, usize)>,
) -> Result<Vec<u32>, KernelError> {
    let mut params = vec![
        word(threads)?,
        word(count)?,
        word(kept.len())?,
        word(reduced.len())?,
    ];
    for part in [kept, reduced] {
        for &(dim, _) in part.iter() {
            params.push(word(dim)?);
        }
        for &(_, stride) in part.iter() {
            params.push(word(stride)?);
        }
    }
    if let Some((n, size)) = chunks {
        params.push(word(n)?);
        params.push(word(size)?);
    }
    Ok(params)
}

fn dispatch(
    gpu: &GpuDevice,
    program: &ReduceProgram,
    x: &DeviceTensor,
    out: &DeviceTensor,
    params: &[u32],
    threads: usize,
) -> Result<(), KernelError> {
    let (Storage::Gpu(xb), Storage::Gpu(ob)) = (&x.storage, &out.storage) else {
        return Err(KernelError::Message(
            "a GPU reduction got a host tensor".into(),
        ));
    };
    gpu.launch(program, &[xb, ob], params, threads)?;
    Ok(())
}

/// A reduction's gradient: `dy` (reduced, kept or not) read along the reduced axes of `x`.
impl GpuKernel for BroadcastLike {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        held(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let (dy, x) = (inputs[0], inputs[1]);
        let axes = normalize_axes(&self.axes, x.shape.len())?;
        let kept = reshaped(dy, kept_shape(&x.shape, &axes))?;
        let view = View {
            offset: 0,
            strides: broadcast_strides(&kept.shape, &x.shape),
        };
        Ok(vec![map_views(
            gpu,
            &Expr::input(0),
            &[(&kept, view)],
            &x.shape,
        )?])
    }
}

/// A broadcast's gradient: `g` summed down to the shape of `like`.
impl GpuKernel for SumToLike {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        inputs.len() == 2
            && held(inputs)
            && reduced_scalar(ReduceKind::Sum, inputs[0].dtype).is_some()
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let (g, like) = (inputs[0], inputs[1]);
        if g.shape == like.shape {
            return Ok(vec![g.clone()]);
        }
        // Leading axes that `like` lacks are summed away, and the axes where it has 1.
        let extra = g.shape.len().saturating_sub(like.shape.len());
        let mut target = vec![1; extra];
        target.extend_from_slice(&like.shape);
        if target.len() != g.shape.len() {
            return Err(KernelError::Message(format!(
                "cannot sum {:?} down to {:?}",
                g.shape, like.shape
            )));
        }
        let mut axes = Vec::new();
        for (axis, (&have, &want)) in g.shape.iter().zip(&target).enumerate() {
            match (have, want) {
                (h, w) if h == w => {}
                (_, 1) => axes.push(axis as i64),
                _ => {
                    return Err(KernelError::Message(format!(
                        "cannot sum {:?} down to {:?}",
                        g.shape, like.shape
                    )))
                }
            }
        }
        let sum = Reduce {
            kind: ReduceKind::Sum,
            axes,
            keep_dims: true,
        };
        let out = reduce(gpu, &sum, g)
            .unwrap_or_else(|| Err(KernelError::Message(format!("no GPU sum of {}", g.dtype))))?;
        Ok(vec![reshaped(&out, like.shape.clone())?])
    }
}

/// The first maximum's index, computed on the GPU in i32 and handed on as the i64 the op
/// gives, on the host (GPUs hold no i64): the step waits here for the GPU, as it would to
/// read the scores themselves, and reads back one word per row instead of the row.
impl GpuKernel for ArgMax {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        inputs.len() == 1 && matches!(Scalar::of(inputs[0].dtype), Some(Scalar::F32 | Scalar::I32))
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let x = inputs[0];
        let scalar = Scalar::of(x.dtype)
            .ok_or_else(|| KernelError::Message(format!("GPUs do not hold {}", x.dtype)))?;
        let axis = normalize_axes(&[self.axis], x.shape.len())?[0];
        let n = x.shape[axis];
        if n == 0 {
            return Err(KernelError::Message("argmax over an empty axis".into()));
        }
        if i32::try_from(n).is_err() {
            return Err(KernelError::Message(format!(
                "an argmax over {n} elements is too long for the GPU's i32 index"
            )));
        }
        let inner: usize = x.shape[axis + 1..].iter().product();
        let mut dims = x.shape.clone();
        dims.remove(axis);
        let best = gpu.alloc(DType::I32, &dims)?;
        if !best.is_empty() {
            let params = [word(best.len())?, word(n)?, word(inner)?];
            let buffers = [super::buffer(x)?, super::buffer(&best)?];
            gpu.launch(&ArgMaxProgram { scalar }, &buffers, &params, best.len())?;
        }
        let host = if best.is_empty() {
            crate::tensor::Tensor::new(&dims, Vec::<i32>::new())?
        } else {
            crate::devices::Device::download(gpu, &best)?
        };
        gpu.recycle(best);
        Ok(vec![DeviceTensor {
            dtype: DType::I64,
            shape: dims,
            storage: Storage::Host(host.cast(DType::I64)),
        }])
    }
}
