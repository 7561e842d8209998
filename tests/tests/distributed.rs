//! The distributed runtime with real processes on loopback: a model split over two workers
//! trains as one process does; placement errors name what is missing; soft placement; a
//! worker that is gone is named within the deadline; precision on the wire.

use sluice::data::mnist_digits;
use sluice::distributed::{DistributedOptions, DistributedSession, LocalCluster, TaskName};
use sluice::prelude::*;
use std::time::{Duration, Instant};

struct Mlp {
    g: Graph,
    x: Output,
    y_: Output,
    loss: Output,
    train: Output,
    w1: Output,
    w2: Output,
}

/// MLP 784-32-10; with `split`, the first layer on worker 0 and the second on worker 1.
fn mlp(split: bool) -> Mlp {
    let g = Graph::new();
    g.set_seed(7);
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let on = |task: usize| split.then(|| g.device(&format!("/job:worker/task:{task}")));
    let (h, w1) = {
        let _d = on(0);
        let _s = g.name_scope("layer1");
        let w = g.variable("W", &[784, 32], Initializer::GlorotUniform);
        let b = g.variable("b", &[32], Initializer::Zeros);
        (relu(matmul(x, w) + b), w)
    };
    let (logits, w2) = {
        let _d = on(1);
        let _s = g.name_scope("layer2");
        let w = g.variable("W", &[32, 10], Initializer::GlorotUniform);
        let b = g.variable("b", &[10], Initializer::Zeros);
        (matmul(h, w) + b, w)
    };
    let loss = reduce_mean(softmax_cross_entropy_with_logits(logits, y_));
    let train = GradientDescent::new(0.1).minimize(loss).unwrap();
    Mlp {
        g,
        x,
        y_,
        loss,
        train,
        w1,
        w2,
    }
}

fn two_workers() -> LocalCluster {
    LocalCluster::start(&[("worker", 2)]).unwrap()
}

#[test]
fn a_model_split_over_two_workers_trains_as_one_process_does() {
    let cluster = two_workers();
    let split = mlp(true);
    let mut dist =
        DistributedSession::new(&split.g, cluster.spec(), DistributedOptions::default()).unwrap();
    let single = mlp(false);
    let mut local = Session::new(&single.g);
    assert_eq!(dist.init_variables().unwrap(), 5);
    local.init_variables().unwrap();
    let table = dist.placement_table().unwrap();
    let placed = dist.placement().unwrap();
    let device_of = |name: &str| placed.iter().find(|p| p.0 == name).map(|p| p.1.clone());
    let (w0, w1) = (
        "/job:worker/replica:0/task:0/device:CPU:0",
        "/job:worker/replica:0/task:1/device:CPU:0",
    );
    assert_eq!(device_of("layer1/MatMul").as_deref(), Some(w0), "{table}");
    assert_eq!(device_of("layer2/MatMul").as_deref(), Some(w1), "{table}");
    // Updates go where their variables are.
    let update_of_w2 = placed
        .iter()
        .find(|p| p.0.contains("ApplyGradientDescent") && p.2.contains("colocated") && p.1 == w1);
    assert!(update_of_w2.is_some(), "{table}");

    let digits = mnist_digits().unwrap();
    for batch in digits.train.batches(100, 3).take(40) {
        let feeds = |m: &Mlp| [(m.x, batch.inputs.clone()), (m.y_, batch.one_hot.clone())];
        let a = dist.run_with_targets(&[split.loss], &feeds(&split), &[split.train]);
        let b = local.run_with_targets(&[single.loss], &feeds(&single), &[single.train]);
        let (a, b) = (
            a.unwrap()[0].scalar_f64().unwrap(),
            b.unwrap()[0].scalar_f64().unwrap(),
        );
        assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "loss {a} vs {b}");
    }
    // Activations went one way and their gradients the other.
    let moved = dist.last_step_transfers().clone();
    assert!(moved.transfers >= 2, "{moved:?}");
    assert!(moved.wire_bytes >= 2 * 100 * 32 * 4, "{moved:?}");
    for (d, l) in [(split.w1, single.w1), (split.w2, single.w2)] {
        let d = dist.variable(d).unwrap().unwrap().to_vec::<f32>().unwrap();
        let l = local.variable(l).unwrap().to_vec::<f32>().unwrap();
        let worst = d
            .iter()
            .zip(&l)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-4, "weights differ by {worst}");
    }
    // A drawing of the placed graph colours nodes by the task they run on.
    let placed = dist.placed_graph().unwrap();
    let layer2 = placed
        .node(placed.get("layer2/MatMul").unwrap().node())
        .unwrap();
    assert_eq!(layer2.device, w1);
    let x = placed.node(placed.get("x").unwrap().node()).unwrap();
    assert_eq!(x.device, w0);
    // The variables stay on their workers between steps, and new nodes join the graph.
    let extra = reduce_sum(split.w2);
    assert!(dist.run(&[extra], &[]).unwrap()[0].scalar_f64().is_some());
}

#[test]
fn unknown_jobs_and_tasks_are_errors_and_soft_placement_falls_back_to_the_cpu() {
    let cluster = two_workers();
    for (device, expected) in [
        ("/job:chief/task:0", "no job 'chief'"),
        ("/job:worker/task:5", "2 task(s)"),
    ] {
        let g = Graph::new();
        let c = {
            let _d = g.device(device);
            g.scalar(1.0) + g.scalar(2.0)
        };
        let mut sess =
            DistributedSession::new(&g, cluster.spec(), DistributedOptions::default()).unwrap();
        let err = sess.run(&[c], &[]).unwrap_err().to_string();
        assert!(err.contains(expected) && err.contains(device), "{err}");
    }
    let g = Graph::new();
    let c = {
        let _d = g.device("/job:worker/task:1/device:GPU:0");
        g.scalar(1.0) + g.scalar(2.0)
    };
    let mut sess =
        DistributedSession::new(&g, cluster.spec(), DistributedOptions::default()).unwrap();
    assert_eq!(sess.run(&[c], &[]).unwrap()[0].scalar_f64(), Some(3.0));
    let placement = sess.placement().unwrap();
    let (_, device, why) = placement.iter().find(|p| p.0 == c.name()).unwrap();
    assert_eq!(device, "/job:worker/replica:0/task:1/device:CPU:0");
    assert!(why.contains("soft-placed"), "{why}");
}

#[test]
fn a_worker_that_is_gone_is_named_within_the_deadline() {
    let mut cluster = two_workers();
    let m = mlp(true);
    let options = DistributedOptions {
        rpc_timeout: Duration::from_secs(3),
        ..DistributedOptions::default()
    };
    let mut sess = DistributedSession::new(&m.g, cluster.spec(), options.clone()).unwrap();
    sess.init_variables().unwrap();
    assert!(cluster.kill(&TaskName::new("worker", 1)));
    let digits = mnist_digits().unwrap();
    let batch = digits.train.batches(100, 0).next().unwrap();
    let started = Instant::now();
    let err = sess
        .run_with_targets(
            &[m.loss],
            &[(m.x, batch.inputs), (m.y_, batch.one_hot)],
            &[m.train],
        )
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        err.contains("/job:worker/task:1") || err.contains("task_1"),
        "{err}"
    );
    // A new session on a cluster with the dead task is refused by name at once.
    let err = DistributedSession::new(&m.g, cluster.spec(), options)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("/job:worker/task:1"), "{err}");
}

/// Small tensors stream over gRPC; large ones (from 256 KiB on the wire) take the bulk
/// channel. Both carry every precision, to within its resolution, and count its bytes.
#[test]
fn bf16_halves_and_int8_quarters_the_bytes_on_the_wire() {
    let cluster = two_workers();
    for n in [10_000usize, 1_000_000] {
        let values: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.01).sin()).collect();
        let mut bytes = Vec::new();
        for (precision, tolerance) in [("f32", 0.0), ("bf16", 1.0 / 256.0), ("int8", 1.0 / 254.0)] {
            let g = Graph::new();
            let x = {
                let _d = g.device("/job:worker/task:0");
                g.constant(Tensor::from_vec(values.clone())) * g.scalar(1.0)
            };
            let arrived = {
                let _d = g.device("/job:worker/task:1");
                x * g.scalar(1.0)
            };
            let options = DistributedOptions {
                wire_precision: precision.to_string(),
                ..DistributedOptions::default()
            };
            let mut sess = DistributedSession::new(&g, cluster.spec(), options).unwrap();
            let got = sess.run(&[arrived], &[]).unwrap()[0]
                .to_vec::<f32>()
                .unwrap();
            assert_eq!(got.len(), n);
            let worst = (values.iter().zip(&got))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst <= tolerance,
                "{n} values in {precision}: off by {worst}"
            );
            bytes.push(sess.last_step_transfers().wire_bytes);
        }
        let n = n as u64;
        assert_eq!(bytes, [4 * n, 2 * n, n], "{n} values");
    }
}

/// Each task's part is a graph registered on its worker (RegisterGraph, run with RunGraph);
/// dropping the session cleans them up (CleanupGraph), so the workers forget them.
#[test]
fn dropping_the_session_cleans_up_its_graphs_on_the_workers() {
    let cluster = two_workers();
    let model = mlp(true);
    let mut sess =
        DistributedSession::new(&model.g, cluster.spec(), DistributedOptions::default()).unwrap();
    sess.init_variables().unwrap();
    sess.placement().unwrap();
    let registered = sess.task_graphs();
    assert_eq!(registered.len(), 2);
    for (task, addr, handle) in &registered {
        assert!(
            RemoteSession::attach(addr, handle).is_ok(),
            "{task} holds its graph while the session lives"
        );
    }
    drop(sess);
    for (task, addr, handle) in &registered {
        let err = RemoteSession::attach(addr, handle)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains(handle.as_str())),
            "{task} forgot graph {handle} after the drop: {err:?}"
        );
    }
}

#[test]
fn a_part_that_fails_aborts_the_step_on_the_other_workers_at_once() {
    // Worker 1 checks its input and sends it to worker 0, which waits for it. Fed a NaN,
    // worker 1 fails before it sends: worker 0 must not wait out the 60 s deadline.
    let cluster = two_workers();
    let g = Graph::new();
    let p = g.placeholder("p", DType::F32, &[2]);
    let checked = {
        let _d = g.device("/job:worker/task:1");
        check_numerics(p * 2.0, "p must be finite")
    };
    let out = {
        let _d = g.device("/job:worker/task:0");
        checked + 1.0
    };
    let options = DistributedOptions {
        rpc_timeout: Duration::from_secs(60),
        ..DistributedOptions::default()
    };
    let mut sess = DistributedSession::new(&g, cluster.spec(), options).unwrap();
    let good = Tensor::new(&[2], vec![1.0f32, 2.0]).unwrap();
    let v = sess.run(&[out], &[(p, good)]).unwrap();
    assert_eq!(v[0].to_vec::<f32>().unwrap(), vec![3.0, 5.0]);
    for _ in 0..2 {
        let bad = Tensor::new(&[2], vec![1.0f32, f32::NAN]).unwrap();
        let started = Instant::now();
        let err = sess.run(&[out], &[(p, bad)]).unwrap_err().to_string();
        let took = started.elapsed();
        println!("failed after {took:?}: {err}");
        assert!(err.contains("p must be finite"), "{err}");
        assert!(took < Duration::from_secs(10), "the step waited {took:?}");
    }
    // The session still works after aborted steps.
    let good = Tensor::new(&[2], vec![0.5f32, 0.0]).unwrap();
    let v = sess.run(&[out], &[(p, good)]).unwrap();
    assert_eq!(v[0].to_vec::<f32>().unwrap(), vec![2.0, 1.0]);
}
