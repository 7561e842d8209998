//! The op suite per device: every case builds its graph (forward values and the gradients of
//! a weighted sum) once per device kind, and the GPU's results must match the CPU's, whose
//! forward values and gradients the `ops_*` tests check against references and finite
//! differences. On the GPU, soft placement is off: an op of a case without a GPU kernel is
//! an error, not a silent run on the CPU.
//!
//! Every GPU program a case generates is also compiled as CUDA C with NVRTC and checked with
//! ptxas for sm_90 (H100, H200): the CUDA form of each kernel is checked without a GPU.
//!
//! Runs on any Vulkan GPU, and on Mesa's software device (lavapipe) where there is none; skips
//! (fails under CI) where there is no Vulkan device at all.
#![cfg(feature = "engine")]

mod common;

use common::cuda::check_cuda;
use common::{require, sample};
use sluice::devices::gpu::{discover, GpuOptions};
use sluice::devices::{DeviceSet, GpuProgram};
use sluice::prelude::*;
use sluice::SessionOptions;
use std::sync::Arc;

/// Where a case runs: the CPU, or the first GPU with no fallback.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DeviceKind {
    Cpu,
    Gpu,
}

impl DeviceKind {
    fn constraint(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "/device:CPU:0",
            DeviceKind::Gpu => "/device:GPU:0",
        }
    }

    fn options(self) -> SessionOptions {
        match self {
            DeviceKind::Cpu => SessionOptions {
                gpu: GpuOptions::default(),
                soft_placement: false,
            },
            DeviceKind::Gpu => SessionOptions {
                gpu: GpuOptions::from_env().with_software(),
                soft_placement: false,
            },
        }
    }
}

fn have_gpu() -> bool {
    require(
        !discover(&GpuOptions::from_env().with_software()).is_empty(),
        "no GPU of the chosen backend (SLUICE_GPU_BACKEND), not even the software Vulkan device",
        "install mesa-vulkan-drivers and libvulkan1 (apt-get), as .ci/run does",
    )
}

/// f32 sample values in [-0.9, 0.9].
fn values(shape: &[usize], salt: u64) -> Tensor {
    sample(shape, salt).cast(DType::F32)
}

/// A case: f32 inputs, and the outputs built from them.
struct Case {
    inputs: Vec<Tensor>,
    build: fn(&[Output]) -> Vec<Output>,
    /// Also compare the gradients of every float input.
    gradients: bool,
}

/// Runs a case on `device`: its outputs, then the gradients of `sum(output * weights)` over
/// all outputs with respect to each float input; and the GPU programs the run generated.
fn run(case: &Case, device: DeviceKind) -> (Vec<Tensor>, Vec<Arc<dyn GpuProgram>>) {
    // Sessions share the process's GPU, and its record of programs: this case's are those
    // recorded from here on (and a few of cases running beside it, checked twice).
    let gpu = match device {
        DeviceKind::Cpu => None,
        DeviceKind::Gpu => DeviceSet::shared(device.options().gpu)
            .gpus()
            .first()
            .cloned(),
    };
    let before = gpu.as_ref().map_or(0, |g| g.programs().len());
    let g = Graph::new();
    let xs: Vec<Output> = (case.inputs.iter().enumerate())
        .map(|(i, t)| {
            let dims: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
            g.placeholder(&format!("x{i}"), t.dtype(), &dims)
        })
        .collect();
    let feeds: Vec<(Output, Tensor)> = xs.iter().copied().zip(case.inputs.clone()).collect();
    let _on = g.device(device.constraint());
    let ys = (case.build)(&xs);
    let mut fetches = ys.clone();
    if case.gradients {
        let shapes: Vec<Vec<usize>> = {
            let mut sess = Session::with_options(&g, device.options());
            let out = sess.run(&ys, &feeds).expect("forward run");
            out.iter().map(|t| t.shape().to_vec()).collect()
        };
        let mut loss: Option<Output> = None;
        for (k, (y, shape)) in ys.iter().zip(&shapes).enumerate() {
            let weights = g.constant(values(shape, 11 + k as u64));
            let term = reduce_sum(*y * weights);
            loss = Some(match loss {
                Some(l) => l + term,
                None => term,
            });
        }
        let floats: Vec<Output> = (xs.iter().zip(&case.inputs))
            .filter(|(_, t)| t.dtype() == DType::F32)
            .map(|(x, _)| *x)
            .collect();
        let loss = loss.expect("a case has outputs");
        for grad in gradients(&[loss], &floats).expect("gradients") {
            fetches.push(grad.expect("every float input reaches the loss"));
        }
    }
    let mut sess = Session::with_options(&g, device.options());
    let results = (sess.run(&fetches, &feeds)).unwrap_or_else(|e| panic!("run on {device:?}: {e}"));
    let programs = gpu.map_or_else(Vec::new, |g| g.programs().split_off(before));
    (results, programs)
}

/// Checks a case's GPU results against its CPU results.
fn check(case: Case) {
    if !have_gpu() {
        return;
    }
    let (cpu, _) = run(&case, DeviceKind::Cpu);
    let (gpu, programs) = run(&case, DeviceKind::Gpu);
    assert_eq!(cpu.len(), gpu.len());
    for (k, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
        assert_eq!(c.shape(), g.shape(), "result {k}: shape");
        assert_eq!(c.dtype(), g.dtype(), "result {k}: dtype");
        for i in 0..c.len() {
            let (a, b) = (c.get_f64(i), g.get_f64(i));
            let close = a == b
                || (a - b).abs() <= 2e-5 * (1.0 + a.abs().max(b.abs()))
                || (a.is_nan() && b.is_nan());
            assert!(
                close,
                "result {k} at {i}: CPU {a}, GPU {b}\nCPU {c}\nGPU {g}"
            );
        }
    }
    // (No program may be new: another case may have compiled them all first. Soft placement
    // is off, so every node did run on the GPU.)
    check_cuda(&programs);
}

/// One test per case, run on the CPU and the GPU and compared.
macro_rules! device_cases {
    ($($name:ident: $case:expr;)*) => {
        $(
            #[test]
            fn $name() {
                check($case);
            }
        )*
    };
}

device_cases! {
    arithmetic_broadcasts: Case {
        inputs: vec![values(&[2, 3], 1), values(&[3], 2)],
        build: |x| vec![
            x[0] + x[1],
            x[0] - x[1],
            x[0] * x[1],
            x[0] / (abs(x[1]) + 0.5),
            maximum(x[0], x[1]),
            minimum(x[0], x[1]),
        ],
        gradients: true,
    };
    unary_math: Case {
        inputs: vec![values(&[4, 5], 3)],
        build: |x| vec![
            neg(x[0]),
            exp(x[0]),
            log(abs(x[0]) + 0.1),
            sqrt(abs(x[0]) + 0.1),
            square(x[0]),
            sign(x[0]),
        ],
        gradients: true,
    };
    comparisons_select_and_casts: Case {
        inputs: vec![values(&[3, 4], 4), values(&[3, 4], 5)],
        build: |x| vec![
            select(greater(x[0], x[1]), x[0], x[1]),
            cast(less_equal(x[0], 0.0f32), DType::F32),
            cast(cast(x[0] * 10.0f32, DType::I32), DType::F32),
        ],
        gradients: true,
    };
    activations: Case {
        inputs: vec![values(&[3, 7], 6)],
        build: |x| vec![relu(x[0]), sigmoid(x[0] * 4.0f32), tanh(x[0] * 2.0f32)],
        gradients: true,
    };
    softmax_and_log_softmax: Case {
        inputs: vec![values(&[4, 10], 7)],
        build: |x| vec![softmax(x[0] * 5.0f32), log_softmax(x[0] * 5.0f32)],
        gradients: true,
    };
    softmax_cross_entropy: Case {
        inputs: vec![values(&[5, 6], 8), values(&[5, 6], 9)],
        build: |x| vec![softmax_cross_entropy_with_logits(x[0] * 3.0f32, softmax(x[1]))],
        gradients: true,
    };
    reductions: Case {
        inputs: vec![values(&[3, 4, 5], 10)],
        build: |x| vec![
            reduce_sum_axes(x[0], &[1], false),
            reduce_mean_axes(x[0], &[0, 2], true),
            reduce_max_axes(x[0], &[-1], false),
            reduce_sum(x[0]),
        ],
        gradients: true,
    };
    long_reductions: Case {
        // Past 4096 elements per output, a reduction sums chunks in parallel first.
        inputs: vec![values(&[3, 9000], 28)],
        build: |x| vec![
            reduce_sum_axes(x[0], &[1], false),
            reduce_mean_axes(x[0], &[1], true),
            reduce_max_axes(x[0], &[1], false),
            reduce_sum(x[0]),
            reduce_mean(x[0]),
        ],
        gradients: true,
    };
    matrix_products: Case {
        inputs: vec![values(&[5, 7], 12), values(&[7, 3], 13), values(&[3, 7], 14)],
        build: |x| vec![
            matmul(x[0], x[1]),
            matmul_t(x[0], x[2], false, true),
            matmul_t(x[1], x[0], true, true),
        ],
        gradients: true,
    };
    shape_ops: Case {
        inputs: vec![values(&[2, 3, 4], 15)],
        build: |x| vec![
            reshape(x[0], &[6, 4]),
            expand_dims(x[0], 1),
            squeeze(expand_dims(x[0], 0), &[0]),
            transpose(x[0], &[2, 0, 1]),
        ],
        gradients: true,
    };
    slices: Case {
        inputs: vec![values(&[4, 5, 3], 16)],
        build: |x| vec![slice(x[0], &[1, 2, 0], &[2, -1, 2])],
        gradients: true,
    };
    concatenations: Case {
        inputs: vec![values(&[2, 3, 4], 17), values(&[2, 1, 4], 18), values(&[2, 2, 4], 19)],
        build: |x| vec![concat(&[x[0], x[1], x[2]], 1), concat(&[x[0], x[0]], -1)],
        gradients: true,
    };
    convolutions: Case {
        inputs: vec![values(&[2, 7, 6, 3], 23), values(&[3, 2, 3, 4], 24), values(&[1, 1, 3, 2], 25)],
        build: |x| vec![
            conv2d(x[0], x[1], [1, 1], Padding::Same),
            conv2d(x[0], x[1], [2, 2], Padding::Valid),
            conv2d(x[0], x[1], [2, 3], Padding::Same),
            conv2d(x[0], x[2], [1, 1], Padding::Valid),
        ],
        gradients: true,
    };
    max_pools: Case {
        inputs: vec![values(&[2, 7, 6, 3], 26)],
        build: |x| vec![
            max_pool(x[0], [2, 2], [2, 2], Padding::Valid),
            max_pool(x[0], [3, 3], [1, 1], Padding::Same),
            max_pool(x[0], [3, 2], [2, 1], Padding::Same),
        ],
        gradients: true,
    };
    max_pool_second_order: Case {
        inputs: vec![values(&[1, 5, 5, 2], 27)],
        build: |x| {
            let y = max_pool(x[0], [3, 3], [2, 2], Padding::Same);
            let dx = gradients(&[reduce_sum(y * y)], &[x[0]]).expect("gradients");
            vec![dx[0].expect("a gradient")]
        },
        gradients: true,
    };
    powers: Case {
        // C's rules: negative bases to integer powers (odd ones negative), NaN otherwise.
        inputs: vec![
            values(&[3, 4], 30),
            values(&[3, 4], 31),
            Tensor::new(
                &[3, 4],
                vec![0.0f32, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, 2.0, 3.0, 1.0, -3.0, 4.0],
            )
            .expect("exponents"),
        ],
        build: |x| vec![
            pow(abs(x[0]) + 0.5f32, x[1] * 3.0f32),
            pow(x[0] * 4.0f32, x[2]),
            pow(x[0], 2.0f32),
        ],
        gradients: true,
    };
    nans_and_infinities: Case {
        // WGSL compilers may assume there are no NaNs: the GPU must still give the CPU's.
        inputs: vec![
            Tensor::new(
                &[2, 4],
                vec![1.0f32, f32::NAN, -3.0, 2.0, f32::INFINITY, -1.0, f32::NEG_INFINITY, 0.0],
            )
            .expect("values"),
            Tensor::new(&[2, 4], vec![f32::NAN, 1.0, 0.0, 2.0, 0.5, f32::NAN, 3.0, -1.0])
                .expect("exponents"),
        ],
        build: |x| vec![
            reduce_max_axes(x[0], &[1], false),
            reduce_max(x[0]),
            cast(x[0], DType::I32),
            pow(x[0], x[1]),
            maximum(x[0], 0.5f32),
            maximum(x[1] * 0.0f32 + 0.5f32, x[0]),
            minimum(x[0], 0.5f32),
            minimum(x[1] * 0.0f32 + 0.5f32, x[0]),
            relu(x[0]),
        ],
        gradients: false,
    };
    powers_at_the_edges: Case {
        // C's table: zeros, infinities, -1 and NaN as bases and powers, -0's sign.
        inputs: vec![
            Tensor::new(
                &[4, 6],
                vec![
                    -1.0f32, -1.0, -2.0, -0.5, f32::NEG_INFINITY, f32::NEG_INFINITY,
                    -0.0, -0.0, 0.0, 0.0, f32::INFINITY, f32::INFINITY,
                    1.0, f32::NAN, 0.5, 2.0, -3.0, -3.0,
                    0.5, 2.0, -2.0, 1.5, -8.0, 10.0,
                ],
            )
            .expect("bases"),
            Tensor::new(
                &[4, 6],
                vec![
                    f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::NEG_INFINITY, 0.5, 3.0,
                    -1.0, 3.0, -2.0, 0.5, -0.5, 2.0,
                    f32::NAN, 0.0, f32::INFINITY, f32::NEG_INFINITY, 3.0, 1.0e9,
                    f32::NEG_INFINITY, f32::INFINITY, 1.0e9 + 1.0, 7.0, 1.0 / 3.0, -3.0,
                ],
            )
            .expect("powers"),
        ],
        build: |x| vec![pow(x[0], x[1])],
        gradients: false,
    };
    argmaxes: Case {
        // Ties go to the first; a NaN never wins, and a NaN first is never beaten (the CPU's
        // scan). The i64 indices come back to the host.
        inputs: vec![
            Tensor::new(
                &[3, 4],
                vec![1.0f32, 3.0, 3.0, -1.0, f32::NAN, 2.0, 5.0, 0.0, 0.5, f32::NAN, 0.25, 7.0],
            )
            .expect("scores"),
            Tensor::new(&[2, 3, 2], vec![4i32, -1, 4, 9, 0, 9, -3, 2, 8, 2, 8, 1]).expect("ints"),
        ],
        build: |x| vec![argmax(x[0], 1), argmax(x[0], 0), argmax(x[1], 1), argmax(x[1], -1)],
        gradients: false,
    };
    numerics_checks: Case {
        inputs: vec![values(&[3, 5], 32)],
        build: |x| vec![check_numerics(x[0] * 2.0f32, "doubled")],
        gradients: true,
    };
    gathers: Case {
        // Repeated rows: the gradient sums them, in gather order.
        inputs: vec![
            values(&[5, 3], 29),
            Tensor::new(&[2, 3], vec![4i32, 0, 4, 2, 4, 1]).expect("indices"),
            Tensor::from_vec(vec![3i64, 3, 0]),
        ],
        build: |x| vec![
            gather(x[0], x[1]),
            gather(x[0], x[2]),
            gather(reshape(x[0], &[15]), x[2]),
        ],
        gradients: true,
    };
    segment_sums: Case {
        // Rows summed by id (out of order, repeated, one segment empty), and the gradient.
        inputs: vec![
            values(&[5, 3], 31),
            Tensor::from_vec(vec![2i32, 0, 2, 3, 0]),
            Tensor::new(&[2, 2], vec![1i64, 1, 0, 1]).expect("ids"),
        ],
        build: |x| vec![
            unsorted_segment_sum(x[0], x[1], Some(5)),
            unsorted_segment_sum(reshape(slice(x[0], &[0, 0], &[4, -1]), &[2, 2, 3]), x[2], Some(2)),
        ],
        gradients: true,
    };
    integer_gathers: Case {
        inputs: vec![
            Tensor::new(&[3, 2], vec![1i32, -2, 3, -4, 5, -6]).expect("params"),
            Tensor::from_vec(vec![2i64, 0, 2]),
            Tensor::from_vec(Vec::<i32>::new()),
        ],
        build: |x| vec![gather(x[0], x[1]), gather(x[0], x[2])],
        gradients: false,
    };
    one_hot_rows: Case {
        inputs: vec![Tensor::from_vec(vec![0i32, 3, -1, 9, 2])],
        build: |x| vec![one_hot(x[0], 4)],
        gradients: false,
    };
}

#[test]
fn an_mlp_step_matches_on_both_devices() {
    // An MLP step: matmuls, relu, softmax cross-entropy, the optimizer's update on the host.
    check(Case {
        inputs: vec![
            values(&[8, 12], 20),
            values(&[12, 16], 21),
            values(&[16, 4], 22),
        ],
        build: |x| {
            let hidden = relu(matmul(x[0], x[1]));
            let logits = matmul(hidden, x[2]);
            let labels = one_hot(
                cast(reduce_sum_axes(x[0], &[1], false) + 2.0f32, DType::I32),
                4,
            );
            vec![reduce_mean(softmax_cross_entropy_with_logits(
                logits, labels,
            ))]
        },
        gradients: true,
    });
}
