//! Sessions placing nodes on a GPU (`/device:GPU:0`): the same results as on the CPU, ops
//! without a GPU kernel on the CPU under soft placement, and clear errors otherwise. Runs on
//! Mesa's software Vulkan device where there is no GPU (skips, or fails under CI, where there
//! is no Vulkan device at all).
#![cfg(feature = "engine")]

mod common;

use common::require;
use sluice::data::mnist_digits;
use sluice::devices::gpu::{discover, GpuOptions};
use sluice::prelude::*;
use sluice::{SessionError, SessionOptions};

fn with_software_gpu() -> Option<SessionOptions> {
    let gpu = GpuOptions {
        allow_software: true,
    };
    require(
        !discover(&gpu).is_empty(),
        "no Vulkan GPU, not even the software one",
        "install mesa-vulkan-drivers and libvulkan1 (apt-get), as .ci/run does",
    )
    .then_some(SessionOptions {
        gpu,
        soft_placement: true,
    })
}

/// The seed program's model, on `device` (empty: anywhere).
struct Softmax {
    graph: Graph,
    x: Output,
    y_: Output,
    loss: Output,
    train: Output,
    accuracy: Output,
}

fn softmax_model(device: &str) -> Softmax {
    let g = Graph::new();
    let _on = g.device(device);
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let b = g.variable("b", &[10], Initializer::Zeros);
    let y = softmax(matmul(x, w) + b);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let loss = -reduce_sum(y_ * log(y));
    let train = GradientDescent::new(0.01).minimize(loss).expect("minimize");
    let accuracy = reduce_mean(cast(equal(argmax(y, 1), argmax(y_, 1)), DType::F32));
    Softmax {
        graph: g,
        x,
        y_,
        loss,
        train,
        accuracy,
    }
}

/// Trains `steps` steps; the losses and the test accuracy.
fn train(model: &Softmax, options: SessionOptions, steps: usize) -> (Vec<f64>, f64) {
    let digits = mnist_digits().expect("embedded digits");
    let mut sess = Session::with_options(&model.graph, options);
    sess.init_variables().expect("init");
    let mut batches = digits.train.batches(100, 0);
    let mut losses = Vec::new();
    for _ in 0..steps {
        let batch = batches.next().expect("a batch");
        let out = sess
            .run(
                &[model.loss, model.train],
                &[(model.x, batch.inputs), (model.y_, batch.one_hot)],
            )
            .expect("a training step");
        losses.push(out[0].scalar_f64().expect("a scalar loss"));
    }
    let test = &digits.test;
    let acc = sess
        .run(
            &[model.accuracy],
            &[
                (model.x, test.inputs_tensor()),
                (model.y_, test.one_hot_tensor()),
            ],
        )
        .expect("accuracy");
    (losses, acc[0].scalar_f64().expect("a scalar"))
}

#[test]
fn the_seed_program_trains_on_a_gpu_as_on_the_cpu() {
    let Some(options) = with_software_gpu() else {
        return;
    };
    let (cpu_losses, cpu_accuracy) = train(&softmax_model(""), SessionOptions::from_env(), 300);
    let (gpu_losses, gpu_accuracy) = train(&softmax_model("/device:GPU:0"), options, 300);
    for (step, (c, g)) in cpu_losses.iter().zip(&gpu_losses).enumerate() {
        assert!(
            (c - g).abs() <= 1e-3 * c.abs().max(1.0),
            "step {step}: loss {g} on the GPU, {c} on the CPU"
        );
    }
    assert!(
        (cpu_accuracy - gpu_accuracy).abs() <= 0.01,
        "accuracy {gpu_accuracy} on the GPU, {cpu_accuracy} on the CPU"
    );
    assert!(gpu_accuracy > 0.8, "accuracy {gpu_accuracy}");
}

#[test]
fn asking_for_a_gpu_that_is_not_there_names_the_node() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2]);
    let y = {
        let _on = g.device("/device:GPU:7");
        x * x
    };
    let mut sess = Session::with_options(
        &g,
        SessionOptions {
            gpu: GpuOptions {
                allow_software: true,
            },
            soft_placement: true,
        },
    );
    let err = sess
        .run(&[y], &[(x, Tensor::from_vec(vec![1.0f32, 2.0]))])
        .expect_err("there is no eighth GPU");
    assert!(matches!(err, SessionError::NoDevice { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&y.name()) && text.contains("/device:GPU:7"),
        "{text}"
    );
}

#[test]
fn without_soft_placement_an_op_with_no_gpu_kernel_is_an_error() {
    let Some(mut options) = with_software_gpu() else {
        return;
    };
    options.soft_placement = false;
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2, 3]);
    let (sum, best) = {
        let _on = g.device("/device:GPU:0");
        (reduce_sum(x * x), argmax(x, 1))
    };
    let mut sess = Session::with_options(&g, options);
    let value = Tensor::new(&[2, 3], vec![1.0f32, 2.0, 3.0, -1.0, 0.5, 2.0]).expect("x");
    // Multiplication and sums have GPU kernels: without soft placement they run there.
    let out = sess.run(&[sum], &[(x, value.clone())]).expect("on the GPU");
    assert_eq!(out[0].scalar_f64(), Some(19.25));
    let err = sess
        .run(&[best], &[(x, value)])
        .expect_err("argmax gives i64, which GPUs do not hold");
    assert!(
        matches!(err, SessionError::NoKernel { ref device, .. } if device == "GPU"),
        "{err:?}"
    );
    assert!(err.to_string().contains(&best.name()), "{err}");
}
