//! Matrix products, plain, batched and transposed, in f32: the vendor's library where the
//! backend has one (cuBLAS on CUDA), else a tiled kernel whose workgroup stages 16x16 tiles
//! of both operands in shared memory, so each element read from memory serves 16
//! multiply-adds.

use crate::devices::gpu::{Gemm, GpuDevice};
use crate::devices::{DeviceTensor, Storage};
use crate::graph::TypeShape;
use crate::kernels::cpu::linalg::{matmul_dims, MatmulDims};
use crate::kernels::{GpuContext, GpuKernel, KernelError};
use crate::ops::MatMul;
use crate::tensor::DType;

const TILE: usize = 16;

/// `op(a) @ op(b)` on `gpu`; `None` for dtypes other than f32.
pub fn matmul(
    gpu: &GpuDevice,
    op: &MatMul,
    a: &DeviceTensor,
    b: &DeviceTensor,
) -> Option<Result<DeviceTensor, KernelError>> {
    (a.dtype == DType::F32 && b.dtype == DType::F32).then(|| run(gpu, op, a, b))
}

impl GpuKernel for MatMul {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        inputs.len() == 2 && inputs.iter().all(|t| t.dtype == DType::F32)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        Ok(vec![run(gpu, self, inputs[0], inputs[1])?])
    }
}

fn run(
    gpu: &GpuDevice,
    op: &MatMul,
    a: &DeviceTensor,
    b: &DeviceTensor,
) -> Result<DeviceTensor, KernelError> {
    let MatmulDims { batch, m, k, n } =
        matmul_dims(&a.shape, &b.shape, op.transpose_a, op.transpose_b)?;
    let mut shape = a.shape[..a.shape.len() - 2].to_vec();
    shape.extend([m, n]);
    let out = gpu.alloc(DType::F32, &shape)?;
    if batch * m * n == 0 {
        return Ok(out);
    }
    let (Storage::Gpu(ab), Storage::Gpu(bb), Storage::Gpu(cb)) =
        (&a.storage, &b.storage, &out.storage)
    else {
        return Err(KernelError::Message(
            "a GPU matmul got a host tensor".into(),
        ));
    };
    let gemm = Gemm {
        batch,
        m,
        n,
        k,
        transpose_a: op.transpose_a,
        transpose_b: op.transpose_b,
    };
    if let Some(done) = gpu.vendor_gemm(ab, bb, cb, &gemm) {
        done?;
        return Ok(out);
    }
    // Element (i, j) of op(a) is at i * row + j * col of its matrix; likewise for b.
    let (a_row, a_col) = if op.transpose_a { (1, m) } else { (k, 1) };
    let (b_row, b_col) = if op.transpose_b { (1, k) } else { (n, 1) };
    let word = |v: usize| {
        u32::try_from(v)
            .map_err(|_| KernelError::Message(format!("{v} is too large for a GPU matmul")))
    };
    let params = [m, n, k, a_row, a_col, b_row, b_col, m * k, k * n]
        .into_iter()
        .map(word)
        .collect::<Result<Vec<u32>, _>>()?;
    let groups = [
        word(n.div_ceil(TILE))?,
        word(m.div_ceil(TILE))?,
        word(batch)?,
    ];
    gpu.launch_wgsl(PROGRAM, &[ab, bb, cb], &params, groups)?;
    Ok(out)
}

/// params: m, n, k, a's row and column strides, b's, a's and b's batch strides.
const PROGRAM: &str = "
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<u32>;

var<workgroup> tile_a: array<array<f32, 16>, 16>;
var<workgroup> tile_b: array<array<f32, 16>, 16>;
var<workgroup> tile_rounds: u32;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = params[0];
    let n = params[1];
    let k = params[2];
    let row = wg.y * 16u + lid.y;
    let col = wg.x * 16u + lid.x;
    let a_base = wg.z * params[7];
    let b_base = wg.z * params[8];
    var acc = 0.0;
    // Every thread of the workgroup runs every round (the barriers need it): the count is
    // shared through workgroup memory, which the compiler can prove uniform.
    if (lid.x == 0u && lid.y == 0u) {
        tile_rounds = (k + 15u) / 16u;
    }
    let rounds = workgroupUniformLoad(&tile_rounds);
    for (var t = 0u; t < rounds; t++) {
        let ka = t * 16u + lid.x;
        var va = 0.0;
        if (row < m && ka < k) {
            va = a[a_base + row * params[3] + ka * params[4]];
        }
        tile_a[lid.y][lid.x] = va;
        let kb = t * 16u + lid.y;
        var vb = 0.0;
        if (kb < k && col < n) {
            vb = b[b_base + kb * params[5] + col * params[6]];
        }
        tile_b[lid.y][lid.x] = vb;
        workgroupBarrier();
        for (var i = 0u; i < 16u; i++) {
            acc += tile_a[lid.y][i] * tile_b[i][lid.x];
        }
        workgroupBarrier();
    }
    if (row < m && col < n) {
        c[wg.z * m * n + row * n + col] = acc;
    }
}
";
