//! A session over a cluster: the graph is placed and partitioned as it grows, each task's
//! part lives in a session on that worker (registered and extended through the master
//! service), and a step is one RunGraph per task that has work in it, all at once, while the
//! workers pass tensors to each other.

mod execute;

use super::cluster::{ClusterSpec, TaskName};
use super::partition::{Partitions, TaskInfo, STEP};
use super::peer;
use super::placement::Placer;
use crate::error::{RemoteError, SessionError};
use crate::fit::{FitConfig, FitProgress};
use crate::graph::{Graph, Output};
use crate::runner::{NodeTiming, Runner};
use crate::service::RemoteSession;
use crate::tensor::Tensor;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What the error of a wait that an aborted step ended says (see `rendezvous::take`).
const ABORTED: &str = "the step was aborted";

/// One task's part of a step: fetches, feeds, targets.
type TaskWork = (Vec<Output>, Vec<(Output, Tensor)>, Vec<Output>);
/// A step's values and, when traced, its kernel times.
type Traced = (Vec<Tensor>, Vec<NodeTiming>);

/// How a distributed session places and moves tensors.
#[derive(Debug, Clone)]
pub struct DistributedOptions {
    /// Log every placement decision (TensorFlow's `log_device_placement`): an info event per
    /// node, target `sluice::placement`, which a subscriber shows (`sluice::logging::init`
    /// with `RUST_LOG=sluice::placement=info`, say).
    pub log_device_placement: bool,
    /// The deadline of every RPC and of each wait for a tensor from another worker.
    pub rpc_timeout: Duration,
    /// How float tensors travel between workers: `f32`, `bf16`, `f16` or `int8`.
    pub wire_precision: String,
    /// Steps between traced steps, whose kernel times refine the placer's cost model.
    pub trace_every: u64,
}

impl Default for DistributedOptions {
    fn default() -> Self {
        DistributedOptions {
            log_device_placement: false,
            rpc_timeout: Duration::from_secs(30),
            wire_precision: "f32".to_string(),
            trace_every: 100,
        }
    }
}

struct Task {
    info: TaskInfo,
    session: RemoteSession,
}

/// What the last step moved between workers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepTransfers {
    /// Payload bytes received by each task's `_Recv` nodes, summed.
    pub wire_bytes: u64,
    pub transfers: usize,
}

/// A session whose graph runs on the tasks of a cluster; see the module's documentation.
pub struct DistributedSession {
    graph: Graph,
    cluster: ClusterSpec,
    tasks: Vec<Task>,
    placer: Placer,
    parts: Partitions,
    options: DistributedOptions,
    /// The last step id handed out; steps may run concurrently ([`Self::run_concurrent`]).
    step: AtomicU64,
    initialized: HashSet<usize>,
    last: StepTransfers,
    /// What steps of each (feeds, fetches, targets) run on each task.
    plans: execute::StepPlans,
}

fn unreachable_task(task: &TaskName, addr: &str, message: String) -> SessionError {
    RemoteError::Connect {
        addr: format!("{addr} (task {task})"),
        message,
    }
    .into()
}

impl Drop for DistributedSession {
    /// Cleans up each task's graph (CleanupGraph): its session, and values left unread.
    fn drop(&mut self) {
        cleanup(std::mem::take(&mut self.tasks));
    }
}

/// Cleans up the tasks' graphs, all at once: a worker that is gone costs one RPC deadline,
/// not one per task.
fn cleanup(tasks: Vec<Task>) {
    std::thread::scope(|scope| {
        for task in tasks {
            scope.spawn(move || {
                let name = task.info.name.clone();
                let result = task.session.close();
                // A task that is gone, or restarted without the graph, has nothing to clean.
                let gone = matches!(
                    &result,
                    Err(SessionError::Remote(RemoteError::Status {
                        code: tonic::Code::Unavailable | tonic::Code::NotFound,
                        ..
                    }))
                );
                if let (Err(e), false) = (result, gone) {
                    // The session ends either way; the task keeps a stale graph until it
                    // restarts.
                    tracing::warn!("cannot clean up the graph on {name}: {e}");
                }
            });
        }
    });
}

impl DistributedSession {
    /// Connects to every task of `cluster` (each must answer within the RPC deadline) and
    /// prepares to run `graph` there.
    pub fn new(
        graph: &Graph,
        cluster: &ClusterSpec,
        options: DistributedOptions,
    ) -> Result<DistributedSession, SessionError> {
        let mut placer = Placer::new(cluster);
        let parts = Partitions::new(placer.tasks().len(), graph.seed())?;
        let mut tasks = Vec::new();
        let mut task_gpus = Vec::new();
        for (name, part) in placer.tasks().iter().zip(&parts.graphs) {
            let addr = cluster.addr(name).unwrap_or_default().to_string();
            let registered = peer::status(&addr, options.rpc_timeout)
                .map_err(|m| unreachable_task(name, &addr, m))
                .and_then(|(_, incarnation)| {
                    let session = RemoteSession::register(&addr, part)
                        .map_err(|e| unreachable_task(name, &addr, e.to_string()))?;
                    Ok((incarnation, session))
                });
            let (incarnation, mut session) = match registered {
                Ok(r) => r,
                Err(e) => {
                    // The tasks reached so far keep no graph of a session that never was.
                    cleanup(tasks);
                    return Err(e);
                }
            };
            session.set_timeout(Some(options.rpc_timeout));
            // The task's GPUs, which nodes that ask for one may use there.
            let gpus = match session.list_devices() {
                Ok(devices) => devices.iter().filter(|d| d.device_type == "GPU").count(),
                Err(e) => {
                    tracing::warn!("{name} does not list its devices ({e}): its CPU only");
                    0
                }
            };
            task_gpus.push(gpus);
            tasks.push(Task {
                info: TaskInfo {
                    name: name.clone(),
                    addr,
                    incarnation,
                },
                session,
            });
        }
        placer.set_task_gpus(task_gpus);
        Ok(DistributedSession {
            graph: graph.clone(),
            cluster: cluster.clone(),
            tasks,
            placer,
            parts,
            options,
            step: AtomicU64::new(0),
            initialized: HashSet::new(),
            last: StepTransfers::default(),
            plans: Default::default(),
        })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Each task's registered graph: (task, address, session handle).
    pub fn task_graphs(&self) -> Vec<(String, String, String)> {
        (self.tasks.iter())
            .map(|t| {
                let handle = t.session.handle().to_string();
                (t.info.name.to_string(), t.info.addr.clone(), handle)
            })
            .collect()
    }

    /// The tasks this session runs on, with the incarnation each had when it joined: a task
    /// that answers with another incarnation has restarted and lost its graph.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.tasks.iter().map(|t| t.info.clone()).collect()
    }

    /// Places and partitions the nodes added since the last call.
    fn prepare(&mut self) -> Result<(), SessionError> {
        let from = self.placer.placed().len();
        self.placer
            .place_new(&self.graph, &self.cluster)
            .map_err(|e| SessionError::Placement(e.to_string()))?;
        if self.options.log_device_placement {
            for id in from..self.placer.placed().len() {
                if let Some(node) = self.graph.node(id) {
                    tracing::info!(
                        target: "sluice::placement",
                        "{}: {} ({})",
                        node.name,
                        self.placer.device_of(id).unwrap_or_default(),
                        self.placer.reason(id)
                    );
                }
            }
        }
        let infos: Vec<TaskInfo> = self.tasks.iter().map(|t| t.info.clone()).collect();
        let timeout = self.options.rpc_timeout.as_millis() as i64;
        self.parts.export_new(
            &self.graph,
            self.placer.placed(),
            self.placer.gpus(),
            &infos,
            &self.options.wire_precision,
            timeout,
        )?;
        Ok(())
    }

    /// Each node and the device it was placed on, with the reason, in node order.
    pub fn placement(&mut self) -> Result<Vec<(String, String, String)>, SessionError> {
        self.prepare()?;
        Ok((0..self.placer.placed().len())
            .filter_map(|id| {
                let node = self.graph.node(id)?;
                let device = self.placer.device_of(id)?;
                Some((node.name, device, self.placer.reason(id).to_string()))
            })
            .collect())
    }

    /// The placement as a text table: node, device, why.
    pub fn placement_table(&mut self) -> Result<String, SessionError> {
        let rows = self.placement()?;
        let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(4);
        let mut out = format!("{:width$}  device\n", "node");
        for (node, device, why) in rows {
            out.push_str(&format!("{node:width$}  {device}  ({why})\n"));
        }
        Ok(out)
    }

    /// A copy of the graph whose nodes carry the devices they were placed on, for drawings
    /// that colour nodes by task and device.
    pub fn placed_graph(&mut self) -> Result<Graph, SessionError> {
        self.prepare()?;
        let mut def = self.graph.to_graph_def(0);
        // By name: the def leaves out invalid nodes, so its positions are not node ids.
        let devices: std::collections::HashMap<String, String> = (0..self.placer.placed().len())
            .filter_map(|id| Some((self.graph.node(id)?.name, self.placer.device_of(id)?)))
            .collect();
        for node in &mut def.nodes {
            if let Some(device) = devices.get(&node.name) {
                node.device = device.clone();
            }
        }
        let placed = Graph::new();
        placed.import_graph_def(&def)?;
        Ok(placed)
    }

    /// What the last step moved between workers.
    pub fn last_step_transfers(&self) -> &StepTransfers {
        &self.last
    }

    fn task_of(&self, out: Output) -> Result<usize, SessionError> {
        self.placer
            .placed()
            .get(out.node())
            .copied()
            .ok_or_else(|| crate::error::GraphError::MixedGraphs { node: out.name() }.into())
    }

    /// `out` as the same tensor in its task's part.
    fn local(&self, task: usize, out: Output) -> Result<Output, SessionError> {
        let node = self
            .graph
            .node(out.node())
            .ok_or_else(|| crate::error::GraphError::MixedGraphs { node: out.name() })?;
        Ok(self.parts.graphs[task].get(&node.name)?.output(out.index()))
    }

    fn step(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
    ) -> Result<(Vec<Tensor>, Vec<NodeTiming>), SessionError> {
        self.prepare()?;
        let every = self.options.trace_every;
        let step = self.step.load(Ordering::Relaxed) + 1;
        let trace = every == 1 || (every > 1 && step % every == 1);
        let (values, mut timings, transfers) = self.execute(fetches, feeds, targets, trace, 1)?;
        if trace {
            self.refine(&mut timings);
        }
        self.last = transfers;
        Ok((values, timings))
    }

    /// Places and partitions every node the graph has now, so that
    /// [`run_concurrent`](Self::run_concurrent) can run it.
    pub fn prepare_graph(&mut self) -> Result<(), SessionError> {
        self.prepare()
    }

    /// Runs a step while other threads run theirs on the same session (data-parallel
    /// replicas do): each task still runs its own steps one at a time, but steps that touch
    /// different tasks overlap. The graph must have been prepared
    /// ([`prepare_graph`](Self::prepare_graph)) since its last node was added; returns the
    /// fetched values and what the step moved between workers.
    pub fn run_concurrent(
        &self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
    ) -> Result<(Vec<Tensor>, StepTransfers), SessionError> {
        self.check_prepared()?;
        let (values, _, transfers) = self.execute(fetches, feeds, targets, false, 1)?;
        Ok((values, transfers))
    }

    /// [`run_concurrent`](Self::run_concurrent) `times` times in a row, in one call to each
    /// task (each task runs its part that often, the step's transfers named by consecutive
    /// step ids): the last run's values. For steps whose inputs the workers read themselves
    /// (input readers), so that the coordinator sends an order per `times` steps.
    pub fn run_repeated(
        &self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
        times: u32,
    ) -> Result<(Vec<Tensor>, StepTransfers), SessionError> {
        self.check_prepared()?;
        let (values, _, transfers) = self.execute(fetches, feeds, targets, false, times)?;
        Ok((values, transfers))
    }

    /// Refuses a concurrent step while nodes added since the last placement are unplaced.
    fn check_prepared(&self) -> Result<(), SessionError> {
        let placed = self.placer.placed().len();
        if placed < self.graph.len() {
            let node = (self.graph.node(placed).map(|n| n.name)).unwrap_or_default();
            return Err(SessionError::Placement(format!(
                "'{node}' was added after the session last placed the graph: call \
                 prepare_graph before running steps concurrently"
            )));
        }
        Ok(())
    }

    /// Puts beside each traced node what the placer's cost model expected of it, then folds
    /// the measured times into the model.
    fn refine(&mut self, timings: &mut [NodeTiming]) {
        let data = self.graph.read();
        let mut observed = Vec::with_capacity(timings.len());
        for t in timings.iter_mut() {
            let Ok(out) = self.graph.get(&t.node) else {
                continue;
            };
            let Some(node) = data.nodes.get(out.node()) else {
                continue;
            };
            let inputs: Vec<_> = (node.inputs.iter())
                .filter_map(|i| data.nodes.get(i.node())?.outputs.get(i.index()).cloned())
                .collect();
            // A GPU node's time is its kernels' time on the GPU (GPU timestamps).
            let gpu = self
                .placer
                .gpus()
                .get(out.node())
                .copied()
                .flatten()
                .is_some();
            let op = node.op_name();
            let costs = &self.placer.costs;
            t.estimate_micros = Some(costs.estimate(op, gpu, &inputs, &node.outputs));
            observed.push((op, gpu, inputs, node.outputs.clone(), t.micros));
        }
        for (op, gpu, inputs, outputs, micros) in observed {
            self.placer
                .costs
                .observe(op, gpu, &inputs, &outputs, micros);
        }
    }
}

impl Runner for DistributedSession {
    /// Initial values are drawn here, from the whole graph's seed and node ids, exactly as
    /// one process draws them, and sent to the tasks that hold the variables.
    fn init_variables(&mut self) -> Result<usize, SessionError> {
        self.prepare()?;
        let pending: Vec<(Output, crate::graph::Initializer)> = {
            let data = self.graph.read();
            (data.variables.iter())
                .filter(|v| !self.initialized.contains(v))
                .map(|&v| {
                    let init = (data.initializers.get(&v).cloned())
                        .unwrap_or(crate::graph::Initializer::Zeros);
                    (Output::new(self.graph.id, v, 0), init)
                })
                .collect()
        };
        let seed = self.graph.seed();
        for (var, init) in &pending {
            let ts = var.type_shape()?;
            let value = match (init, ts.shape.to_known()) {
                // A constant sets a buffer whose rows change from step to step too.
                (crate::graph::Initializer::Constant(t), _) => t.cast(ts.dtype),
                (init, Some(shape)) => {
                    let seed = crate::training::variable_seed(seed, var.node());
                    init.generate(ts.dtype, &shape, seed)?
                }
                (_, None) => {
                    return Err(SessionError::Kernel {
                        node: var.name(),
                        op: "Variable".into(),
                        message: format!("variable shape {} is not fully known", ts.shape),
                    })
                }
            };
            self.set_variable(*var, value)?;
            self.initialized.insert(var.node());
        }
        Ok(pending.len())
    }

    fn run_with_targets(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
    ) -> Result<Vec<Tensor>, SessionError> {
        self.step(fetches, feeds, targets).map(|(v, _)| v)
    }

    fn run_traced_with_targets(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
    ) -> Result<(Vec<Tensor>, Vec<NodeTiming>), SessionError> {
        let every = std::mem::replace(&mut self.options.trace_every, 1);
        let result = self.step(fetches, feeds, targets);
        self.options.trace_every = every;
        result
    }

    fn variable(&self, var: Output) -> Result<Option<Tensor>, SessionError> {
        let t = self.task_of(var)?;
        let local = self.local(t, var)?;
        self.tasks[t].session.variable(local)
    }

    fn set_variable(&mut self, var: Output, value: Tensor) -> Result<(), SessionError> {
        self.prepare()?;
        let t = self.task_of(var)?;
        let local = self.local(t, var)?;
        self.tasks[t].session.set_variable(local, value)
    }

    /// A training loop run from here, one distributed step per batch.
    fn fit(
        &mut self,
        dataset: &str,
        config: &FitConfig,
        on_progress: &mut dyn FnMut(&FitProgress),
    ) -> Result<Option<FitProgress>, SessionError> {
        crate::training::fit_by_steps(self, dataset, config, on_progress)
    }

    fn location(&self) -> String {
        let tasks: Vec<String> = self.tasks.iter().map(|t| t.info.name.to_string()).collect();
        format!("cluster of {}", tasks.join(", "))
    }
}
