//! Building data-parallel graphs (no processes): where variables go on the parameter
//! servers, that replicas share them, and that a model function that builds different
//! variables per replica is refused with the names of what differs.

use sluice::distributed::replicas::{DataParallel, Tower};
use sluice::prelude::*;

fn device_of(g: &Graph, name: &str) -> String {
    let out = g.get(name).unwrap();
    g.node(out.node()).unwrap().device
}

/// Three variables: 400 KB, then two of 4 KB.
fn three_variables(g: &Graph) -> Result<Tower, sluice::GraphError> {
    let x = g.placeholder("x", DType::F32, &[-1, 100]);
    let big = g.variable("big", &[100, 1000], Initializer::Zeros);
    let small = g.variable("small", &[1000], Initializer::Zeros);
    let other = g.variable("other", &[1000], Initializer::Zeros);
    let y = matmul(x, big) + small + other;
    Ok(Tower::new(reduce_sum(y), &[x]))
}

#[test]
fn variables_are_sharded_greedily_by_bytes_or_in_turn() {
    let g = Graph::new();
    DataParallel::parameter_servers(2, 2)
        .build(&g, &GradientDescent::new(0.1), three_variables)
        .unwrap();
    // The big one fills ps 0; both small ones then go to the emptier ps 1.
    assert_eq!(device_of(&g, "big"), "/job:ps/task:0");
    assert_eq!(device_of(&g, "small"), "/job:ps/task:1");
    assert_eq!(device_of(&g, "other"), "/job:ps/task:1");

    let g = Graph::new();
    DataParallel::parameter_servers(2, 2)
        .round_robin()
        .build(&g, &GradientDescent::new(0.1), three_variables)
        .unwrap();
    assert_eq!(device_of(&g, "big"), "/job:ps/task:0");
    assert_eq!(device_of(&g, "small"), "/job:ps/task:1");
    assert_eq!(device_of(&g, "other"), "/job:ps/task:0");
}

#[test]
fn replicas_share_the_first_replicas_variables_and_slots_follow_them() {
    let g = Graph::new();
    let model = DataParallel::parameter_servers(3, 2)
        .build(&g, &Momentum::new(0.1, 0.9), three_variables)
        .unwrap();
    assert_eq!(model.towers.len(), 3);
    // One set of model variables; each replica's ops on its own worker.
    assert!(g.get("replica_1/big").is_err());
    assert_eq!(device_of(&g, "replica_2/MatMul"), "/job:worker/task:2");
    assert_eq!(device_of(&g, "MatMul"), "/job:worker/task:0");
    // The optimizer's slots live with their variables; checkpoints hold the variables,
    // the step and the slots, not the gradient buffers.
    let saved: Vec<String> = model.saved.iter().map(|v| v.name()).collect();
    for v in ["big", "small", "other", "global_step"] {
        assert!(saved.contains(&v.to_string()), "{saved:?}");
    }
    for slot in saved.iter().filter(|n| n.contains("momentum")) {
        let var = slot.rsplit_once('/').unwrap().0;
        let var = var.rsplit('/').next().unwrap();
        assert_eq!(device_of(&g, slot), device_of(&g, var), "{slot}");
    }
    assert_eq!(saved.iter().filter(|n| n.contains("momentum")).count(), 3);
    assert!(saved
        .iter()
        .all(|n| !n.contains("grad_buffer") && !n.starts_with("sync/")));
}

#[test]
fn a_replica_that_builds_other_variables_is_refused_by_name() {
    let g = Graph::new();
    let mut calls = 0;
    let err = DataParallel::parameter_servers(2, 1)
        .build(&g, &GradientDescent::new(0.1), |g| {
            calls += 1;
            let x = g.placeholder("x", DType::F32, &[-1, 4]);
            let width = if calls == 1 { 3 } else { 5 };
            let w = g.variable("W", &[4, width], Initializer::Zeros);
            Ok(Tower::new(reduce_sum(matmul(x, w)), &[x]))
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("replica 1"), "{err}");
    assert!(
        err.contains("'W'") && err.contains("[4, 5]") && err.contains("[4, 3]"),
        "{err}"
    );
}

#[test]
fn impossible_set_ups_are_refused_with_what_is_wrong() {
    let g = Graph::new();
    let opt = GradientDescent::new(0.1);
    let err = |dp: DataParallel| dp.build(&g, &opt, three_variables).unwrap_err().to_string();
    assert!(err(DataParallel::parameter_servers(2, 0)).contains("at least one ps"));
    assert!(err(DataParallel::parameter_servers(0, 1)).contains("at least one worker"));
    let e = err(DataParallel::parameter_servers(2, 1).replicas_to_aggregate(3));
    assert!(e.contains("replicas_to_aggregate is 3"), "{e}");
    let mut dp = DataParallel::all_reduce(2);
    dp.ps = 1;
    assert!(err(dp).contains("no parameter servers"));
}

#[test]
fn all_reduce_replicas_keep_their_own_variables_on_their_workers() {
    let g = Graph::new();
    let model = DataParallel::all_reduce(3)
        .build(&g, &GradientDescent::new(0.1), three_variables)
        .unwrap();
    assert_eq!(device_of(&g, "big"), "/job:worker/task:0");
    assert_eq!(device_of(&g, "replica_2/big"), "/job:worker/task:2");
    let saved: Vec<String> = model.saved.iter().map(|v| v.name()).collect();
    assert!(
        saved.iter().all(|n| !n.starts_with("replica_")),
        "{saved:?}"
    );
}
