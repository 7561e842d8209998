//! A sparse model over real processes on loopback: an embedding table of 1M rows x 64 split
//! over two parameter servers, a worker whose batches touch 1,000 rows. Each step moves the
//! rows touched and their ids (the lookup's rows to the worker, their gradients back to the
//! servers), not the table; the worker never holds the table (its peak memory is read from
//! /proc); and the dense gradient of today's path is measured beside it.

use sluice::distributed::replicas::{DataParallel, Tower};
use sluice::distributed::{DistributedOptions, DistributedSession, LocalCluster, TaskName};
use sluice::distributed::{Trainer, TrainerOptions};
use sluice::prelude::*;
use sluice::runner::NodeTiming;
use sluice::Session;

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

const TABLE: [usize; 2] = [1000, 8];

/// Ids with repeats and, per id, a target row the table should learn.
fn embedding_batch(replica: usize, step: u64) -> Vec<Tensor> {
    let ids: Vec<i64> = (0..64u64)
        .map(|j| ((j * j * 31 + step * 17 + replica as u64 * 101) % 300) as i64)
        .collect();
    let targets: Vec<f32> = (ids.iter())
        .flat_map(|&id| (0..TABLE[1]).map(move |k| ((id as f32) * 0.37 + k as f32).sin()))
        .collect();
    let n = ids.len();
    vec![
        Tensor::from_vec(ids),
        Tensor::new(&[n, TABLE[1]], targets).expect("targets"),
    ]
}

fn embedding_tower(g: &Graph) -> Result<Tower, sluice::GraphError> {
    let ids = g.placeholder("ids", DType::I64, &[-1]);
    let targets = g.placeholder("targets", DType::F32, &[-1, TABLE[1] as i64]);
    let split = Partitioner::fixed(2, PartitionStrategy::Mod);
    let table = PartitionedVariable::new(g, "emb", &TABLE, Initializer::Zeros, &split)?;
    let loss = reduce_sum(square(table.lookup(ids) - targets)) * (1.0 / 64.0);
    Ok(Tower::new(loss, &[ids, targets]).metric("loss", loss))
}

/// Trains both replicas on their own batches for the trainer's steps.
fn fit_embedding(trainer: &mut Trainer) {
    let mut step = [0u64; 2];
    let mut batches = |r: usize| {
        step[r] += 1;
        embedding_batch(r, step[r] - 1)
    };
    trainer.fit(&mut batches, &mut |_| {}).expect("training");
}

/// The table as the trainer's servers hold it, put back together.
fn trained_table(trainer: &Trainer, g: &Graph) -> Tensor {
    let sess = trainer.session().expect("a session");
    let split = Partitioner::fixed(2, PartitionStrategy::Mod);
    let layout = PartitionedVariable::new(&Graph::new(), "emb", &TABLE, Initializer::Zeros, &split)
        .expect("the layout");
    let shards: Vec<Tensor> = (0..2)
        .map(|p| {
            let shard = g.get(&format!("emb/part_{p}")).expect("a shard");
            sess.variable(shard).expect("read").expect("a value")
        })
        .collect();
    layout.assemble(&shards).expect("the table")
}

/// Synchronous replicas send their gradients as rows to the servers, which apply the mean:
/// the same table as one process trained on both replicas' batches. Asynchronous replicas
/// apply their rows as they come, and the loss falls too.
#[test]
fn data_parallel_replicas_train_a_sharded_table_with_sparse_updates() {
    let steps = 12;
    let cluster = LocalCluster::start(&[("worker", 2), ("ps", 2)]).expect("the cluster");
    let options = TrainerOptions {
        steps,
        report_every: 4,
        ..TrainerOptions::default()
    };
    let model = DataParallel::parameter_servers(2, 2)
        .build(&Graph::new(), &Adagrad::new(0.5), embedding_tower)
        .expect("the replicas");
    let g = model.graph.clone();
    let kinds: Vec<String> = g.nodes().iter().map(|n| n.op_name().to_string()).collect();
    let sparse_updates = kinds.iter().filter(|k| *k == "SparseApplyAdagrad").count();
    assert_eq!(sparse_updates, 2, "one sparse update per shard: {kinds:?}");
    let table_sized = (g.nodes().iter())
        .filter(|n| n.device.contains("/job:worker"))
        .filter(|n| (n.outputs.iter()).any(|o| o.shape.dims().first() == Some(&Some(500))))
        .map(|n| n.name.clone())
        .collect::<Vec<_>>();
    assert!(
        table_sized.is_empty(),
        "shard-sized tensors on the workers: {table_sized:?}"
    );
    let mut trainer = Trainer::new(model, cluster.spec(), options.clone()).expect("a trainer");
    fit_embedding(&mut trainer);
    let replicated = trained_table(&trainer, &g);

    // One process: the mean of both replicas' losses, the same batches.
    let one = Graph::new();
    let ids = [0, 1].map(|r| one.placeholder(&format!("ids_{r}"), DType::I64, &[-1]));
    let targets = [0, 1].map(|r| one.placeholder(&format!("t_{r}"), DType::F32, &[-1, 8]));
    let table = one.variable("emb", &TABLE, Initializer::Zeros);
    let losses: Vec<Output> = (0..2)
        .map(|r| reduce_sum(square(embedding_lookup(table, ids[r]) - targets[r])) * (1.0 / 64.0))
        .collect();
    let train = Adagrad::new(0.5)
        .minimize((losses[0] + losses[1]) * 0.5)
        .expect("one process");
    let mut sess = Session::new(&one);
    sess.init_variables().expect("init");
    for s in 0..steps {
        let mut feeds = Vec::new();
        for r in 0..2 {
            let batch = embedding_batch(r, s);
            feeds.push((ids[r], batch[0].clone()));
            feeds.push((targets[r], batch[1].clone()));
        }
        sess.run(&[train], &feeds).expect("a step");
    }
    let want = sess.variable(table).expect("the table");
    let diff = replicated.max_abs_diff(&want).expect("same shapes");
    println!("sync sparse replicas vs one process: max difference {diff}");
    assert!(
        diff < 1e-5,
        "replicated and one-process tables differ by {diff}"
    );
    let before = trainer.evaluate(&embedding_batch(0, 0)).expect("evaluate");
    drop(trainer);

    // Asynchronous: each replica's rows applied as they arrive.
    let model = DataParallel::parameter_servers(2, 2)
        .asynchronous(Some(2))
        .build(&Graph::new(), &Adagrad::new(0.5), embedding_tower)
        .expect("async replicas");
    let mut trainer = Trainer::new(model, cluster.spec(), options).expect("a trainer");
    let first = trainer.evaluate(&embedding_batch(0, 0)).expect("evaluate")[0].1;
    fit_embedding(&mut trainer);
    let last = trainer.evaluate(&embedding_batch(0, 0)).expect("evaluate")[0].1;
    println!(
        "async sparse replicas: loss {first:.4} -> {last:.4} (sync reached {:.4})",
        before[0].1
    );
    // (Synchronous training reaches about 0.75 of the first loss in these steps.)
    assert!(last < first * 0.8, "async loss {first} -> {last}");
}
