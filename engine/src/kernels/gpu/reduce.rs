//! Sums, means and maxima over axes: one thread per output element, walking its reduced
//! elements in row-major order, so sums add in the same order as the CPU kernel.

use super::expr::Scalar;
use crate::devices::gpu::{GpuDevice, WORKGROUP_SIZE};
use crate::devices::{DeviceTensor, Storage};
use crate::graph::TypeShape;
use crate::kernels::cpu::indexing::row_major_strides;
use crate::kernels::{GpuKernel, KernelError};
use crate::ops::reduce::normalize_axes;
use crate::ops::{Reduce, ReduceKind};

/// The scalar a GPU reduces `dtype` in, where it computes `kind` as the CPU does (not bools,
/// nor integer means, which the CPU takes in f64).
fn reduced_scalar(kind: ReduceKind, dtype: crate::tensor::DType) -> Option<Scalar> {
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
        gpu: &GpuDevice,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
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
    let out = gpu.alloc(x.dtype, &out_shape)?;
    if out_len == 0 {
        return Ok(out);
    }
    let word = |v: usize| {
        u32::try_from(v).map_err(|_| {
            KernelError::Message(format!("{v} elements are too many for one GPU kernel"))
        })
    };
    let mut params = vec![
        word(out_len)?,
        word(count)?,
        word(kept.len())?,
        word(reduced.len())?,
    ];
    for part in [&kept, &reduced] {
        for &(dim, _) in part.iter() {
            params.push(word(dim)?);
        }
        for &(_, stride) in part.iter() {
            params.push(word(stride)?);
        }
    }
    let pipeline = gpu.pipeline(&program(op.kind, scalar))?;
    let (Storage::Gpu(xb), Storage::Gpu(ob)) = (&x.storage, &out.storage) else {
        return Err(KernelError::Message(
            "a GPU reduction got a host tensor".into(),
        ));
    };
    gpu.dispatch(&pipeline, &[xb, ob], &params, out_len)?;
    Ok(out)
}

fn program(kind: ReduceKind, scalar: Scalar) -> String {
    let ty = scalar.wgsl_storage();
    let (init, combine, finish) = match (kind, scalar) {
        (ReduceKind::Sum, _) => (format!("{ty}(0)"), "acc + v", "acc"),
        (ReduceKind::Mean, _) => (format!("{ty}(0)"), "acc + v", "acc / f32(max(count, 1u))"),
        // The lowest value, written through its bits (WGSL has no literal for -inf); NaN
        // wins over any number, as on the CPU.
        (ReduceKind::Max, Scalar::F32) => (
            "bitcast<f32>(0xff800000u)".to_string(),
            "select(acc, v, v > acc || v != v)",
            "acc",
        ),
        (ReduceKind::Max, _) => (
            format!("bitcast<{ty}>(0x80000000u)"),
            "select(acc, v, v > acc)",
            "acc",
        ),
    };
    format!(
        "@group(0) @binding(0) var<storage, read> x: array<{ty}>;
@group(0) @binding(1) var<storage, read_write> out: array<{ty}>;
@group(0) @binding(2) var<storage, read> params: array<u32>;

@compute @workgroup_size({WORKGROUP_SIZE})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {{
    let o = gid.y * groups.x * {WORKGROUP_SIZE}u + gid.x;
    if (o >= params[0]) {{ return; }}
    let count = params[1];
    let nk = params[2];
    let nr = params[3];
    var rest = o;
    var base = 0u;
    for (var d = 0u; d < nk; d++) {{
        let axis = nk - 1u - d;
        let dim = params[4u + axis];
        base += (rest % dim) * params[4u + nk + axis];
        rest = rest / dim;
    }}
    let r0 = 4u + 2u * nk;
    var acc: {ty} = {init};
    for (var j = 0u; j < count; j++) {{
        var r = j;
        var off = base;
        for (var d = 0u; d < nr; d++) {{
            let axis = nr - 1u - d;
            let dim = params[r0 + axis];
            off += (r % dim) * params[r0 + nr + axis];
            r = r / dim;
        }}
        let v = x[off];
        acc = {combine};
    }}
    out[o] = {finish};
}}
"
    )
}
