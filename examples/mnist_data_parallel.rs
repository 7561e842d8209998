//! Data parallelism: the seed program (softmax regression on the embedded MNIST digits), or
//! an MLP 784-256-10, replicated on N worker processes that share their variables on M
//! parameter servers (synchronous by default, `--async` for asynchronous updates) or
//! average their gradients by ring all-reduce (`--allreduce`, no parameter servers). The
//! example starts its own local cluster on 127.0.0.1 and prints the test accuracy and the
//! throughput of all workers together.
//!
//!     cargo build --release --bin sluice-engine
//!     cargo run --release --example mnist_data_parallel -- --workers 2 --ps 1 [--async]
//!
//! Other flags: `--steps N` (global steps, 1000), `--batch B` (per worker, 100),
//! `--model softmax|mlp`, `--staleness S` (with --async), `--aggregate K` (synchronous
//! steps wait for K replicas; the rest are backups), `--checkpoint-dir D`
//! `--checkpoint-steps N`, `--allreduce`, `--quiet`, `--logdir D` (a TensorBoard run), and
//! `--cluster-from-env`: train on the cluster that TF_CONFIG (or Slurm's variables)
//! describes instead of starting one; the numbers of workers and parameter servers are then
//! the cluster's (see examples/kubernetes and examples/slurm). `--help` describes them all.

use clap::{Parser, ValueEnum};
use sluice::data::mnist_digits;
use sluice::distributed::replicas::{DataParallel, Replicated, Tower};
use sluice::distributed::{ClusterSpec, LocalCluster, TrainEvent, Trainer, TrainerOptions};
use sluice::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

/// Data parallelism: the seed program (or an MLP) replicated on worker processes that share
/// their variables on parameter servers, or average their gradients by ring all-reduce. Starts
/// its own cluster on 127.0.0.1 (needs the built `sluice-engine`) unless --cluster-from-env.
#[derive(Parser)]
#[command(
    name = "mnist_data_parallel",
    version,
    after_help = "RUST_LOG filters diagnostics (default warn)."
)]
struct Args {
    /// Worker tasks, one replica each
    #[arg(
        long,
        value_name = "N",
        default_value_t = 2,
        conflicts_with = "cluster_from_env"
    )]
    workers: usize,

    /// Parameter-server tasks (none with --allreduce)
    #[arg(
        long,
        value_name = "M",
        default_value_t = 1,
        conflicts_with = "cluster_from_env"
    )]
    ps: usize,

    /// Asynchronous updates: each replica applies its gradient when it has it
    #[arg(long = "async")]
    asynchronous: bool,

    /// Ring all-reduce among the workers instead of parameter servers
    #[arg(long)]
    allreduce: bool,

    /// With --async: no replica runs more than S steps ahead of the slowest live one
    #[arg(long, value_name = "S", requires = "asynchronous")]
    staleness: Option<u64>,

    /// Synchronous steps apply the first K replicas' gradients; the rest are backups
    #[arg(long, value_name = "K", conflicts_with = "asynchronous")]
    aggregate: Option<usize>,

    /// Global steps
    #[arg(long, value_name = "N", default_value_t = 1000)]
    steps: u64,

    /// Examples per batch, per worker
    #[arg(long, value_name = "B", default_value_t = 100)]
    batch: usize,

    /// The replicated model
    #[arg(long, value_enum, default_value_t = Model::Softmax)]
    model: Model,

    /// Where checkpoints go (and the newest is restored from)
    #[arg(long, value_name = "D")]
    checkpoint_dir: Option<PathBuf>,

    /// Global steps between checkpoints
    #[arg(long, value_name = "N")]
    checkpoint_steps: Option<u64>,

    /// Print only the results, not the steps and the workers' reports
    #[arg(long)]
    quiet: bool,

    /// Writes a TensorBoard run to D (`tensorboard --logdir D`): the graph as placed, the
    /// loss of every step, each worker's examples/s, staleness and dropped gradients
    #[arg(long, value_name = "D")]
    logdir: Option<PathBuf>,

    /// Train on the cluster that TF_CONFIG (or Slurm's variables) describes, with its
    /// numbers of workers and parameter servers, instead of starting one
    #[arg(long)]
    cluster_from_env: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Model {
    /// The seed program's softmax regression
    Softmax,
    /// An MLP 784-256-10
    Mlp,
}

/// The seed program's model (or the MLP) as one replica.
fn tower(g: &Graph, model: Model) -> Result<Tower, sluice::GraphError> {
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let (logits, loss) = if model == Model::Mlp {
        let w1 = g.variable("W1", &[784, 256], Initializer::GlorotUniform);
        let b1 = g.variable("b1", &[256], Initializer::Zeros);
        let w2 = g.variable("W2", &[256, 10], Initializer::GlorotUniform);
        let b2 = g.variable("b2", &[10], Initializer::Zeros);
        let logits = matmul(relu(matmul(x, w1) + b1), w2) + b2;
        (
            logits,
            reduce_mean(softmax_cross_entropy_with_logits(logits, y_)),
        )
    } else {
        let w = g.variable("W", &[784, 10], Initializer::Zeros);
        let b = g.variable("b", &[10], Initializer::Zeros);
        let logits = matmul(x, w) + b;
        // The seed program's summed cross-entropy, in its numerically stable form.
        (
            logits,
            reduce_sum(softmax_cross_entropy_with_logits(logits, y_)),
        )
    };
    let accuracy = reduce_mean(cast(equal(argmax(logits, 1), argmax(y_, 1)), DType::F32));
    Ok(Tower::new(loss, &[x, y_]).metric("accuracy", accuracy))
}

fn build(a: &Args) -> anyhow::Result<Replicated> {
    let mut strategy = if a.allreduce {
        DataParallel::all_reduce(a.workers)
    } else {
        DataParallel::parameter_servers(a.workers, a.ps)
    };
    if a.asynchronous {
        strategy = strategy.asynchronous(a.staleness);
    } else if let Some(k) = a.aggregate {
        strategy = strategy.replicas_to_aggregate(k);
    }
    let rate = match a.model {
        Model::Softmax => 0.01,
        Model::Mlp => 0.1,
    };
    let g = Graph::new();
    Ok(strategy.build(&g, &GradientDescent::new(rate), |g| tower(g, a.model))?)
}

fn main() -> anyhow::Result<()> {
    let mut a = Args::parse();
    sluice::logging::init("warn");
    if a.allreduce {
        a.ps = 0;
    }
    // A cluster of its own on loopback, or the one the environment describes.
    let (_local, spec) = if a.cluster_from_env {
        let (spec, _) = ClusterSpec::from_env()?;
        let count = |job: &str| spec.jobs.get(job).map_or(0, Vec::len);
        a.workers = count("worker");
        a.ps = if a.allreduce { 0 } else { count("ps") };
        println!("cluster: {}", spec.to_tf_config(None));
        (None, spec)
    } else {
        let mut jobs = vec![("worker", a.workers)];
        if a.ps > 0 {
            jobs.push(("ps", a.ps));
        }
        let cluster = LocalCluster::start(&jobs).map_err(anyhow::Error::msg)?;
        let spec = cluster.spec().clone();
        (Some(cluster), spec)
    };
    let model = build(&a)?;
    let options = TrainerOptions {
        steps: a.steps,
        checkpoint_dir: a.checkpoint_dir.clone(),
        checkpoint_steps: a.checkpoint_steps,
        report_every: (a.steps / 4).max(1),
        logdir: a.logdir.clone(),
        ..TrainerOptions::default()
    };
    let mut trainer = Trainer::new(model, &spec, options)?;
    let digits = mnist_digits()?;
    let mut streams: Vec<_> = (0..a.workers)
        .map(|r| digits.train.batches(a.batch, r as u64))
        .collect();
    let mut batches = |r: usize| match streams[r].next() {
        Some(b) => vec![b.inputs, b.one_hot],
        None => Vec::new(),
    };
    let quiet = a.quiet;
    let report = (a.steps / 5).max(1);
    let mut on_event = |e: &TrainEvent| match e {
        TrainEvent::Step { step, loss } if !quiet && step % report == 0 => {
            println!("step {step:5}  loss {loss:.4}")
        }
        TrainEvent::Step { .. } => {}
        TrainEvent::Worker { .. } if quiet => {}
        other => println!("{other:?}"),
    };
    let from = trainer.step();
    let started = Instant::now();
    let reached = trainer.fit(&mut batches, &mut on_event)?;
    let seconds = started.elapsed().as_secs_f64();
    let test = &digits.test;
    let metrics = trainer.evaluate(&[test.inputs_tensor(), test.one_hot_tensor()])?;
    let accuracy = metrics.first().map_or(f64::NAN, |m| m.1);
    // Examples every worker computed, over the wall time.
    let per_step = if a.asynchronous {
        1
    } else {
        a.aggregate.unwrap_or(a.workers)
    } as f64;
    let examples = (reached - from) as f64 * per_step * a.batch as f64;
    println!("test accuracy: {accuracy:.4}");
    println!("examples/s: {:.0}", examples / seconds);
    if let Some(summaries) = trainer.summary_writer() {
        summaries.scalar("test_accuracy", reached as i64, accuracy)?;
        summaries.flush()?;
        println!("TensorBoard run: {}", summaries.path().display());
    }
    if a.allreduce {
        let bytes = trainer.last_step_transfers().wire_bytes;
        println!(
            "all-reduce bytes per worker per step: {}",
            bytes / a.workers as u64
        );
    }
    Ok(())
}
