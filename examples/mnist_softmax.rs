//! The seed program: softmax regression on the embedded MNIST digits, trained by gradient
//! descent on the cross-entropy, 1000 steps of 100 examples.
//!
//!     cargo run --release --example mnist_softmax [-- --seed S] [--logdir DIR] [--trace FILE]

use anyhow::Context;
use clap::Parser;
use sluice::data::mnist_digits;
use sluice::prelude::*;
use sluice::timeline::StepTimeline;
use std::time::Instant;

/// The seed program: softmax regression on the embedded MNIST digits, trained by gradient
/// descent on the cross-entropy, 1000 steps of 100 examples. Prints the test accuracy and
/// the median time of a step.
#[derive(Parser)]
#[command(
    name = "mnist_softmax",
    version,
    after_help = "Runs on the standalone engine that SLUICE_ENGINE=HOST:PORT names, else \
        in this process. RUST_LOG filters diagnostics (default warn)."
)]
struct Args {
    /// Orders the training batches (the weights start at zero, as in the seed program)
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// Where the model runs: `cpu`, `gpu` (the first GPU; ops without a GPU kernel run on the
    /// CPU), or a device name such as `/device:GPU:1`. Software GPUs (lavapipe) are used only
    /// with SLUICE_GPU_ALLOW_SOFTWARE=1.
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    device: String,
    /// Writes a TensorBoard run to DIR (`tensorboard --logdir DIR`): the graph, the loss of
    /// every step, histograms of W and b every 100 steps, the last step's kernel times (the
    /// Graphs tab's "Session runs"), the test accuracy
    #[arg(long, value_name = "DIR")]
    logdir: Option<std::path::PathBuf>,
    /// Traces the last training step and writes its timeline to FILE as Chrome trace JSON
    /// (open it in ui.perfetto.dev or chrome://tracing)
    #[arg(long, value_name = "FILE")]
    trace: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let Args {
        seed,
        device,
        logdir,
        trace,
    } = Args::parse();
    sluice::logging::init("warn");
    let digits = mnist_digits()?;
    let g = Graph::new();
    let _on = g.device(&device);

    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let b = g.variable("b", &[10], Initializer::Zeros);
    let y = softmax(matmul(x, w) + b);

    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let xent = -reduce_sum(y_ * log(y));
    let train = GradientDescent::new(0.01).minimize(xent)?;

    let correct = equal(argmax(y, 1), argmax(y_, 1));
    let accuracy = reduce_mean(cast(correct, DType::F32));

    // In-process, or on the standalone engine that SLUICE_ENGINE names.
    let mut sess = connect_or_local(&g)?;
    println!("running {}", sess.location());
    sess.init_variables()?;
    let summaries = logdir.map(SummaryWriter::new).transpose()?;
    if let Some(summaries) = &summaries {
        summaries.graph(&g)?;
        println!("TensorBoard run: {}", summaries.path().display());
    }
    // A step's time includes drawing its batch (and writing its summaries), as the
    // TensorFlow peer's does.
    let mut batches = digits.train.batches(100, seed);
    let mut step_micros = Vec::with_capacity(1000);
    for step in 1..=1000 {
        let start = Instant::now();
        let batch = batches.next().context("the training set is empty")?;
        let feeds = [(x, batch.inputs), (y_, batch.one_hot)];
        // The last step is traced when a timeline or a run asks for its kernel times.
        let traced = step == 1000 && (trace.is_some() || summaries.is_some());
        match &summaries {
            None if !traced => {
                sess.run(&[train], &feeds)?;
            }
            _ => {
                let (loss, timings) = if traced {
                    sess.run_traced_with_targets(&[xent], &feeds, &[train])?
                } else {
                    (
                        sess.run_with_targets(&[xent], &feeds, &[train])?,
                        Vec::new(),
                    )
                };
                if let Some(path) = trace.as_ref().filter(|_| traced) {
                    StepTimeline::from_timings(&timings).write_chrome_trace(path)?;
                    println!(
                        "Chrome trace: {} ({} kernels)",
                        path.display(),
                        timings.len()
                    );
                }
                if let Some(summaries) = &summaries {
                    let loss = loss.first().and_then(Tensor::scalar_f64);
                    summaries.scalar("loss", step, loss.unwrap_or(f64::NAN))?;
                    if traced {
                        summaries.run_metadata(&format!("step {step}"), step, &timings)?;
                    }
                    if step % 100 == 0 {
                        for (name, var) in [("W", w), ("b", b)] {
                            if let Some(value) = sess.variable(var)? {
                                summaries.histogram(name, step, &value)?;
                            }
                        }
                    }
                }
            }
        }
        step_micros.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let test = &digits.test;
    let acc = sess.run(
        &[accuracy],
        &[(x, test.inputs_tensor()), (y_, test.one_hot_tensor())],
    )?;
    step_micros.sort_by(f64::total_cmp);
    let acc = acc[0].scalar_f64().unwrap_or(f64::NAN);
    println!("test accuracy: {acc:.4}");
    if let Some(summaries) = &summaries {
        summaries.scalar("test_accuracy", 1000, acc)?;
        summaries.flush()?;
    }
    println!("us/step: {:.1}", step_micros[step_micros.len() / 2]);
    Ok(())
}
