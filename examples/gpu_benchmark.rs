//! Training-step times on a device, for the figures bench/gpu.sh reports beside PyTorch's and
//! JAX's on the same GPU: the seed softmax and an MLP 784-256-10 at batch 100 (batches fed
//! from the host each step, as the peers draw them), an MLP 784-4096x3-10 at batch 8192 (data
//! resident on the device) and a 4096^3 matrix product.
//!
//!     cargo run --release --example gpu_benchmark [-- --device gpu] [--quick]

use clap::Parser;
use sluice::data::mnist_digits;
use sluice::prelude::*;
use std::time::Instant;

/// Step times of small and large models on a device. Prints one line per model.
#[derive(Parser)]
#[command(name = "gpu_benchmark", version)]
struct Args {
    /// `gpu`, `cpu`, or a device name such as `/device:GPU:1`. Software GPUs (lavapipe) are
    /// used only with SLUICE_GPU_ALLOW_SOFTWARE=1.
    #[arg(long, value_name = "DEVICE", default_value = "gpu")]
    device: String,

    /// Small sizes (hidden 256, batch 512, 512^3) for a software device or a smoke test
    #[arg(long)]
    quick: bool,

    /// Timed steps of the small models
    #[arg(long, value_name = "N", default_value_t = 300)]
    steps: usize,
}

/// Runs `step` `warmup` times untimed, then `steps` times; microseconds per step. A session
/// ends each step by waiting for the one before, so the mean over many steps is the device's
/// steady rate.
fn time_steps(
    warmup: usize,
    steps: usize,
    mut step: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    for _ in 0..warmup {
        step()?;
    }
    let start = Instant::now();
    for _ in 0..steps {
        step()?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / steps.max(1) as f64)
}

/// A model on MNIST digits at batch 100: `hidden` 0 is the seed's softmax regression.
fn small_model(device: &str, hidden: usize, steps: usize) -> anyhow::Result<(f64, f64)> {
    let digits = mnist_digits()?;
    let g = Graph::new();
    g.set_seed(1);
    let _on = g.device(device);
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let (logits, lr) = if hidden == 0 {
        let w = g.variable("W", &[784, 10], Initializer::Zeros);
        let b = g.variable("b", &[10], Initializer::Zeros);
        (matmul(x, w) + b, 0.01)
    } else {
        let w1 = g.variable("W1", &[784, hidden], Initializer::truncated_normal(0.1));
        let b1 = g.variable("b1", &[hidden], Initializer::Zeros);
        let w2 = g.variable("W2", &[hidden, 10], Initializer::Zeros);
        let b2 = g.variable("b2", &[10], Initializer::Zeros);
        (matmul(relu(matmul(x, w1) + b1), w2) + b2, 0.1)
    };
    let loss = reduce_mean(softmax_cross_entropy_with_logits(logits, y_));
    let train = GradientDescent::new(lr).minimize(loss)?;
    let accuracy = reduce_mean(cast(equal(argmax(logits, 1), argmax(y_, 1)), DType::F32));
    let mut sess = Session::new(&g);
    sess.init_variables()?;
    let mut batches = digits.train.batches(100, 0);
    let micros = time_steps(20, steps, || {
        let batch = batches
            .next()
            .ok_or_else(|| anyhow::anyhow!("no batches"))?;
        sess.run(&[train], &[(x, batch.inputs), (y_, batch.one_hot)])?;
        Ok(())
    })?;
    let test = &digits.test;
    let acc = sess.run(
        &[accuracy],
        &[(x, test.inputs_tensor()), (y_, test.one_hot_tensor())],
    )?;
    Ok((micros, acc[0].scalar_f64().unwrap_or(f64::NAN)))
}

/// An MLP 784-hidden x3-10 on random data held on the device; microseconds per step.
fn large_mlp(device: &str, hidden: usize, batch: usize) -> anyhow::Result<f64> {
    let g = Graph::new();
    g.set_seed(2);
    let _on = g.device(device);
    let x = g.variable(
        "x",
        &[batch, 784],
        Initializer::RandomUniform {
            low: 0.0,
            high: 1.0,
        },
    );
    let labels: Vec<f32> = (0..batch * 10)
        .map(|i| if i % 10 == (i / 10) % 10 { 1.0 } else { 0.0 })
        .collect();
    let y_ = g.constant(Tensor::new(&[batch, 10], labels)?);
    let mut h = x;
    let mut fan_in = 784;
    for layer in 0..3 {
        let w = g.variable(
            &format!("W{layer}"),
            &[fan_in, hidden],
            Initializer::GlorotUniform,
        );
        let b = g.variable(&format!("b{layer}"), &[hidden], Initializer::Zeros);
        h = relu(matmul(h, w) + b);
        fan_in = hidden;
    }
    let w = g.variable("Wout", &[hidden, 10], Initializer::GlorotUniform);
    let loss = reduce_mean(softmax_cross_entropy_with_logits(matmul(h, w), y_));
    let weights: Vec<Output> = g
        .variables()
        .into_iter()
        .filter(|v| v.name() != "x")
        .collect();
    let grads = gradients(&[loss], &weights)?;
    let pairs: Vec<(Output, Output)> = (grads.into_iter().zip(&weights))
        .filter_map(|(gr, &v)| gr.map(|gr| (gr, v)))
        .collect();
    let train = GradientDescent::new(0.01).apply_gradients(&pairs)?;
    let mut sess = Session::new(&g);
    sess.init_variables()?;
    time_steps(2, 10, || {
        sess.run(&[train], &[])?;
        Ok(())
    })
}

/// `n x n @ n x n` of device-resident operands; TFLOP/s.
fn matmul_rate(device: &str, n: usize) -> anyhow::Result<f64> {
    let g = Graph::new();
    let _on = g.device(device);
    let uniform = Initializer::RandomUniform {
        low: -1.0,
        high: 1.0,
    };
    let a = g.variable("a", &[n, n], uniform.clone());
    let b = g.variable("b", &[n, n], uniform);
    let c = g.variable("c", &[n, n], Initializer::Zeros);
    let product = assign(c, matmul(a, b))?;
    let mut sess = Session::new(&g);
    sess.init_variables()?;
    let micros = time_steps(2, 10, || {
        sess.run(&[product], &[])?;
        Ok(())
    })?;
    Ok(2.0 * (n as f64).powi(3) / micros / 1e6)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    sluice::logging::init("warn");
    let (hidden, batch, n) = if args.quick {
        (256, 512, 512)
    } else {
        (4096, 8192, 4096)
    };
    let device = args.device.as_str();
    println!("device: {device}");
    if device != "cpu" {
        let options = sluice::devices::gpu::GpuOptions::from_env();
        for info in sluice::devices::DeviceSet::shared(options).gpus().iter() {
            let info = sluice::devices::Device::info(info.as_ref());
            println!(
                "  {}: {} ({}, {:.1} GiB)",
                info.name,
                info.description,
                info.backend,
                info.memory_bytes as f64 / (1u64 << 30) as f64
            );
        }
    }
    let (seed, seed_acc) = small_model(device, 0, args.steps)?;
    println!("seed softmax 784-10, batch 100: {seed:.1} us/step (test accuracy {seed_acc:.4})");
    let (mlp, mlp_acc) = small_model(device, 256, args.steps)?;
    println!("MLP 784-256-10, batch 100: {mlp:.1} us/step (test accuracy {mlp_acc:.4})");
    let large = large_mlp(device, hidden, batch)?;
    println!(
        "MLP 784-{hidden}x3-10, batch {batch}: {:.2} ms/step",
        large / 1e3
    );
    let rate = matmul_rate(device, n)?;
    println!("matmul {n}^3 f32: {rate:.2} TFLOP/s");
    Ok(())
}
