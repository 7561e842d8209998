//! An MLP 784-256-10 on Fashion-MNIST (Debian's `dataset-fashion-mnist`), 10 epochs of
//! mini-batches of 100, the same program as the TensorFlow peer in bench/.
//!
//!     cargo run --release --example fashion_mlp [-- --data DIR] [--steps N] [--seed S] [--device gpu]

use anyhow::Context;
use clap::Parser;
use sluice::data::{fashion_mnist, load_idx_split};
use sluice::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

/// An MLP 784-256-10 on Fashion-MNIST, mini-batches of 100. Prints the test accuracy and the
/// median time of a step.
#[derive(Parser)]
#[command(
    name = "fashion_mlp",
    version,
    after_help = "Runs on the standalone engine that SLUICE_ENGINE=HOST:PORT names, else \
        in this process. RUST_LOG filters diagnostics (default warn)."
)]
struct Args {
    /// A folder of Fashion-MNIST's IDX files (default: where Debian's dataset-fashion-mnist
    /// puts them, /usr/share/datasets/fashion-mnist)
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// Training steps (default: 10 epochs)
    #[arg(long, value_name = "N")]
    steps: Option<usize>,

    /// Seeds the initial weights and orders the batches
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,

    /// Where the model runs: `cpu`, `gpu` (the first GPU; ops without a GPU kernel run on the
    /// CPU), or a device name such as `/device:GPU:1`. Software GPUs (lavapipe) are used only
    /// with SLUICE_GPU_ALLOW_SOFTWARE=1.
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    device: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    sluice::logging::init("warn");
    let data = match &args.data {
        Some(dir) => load_idx_split(dir)?,
        None => fashion_mnist(None)?,
    };
    let batch_size = 100;
    let steps = args.steps.unwrap_or(10 * data.train.len() / batch_size);

    let g = Graph::new();
    g.set_seed(args.seed);
    let _on = g.device(&args.device);
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let hidden = {
        let _scope = g.name_scope("hidden");
        let w = g.variable("W", &[784, 256], Initializer::truncated_normal(0.1));
        let b = g.variable("b", &[256], Initializer::Zeros);
        relu(matmul(x, w) + b)
    };
    let y = {
        let _scope = g.name_scope("output");
        let w = g.variable("W", &[256, 10], Initializer::Zeros);
        let b = g.variable("b", &[10], Initializer::Zeros);
        softmax(matmul(hidden, w) + b)
    };
    let xent = -reduce_sum(y_ * log(clip_by_value(y, 1e-10, 1.0)));
    let train = GradientDescent::new(0.001).minimize(xent)?;
    let accuracy = reduce_mean(cast(equal(argmax(y, 1), argmax(y_, 1)), DType::F32));

    // In-process, or on the standalone engine that SLUICE_ENGINE names.
    let mut sess = connect_or_local(&g)?;
    println!("running {}", sess.location());
    sess.init_variables()?;
    // A step's time includes drawing its batch, as the TensorFlow peer's does.
    let mut batches = data.train.batches(batch_size, args.seed);
    let mut step_micros = Vec::with_capacity(steps);
    for _ in 0..steps {
        let start = Instant::now();
        let batch = batches.next().context("the training set is empty")?;
        sess.run(&[train], &[(x, batch.inputs), (y_, batch.one_hot)])?;
        step_micros.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let test = &data.test;
    let acc = sess.run(
        &[accuracy],
        &[(x, test.inputs_tensor()), (y_, test.one_hot_tensor())],
    )?;
    step_micros.sort_by(f64::total_cmp);
    println!(
        "test accuracy: {:.4}",
        acc[0].scalar_f64().unwrap_or(f64::NAN)
    );
    println!(
        "us/step: {:.1}",
        step_micros.get(step_micros.len() / 2).unwrap_or(&0.0)
    );
    Ok(())
}
