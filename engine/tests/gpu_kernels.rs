//! The portable GPU device and its kernels (elementwise, reductions, matrix products), against
//! the CPU kernels.
//! Runs on any Vulkan GPU, and on Mesa's software device (lavapipe) where there is none; skips
//! (fails under CI) where there is no Vulkan device at all.
#![cfg(feature = "engine")]

mod common;

use common::{require, sample};
use sluice::devices::gpu::{discover, GpuDevice, GpuOptions};
use sluice::devices::Device;
use sluice::kernels::gpu::elementwise::{binary_op, compare_op, map, unary_expr};
use sluice::kernels::gpu::expr::Expr;
use sluice::kernels::{BufferPool, Context, DeviceKind, KernelTable, StepControl, VariableStore};
use sluice::ops::{Binary, BinaryKind, Compare, CompareKind, Op, Unary, UnaryKind};
use sluice::{DType, Tensor};

fn gpu() -> Option<GpuDevice> {
    let devices = discover(&GpuOptions::from_env().with_software());
    require(
        !devices.is_empty(),
        "no GPU of the chosen backend (SLUICE_GPU_BACKEND), not even the software Vulkan device",
        "install mesa-vulkan-drivers and libvulkan1 (apt-get), as .ci/run does",
    )
    .then(|| devices.into_iter().next())
    .flatten()
}

/// `op` on the host by its registered CPU kernel.
fn cpu(op: &dyn Op, inputs: &[&Tensor]) -> Tensor {
    let kernel = KernelTable::builtin()
        .find(op, DeviceKind::Cpu)
        .expect("a CPU kernel");
    let (mut pool, mut variables) = (BufferPool::default(), VariableStore::default());
    let step = StepControl::unlimited();
    let mut ctx = Context {
        node: 0,
        pool: &mut pool,
        variables: &mut variables,
        step: &step,
        received: None,
    };
    kernel(op, &mut ctx, inputs).expect("CPU kernel").remove(0)
}

fn on_gpu(gpu: &GpuDevice, expr: &Expr, inputs: &[&Tensor]) -> Tensor {
    let uploaded: Vec<_> = inputs
        .iter()
        .map(|t| gpu.upload(t).expect("upload"))
        .collect();
    let refs: Vec<_> = uploaded.iter().collect();
    let out = map(gpu, expr, &refs).expect("GPU kernel");
    gpu.download(&out).expect("download")
}

fn ints(shape: &[usize], salt: i32) -> Tensor {
    let n: usize = shape.iter().product();
    let values = (0..n as i32)
        .map(|i| (i * 37 + salt * 11) % 23 - 11)
        .collect();
    Tensor::new(shape, values).expect("shape")
}

/// Operand shapes that cover same shapes, broadcasting both ways, and scalars.
const SHAPES: [(&[usize], &[usize]); 5] = [
    (&[2, 3, 4], &[2, 3, 4]),
    (&[2, 3, 4], &[3, 1]),
    (&[4, 1], &[1, 5]),
    (&[], &[3, 2]),
    (&[0, 3], &[3]),
];

#[test]
fn tensors_travel_to_the_gpu_and_back_unchanged() {
    let Some(gpu) = gpu() else { return };
    assert_eq!(gpu.info().kind, DeviceKind::Gpu);
    assert_eq!(gpu.info().name, "/device:GPU:0");
    let f = sample(&[3, 5], 1).cast(DType::F32);
    let i = ints(&[7], 2);
    let b = Tensor::new(&[4], vec![true, false, false, true]).expect("bools");
    let empty = Tensor::zeros(DType::F32, &[0, 4]);
    for t in [&f, &i, &b, &empty] {
        let back = gpu
            .download(&gpu.upload(t).expect("upload"))
            .expect("download");
        assert_eq!(&back, t);
    }
    let wide = sample(&[2], 3);
    let err = gpu
        .upload(&wide)
        .expect_err("f64 stays on the CPU")
        .to_string();
    assert!(err.contains("f64") && err.contains("GPU:0"), "{err}");
}

#[test]
fn arithmetic_matches_the_cpu_with_broadcasting() {
    let Some(gpu) = gpu() else { return };
    use BinaryKind::*;
    for kind in [Add, Sub, Mul, Div, Maximum, Minimum] {
        let expr = Expr::binary(binary_op(kind), Expr::input(0), Expr::input(1));
        for (salt, (sa, sb)) in SHAPES.iter().enumerate() {
            let salt = salt as u64;
            let (a, b) = (
                sample(sa, salt).cast(DType::F32),
                sample(sb, salt + 7).cast(DType::F32),
            );
            let want = cpu(&Binary(kind), &[&a, &b]);
            let got = on_gpu(&gpu, &expr, &[&a, &b]);
            assert_eq!(got.shape(), want.shape(), "{kind:?} {sa:?} {sb:?}");
            let diff = got.max_abs_diff(&want).unwrap_or(0.0);
            assert!(diff <= 1e-6, "{kind:?} f32 {sa:?} {sb:?}: off by {diff}");
            let (a, b) = (ints(sa, salt as i32), ints(sb, salt as i32 + 3));
            let want = cpu(&Binary(kind), &[&a, &b]);
            assert_eq!(
                on_gpu(&gpu, &expr, &[&a, &b]),
                want,
                "{kind:?} i32 {sa:?} {sb:?}"
            );
        }
    }
}

#[test]
fn integers_wrap_and_divide_by_zero_as_on_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let a = Tensor::new(&[4], vec![i32::MAX, i32::MIN, 7, -7]).expect("a");
    let b = Tensor::new(&[4], vec![1, -1, 0, 2]).expect("b");
    for kind in [BinaryKind::Add, BinaryKind::Div, BinaryKind::Mul] {
        let expr = Expr::binary(binary_op(kind), Expr::input(0), Expr::input(1));
        let want = cpu(&Binary(kind), &[&a, &b]);
        assert_eq!(on_gpu(&gpu, &expr, &[&a, &b]), want, "{kind:?}");
    }
}

#[test]
fn unary_math_and_comparisons_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let x = sample(&[3, 4], 5).cast(DType::F32);
    let positive = Tensor::new(&[5], vec![0.5f32, 1.0, 2.0, 10.0, 1e-3]).expect("x");
    for kind in [
        UnaryKind::Neg,
        UnaryKind::Exp,
        UnaryKind::Square,
        UnaryKind::Abs,
        UnaryKind::Sign,
        UnaryKind::Log,
        UnaryKind::Sqrt,
    ] {
        let input = if matches!(kind, UnaryKind::Log | UnaryKind::Sqrt) {
            &positive
        } else {
            &x
        };
        let want = cpu(&Unary(kind), &[input]);
        let got = on_gpu(&gpu, &unary_expr(kind, Expr::input(0)), &[input]);
        let diff = got.max_abs_diff(&want).unwrap_or(f64::INFINITY);
        assert!(diff <= 1e-5, "{kind:?}: off by {diff}");
    }
    use CompareKind::*;
    for kind in [Equal, NotEqual, Greater, GreaterEqual, Less, LessEqual] {
        let expr = Expr::binary(compare_op(kind), Expr::input(0), Expr::input(1));
        let (a, b) = (ints(&[3, 4], 1), ints(&[4], 2));
        let want = cpu(&Compare(kind), &[&a, &b]);
        assert_eq!(on_gpu(&gpu, &expr, &[&a, &b]), want, "{kind:?}");
        let (a, b) = (x.clone(), sample(&[1, 4], 9).cast(DType::F32));
        let want = cpu(&Compare(kind), &[&a, &b]);
        assert_eq!(on_gpu(&gpu, &expr, &[&a, &b]), want, "{kind:?} f32");
    }
}

#[test]
fn software_adapters_are_not_chosen_unless_asked_for() {
    let software_only = discover(&GpuOptions {
        allow_software: false,
        ..GpuOptions::from_env()
    });
    assert!(
        software_only.iter().all(|d| !d.info().software),
        "{:?}",
        software_only.iter().map(|d| d.info()).collect::<Vec<_>>()
    );
}

fn upload(gpu: &GpuDevice, t: &Tensor) -> sluice::devices::DeviceTensor {
    gpu.upload(t).expect("upload")
}

#[test]
fn reductions_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    use sluice::kernels::gpu::reduce::reduce;
    use sluice::ops::{Reduce, ReduceKind};
    let cases: [(&[usize], &[i64]); 6] = [
        (&[4, 5, 6], &[]),
        (&[4, 5, 6], &[1]),
        (&[4, 5, 6], &[0, 2]),
        (&[4, 5, 6], &[-1]),
        (&[300], &[0]),
        (&[3, 0], &[1]),
    ];
    for kind in [ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Max] {
        for (shape, axes) in cases {
            for keep_dims in [false, true] {
                let op = Reduce {
                    kind,
                    axes: axes.to_vec(),
                    keep_dims,
                };
                let empty = shape.contains(&0);
                let x = sample(shape, 4).cast(DType::F32);
                if empty && kind == ReduceKind::Max {
                    let got = reduce(&gpu, &op, &upload(&gpu, &x)).expect("f32 on GPUs");
                    assert!(got.is_err(), "max of an empty axis is an error");
                    continue;
                }
                let want = cpu(&op, &[&x]);
                let got = reduce(&gpu, &op, &upload(&gpu, &x)).expect("f32 on GPUs");
                let got = gpu.download(&got.expect("GPU reduce")).expect("download");
                assert_eq!(got.shape(), want.shape(), "{kind:?} {shape:?} {axes:?}");
                let diff = got.max_abs_diff(&want).unwrap_or(0.0);
                assert!(diff <= 1e-6, "{kind:?} {shape:?} {axes:?}: off by {diff}");
                if kind != ReduceKind::Mean {
                    let x = ints(shape, 3);
                    let want = cpu(&op, &[&x]);
                    let got = reduce(&gpu, &op, &upload(&gpu, &x)).expect("i32 on GPUs");
                    let got = gpu.download(&got.expect("GPU reduce")).expect("download");
                    assert_eq!(got, want, "{kind:?} i32 {shape:?} {axes:?}");
                }
            }
        }
    }
    // An integer mean stays on the CPU, which takes it in f64.
    let op = Reduce {
        kind: ReduceKind::Mean,
        axes: vec![],
        keep_dims: false,
    };
    assert!(reduce(&gpu, &op, &upload(&gpu, &ints(&[4], 1))).is_none());
}

#[test]
fn matrix_products_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    use sluice::kernels::gpu::matmul::matmul;
    use sluice::ops::MatMul;
    // (a's shape, b's shape) before transposition, for m, k, n not multiples of the tile.
    let cases: [(&[usize], &[usize]); 5] = [
        (&[33, 17], &[17, 29]),
        (&[1, 40], &[40, 1]),
        (&[3, 5, 7], &[3, 7, 4]),
        (&[64, 64], &[64, 64]),
        (&[4, 0], &[0, 3]),
    ];
    for (sa, sb) in cases {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let flip = |s: &[usize], t: bool| {
                let mut s = s.to_vec();
                let r = s.len();
                if t {
                    s.swap(r - 1, r - 2);
                }
                s
            };
            let a = sample(&flip(sa, ta), 5).cast(DType::F32);
            let b = sample(&flip(sb, tb), 6).cast(DType::F32);
            let op = MatMul {
                transpose_a: ta,
                transpose_b: tb,
            };
            let want = cpu(&op, &[&a, &b]);
            let got = matmul(&gpu, &op, &upload(&gpu, &a), &upload(&gpu, &b)).expect("f32");
            let got = gpu.download(&got.expect("GPU matmul")).expect("download");
            assert_eq!(got.shape(), want.shape(), "{sa:?} {sb:?} {ta} {tb}");
            let diff = got.max_abs_diff(&want).unwrap_or(0.0);
            assert!(
                diff <= 1e-4,
                "{sa:?} @ {sb:?} (transposes {ta}, {tb}): off by {diff}"
            );
        }
    }
    let a = upload(&gpu, &sample(&[2, 3], 1).cast(DType::F32));
    let b = upload(&gpu, &sample(&[4, 2], 2).cast(DType::F32));
    let op = MatMul {
        transpose_a: false,
        transpose_b: false,
    };
    let err = matmul(&gpu, &op, &a, &b).expect("f32").expect_err("3 != 4");
    assert!(format!("{err:?}").contains("[2, 3]"), "{err:?}");
}

#[test]
fn each_backend_lists_only_its_own_gpus() {
    use sluice::devices::gpu::BackendChoice;
    let with = |backend| {
        discover(&GpuOptions {
            backend,
            ..GpuOptions::from_env().with_software()
        })
    };
    // No NVIDIA driver here means no CUDA GPUs; on a GPU machine each is listed once.
    let cuda = with(BackendChoice::Cuda);
    assert!(cuda.iter().all(|d| d.info().backend == "cuda"));
    let vulkan = with(BackendChoice::Vulkan);
    assert!(vulkan.iter().all(|d| d.info().backend == "vulkan"));
    let auto = with(BackendChoice::Auto);
    let expected = if cuda.is_empty() { &vulkan } else { &cuda };
    let names = |ds: &[GpuDevice]| ds.iter().map(|d| d.info().clone()).collect::<Vec<_>>();
    assert_eq!(names(&auto), names(expected));
}

#[test]
fn a_download_waits_for_kernels_that_another_thread_submits() {
    // Sessions share a GPU: one's download may come while another thread is submitting the
    // kernels that write what it reads. The download must not overtake them.
    let Some(gpu) = gpu() else { return };
    use sluice::kernels::gpu::expr::BinaryOp;
    use std::sync::atomic::{AtomicBool, Ordering};
    let plus_one = Expr::binary(BinaryOp::Add, Expr::input(0), Expr::f32(1.0));
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                gpu.flush().expect("another thread's submission");
            }
        });
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for i in 0..1500 {
                let x = upload(&gpu, &Tensor::scalar(i as f32));
                let y = map(&gpu, &plus_one, &[&x]).expect("x + 1");
                let z = map(&gpu, &plus_one, &[&y]).expect("y + 1");
                let got = gpu.download(&z).expect("download");
                assert_eq!(got.get_f64(0), i as f64 + 2.0, "round {i}");
                // Pooled again: a download that came too early would read an earlier round's.
                gpu.recycle(y);
                gpu.recycle(z);
            }
        }));
        done.store(true, Ordering::Relaxed);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
}
