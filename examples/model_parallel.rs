//! Model parallelism: an MLP 784-256-10 whose first layer lives on one worker process and
//! whose second lives on another. The example starts its own local cluster (two
//! `sluice-engine worker` processes on 127.0.0.1), prints where each node went, trains on the
//! embedded MNIST digits and prints the test accuracy and the throughput.
//!
//!     cargo build --release --bin sluice-engine
//!     cargo run --release --example model_parallel [-- --steps N] [--wire bf16] [--logdir DIR]
//!         [--trace FILE]

use clap::Parser;
use sluice::data::mnist_digits;
use sluice::distributed::{DistributedOptions, DistributedSession, LocalCluster};
use sluice::prelude::*;
use sluice::timeline::StepTimeline;
use std::time::Instant;

/// Model parallelism: an MLP 784-256-10 split over two local worker processes (needs the
/// built `sluice-engine`), trained on the embedded MNIST digits.
#[derive(Parser)]
#[command(
    name = "model_parallel",
    version,
    after_help = "RUST_LOG filters diagnostics (default warn)."
)]
struct Args {
    /// Training steps of 100 examples
    #[arg(long, value_name = "N", default_value_t = 1000)]
    steps: usize,

    /// How activations and gradients travel between the workers
    #[arg(
        long,
        value_name = "PRECISION",
        default_value = "f32",
        value_parser = ["f32", "bf16", "f16", "int8"]
    )]
    wire: String,

    /// Writes a TensorBoard run to DIR (`tensorboard --logdir DIR`): the graph as placed
    /// (each node on its worker), the loss and the bytes between workers of every step,
    /// histograms of the weights every 100 steps, a traced step's kernel times (the Graphs
    /// tab's "Session runs"), the test accuracy
    #[arg(long, value_name = "DIR")]
    logdir: Option<std::path::PathBuf>,

    /// After training, runs one more step traced and writes its timeline to FILE as Chrome
    /// trace JSON (open it in ui.perfetto.dev or chrome://tracing): each worker's kernels,
    /// and each tensor between them with its wait and transfer
    #[arg(long, value_name = "FILE")]
    trace: Option<std::path::PathBuf>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        steps,
        wire,
        logdir,
        trace,
    } = Args::parse();
    sluice::logging::init("warn");
    let cluster = LocalCluster::start(&[("worker", 2)])?;
    println!("cluster: {}", cluster.spec().to_tf_config(None));

    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let (w1, hidden) = {
        let _device = g.device("/job:worker/task:0");
        let _scope = g.name_scope("layer1");
        let w = g.variable("W", &[784, 256], Initializer::GlorotUniform);
        let b = g.variable("b", &[256], Initializer::Zeros);
        (w, relu(matmul(x, w) + b))
    };
    let (w2, logits) = {
        let _device = g.device("/job:worker/task:1");
        let _scope = g.name_scope("layer2");
        let w = g.variable("W", &[256, 10], Initializer::GlorotUniform);
        let b = g.variable("b", &[10], Initializer::Zeros);
        (w, matmul(hidden, w) + b)
    };
    let loss = reduce_mean(softmax_cross_entropy_with_logits(logits, y_));
    let train = GradientDescent::new(0.1).minimize(loss)?;
    let accuracy = reduce_mean(cast(equal(argmax(logits, 1), argmax(y_, 1)), DType::F32));

    let options = DistributedOptions {
        wire_precision: wire,
        ..DistributedOptions::default()
    };
    let mut sess = DistributedSession::new(&g, cluster.spec(), options)?;
    sess.init_variables()?;
    for (node, device, _) in sess.placement()? {
        if node.ends_with("MatMul") && !node.starts_with("gradients") {
            println!("{node:>16} on {device}");
        }
    }
    let summaries = logdir.map(SummaryWriter::new).transpose()?;
    if let Some(summaries) = &summaries {
        summaries.graph(&sess.placed_graph()?)?;
        println!("TensorBoard run: {}", summaries.path().display());
    }
    let digits = mnist_digits()?;
    let started = Instant::now();
    let mut bytes = 0;
    for (i, batch) in digits.train.batches(100, 0).take(steps).enumerate() {
        let l =
            sess.run_with_targets(&[loss], &[(x, batch.inputs), (y_, batch.one_hot)], &[train])?;
        let moved = sess.last_step_transfers().wire_bytes;
        bytes += moved;
        if let Some(summaries) = &summaries {
            let step = i as i64 + 1;
            let loss = l[0].scalar_f64().unwrap_or(f64::NAN);
            summaries.scalars(
                step,
                &[("loss", loss), ("bytes_between_workers", moved as f64)],
            )?;
            if step % 100 == 0 {
                for (name, var) in [("layer1/W", w1), ("layer2/W", w2)] {
                    if let Some(value) = sess.variable(var)? {
                        summaries.histogram(name, step, &value)?;
                    }
                }
            }
        }
        if (i + 1) % 200 == 0 {
            println!(
                "step {:5}  loss {:.4}",
                i + 1,
                l[0].scalar_f64().unwrap_or(f64::NAN)
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let test = &digits.test;
    let acc = sess.run(
        &[accuracy],
        &[(x, test.inputs_tensor()), (y_, test.one_hot_tensor())],
    )?[0]
        .scalar_f64()
        .unwrap_or(f64::NAN);
    println!("test accuracy: {acc:.4}");
    println!("examples/s: {:.0}", (steps * 100) as f64 / seconds);
    // One more step, traced (after the figures above), for its timeline and the run's
    // kernel times.
    if trace.is_some() || summaries.is_some() {
        let batch = digits
            .train
            .batches(100, 1)
            .next()
            .ok_or("no training batch")?;
        let feeds = [(x, batch.inputs), (y_, batch.one_hot)];
        let (_, timings) = sess.run_traced_with_targets(&[loss], &feeds, &[train])?;
        if let Some(summaries) = &summaries {
            summaries.run_metadata("traced step", steps as i64 + 1, &timings)?;
        }
        if let Some(path) = &trace {
            let timeline = StepTimeline::from_timings(&timings);
            timeline.write_chrome_trace(path)?;
            println!(
                "Chrome trace: {} ({} kernels on {} lanes, {} transfers)",
                path.display(),
                timeline.spans.len(),
                timeline.lanes.len(),
                timeline.flows.len()
            );
        }
    }
    if let Some(summaries) = &summaries {
        summaries.scalar("test_accuracy", steps as i64, acc)?;
        summaries.flush()?;
    }
    println!(
        "bytes between workers per step: {:.0}",
        bytes as f64 / steps.max(1) as f64
    );
    Ok(())
}
