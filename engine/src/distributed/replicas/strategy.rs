//! The data-parallel strategy: the model function is called once per worker task, each call
//! a replica ("tower") of the graph on its own worker; the replicas share one set of
//! variables on parameter-server tasks (sharded greedily by bytes, or in turn), or each keep
//! their own copy and average gradients by ring all-reduce.
//!
//! Parameter-server graphs are run in two phases per replica so that a parameter server
//! never waits on a worker's compute while it holds its session: phase one computes the
//! gradients into buffers on the worker (the variables travel from the servers), phase two
//! moves them to the servers, which apply them (asynchronous) or keep them in a slot per
//! replica until the coordinator applies the average of the fresh ones (synchronous).

use super::ring::ring_all_reduce;
use super::tower::Tower;
use crate::autodiff::gradient_values;
use crate::error::GraphError;
use crate::graph::{Graph, Output, VariableSharder};
use crate::ops::{assign, assign_add, group, mul, reshape, slice, Gradient, IndexedSlices};
use crate::optimizers::{advance_step, Optimizer};
use crate::tensor::{DType, Tensor};

/// How replicas combine their gradients.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Each step applies the mean of the first `replicas_to_aggregate` fresh gradients;
    /// gradients computed from older variables are dropped. Fewer than the replicas leaves
    /// the rest as backup workers, whose lateness no step waits for.
    Synchronous { replicas_to_aggregate: usize },
    /// Each replica applies its own gradient as soon as it has it (Downpour). With a bound,
    /// no replica runs more than `max_staleness` steps ahead of the slowest live one.
    Asynchronous { max_staleness: Option<u64> },
    /// Every replica keeps its own variables and averages gradients with a ring all-reduce
    /// among the workers: no parameter servers.
    AllReduce,
}

/// Where variables go on the parameter servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharding {
    /// The least loaded server by bytes so far, variable by variable.
    GreedyBytes,
    RoundRobin,
}

/// A data-parallel training set-up: `workers` replicas, `ps` parameter servers (none for
/// all-reduce), and how updates are made.
#[derive(Debug, Clone, PartialEq)]
pub struct DataParallel {
    pub workers: usize,
    pub ps: usize,
    pub update: Update,
    pub sharding: Sharding,
}

/// The replicated graph and the handles the trainer runs.
#[derive(Debug, Clone)]
pub struct Replicated {
    pub graph: Graph,
    pub strategy: DataParallel,
    pub towers: Vec<Tower>,
    /// The model's variables and the optimizer's slots: what a checkpoint holds (replica
    /// 0's copies under all-reduce).
    pub saved: Vec<Output>,
    pub global_step: Output,
    pub(crate) phases: Phases,
}

/// The targets of each update discipline.
#[derive(Debug, Clone)]
pub(crate) enum Phases {
    Synchronous {
        /// Per replica: gradients into the worker's buffers.
        compute: Vec<Output>,
        /// Per replica: buffers into the replica's slots on the servers (the assigns
        /// themselves, so that the step's only waits are the servers' on this worker).
        deliver: Vec<Vec<Output>>,
        /// Per replica: the weight of its slot in the next update (scalar placeholders).
        weights: Vec<Output>,
        apply: UpdateStep,
    },
    Asynchronous {
        compute: Vec<Output>,
        /// Per replica: apply its buffers.
        apply: Vec<UpdateStep>,
    },
    AllReduce {
        train: Output,
        /// Per replica: its copies of the saved variables, in the order of `saved`.
        copies: Vec<Vec<Output>>,
    },
}

/// An update as a step runs it: one no-op per parameter server over the updates there
/// (targets), and the global step advanced on its own (fetched: the step after). No server
/// waits on another's updates, so concurrent updates cannot wait on each other in a circle.
#[derive(Debug, Clone)]
pub(crate) struct UpdateStep {
    pub targets: Vec<Output>,
    pub advance: Output,
}

fn update_step(
    graph: &Graph,
    updates: Vec<usize>,
    global_step: Output,
) -> Result<UpdateStep, GraphError> {
    let mut by_device: Vec<(String, Vec<Output>)> = Vec::new();
    for id in updates {
        let device = graph.node(id).map(|n| n.device).unwrap_or_default();
        let out = Output::new(graph.id, id, 0);
        match by_device.iter_mut().find(|(d, _)| *d == device) {
            Some((_, outs)) => outs.push(out),
            None => by_device.push((device, vec![out])),
        }
    }
    let targets = (by_device.into_iter())
        .map(|(device, outs)| {
            let _device = graph.device(&device);
            group(&outs)
        })
        .collect();
    let advance = {
        let _device = graph.device(&ps_device(0));
        assign_add(global_step, graph.constant(Tensor::scalar(1i64)))?
    };
    Ok(UpdateStep { targets, advance })
}

fn worker_device(replica: usize) -> String {
    format!("/job:worker/task:{replica}")
}

fn ps_device(index: usize) -> String {
    format!("/job:ps/task:{index}")
}

fn invalid(message: String) -> GraphError {
    GraphError::BadNodeDef {
        node: "data-parallel strategy".into(),
        message,
    }
}

impl DataParallel {
    /// Synchronous training with parameter servers, aggregating every replica.
    pub fn parameter_servers(workers: usize, ps: usize) -> DataParallel {
        DataParallel {
            workers,
            ps,
            update: Update::Synchronous {
                replicas_to_aggregate: workers,
            },
            sharding: Sharding::GreedyBytes,
        }
    }

    /// Ring all-reduce among `workers` replicas.
    pub fn all_reduce(workers: usize) -> DataParallel {
        DataParallel {
            workers,
            ps: 0,
            update: Update::AllReduce,
            sharding: Sharding::GreedyBytes,
        }
    }

    /// Asynchronous updates, with an optional bound on how far replicas drift apart.
    pub fn asynchronous(mut self, max_staleness: Option<u64>) -> DataParallel {
        self.update = Update::Asynchronous { max_staleness };
        self
    }

    /// Synchronous steps that wait for `k` replicas only; the others are backups.
    pub fn replicas_to_aggregate(mut self, k: usize) -> DataParallel {
        self.update = Update::Synchronous {
            replicas_to_aggregate: k,
        };
        self
    }

    pub fn round_robin(mut self) -> DataParallel {
        self.sharding = Sharding::RoundRobin;
        self
    }

    fn check(&self) -> Result<(), GraphError> {
        if self.workers == 0 {
            return Err(invalid("at least one worker is needed".into()));
        }
        match self.update {
            Update::AllReduce if self.ps > 0 => Err(invalid(
                "all-reduce uses no parameter servers: ps must be 0".into(),
            )),
            Update::Synchronous { .. } | Update::Asynchronous { .. } if self.ps == 0 => Err(
                invalid("parameter-server training needs at least one ps task".into()),
            ),
            Update::Synchronous {
                replicas_to_aggregate: k,
            } if k == 0 || k > self.workers => Err(invalid(format!(
                "replicas_to_aggregate is {k}; it must be between 1 and the {} workers",
                self.workers
            ))),
            _ => Ok(()),
        }
    }

    /// Builds the replicas in `graph`: `model` is called once per worker, under that
    /// worker's device (and, past the first, a `replica_N` name scope). Its variables are
    /// made by the first call and handed out again to the others in the same order.
    pub fn build(
        &self,
        graph: &Graph,
        optimizer: &dyn Optimizer,
        mut model: impl FnMut(&Graph) -> Result<Tower, GraphError>,
    ) -> Result<Replicated, GraphError> {
        self.build_replicas(graph, optimizer, |g, _| model(g))
    }

    /// [`DataParallel::build`] with the replica's index (`0..workers`) given to the model
    /// function: what a replica that reads its own shard of the data needs
    /// (`read_batches(g, &spec, replica, workers)`).
    pub fn build_replicas(
        &self,
        graph: &Graph,
        optimizer: &dyn Optimizer,
        mut model: impl FnMut(&Graph, usize) -> Result<Tower, GraphError>,
    ) -> Result<Replicated, GraphError> {
        self.check()?;
        let shared = self.update != Update::AllReduce;
        let global_step = {
            let _device = graph.device(&if shared {
                ps_device(0)
            } else {
                worker_device(0)
            });
            graph.global_step()
        };
        let mut towers = Vec::with_capacity(self.workers);
        let mut copies: Vec<Vec<Output>> = Vec::new();
        for r in 0..self.workers {
            let _device = graph.device(&worker_device(r));
            let _scope = (r > 0).then(|| graph.name_scope(&format!("replica_{r}")));
            let tower = if shared && r > 0 {
                let what = format!("replica {r} does not build the variables of replica 0");
                reusing(graph, &copies[0], &what, || model(graph, r))?
            } else {
                let _shard = shared.then(|| {
                    let devices = (0..self.ps).map(ps_device).collect();
                    graph.shard_variables(match self.sharding {
                        Sharding::GreedyBytes => VariableSharder::greedy(devices),
                        Sharding::RoundRobin => VariableSharder::round_robin(devices),
                    })
                });
                let (tower, made) = with_new_variables(graph, || model(graph, r))?;
                copies.push(made);
                tower
            };
            towers.push(tower);
        }
        let trainable = graph.trainable_variables();
        let is_trainable = |v: &Output| trainable.contains(v);
        // Each replica's gradients, made on its worker: rows of the tables it read (sparse),
        // but whole tensors where all-reduce sums them.
        let mut grads: Vec<Vec<(Gradient, Output)>> = Vec::with_capacity(self.workers);
        for (r, tower) in towers.iter().enumerate() {
            let _device = graph.device(&worker_device(r));
            let _scope = (r > 0).then(|| graph.name_scope(&format!("replica_{r}")));
            let vars: Vec<Output> = (copies[if shared { 0 } else { r }].iter())
                .copied()
                .filter(is_trainable)
                .collect();
            let dense = !shared;
            let pairs: Vec<(Gradient, Output)> = gradient_values(&[tower.loss], &vars)?
                .into_iter()
                .zip(vars)
                .filter_map(|(g, v)| g.map(|g| (g, v)))
                .map(|(g, v)| match g {
                    Gradient::Sparse(rows) if dense => (Gradient::Dense(rows.to_dense()), v),
                    g => (g, v),
                })
                .collect();
            if pairs.is_empty() {
                let names: Vec<String> = copies[if shared { 0 } else { r }]
                    .iter()
                    .filter(|v| is_trainable(v))
                    .map(|v| v.name())
                    .collect();
                return Err(invalid(if names.is_empty() {
                    "the model function made no trainable variables".into()
                } else {
                    format!(
                        "the loss '{}' depends on none of the trainable variables ({})",
                        tower.loss.name(),
                        names.join(", ")
                    )
                }));
            }
            grads.push(pairs);
        }
        // A checkpoint keeps the model's variables, the step and the optimizer's slots, not
        // the gradient buffers and sync slots, which a restart does without.
        let (phases, optimizer_slots) = match self.update {
            Update::AllReduce => {
                all_reduce_phases(graph, optimizer, &grads, global_step, &mut copies)?
            }
            Update::Synchronous { .. } => sync_phases(graph, optimizer, &grads, global_step)?,
            Update::Asynchronous { .. } => async_phases(graph, optimizer, &grads, global_step)?,
        };
        let mut saved = copies[0].clone();
        saved.push(global_step);
        saved.extend(optimizer_slots);
        Ok(Replicated {
            graph: graph.clone(),
            strategy: self.clone(),
            towers,
            saved,
            global_step,
            phases,
        })
    }
}

/// What `build` returns, with the variables it made (in creation order).
fn with_new_variables<T>(
    graph: &Graph,
    build: impl FnOnce() -> Result<T, GraphError>,
) -> Result<(T, Vec<Output>), GraphError> {
    let before = graph.variables().len();
    let built = build()?;
    Ok((built, graph.variables()[before..].to_vec()))
}

/// What `build` returns, its variables handed out from `vars` in order; `what` heads the
/// error when it asks for others.
fn reusing<T>(
    graph: &Graph,
    vars: &[Output],
    what: &str,
    build: impl FnOnce() -> Result<T, GraphError>,
) -> Result<T, GraphError> {
    let _reuse = graph.reuse_variables(vars);
    let built = build()?;
    let problems = graph.take_reuse();
    if !problems.is_empty() {
        return Err(invalid(format!("{what}: {}", problems.join("; "))));
    }
    Ok(built)
}

/// A non-trainable variable of `var`'s dtype and shape, at zero, named `prefix/VAR`.
fn zeros_like(graph: &Graph, prefix: &str, var: Output) -> Result<Output, GraphError> {
    let ts = var.type_shape()?;
    let shape = ts.shape.to_known().unwrap_or_default();
    let name = format!("{prefix}/{}", var.name());
    Ok(graph.variable_with(
        &name,
        ts.dtype,
        &shape,
        crate::graph::Initializer::Zeros,
        false,
    ))
}

/// Variables that hold a gradient like `grad` of `var`, named `prefix/VAR`, and the assigns
/// that fill them from it: one of the variable's shape for a dense gradient; for rows, a
/// buffer of indices and one of rows, as long as the gradient has rows.
fn hold(
    graph: &Graph,
    prefix: &str,
    grad: &Gradient,
    var: Output,
) -> Result<(Gradient, Vec<Output>), GraphError> {
    match grad {
        Gradient::Dense(g) => {
            let buf = zeros_like(graph, prefix, var)?;
            Ok((Gradient::Dense(buf), vec![assign(buf, *g)?]))
        }
        Gradient::Sparse(rows) => {
            let rows = rows.flattened();
            let name = format!("{prefix}/{}", var.name());
            let indices = graph.row_buffer(&format!("{name}/indices"), rows.indices.dtype(), &[]);
            let row: Vec<usize> = (rows.dense_shape.dims().iter().skip(1))
                .map(|d| d.unwrap_or(0))
                .collect();
            let values = graph.row_buffer(&format!("{name}/values"), rows.values.dtype(), &row);
            let fills = vec![assign(indices, rows.indices)?, assign(values, rows.values)?];
            let held = IndexedSlices {
                indices,
                values,
                ..rows
            };
            Ok((Gradient::Sparse(held), fills))
        }
    }
}

/// A buffer on the worker for each gradient, and the op that fills them all.
fn buffers(
    graph: &Graph,
    replica: usize,
    pairs: &[(Gradient, Output)],
) -> Result<(Vec<Gradient>, Output), GraphError> {
    let _device = graph.device(&worker_device(replica));
    let mut bufs = Vec::with_capacity(pairs.len());
    let mut fills = Vec::with_capacity(pairs.len());
    let prefix = format!("grad_buffer/replica_{replica}");
    for (grad, var) in pairs {
        let (buf, fill) = hold(graph, &prefix, grad, *var)?;
        fills.extend(fill);
        bufs.push(buf);
    }
    let compute = group(&fills);
    Ok((bufs, compute))
}

fn sync_phases(
    graph: &Graph,
    optimizer: &dyn Optimizer,
    grads: &[Vec<(Gradient, Output)>],
    global_step: Output,
) -> Result<(Phases, Vec<Output>), GraphError> {
    let vars: Vec<Output> = grads[0].iter().map(|&(_, v)| v).collect();
    let weights: Vec<Output> = {
        let _device = graph.device(&ps_device(0));
        (0..grads.len())
            .map(|r| graph.placeholder(&format!("sync/weight_{r}"), DType::F32, &[]))
            .collect()
    };
    let mut compute = Vec::new();
    let mut deliver = Vec::new();
    // Per variable, each replica's weighted slot: summed densely, or rows one after another.
    let mut parts: Vec<Vec<Gradient>> = vec![Vec::new(); vars.len()];
    for (r, pairs) in grads.iter().enumerate() {
        let (bufs, fill) = buffers(graph, r, pairs)?;
        compute.push(fill);
        let mut moves = Vec::with_capacity(bufs.len());
        for (i, (buf, &(_, var))) in bufs.iter().zip(pairs).enumerate() {
            let device = graph.variable_node(var)?.device;
            let _device = graph.device(&device);
            let (slot, fill) = hold(graph, &format!("sync/replica_{r}"), buf, var)?;
            moves.extend(fill);
            parts[i].push(match slot {
                Gradient::Dense(slot) => Gradient::Dense(mul(weights[r], slot)),
                // A replica left out of the step (weight 0) gives no rows at all.
                Gradient::Sparse(rows) => Gradient::Sparse(rows.weighted(weights[r])),
            });
        }
        deliver.push(moves);
    }
    let mut pairs: Vec<(Gradient, Output)> = Vec::with_capacity(vars.len());
    for (part, var) in parts.into_iter().zip(vars) {
        let _device = graph.device(&graph.variable_node(var)?.device);
        pairs.extend(Gradient::sum(part).map(|sum| (sum, var)));
    }
    let (updates, slots) =
        with_new_variables(graph, || optimizer.apply_update_values(&pairs, global_step))?;
    let apply = update_step(graph, updates, global_step)?;
    let phases = Phases::Synchronous {
        compute,
        deliver,
        weights,
        apply,
    };
    Ok((phases, slots))
}

fn async_phases(
    graph: &Graph,
    optimizer: &dyn Optimizer,
    grads: &[Vec<(Gradient, Output)>],
    global_step: Output,
) -> Result<(Phases, Vec<Output>), GraphError> {
    let mut compute = Vec::new();
    let mut apply = Vec::new();
    let mut first_slots: Vec<Output> = Vec::new();
    for (r, pairs) in grads.iter().enumerate() {
        let (bufs, fill) = buffers(graph, r, pairs)?;
        compute.push(fill);
        let pairs: Vec<(Gradient, Output)> = bufs
            .into_iter()
            .zip(pairs.iter().map(|&(_, v)| v))
            .collect();
        let update = || optimizer.apply_update_values(&pairs, global_step);
        // Every replica's update shares the first one's optimizer slots (momentum, ...).
        let updates = if r == 0 {
            let (updates, slots) = with_new_variables(graph, update)?;
            first_slots = slots;
            updates
        } else {
            reusing(graph, &first_slots, "the optimizer's slots differ", update)?
        };
        apply.push(update_step(graph, updates, global_step)?);
    }
    Ok((Phases::Asynchronous { compute, apply }, first_slots))
}

fn all_reduce_phases(
    graph: &Graph,
    optimizer: &dyn Optimizer,
    grads: &[Vec<(Gradient, Output)>],
    global_step: Output,
    copies: &mut [Vec<Output>],
) -> Result<(Phases, Vec<Output>), GraphError> {
    let n = grads.len();
    let devices: Vec<String> = (0..n).map(worker_device).collect();
    // Every replica's gradients as one flat vector, summed around the ring.
    let flat: Vec<Output> = grads
        .iter()
        .enumerate()
        .map(|(r, pairs)| {
            let _device = graph.device(&devices[r]);
            // (Sparse gradients were densified for all-reduce when they were made.)
            let parts: Vec<Output> = (pairs.iter())
                .map(|(g, _)| reshape(g.to_dense(), &[-1]))
                .collect();
            crate::ops::concat(&parts, 0)
        })
        .collect();
    let sizes: Vec<usize> = (grads[0].iter())
        .map(|&(_, v)| {
            v.type_shape()
                .map(|t| t.shape.to_known().unwrap_or_default().iter().product())
        })
        .collect::<Result<_, _>>()?;
    let summed = ring_all_reduce(graph, &flat, &devices, sizes.iter().sum())?;
    let mut updates = Vec::new();
    for (r, pairs) in grads.iter().enumerate() {
        let _device = graph.device(&devices[r]);
        let _scope = (r > 0).then(|| graph.name_scope(&format!("replica_{r}")));
        let mean = mul(summed[r], graph.scalar(1.0 / n as f32));
        let mut offset = 0;
        let mut averaged = Vec::with_capacity(pairs.len());
        for (&(_, var), &size) in pairs.iter().zip(&sizes) {
            let shape: Vec<i64> = (var.type_shape()?.shape.to_known().unwrap_or_default())
                .iter()
                .map(|&d| d as i64)
                .collect();
            let piece = slice(mean, &[offset], &[size as i64]);
            averaged.push((reshape(piece, &shape), var));
            offset += size;
        }
        let (made, slots) =
            with_new_variables(graph, || optimizer.apply_updates(&averaged, global_step))?;
        updates.extend(made);
        copies[r].extend(slots);
    }
    let train = {
        let _device = graph.device(&devices[0]);
        advance_step(global_step, updates)?
    };
    // Replica 0's slots are already among its copies, which `saved` starts with.
    let phases = Phases::AllReduce {
        train,
        copies: copies.to_vec(),
    };
    Ok((phases, Vec::new()))
}
