//! Data-parallel training with real processes on loopback: synchronous replicas with a
//! parameter server match one process fed the same examples; asynchronous ones converge
//! within their staleness bound; a ring all-reduce moves 2(N-1)/N of the model per worker
//! and leaves every replica with the same weights; `kill -9` of a worker mid-run, and the
//! job finishes from its last checkpoint; a task that never comes back is named.

use sluice::data::{mnist_digits, Batch, Batches};
use sluice::distributed::replicas::{DataParallel, Replicated, Tower, TrainError};
use sluice::distributed::DistributedOptions;
use sluice::distributed::{LocalCluster, TaskName, TrainEvent, Trainer, TrainerOptions};
use sluice::prelude::*;
use sluice::Session;
use sluice_tests::softmax_tower;
use std::time::{Duration, Instant};

fn mlp_tower(g: &Graph) -> Result<Tower, sluice::GraphError> {
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let w1 = g.variable("W1", &[784, 64], Initializer::GlorotUniform);
    let b1 = g.variable("b1", &[64], Initializer::Zeros);
    let w2 = g.variable("W2", &[64, 10], Initializer::GlorotUniform);
    let b2 = g.variable("b2", &[10], Initializer::Zeros);
    let logits = matmul(relu(matmul(x, w1) + b1), w2) + b2;
    let loss = reduce_mean(softmax_cross_entropy_with_logits(logits, y_));
    let accuracy = reduce_mean(cast(equal(argmax(logits, 1), argmax(y_, 1)), DType::F32));
    Ok(Tower::new(loss, &[x, y_]).metric("accuracy", accuracy))
}

fn options(steps: u64) -> TrainerOptions {
    TrainerOptions {
        steps,
        report_every: 50,
        session: DistributedOptions {
            rpc_timeout: Duration::from_secs(5),
            ..DistributedOptions::default()
        },
        ..TrainerOptions::default()
    }
}

fn cluster(workers: usize, ps: usize, supervised: bool) -> LocalCluster {
    let mut jobs = vec![("worker", workers)];
    if ps > 0 {
        jobs.push(("ps", ps));
    }
    let started = if supervised {
        LocalCluster::start_supervised(&jobs)
    } else {
        LocalCluster::start(&jobs)
    };
    started.expect("the local cluster starts")
}

fn streams(data: &sluice::data::Dataset, n: usize, batch: usize) -> Vec<Batches<'_>> {
    (0..n).map(|r| data.batches(batch, r as u64)).collect()
}

fn feeds(b: Batch) -> Vec<Tensor> {
    vec![b.inputs, b.one_hot]
}

fn test_accuracy(trainer: &mut Trainer) -> f64 {
    let test = &mnist_digits().unwrap().test;
    let metrics = trainer
        .evaluate(&[test.inputs_tensor(), test.one_hot_tensor()])
        .unwrap();
    metrics[0].1
}

/// Rows of `a` then rows of `b`.
fn stack_rows(a: &Tensor, b: &Tensor) -> Tensor {
    let mut data = a.to_vec::<f32>().unwrap();
    data.extend(b.to_vec::<f32>().unwrap());
    let shape = [a.shape()[0] + b.shape()[0], a.shape()[1]];
    Tensor::new(&shape, data).unwrap()
}

#[test]
fn synchronous_replicas_match_one_process_fed_the_same_examples() {
    let steps = 1000;
    let digits = mnist_digits().unwrap();
    // Two workers, each 100 examples a step, gradients averaged on the parameter server.
    let model = DataParallel::parameter_servers(2, 1)
        .build(&Graph::new(), &GradientDescent::new(0.01), softmax_tower)
        .unwrap();
    let cluster = cluster(2, 1, false);
    let mut trainer = Trainer::new(model, cluster.spec(), options(steps)).unwrap();
    let mut s = streams(&digits.train, 2, 100);
    let mut events = Vec::new();
    let reached = trainer
        .fit(&mut |r| feeds(s[r].next().unwrap()), &mut |e| {
            events.push(e.clone())
        })
        .unwrap();
    assert_eq!(reached, steps);
    let replicated = test_accuracy(&mut trainer);

    // One process, the same 200 examples a step: the gradient of the summed loss over 200
    // at half the rate is the mean of the two replicas' gradients at the full rate.
    let g = Graph::new();
    let tower = softmax_tower(&g).unwrap();
    let train = GradientDescent::new(0.005).minimize(tower.loss).unwrap();
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    let mut s = streams(&digits.train, 2, 100);
    for _ in 0..steps {
        let (a, b) = (s[0].next().unwrap(), s[1].next().unwrap());
        let x = stack_rows(&a.inputs, &b.inputs);
        let y = stack_rows(&a.one_hot, &b.one_hot);
        sess.run(&[train], &[(tower.inputs[0], x), (tower.inputs[1], y)])
            .unwrap();
    }
    let test = &digits.test;
    let one = sess
        .run(
            &[tower.metrics[0].1],
            &[
                (tower.inputs[0], test.inputs_tensor()),
                (tower.inputs[1], test.one_hot_tensor()),
            ],
        )
        .unwrap()[0]
        .scalar_f64()
        .unwrap();
    println!("synchronous 2 workers + 1 ps: {replicated:.4}; one process: {one:.4}");
    assert!(
        (replicated - one).abs() <= 0.005,
        "replicated {replicated} vs one process {one}"
    );
    assert!(one > 0.88, "one process reached only {one}");
    // Both workers reported, neither dropped a gradient (all are aggregated).
    let workers: Vec<_> = (events.iter())
        .filter_map(|e| match e {
            TrainEvent::Worker {
                replica,
                examples_per_sec,
                dropped,
                ..
            } => Some((*replica, *examples_per_sec, *dropped)),
            _ => None,
        })
        .collect();
    assert!(workers.iter().any(|w| w.0 == 0) && workers.iter().any(|w| w.0 == 1));
    assert!(workers.iter().all(|w| w.1 > 0.0 && w.2 == 0), "{workers:?}");
}

#[test]
fn backup_workers_drop_stale_gradients_and_still_converge() {
    let digits = mnist_digits().unwrap();
    let model = DataParallel::parameter_servers(3, 1)
        .replicas_to_aggregate(2)
        .build(&Graph::new(), &GradientDescent::new(0.1), mlp_tower)
        .unwrap();
    let cluster = cluster(3, 1, false);
    let mut trainer = Trainer::new(model, cluster.spec(), options(400)).unwrap();
    let mut s = streams(&digits.train, 3, 100);
    let mut dropped = 0;
    trainer
        .fit(&mut |r| feeds(s[r].next().unwrap()), &mut |e| {
            if let TrainEvent::Worker { dropped: d, .. } = e {
                dropped += d;
            }
        })
        .unwrap();
    let accuracy = test_accuracy(&mut trainer);
    println!("3 workers, 2 aggregated: accuracy {accuracy:.4}, {dropped} stale gradients dropped");
    assert!(accuracy > 0.85, "accuracy {accuracy}");
}

#[test]
fn asynchronous_replicas_converge_within_their_staleness_bound() {
    let digits = mnist_digits().unwrap();
    let model = DataParallel::parameter_servers(2, 2)
        .asynchronous(Some(2))
        .build(&Graph::new(), &GradientDescent::new(0.1), mlp_tower)
        .unwrap();
    let cluster = cluster(2, 2, false);
    let mut trainer = Trainer::new(model, cluster.spec(), options(600)).unwrap();
    let mut s = streams(&digits.train, 2, 100);
    let mut staleness = Vec::new();
    trainer
        .fit(&mut |r| feeds(s[r].next().unwrap()), &mut |e| {
            if let TrainEvent::Worker { mean_staleness, .. } = e {
                staleness.push(*mean_staleness);
            }
        })
        .unwrap();
    let accuracy = test_accuracy(&mut trainer);
    println!("async 2 workers + 2 ps: accuracy {accuracy:.4}, staleness {staleness:?}");
    assert!(accuracy > 0.88, "accuracy {accuracy}");
    assert!(!staleness.is_empty());
    // Another replica's update can land at most once per step of the other replica.
    assert!(
        staleness.iter().all(|s| s.is_finite() && *s <= 3.0),
        "{staleness:?}"
    );
}

#[test]
fn ring_all_reduce_moves_two_n_minus_one_over_n_of_the_model_and_keeps_replicas_equal() {
    let digits = mnist_digits().unwrap();
    let n = 3;
    let model = DataParallel::all_reduce(n)
        .build(&Graph::new(), &GradientDescent::new(0.1), mlp_tower)
        .unwrap();
    let model_bytes: u64 = 4 * (784 * 64 + 64 + 64 * 10 + 10);
    let g = model.graph.clone();
    let cluster = cluster(n, 0, false);
    let mut trainer = Trainer::new(model, cluster.spec(), options(300)).unwrap();
    let mut s = streams(&digits.train, n, 100);
    trainer
        .fit(&mut |r| feeds(s[r].next().unwrap()), &mut |_| {})
        .unwrap();
    let per_worker = trainer.last_step_transfers().wire_bytes as f64 / n as f64;
    let ideal = 2.0 * (n as f64 - 1.0) / n as f64 * model_bytes as f64;
    println!(
        "all-reduce: {per_worker:.0} bytes per worker per step; 2(N-1)/N x model = {ideal:.0}"
    );
    assert!(per_worker <= 1.05 * ideal, "{per_worker} > 1.05 x {ideal}");
    assert!(
        per_worker >= ideal,
        "{per_worker} < {ideal}: the gradients did not all travel"
    );
    // Every replica applied the same averaged gradient.
    let sess = trainer.session().unwrap();
    let first = sess.variable(g.get("W1").unwrap()).unwrap().unwrap();
    for r in 1..n {
        let other = (sess.variable(g.get(&format!("replica_{r}/W1")).unwrap()))
            .unwrap()
            .unwrap();
        assert_eq!(first.max_abs_diff(&other), Some(0.0), "replica {r} drifted");
    }
    let accuracy = test_accuracy(&mut trainer);
    assert!(accuracy > 0.85, "accuracy {accuracy}");
}

fn kill_9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Trains 500 synchronous steps on a supervised cluster (checkpoints every 50), kills
/// `victim` with `kill -9` at step 230; returns the events, the trainer, the longest wait
/// between steps, and the cluster (still up, for evaluation).
fn kill_mid_run(victim: TaskName) -> (Vec<TrainEvent>, Trainer, Duration, LocalCluster) {
    let digits = mnist_digits().unwrap();
    let dir = std::env::temp_dir().join(format!(
        "sluice-dp-kill-{}-{}",
        victim.job,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let model = DataParallel::parameter_servers(2, 1)
        .build(&Graph::new(), &GradientDescent::new(0.1), mlp_tower)
        .unwrap();
    let cluster = cluster(2, 1, true);
    let opts = TrainerOptions {
        checkpoint_dir: Some(dir.clone()),
        checkpoint_steps: Some(50),
        ..options(500)
    };
    let mut trainer = Trainer::new(model, cluster.spec(), opts).unwrap();
    let pid = cluster.pid(&victim).unwrap();
    let mut s = streams(&digits.train, 2, 100);
    let mut events = Vec::new();
    let mut killed = false;
    let mut last_step = Instant::now();
    let mut longest_wait = Duration::ZERO;
    trainer
        .fit(&mut |r| feeds(s[r].next().unwrap()), &mut |e| {
            if let TrainEvent::Step { step, .. } = e {
                longest_wait = longest_wait.max(last_step.elapsed());
                last_step = Instant::now();
                if *step == 230 && !killed {
                    kill_9(pid);
                    killed = true;
                }
            }
            events.push(e.clone());
        })
        .unwrap();
    assert_eq!(trainer.step(), 500);
    // The last step is checkpointed too.
    let latest = sluice::checkpoint::latest(&dir).unwrap().unwrap();
    assert_eq!(latest.step, 500);
    let _ = std::fs::remove_dir_all(&dir);
    (events, trainer, longest_wait, cluster)
}

/// Nothing waited past the RPC deadline (5 s) by more than the restart itself takes, and
/// the model trained.
fn finished_well(longest_wait: Duration, trainer: &mut Trainer) {
    assert!(
        longest_wait < Duration::from_secs(5 + 15),
        "{longest_wait:?}"
    );
    let accuracy = test_accuracy(trainer);
    assert!(accuracy > 0.88, "accuracy {accuracy}");
}

fn restored(events: &[TrainEvent]) -> (u64, Option<std::path::PathBuf>) {
    assert!(
        events.iter().any(|e| matches!(e, TrainEvent::Lost { .. })),
        "no Lost event: {events:?}"
    );
    events
        .iter()
        .find_map(|e| match e {
            TrainEvent::Restored { step, checkpoint } => Some((*step, checkpoint.clone())),
            _ => None,
        })
        .expect("the job went on in a new session")
}

#[test]
fn a_worker_killed_mid_run_loses_nothing_while_the_parameter_server_lives() {
    let (events, mut trainer, longest_wait, _cluster) = kill_mid_run(TaskName::new("worker", 1));
    let (step, checkpoint) = restored(&events);
    println!("worker killed at step 230; went on from {step} ({checkpoint:?}); longest wait {longest_wait:?}");
    // The parameter server kept the variables of step 230: they carried over.
    assert_eq!((step, checkpoint), (230, None));
    finished_well(longest_wait, &mut trainer);
}

#[test]
fn a_parameter_server_killed_mid_run_costs_at_most_one_checkpoint_interval() {
    let (events, mut trainer, longest_wait, _cluster) = kill_mid_run(TaskName::new("ps", 0));
    let (step, checkpoint) = restored(&events);
    println!("ps killed at step 230; went on from {step} ({checkpoint:?}); longest wait {longest_wait:?}");
    // The variables were lost with the server: back to the newest checkpoint, step 200.
    assert_eq!(step, 200);
    assert!(checkpoint.is_some_and(|p| p.to_string_lossy().contains("ckpt-000000000200")));
    finished_well(longest_wait, &mut trainer);
}

#[test]
fn asynchronous_adam_over_two_parameter_servers_does_not_deadlock() {
    // Adam reads the global step on every server, and two replicas' updates overlap.
    let digits = mnist_digits().unwrap();
    let model = DataParallel::parameter_servers(2, 2)
        .asynchronous(None)
        .build(&Graph::new(), &Adam::new(0.002), mlp_tower)
        .unwrap();
    let cluster = cluster(2, 2, false);
    let mut trainer = Trainer::new(model, cluster.spec(), options(400)).unwrap();
    let mut s = streams(&digits.train, 2, 100);
    trainer
        .fit(&mut |r| feeds(s[r].next().unwrap()), &mut |_| {})
        .unwrap();
    assert!(trainer.step() >= 400);
    let accuracy = test_accuracy(&mut trainer);
    assert!(accuracy > 0.88, "accuracy {accuracy}");
}

#[test]
fn a_batch_that_does_not_fit_the_tower_is_named() {
    let model = DataParallel::parameter_servers(2, 1)
        .build(&Graph::new(), &GradientDescent::new(0.1), mlp_tower)
        .unwrap();
    let cluster = cluster(2, 1, false);
    let mut trainer = Trainer::new(model, cluster.spec(), options(10)).unwrap();
    let digits = mnist_digits().unwrap();
    let mut s = streams(&digits.train, 2, 100);
    let err = trainer
        .fit(&mut |r| vec![s[r].next().unwrap().inputs], &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, TrainError::Batch { replica: 0, .. }), "{err}");
    assert!(
        err.to_string()
            .contains("1 tensors for the tower's 2 inputs"),
        "{err}"
    );
}

#[test]
fn a_task_that_never_comes_back_is_named_in_the_stall_report() {
    let digits = mnist_digits().unwrap();
    let model: Replicated = DataParallel::parameter_servers(2, 1)
        .build(&Graph::new(), &GradientDescent::new(0.1), mlp_tower)
        .unwrap();
    let mut cluster = cluster(2, 1, false);
    let opts = TrainerOptions {
        stall_after: Duration::from_secs(1),
        recovery_timeout: Duration::from_secs(3),
        ..options(10_000)
    };
    let mut trainer = Trainer::new(model, cluster.spec(), opts).unwrap();
    let mut s = streams(&digits.train, 2, 100);
    let mut stalled = Vec::new();
    let mut killed = false;
    let started = Instant::now();
    let result = trainer.fit(&mut |r| feeds(s[r].next().unwrap()), &mut |e| match e {
        TrainEvent::Step { step: 20, .. } if !killed => {
            cluster.kill(&TaskName::new("worker", 1));
            killed = true;
        }
        TrainEvent::Stalled { missing, .. } => stalled.push(missing.clone()),
        _ => {}
    });
    let Err(TrainError::Stalled { missing, seconds }) = result else {
        panic!("expected a stall, got {result:?}");
    };
    assert_eq!(missing, vec!["/job:worker/task:1".to_string()]);
    assert!(seconds >= 3.0);
    assert_eq!(stalled, vec![vec!["/job:worker/task:1".to_string()]]);
    assert!(started.elapsed() < Duration::from_secs(60));
    let message = TrainError::Stalled { missing, seconds }.to_string();
    assert!(message.contains("/job:worker/task:1"), "{message}");
}

/// Trains to the end, killing worker `victim` (`kill -9`) once step 100 is passed; the
/// events.
fn train_killing_at_step_100(
    trainer: &mut Trainer,
    cluster: &LocalCluster,
    victim: usize,
    digits: &sluice::data::Split,
) -> Vec<TrainEvent> {
    let pid = cluster.pid(&TaskName::new("worker", victim)).unwrap();
    let replicas = trainer.model().towers.len();
    let mut s = streams(&digits.train, replicas, 100);
    let mut events = Vec::new();
    let mut killed = false;
    trainer
        .fit(&mut |r| feeds(s[r].next().unwrap()), &mut |e| {
            if let TrainEvent::Step { step, .. } = e {
                if *step >= 100 && !killed {
                    kill_9(pid);
                    killed = true;
                }
            }
            events.push(e.clone());
        })
        .unwrap();
    events
}

/// Where the lost worker was skipped (the others went on).
fn skipped(events: &[TrainEvent]) -> usize {
    (events.iter())
        .position(|e| matches!(e, TrainEvent::Lost { message, .. } if message.contains("go on")))
        .expect("the lost worker was skipped")
}

#[test]
fn asynchronous_replicas_go_on_without_a_lost_worker_and_take_it_back() {
    let digits = mnist_digits().unwrap();
    let model = DataParallel::parameter_servers(2, 1)
        .asynchronous(None)
        .build(&Graph::new(), &GradientDescent::new(0.1), mlp_tower)
        .unwrap();
    let cluster = cluster(2, 1, true);
    let mut trainer = Trainer::new(model, cluster.spec(), options(800)).unwrap();
    let events = train_killing_at_step_100(&mut trainer, &cluster, 1, &digits);
    let lost = skipped(&events);
    let back = (events.iter())
        .position(|e| matches!(e, TrainEvent::Restored { .. }))
        .expect("the restarted worker rejoined");
    // Steps went on between the loss and the rejoin, and no step was lost by the rejoin.
    let steps_between = (events[lost..back].iter())
        .filter(|e| matches!(e, TrainEvent::Step { .. }))
        .count();
    let last_before = events[..back].iter().rev().find_map(|e| match e {
        TrainEvent::Step { step, .. } => Some(*step),
        _ => None,
    });
    let TrainEvent::Restored { step, .. } = &events[back] else {
        unreachable!()
    };
    println!("{steps_between} steps while worker 1 was away; rejoined at step {step}");
    assert!(steps_between > 0);
    // The values carried over: the step goes on from where it was (updates in flight when
    // the rejoin began have landed too).
    assert!(
        last_before.is_some_and(|last| *step >= last && *step <= last + 2),
        "{step} after {last_before:?}"
    );
    // Updates still in flight at step 800 land too.
    assert!((800..=802).contains(&trainer.step()), "{}", trainer.step());
    assert!(test_accuracy(&mut trainer) > 0.88);
}

#[test]
fn synchronous_steps_go_on_without_a_lost_backup_worker() {
    let digits = mnist_digits().unwrap();
    let model = DataParallel::parameter_servers(3, 1)
        .replicas_to_aggregate(2)
        .build(&Graph::new(), &GradientDescent::new(0.1), mlp_tower)
        .unwrap();
    let cluster = cluster(3, 1, true);
    let mut trainer = Trainer::new(model, cluster.spec(), options(600)).unwrap();
    let events = train_killing_at_step_100(&mut trainer, &cluster, 2, &digits);
    let lost = skipped(&events);
    let steps_after = (events[lost..].iter())
        .take_while(|e| !matches!(e, TrainEvent::Restored { .. }))
        .filter(|e| matches!(e, TrainEvent::Step { .. }))
        .count();
    println!("{steps_after} synchronous steps without worker 2");
    assert!(steps_after > 0);
    assert_eq!(trainer.step(), 600);
    assert!(test_accuracy(&mut trainer) > 0.88);
}
