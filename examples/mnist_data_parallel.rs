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
//! `--checkpoint-steps N`, `--allreduce`, `--quiet`, and `--cluster-from-env`: train on the
//! cluster that TF_CONFIG (or Slurm's variables) describes instead of starting one; the
//! numbers of workers and parameter servers are then the cluster's (see
//! examples/kubernetes and examples/slurm).

use anyhow::{bail, Context};
use sluice::data::mnist_digits;
use sluice::distributed::replicas::{DataParallel, Replicated, Tower};
use sluice::distributed::{ClusterSpec, LocalCluster, TrainEvent, Trainer, TrainerOptions};
use sluice::prelude::*;
use std::time::Instant;

struct Args {
    workers: usize,
    ps: usize,
    asynchronous: bool,
    allreduce: bool,
    staleness: Option<u64>,
    aggregate: Option<usize>,
    steps: u64,
    batch: usize,
    mlp: bool,
    checkpoint_dir: Option<std::path::PathBuf>,
    checkpoint_steps: Option<u64>,
    quiet: bool,
    cluster_from_env: bool,
}

fn parse() -> anyhow::Result<Args> {
    let mut a = Args {
        workers: 2,
        ps: 1,
        asynchronous: false,
        allreduce: false,
        staleness: None,
        aggregate: None,
        steps: 1000,
        batch: 100,
        mlp: false,
        checkpoint_dir: None,
        checkpoint_steps: None,
        quiet: false,
        cluster_from_env: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--workers" => a.workers = value("--workers")?.parse()?,
            "--ps" => a.ps = value("--ps")?.parse()?,
            "--async" => a.asynchronous = true,
            "--allreduce" => a.allreduce = true,
            "--staleness" => a.staleness = Some(value("--staleness")?.parse()?),
            "--aggregate" => a.aggregate = Some(value("--aggregate")?.parse()?),
            "--steps" => a.steps = value("--steps")?.parse()?,
            "--batch" => a.batch = value("--batch")?.parse()?,
            "--model" => match value("--model")?.as_str() {
                "softmax" => a.mlp = false,
                "mlp" => a.mlp = true,
                other => bail!("--model is softmax or mlp, not {other}"),
            },
            "--checkpoint-dir" => a.checkpoint_dir = Some(value("--checkpoint-dir")?.into()),
            "--checkpoint-steps" => {
                a.checkpoint_steps = Some(value("--checkpoint-steps")?.parse()?)
            }
            "--quiet" => a.quiet = true,
            "--cluster-from-env" => a.cluster_from_env = true,
            other => bail!("unknown argument {other}"),
        }
    }
    if a.allreduce {
        a.ps = 0;
    }
    Ok(a)
}

/// The seed program's model (or the MLP) as one replica.
fn tower(g: &Graph, mlp: bool) -> Result<Tower, sluice::GraphError> {
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let (logits, loss) = if mlp {
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
    let rate = if a.mlp { 0.1 } else { 0.01 };
    let g = Graph::new();
    Ok(strategy.build(&g, &GradientDescent::new(rate), |g| tower(g, a.mlp))?)
}

fn main() -> anyhow::Result<()> {
    let mut a = parse()?;
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
    if a.allreduce {
        let bytes = trainer.last_step_transfers().wire_bytes;
        println!(
            "all-reduce bytes per worker per step: {}",
            bytes / a.workers as u64
        );
    }
    Ok(())
}
