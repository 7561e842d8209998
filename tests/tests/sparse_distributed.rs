//! A sparse model over real processes on loopback: an embedding table of 1M rows x 64 split
//! over two parameter servers, a worker whose batches touch 1,000 rows. Each step moves the
//! rows touched and their ids (the lookup's rows to the worker, their gradients back to the
//! servers), not the table; the worker never holds the table (its peak memory is read from
//! /proc); and the dense gradient of today's path is measured beside it.

use sluice::distributed::{DistributedOptions, DistributedSession, LocalCluster, TaskName};
use sluice::prelude::*;
use sluice::runner::NodeTiming;

const ROWS: usize = 1_000_000;
const DIM: usize = 64;
const BATCH: usize = 1000;
const WORKER: &str = "/job:worker/task:0";

/// `BATCH` distinct ids spread over the table, different each step.
fn batch(step: u64) -> Tensor {
    let mut ids: Vec<i64> = (0..BATCH as u64)
        .map(|j| ((j * 999_983 + step * 7_919 + 13) % ROWS as u64) as i64)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), BATCH);
    Tensor::from_vec(ids)
}

struct Model {
    graph: Graph,
    ids: Output,
    loss: Output,
    train: Output,
}

/// The table over both servers (`mod`), the model on the worker; the gradients applied as
/// rows (`sparse`) or densified first, as a dense consumer would.
fn model(sparse: bool) -> Model {
    let g = Graph::new();
    let split =
        Partitioner::fixed(2, PartitionStrategy::Mod).on(&["/job:ps/task:0", "/job:ps/task:1"]);
    let table = PartitionedVariable::new(&g, "embedding", &[ROWS, DIM], Initializer::Zeros, &split)
        .expect("the table");
    let _worker = g.device(WORKER);
    let ids = g.placeholder("ids", DType::I64, &[BATCH as i64]);
    let rows = table.lookup(ids);
    // Each row moves a fifth of the way to 0.5 per step.
    let loss = reduce_sum(square(rows - 0.5)) * (1.0 / BATCH as f32);
    let optimizer = GradientDescent::new(100.0);
    let train = if sparse {
        optimizer.minimize(loss).expect("sparse updates")
    } else {
        let grads = gradients(&[loss], &table.shards).expect("dense gradients");
        let pairs: Vec<(Output, Output)> = (grads.into_iter().zip(&table.shards))
            .map(|(g, &v)| (g.expect("each shard is read"), v))
            .collect();
        optimizer.apply_gradients(&pairs).expect("dense updates")
    };
    Model {
        graph: g,
        ids,
        loss,
        train,
    }
}

/// Bytes received by the worker and by the servers in a traced step.
fn bytes_by_receiver(timings: &[NodeTiming]) -> (u64, u64) {
    let mut to_worker = 0;
    let mut to_servers = 0;
    for t in timings {
        let Some(transfer) = &t.transfer else {
            continue;
        };
        if t.device.contains("/job:worker/") {
            to_worker += transfer.wire_bytes;
        } else {
            to_servers += transfer.wire_bytes;
        }
    }
    (to_worker, to_servers)
}

/// The peak resident memory of a process, in bytes (VmHWM).
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = (status.lines().find(|l| l.starts_with("VmHWM:"))).expect("a VmHWM line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("kB");
    kib * 1024
}

#[test]
fn a_sparse_step_moves_the_rows_touched_and_the_worker_never_holds_the_table() {
    let cluster = LocalCluster::start(&[("worker", 1), ("ps", 2)]).expect("the cluster");
    let worker_pid = cluster
        .pid(&TaskName::new("worker", 0))
        .expect("the worker's pid");
    let row_bytes = (DIM * 4) as u64;
    let table_bytes = ROWS as u64 * row_bytes;
    // One direction's ideal: the rows touched and their ids (i64).
    let ideal = BATCH as u64 * (row_bytes + 8);

    let m = model(true);
    let mut sess = DistributedSession::new(&m.graph, cluster.spec(), DistributedOptions::default())
        .expect("the session");
    sess.init_variables().expect("init");
    let baseline = peak_memory(worker_pid);
    let mut losses = Vec::new();
    let mut step_bytes = Vec::new();
    let mut directions = (0, 0);
    for step in 0..8 {
        let feeds = [(m.ids, batch(step % 2))];
        let (out, timings) = sess
            .run_traced_with_targets(&[m.loss], &feeds, &[m.train])
            .expect("a sparse step");
        losses.push(out[0].get_f64(0));
        step_bytes.push(sess.last_step_transfers().wire_bytes);
        directions = bytes_by_receiver(&timings);
    }
    let per_step = *step_bytes.last().expect("steps ran");
    let peak = peak_memory(worker_pid);
    println!(
        "sparse: {per_step} bytes per step ({} to the worker, {} to the servers; ideal {ideal} \
         each way, {:.3}x), worker peak memory {:.1} MiB ({:.1} MiB before the steps; table \
         {:.0} MiB), losses {losses:?}",
        directions.0,
        directions.1,
        per_step as f64 / (2 * ideal) as f64,
        peak as f64 / (1 << 20) as f64,
        baseline as f64 / (1 << 20) as f64,
        table_bytes as f64 / (1 << 20) as f64
    );
    assert!(losses[7] < losses[1] * 0.5, "the loss falls: {losses:?}");
    assert!(step_bytes.iter().all(|&b| b == per_step), "{step_bytes:?}");
    for (what, bytes) in [
        ("to the worker", directions.0),
        ("to the servers", directions.1),
    ] {
        assert!(
            bytes >= BATCH as u64 * row_bytes,
            "{what}: {bytes} < the rows touched"
        );
        assert!(
            bytes as f64 <= 1.1 * ideal as f64,
            "{what}: {bytes} > 1.1 x {ideal}"
        );
    }
    // The steps grow the worker by a few batches' rows, nowhere near a table (or a shard).
    assert!(
        peak < baseline + table_bytes / 16,
        "the worker's peak memory went from {baseline} to {peak}; the table is {table_bytes}"
    );
    drop(sess);

    // Today's dense path on the same cluster: the dense gradient of each shard crosses over.
    let dense = model(false);
    let mut sess =
        DistributedSession::new(&dense.graph, cluster.spec(), DistributedOptions::default())
            .expect("the dense session");
    sess.init_variables().expect("init");
    sess.run_with_targets(&[dense.loss], &[(dense.ids, batch(0))], &[dense.train])
        .expect("a dense step");
    let dense_bytes = sess.last_step_transfers().wire_bytes;
    println!(
        "dense: {dense_bytes} bytes per step, {:.0}x the sparse step's",
        dense_bytes as f64 / per_step as f64
    );
    assert!(
        dense_bytes >= table_bytes,
        "{dense_bytes} < the table's {table_bytes}"
    );
}
