//! Workers that read their own data: each replica's tower reads its shard of the training
//! set on its worker process (`read_batches`), so the trainer sends step orders and no
//! batches. All-reduce replicas then run many steps per order, with the same weights as one
//! step per order and the client process under 5% of a core; parameter-server replicas read
//! their shards too; evaluation still feeds the readers' outputs.

use sluice::data::mnist_digits;
use sluice::distributed::replicas::{DataParallel, Replicated, Tower};
use sluice::distributed::{DistributedOptions, LocalCluster, TrainEvent, Trainer, TrainerOptions};
use sluice::ops::{read_batches, InputSpec};
use sluice::prelude::*;
use sluice_tests::{figure, run_example};
use std::time::Duration;

/// The seed program's softmax regression, reading shard `replica` of `workers` of the
/// embedded digits on its worker.
fn reading_tower(g: &Graph, replica: usize, workers: usize) -> Result<Tower, sluice::GraphError> {
    let spec = InputSpec {
        source: "mnist-digits".into(),
        features: 784,
        classes: 10,
        batch: 100,
        seed: 5,
    };
    let read = read_batches(g, &spec, replica, workers);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let b = g.variable("b", &[10], Initializer::Zeros);
    let logits = matmul(read.inputs, w) + b;
    let loss = reduce_mean(softmax_cross_entropy_with_logits(logits, read.one_hot));
    let correct = equal(argmax(logits, 1), argmax(read.one_hot, 1));
    let accuracy = reduce_mean(cast(correct, DType::F32));
    Ok(Tower::reading(loss, &[read.inputs, read.one_hot], spec.batch).metric("accuracy", accuracy))
}

fn build(strategy: DataParallel) -> Replicated {
    let workers = strategy.workers;
    strategy
        .build_replicas(&Graph::new(), &GradientDescent::new(0.5), |g, r| {
            reading_tower(g, r, workers)
        })
        .expect("the replicas build")
}

fn options(steps: u64, steps_per_order: u32) -> TrainerOptions {
    TrainerOptions {
        steps,
        report_every: 100,
        steps_per_order,
        session: DistributedOptions {
            rpc_timeout: Duration::from_secs(20),
            ..DistributedOptions::default()
        },
        ..TrainerOptions::default()
    }
}

/// Trains; the trainer is never asked for a batch.
fn fit(trainer: &mut Trainer) -> Vec<TrainEvent> {
    let mut events = Vec::new();
    let mut batches = |r: usize| -> Vec<Tensor> { panic!("replica {r} was fed") };
    (trainer.fit(&mut batches, &mut |e| events.push(e.clone()))).expect("training finishes");
    events
}

fn test_accuracy(trainer: &mut Trainer) -> f64 {
    let test = mnist_digits().unwrap().test;
    let metrics = trainer
        .evaluate(&[test.inputs_tensor(), test.one_hot_tensor()])
        .expect("evaluation feeds the readers' outputs");
    metrics[0].1
}

fn weights(trainer: &Trainer) -> Tensor {
    let g = trainer.model().graph.clone();
    let sess = trainer.session().unwrap();
    sess.variable(g.get("W").unwrap())
        .unwrap()
        .expect("W has a value")
}

#[test]
fn all_reduce_replicas_run_many_steps_per_order_with_the_same_weights() {
    let cluster = LocalCluster::start(&[("worker", 2)]).expect("the local cluster starts");
    let mut results = Vec::new();
    for per_order in [1, 40] {
        let model = build(DataParallel::all_reduce(2));
        let mut trainer = Trainer::new(model, cluster.spec(), options(400, per_order)).unwrap();
        let events = fit(&mut trainer);
        assert_eq!(trainer.step(), 400);
        let steps = events
            .iter()
            .filter(|e| matches!(e, TrainEvent::Step { .. }))
            .count();
        // An event per order, and an order ends at each report (every 100 steps): 40, 40
        // and 20 steps a hundred.
        let orders = if per_order == 1 { 400 } else { 12 };
        assert_eq!(steps, orders, "an event per order");
        let examples: f64 = (events.iter())
            .filter_map(|e| match e {
                TrainEvent::Worker {
                    examples_per_sec, ..
                } => Some(*examples_per_sec),
                _ => None,
            })
            .sum();
        assert!(examples > 0.0, "the workers' reports count their examples");
        let accuracy = test_accuracy(&mut trainer);
        assert!(
            accuracy > 0.85,
            "{per_order} steps per order: accuracy {accuracy}"
        );
        results.push((weights(&trainer), accuracy));
    }
    // A repeated order is the same steps: the same batches, the same updates.
    assert_eq!(results[0].0.max_abs_diff(&results[1].0), Some(0.0));
    assert_eq!(results[0].1, results[1].1);
}

#[test]
fn parameter_server_replicas_read_their_own_shards() {
    let cluster =
        LocalCluster::start(&[("worker", 2), ("ps", 1)]).expect("the local cluster starts");
    let model = build(DataParallel::parameter_servers(2, 1));
    let mut trainer = Trainer::new(model, cluster.spec(), options(300, 1)).unwrap();
    fit(&mut trainer);
    let accuracy = test_accuracy(&mut trainer);
    assert!(accuracy > 0.85, "accuracy {accuracy}");
}

#[test]
fn the_seed_program_on_two_workers_reading_their_shards_takes_under_five_percent_of_a_core() {
    let args = [
        "--workers",
        "2",
        "--allreduce",
        "--read-on-workers",
        "--steps-per-order",
        "50",
        "--steps",
        "2000",
        "--quiet",
    ];
    let out = run_example("mnist_data_parallel", &args).expect("the example runs");
    // `client CPU: 1.0% of a core`
    let cpu: Option<f64> = (out.lines().find_map(|l| l.strip_prefix("client CPU:")))
        .and_then(|rest| rest.split('%').next()?.trim().parse().ok());
    let cpu = cpu.unwrap_or_else(|| panic!("no client CPU figure in:\n{out}"));
    let accuracy = figure(&out, "test accuracy:").expect("an accuracy");
    println!("client CPU {cpu}% of a core, test accuracy {accuracy}");
    assert!(cpu < 5.0, "the client used {cpu}% of a core:\n{out}");
    assert!(accuracy > 0.85, "{out}");
}
