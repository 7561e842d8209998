//! The in-process session: holds variable values and runs steps of a graph on the CPU and,
//! for nodes that ask for one, a GPU.

mod fit_loop;

use crate::data::DataRoots;
use crate::devices::gpu::GpuOptions;
use crate::devices::DeviceSet;
use crate::dump::{DumpReport, FailureDumps, StepDump, TensorDump};
use crate::error::SessionError;
use crate::executor::{CancelToken, NodeTiming, Placement, Plan, StepLimits, StepRecord};
use crate::fit::MetricPoint;
use crate::graph::{Graph, Initializer, Output};
use crate::kernels::{BufferPool, InputReaders, VariableStore};
use crate::service::auth::PeerCredentials;
use crate::service::RemoteSession;
use crate::tensor::{MemoryBudget, Tensor};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

type PlanKey = (Vec<Output>, Vec<Output>, Vec<Output>);

/// Runs a graph. Variables live here, so one graph can have several sessions with their own
/// values; plans are cached per (feeds, fetches, targets).
pub struct Session {
    graph: Graph,
    variables: VariableStore,
    pool: BufferPool,
    plans: HashMap<PlanKey, Arc<Plan>>,
    cancel: CancelToken,
    history: Vec<MetricPoint>,
    created: Instant,
    devices: Arc<DeviceSet>,
    soft_placement: bool,
    /// Fuse chains of elementwise GPU kernels (see `executor::fusion`).
    fuse: bool,
    /// The most bytes one tensor of a step or a variable may take.
    budget: MemoryBudget,
    /// What calls to other workers carry (the environment's token and authority where this
    /// has none).
    peer: PeerCredentials,
    /// Input readers' places in their data sets, and the files they may read.
    inputs: InputReaders,
    /// Fault injection for tests: the kernel of the node of this name panics.
    panic_in: Option<Arc<str>>,
    /// Where a `check_numerics` that fails writes the values it checked, if anywhere.
    failure_dumps: Option<FailureDumps>,
}

/// The folder under which sessions write what a failed `check_numerics` checked (a folder
/// per process in it). Without it, a program's own sessions ([`Session::new`]) write under
/// the system's temporary folder and an engine's sessions write nothing.
pub const DUMP_DIR_ENV: &str = "SLUICE_DUMP_DIR";

/// At most this many failed checks of one session are dumped.
const FAILURE_DUMPS: usize = 16;

/// Names a node whose kernel then panics, in every session this process creates: how tests
/// check that a failing kernel costs its step only, never the engine.
pub const PANIC_IN_NODE_ENV: &str = "SLUICE_PANIC_IN_NODE";

/// How one step runs (see [`Session::run_step`]).
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    /// Stop the step if it has not finished by then (before it changes any variable; a step
    /// that began its updates finishes them).
    pub deadline: Option<Instant>,
    /// Time each node's kernel.
    pub trace: bool,
}

/// How a session places nodes on devices.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Which GPUs may be used (software ones only when asked for).
    pub gpu: GpuOptions,
    /// A node whose GPU has no kernel for it runs on the CPU instead of failing (TensorFlow's
    /// `allow_soft_placement`). On by default.
    pub soft_placement: bool,
}

impl SessionOptions {
    /// The defaults, with the GPU options from the environment (`SLUICE_GPU_ALLOW_SOFTWARE`).
    pub fn from_env() -> SessionOptions {
        SessionOptions {
            gpu: GpuOptions::from_env(),
            soft_placement: true,
        }
    }
}

impl Session {
    /// A session with [`SessionOptions::from_env`].
    pub fn new(graph: &Graph) -> Session {
        Session::with_options(graph, SessionOptions::from_env())
    }

    /// A session on the process's devices for `options.gpu` ([`DeviceSet::shared`]).
    pub fn with_options(graph: &Graph, options: SessionOptions) -> Session {
        let fuse = !options.gpu.no_fusion;
        let mut session = Session::with_devices(
            graph,
            DeviceSet::shared(options.gpu),
            options.soft_placement,
        );
        // The shared devices may have come with other fusion options.
        session.fuse = fuse;
        // A program's own session: its readers read any file the program can, and a failed
        // check leaves its values in the program's reach.
        session.inputs = InputReaders::any_file();
        session.failure_dumps = Some(FailureDumps::new(default_dump_dir(), FAILURE_DUMPS));
        session
    }

    /// A session on devices shared with other sessions (an engine's), so a GPU is opened
    /// once per process. Its input readers read the embedded data sets only, until
    /// [`set_data_roots`](Self::set_data_roots) names folders they may read.
    pub fn with_devices(graph: &Graph, devices: Arc<DeviceSet>, soft_placement: bool) -> Session {
        Session {
            graph: graph.clone(),
            variables: VariableStore::default(),
            pool: BufferPool::default(),
            plans: HashMap::new(),
            cancel: CancelToken::default(),
            history: Vec::new(),
            created: Instant::now(),
            fuse: !devices.options().no_fusion,
            devices,
            soft_placement,
            budget: crate::devices::default_memory_budget(),
            peer: PeerCredentials::default(),
            // An engine's session reads the embedded data sets only, until it is given roots.
            inputs: InputReaders::under(DataRoots::new(Vec::new())),
            panic_in: std::env::var(PANIC_IN_NODE_ENV).ok().map(Arc::from),
            failure_dumps: configured_dump_dir().map(|d| FailureDumps::new(d, FAILURE_DUMPS)),
        }
    }

    /// Sets the folder that a failed `check_numerics` writes the values it checked to
    /// (`FOLDER/NODE-TIME-N/input0.npy`; by default [`DUMP_DIR_ENV`] or the system's
    /// temporary folder).
    pub fn set_dump_dir(&mut self, dir: impl Into<std::path::PathBuf>) {
        self.failure_dumps = Some(FailureDumps::new(dir.into(), FAILURE_DUMPS));
    }

    /// Runs one step and writes the tensors it computed that `dump` asks for as `.npy`
    /// files (nodes as they are in the graph: no kernels fused, so every node's value is
    /// there). A file that cannot be written does not fail the step: the report says so.
    pub fn run_dumped(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
        dump: &TensorDump,
    ) -> Result<(Vec<Tensor>, DumpReport), SessionError> {
        let mut writer = StepDump::new(dump);
        let record = StepRecord {
            dump: Some(&mut writer),
            ..StepRecord::default()
        };
        let values = self.run_inner(fetches, feeds, targets, record, None, false)?;
        Ok((values, writer.finish()))
    }

    /// Sets the most bytes one tensor of a step, or one variable, may take (by default three
    /// quarters of the machine's memory). Past it a step fails with
    /// [`SessionError::OverBudget`] naming the node, before anything is allocated.
    pub fn set_memory_budget(&mut self, budget: MemoryBudget) {
        self.budget = budget;
    }

    pub fn memory_budget(&self) -> MemoryBudget {
        self.budget
    }

    /// Sets what this session's calls to other workers carry (a `_Recv` pulling a tensor):
    /// a token and the authority their certificates are checked against; where these have
    /// none, the environment's (`SLUICE_ENGINE_TOKEN`, `SLUICE_TLS_CA`).
    pub fn set_peer_credentials(&mut self, credentials: PeerCredentials) {
        self.peer = credentials;
    }

    /// Lets this session's input readers read files under `roots` only (an engine's data
    /// roots: its graph comes from a client); its readers start their data sets again.
    pub fn set_data_roots(&mut self, roots: DataRoots) {
        self.inputs = InputReaders::under(roots);
    }

    /// The devices this session places nodes on.
    pub fn devices(&self) -> &DeviceSet {
        &self.devices
    }

    /// A session on the standalone engine at `addr` (`host:port`, see `sluice-engine serve`)
    /// with the whole of `graph`: the same calls as an in-process session, run there. Nodes
    /// added to `graph` later travel before the next call.
    pub fn connect(addr: &str, graph: &Graph) -> Result<RemoteSession, SessionError> {
        RemoteSession::create(addr, graph)
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Gives every variable that has no value yet its initial value; returns how many.
    /// Safe to call again after adding variables: existing values are kept.
    pub fn init_variables(&mut self) -> Result<usize, SessionError> {
        let pending: Vec<(usize, Initializer)> = {
            let data = self.graph.read();
            data.variables
                .iter()
                .filter(|&&v| !self.variables.is_set(v))
                .map(|&v| {
                    (
                        v,
                        data.initializers
                            .get(&v)
                            .cloned()
                            .unwrap_or(Initializer::Zeros),
                    )
                })
                .collect()
        };
        let seed = self.graph.seed();
        for (node, init) in &pending {
            let var = Output::new(self.graph.id, *node, 0);
            let ts = var.type_shape()?;
            let value = match init {
                // A constant sets a buffer whose rows change from step to step too.
                Initializer::Constant(t) if ts.shape.accepts(t.shape()) => t.cast(ts.dtype),
                Initializer::Constant(t) => {
                    return Err(SessionError::FeedShape {
                        node: var.name(),
                        fed: t.shape().to_vec(),
                        declared: ts.shape.to_string(),
                    })
                }
                init => {
                    let shape = ts.shape.to_known().ok_or_else(|| SessionError::Kernel {
                        node: var.name(),
                        op: "Variable".into(),
                        message: format!("variable shape {} is not fully known", ts.shape),
                    })?;
                    self.budget.check(ts.dtype, &shape).map_err(|error| {
                        SessionError::OverBudget {
                            node: var.name(),
                            error,
                        }
                    })?;
                    let seed = crate::training::variable_seed(seed, *node);
                    init.generate(ts.dtype, &shape, seed)?
                }
            };
            self.variables.set(*node, value);
        }
        Ok(pending.len())
    }

    /// Computes `fetches`, feeding `feeds` (placeholders, or any value to override).
    pub fn run(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
    ) -> Result<Vec<Tensor>, SessionError> {
        self.run_with_targets(fetches, feeds, &[])
    }

    /// Like [`run`](Self::run), also running `targets` (ops whose results are not returned).
    pub fn run_with_targets(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
    ) -> Result<Vec<Tensor>, SessionError> {
        self.run_inner(fetches, feeds, targets, StepRecord::default(), None, true)
    }

    /// Runs one step as `options` say: fetches and targets, with a deadline, traced or not;
    /// returns the fetched values and (if traced) each node's time.
    pub fn run_step(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
        options: &StepOptions,
    ) -> Result<(Vec<Tensor>, Vec<NodeTiming>), SessionError> {
        let mut trace = Vec::new();
        let record = StepRecord {
            trace: options.trace.then_some(&mut trace),
            ..StepRecord::default()
        };
        let values = self.run_inner(fetches, feeds, targets, record, options.deadline, true)?;
        Ok((values, trace))
    }

    /// Like [`run`](Self::run), also returning how long each node's kernel took, in the
    /// order they ran: where a step's time goes.
    pub fn run_traced(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
    ) -> Result<(Vec<Tensor>, Vec<NodeTiming>), SessionError> {
        let mut trace = Vec::new();
        let record = StepRecord {
            trace: Some(&mut trace),
            ..StepRecord::default()
        };
        let values = self.run_inner(fetches, feeds, &[], record, None, true)?;
        Ok((values, trace))
    }

    fn run_inner(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
        record: StepRecord,
        deadline: Option<Instant>,
        cached_plan: bool,
    ) -> Result<Vec<Tensor>, SessionError> {
        // A dumped step gets an unfused plan of its own: every node's value is there.
        let mut order: Vec<usize> = (0..feeds.len()).collect();
        order.sort_by_key(|&i| feeds[i].0);
        let feed_keys: Vec<Output> = order.iter().map(|&i| feeds[i].0).collect();
        let key = (feed_keys, fetches.to_vec(), targets.to_vec());
        let plan = match self.plans.get(&key).filter(|_| cached_plan) {
            Some(plan) => plan.clone(),
            None => {
                let placement = Placement {
                    devices: &self.devices,
                    soft: self.soft_placement,
                    fuse: self.fuse && cached_plan,
                };
                let plan = Arc::new(Plan::build(
                    &self.graph,
                    &key.0,
                    fetches,
                    targets,
                    &placement,
                )?);
                if cached_plan {
                    self.plans.insert(key, plan.clone());
                }
                plan
            }
        };
        let values: Vec<Tensor> = order.iter().map(|&i| feeds[i].1.clone()).collect();
        plan.run(
            &values,
            &mut self.variables,
            &mut self.pool,
            &self.graph,
            StepLimits {
                cancel: &self.cancel,
                deadline,
                budget: self.budget,
                peer: &self.peer,
                inputs: &self.inputs,
                panic_in: self.panic_in.as_deref(),
            },
            StepRecord {
                failures: self.failure_dumps.as_ref(),
                ..record
            },
        )
    }

    /// The loss of every step that `fit` ran, in order: what the frontends plot and export.
    pub fn history(&self) -> &[MetricPoint] {
        &self.history
    }

    /// Adds a step's loss to the metric history.
    pub fn record(&mut self, step: i64, loss: f64) {
        let wall_time = self.created.elapsed().as_secs_f64();
        self.history.push(MetricPoint {
            step,
            loss,
            wall_time,
        });
    }

    /// A handle that cancels this session's steps from another thread (see [`CancelToken`]).
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// The current value of a variable.
    pub fn variable(&self, var: Output) -> Option<Tensor> {
        match self.variables.value(var.node()) {
            Ok(value) => Some(value),
            Err(crate::kernels::KernelError::Uninitialized(_)) => None,
            Err(e) => {
                tracing::error!("cannot read {}: {e:?}", var.name());
                None
            }
        }
    }

    /// Sets a variable's value; its dtype and shape must fit the variable's.
    pub fn set_variable(&mut self, var: Output, value: Tensor) -> Result<(), SessionError> {
        let node = self.graph.variable_node(var)?;
        let ts = var.type_shape()?;
        if value.dtype() != ts.dtype {
            return Err(SessionError::FeedDType {
                node: node.name,
                fed: value.dtype(),
                declared: ts.dtype,
            });
        }
        if !ts.shape.accepts(value.shape()) {
            return Err(SessionError::FeedShape {
                node: node.name,
                fed: value.shape().to_vec(),
                declared: ts.shape.to_string(),
            });
        }
        self.variables.set(var.node(), value);
        Ok(())
    }
}

/// This process's folder under [`DUMP_DIR_ENV`], if that is set.
fn configured_dump_dir() -> Option<std::path::PathBuf> {
    let base = std::env::var_os(DUMP_DIR_ENV).filter(|d| !d.is_empty())?;
    Some(std::path::PathBuf::from(base).join(std::process::id().to_string()))
}

/// [`configured_dump_dir`], else `sluice-dumps-PID` in the system's temporary folder (a
/// folder of the process's own: no folder shared with other users' processes).
fn default_dump_dir() -> std::path::PathBuf {
    configured_dump_dir().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("sluice-dumps-{}", std::process::id()))
    })
}
