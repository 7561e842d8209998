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
//! `--data NAME` (a data set the engine names: `mnist-digits`, `fashion-mnist`,
//! `parquet:PATH?label=COL&test=PATH2`, ...), `--read-on-workers` (each worker reads,
//! shuffles and batches its own shard of the data, by Parquet row groups or Arrow IPC record
//! batches where the file has enough of them; the trainer sends step orders only, and the
//! example prints the client's CPU use; an engine reads files under its data roots only,
//! `SLUICE_DATA_DIR` for a local cluster), `--steps-per-order K` (with --read-on-workers
//! and --allreduce: each order from the trainer runs K steps on the workers), and
//! `--cluster-from-env`: train on the cluster that TF_CONFIG (or Slurm's variables)
//! describes instead of starting one; the numbers of workers and parameter servers are then
//! the cluster's (see examples/kubernetes and examples/slurm). `--help` describes them all.

use clap::{Parser, ValueEnum};
use sluice::data::{DataSource, Split};
use sluice::distributed::replicas::{DataParallel, Replicated, Tower};
use sluice::distributed::{ClusterSpec, LocalCluster, TrainEvent, Trainer, TrainerOptions};
use sluice::ops::{read_batches, InputSpec};
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

    /// The data set (as an engine names it)
    #[arg(long, value_name = "NAME", default_value = "mnist-digits")]
    data: String,

    /// Each worker reads, shuffles and batches its own shard of the data: the trainer sends
    /// step orders, not batches
    #[arg(long)]
    read_on_workers: bool,

    /// With --read-on-workers and --allreduce: steps each worker trains per order from the
    /// trainer (one round trip for that many steps)
    #[arg(
        long,
        value_name = "K",
        default_value_t = 1,
        requires = "read_on_workers"
    )]
    steps_per_order: u32,

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

/// What a replica's inputs are: placeholders the trainer feeds, or shard `replica` of the
/// data read on its worker.
struct Inputs {
    features: usize,
    classes: usize,
    /// With --read-on-workers: the reader's spec and the number of workers.
    read: Option<(InputSpec, usize)>,
}

/// The seed program's model (or the MLP) as one replica.
fn tower(
    g: &Graph,
    model: Model,
    inputs: &Inputs,
    replica: usize,
) -> Result<Tower, sluice::GraphError> {
    let (f, c) = (inputs.features, inputs.classes);
    let (x, y_) = match &inputs.read {
        Some((spec, workers)) => {
            let batch = read_batches(g, spec, replica, *workers);
            (batch.inputs, batch.one_hot)
        }
        None => (
            g.placeholder("x", DType::F32, &[-1, f as i64]),
            g.placeholder("y_", DType::F32, &[-1, c as i64]),
        ),
    };
    let (logits, loss) = if model == Model::Mlp {
        let w1 = g.variable("W1", &[f, 256], Initializer::GlorotUniform);
        let b1 = g.variable("b1", &[256], Initializer::Zeros);
        let w2 = g.variable("W2", &[256, c], Initializer::GlorotUniform);
        let b2 = g.variable("b2", &[c], Initializer::Zeros);
        let logits = matmul(relu(matmul(x, w1) + b1), w2) + b2;
        (
            logits,
            reduce_mean(softmax_cross_entropy_with_logits(logits, y_)),
        )
    } else {
        let w = g.variable("W", &[f, c], Initializer::Zeros);
        let b = g.variable("b", &[c], Initializer::Zeros);
        let logits = matmul(x, w) + b;
        // The seed program's summed cross-entropy, in its numerically stable form.
        (
            logits,
            reduce_sum(softmax_cross_entropy_with_logits(logits, y_)),
        )
    };
    let accuracy = reduce_mean(cast(equal(argmax(logits, 1), argmax(y_, 1)), DType::F32));
    let tower = match &inputs.read {
        Some((spec, _)) => Tower::reading(loss, &[x, y_], spec.batch),
        None => Tower::new(loss, &[x, y_]),
    };
    Ok(tower.metric("accuracy", accuracy))
}

fn build(a: &Args, inputs: &Inputs) -> anyhow::Result<Replicated> {
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
    let optimizer = GradientDescent::new(rate);
    Ok(strategy.build_replicas(&g, &optimizer, |g, r| tower(g, a.model, inputs, r))?)
}

/// CPU seconds this process has used (all its threads), from /proc/self/stat (Linux's
/// clock ticks are 100 a second for this file).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
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
    let source: DataSource = a.data.parse()?;
    let data: Split = source.load()?;
    let inputs = Inputs {
        features: data.train.features,
        classes: data.train.classes,
        read: a.read_on_workers.then(|| {
            let spec = InputSpec {
                source: a.data.clone(),
                features: data.train.features,
                classes: data.train.classes,
                batch: a.batch,
                seed: 1,
            };
            (spec, a.workers)
        }),
    };
    let model = build(&a, &inputs)?;
    let options = TrainerOptions {
        steps: a.steps,
        checkpoint_dir: a.checkpoint_dir.clone(),
        checkpoint_steps: a.checkpoint_steps,
        report_every: (a.steps / 4).max(1),
        steps_per_order: a.steps_per_order,
        logdir: a.logdir.clone(),
        ..TrainerOptions::default()
    };
    let mut trainer = Trainer::new(model, &spec, options)?;
    let mut streams: Vec<_> = (0..a.workers)
        .map(|r| data.train.batches(a.batch, r as u64))
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
    let cpu_before = process_cpu_seconds();
    let reached = trainer.fit(&mut batches, &mut on_event)?;
    let seconds = started.elapsed().as_secs_f64();
    if let (Some(before), Some(after)) = (cpu_before, process_cpu_seconds()) {
        let share = (after - before) / seconds.max(1e-9);
        println!("client CPU: {:.1}% of a core", share * 100.0);
    }
    let test = &data.test;
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
