//! Fusion of elementwise chains on the GPU: a chain runs as one kernel and gives what the
//! CPU gives; a chain whose ops broadcast an intermediate, a fetched intermediate and a value
//! read twice all stay correct; `SLUICE_GPU_FUSION=0` (`no_fusion`) runs op by op. On Mesa's
//! software Vulkan device where there is no GPU (skips, or fails under CI, without one).
#![cfg(feature = "engine")]

mod common;

use common::{sample, software_gpu_options};
use sluice::devices::gpu::GpuOptions;
use sluice::prelude::*;
use sluice::SessionOptions;

fn options(fuse: bool) -> Option<SessionOptions> {
    let gpu = GpuOptions {
        no_fusion: !fuse,
        ..GpuOptions::from_env()
    };
    software_gpu_options(gpu, false)
}

fn values(shape: &[usize], salt: u64) -> Tensor {
    sample(shape, salt).cast(DType::F32)
}

/// The steps a run traced, by name: fused, and op by op.
struct Steps {
    fused: Vec<String>,
    apart: Vec<String>,
}

/// Runs `build` over placeholders fed `inputs` on the CPU and on the GPU (fused, and op by
/// op); checks all three agree and returns the GPU runs' step names.
fn check(inputs: &[Tensor], build: impl Fn(&[Output]) -> Vec<Output>) -> Option<Steps> {
    let run = |device: &str, options: SessionOptions| {
        let g = Graph::new();
        let xs: Vec<Output> = (inputs.iter().enumerate())
            .map(|(i, t)| {
                let dims: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
                g.placeholder(&format!("x{i}"), t.dtype(), &dims)
            })
            .collect();
        let feeds: Vec<(Output, Tensor)> = xs.iter().copied().zip(inputs.to_vec()).collect();
        let ys = {
            let _on = g.device(device);
            build(&xs)
        };
        let mut sess = Session::with_options(&g, options);
        let (values, trace) = sess.run_traced(&ys, &feeds).expect("run");
        (
            values,
            trace.into_iter().map(|t| t.node).collect::<Vec<_>>(),
        )
    };
    let fused = options(true)?;
    let (cpu, _) = run("cpu", SessionOptions::from_env());
    let (gpu, names) = run("gpu", fused);
    let (apart, apart_names) = run("gpu", options(false)?);
    for (k, ((c, g), a)) in cpu.iter().zip(&gpu).zip(&apart).enumerate() {
        assert_eq!(c.shape(), g.shape(), "output {k}");
        // A fused kernel may contract a multiply and an add into one rounding (an FMA).
        let apart_diff = g.max_abs_diff(a).expect("comparable");
        assert!(
            apart_diff <= 1e-6,
            "output {k}: fused and op by op differ by {apart_diff}"
        );
        let diff = c.max_abs_diff(g).expect("comparable");
        assert!(
            diff <= 1e-5,
            "output {k}: CPU and GPU differ by {diff}\n{c}\n{g}"
        );
    }
    Some(Steps {
        fused: names,
        apart: apart_names,
    })
}

/// Steps of ops of these kinds (node names start with the op's).
fn steps_of<'a>(names: &'a [String], ops: &[&str]) -> Vec<&'a String> {
    (names.iter())
        .filter(|n| ops.iter().any(|op| n.starts_with(op)))
        .collect()
}

#[test]
fn a_layer_and_its_activation_run_as_one_kernel_after_the_product() {
    let inputs = [values(&[8, 12], 1), values(&[12, 16], 2), values(&[16], 3)];
    let Some(steps) = check(&inputs, |x| {
        vec![tanh(relu(matmul(x[0], x[1]) + x[2]) * 2.0f32 - 0.5f32)]
    }) else {
        return;
    };
    // The add, the relu, the multiply and the subtract fold into the tanh: five ops, one step.
    let chain = ["Add", "Relu", "Mul", "Sub", "Tanh"];
    assert_eq!(steps_of(&steps.apart, &chain).len(), 5, "{:?}", steps.apart);
    assert_eq!(steps_of(&steps.fused, &chain).len(), 1, "{:?}", steps.fused);
    assert!(
        steps_of(&steps.fused, &["Tanh"]).len() == 1,
        "{:?}",
        steps.fused
    );
}

#[test]
fn a_chain_that_broadcasts_an_intermediate_runs_op_by_op() {
    // `a + 1` and its relu are [3, 1]; the product with b is [3, 4].
    let inputs = [values(&[3, 1], 4), values(&[1, 4], 5)];
    let Some(steps) = check(&inputs, |x| vec![relu(x[0] + 1.0f32) * x[1]]) else {
        return;
    };
    assert_eq!(
        steps_of(&steps.fused, &["Add", "Relu", "Mul"]).len(),
        1,
        "{:?}",
        steps.fused
    );
}

#[test]
fn fetched_intermediates_and_values_read_twice_stay_correct() {
    let inputs = [values(&[5, 6], 6), values(&[5, 6], 7)];
    let Some(steps) = check(&inputs, |x| {
        let s = x[0] - x[1];
        let square = s * s; // the difference read twice
        let shown = exp(square); // fetched: not folded away
        vec![shown, neg(shown) + sigmoid(x[0])]
    }) else {
        return;
    };
    // The subtraction folds into the square and that into the exponential, which is fetched
    // and so stays a step of its own.
    assert!(steps.fused.len() < steps.apart.len(), "{:?}", steps.fused);
    assert!(
        steps_of(&steps.fused, &["Sub"]).is_empty(),
        "{:?}",
        steps.fused
    );
    assert_eq!(
        steps_of(&steps.fused, &["Exp"]).len(),
        1,
        "{:?}",
        steps.fused
    );
}

#[test]
fn a_training_step_with_fused_gradients_matches_the_cpu() {
    // relu's gradient, the bias's broadcast and the loss's tail are elementwise chains.
    let inputs = [
        values(&[16, 10], 8),
        values(&[10, 12], 9),
        values(&[12], 10),
    ];
    let Some(steps) = check(&inputs, |x| {
        let h = relu(matmul(x[0], x[1]) + x[2]);
        let loss = reduce_mean(square(h - 0.25f32));
        let grads = gradients(&[loss], &[x[1], x[2]]).expect("gradients");
        let mut out = vec![loss];
        out.extend(grads.into_iter().map(|g| g.expect("a gradient")));
        out
    }) else {
        return;
    };
    assert!(steps.fused.len() < steps.apart.len(), "{:?}", steps.fused);
}
