//! Plans and runs steps: prune to what the fetches need, order topologically, place each node
//! on a device ([`placement`]), and free each value after its last use so its buffer serves a
//! later node. Values cross between the host and a GPU where a node's input lives on the
//! other side ([`values`]).

mod checks;
mod fusion;
mod gpu_timing;
mod placement;
mod values;

use crate::devices::gpu::GpuDevice;
use crate::devices::{Device, HOST_DEVICE};
use crate::dump::{FailureDumps, StepDump};
use crate::error::{GraphError, SessionError};
use crate::graph::{Graph, Output, TypeShape};
use crate::kernels::{BufferPool, Context, GpuContext, KernelError, StepControl, VariableStore};
use crate::ops::{Effect, Op};
use crate::tensor::{MemoryBudget, Tensor};
use checks::{caught, check_feed, check_output_sizes, failed_kernel, input};
use gpu_timing::GpuTiming;
pub(crate) use placement::Placement;
use placement::StepKernel;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use values::Value;

/// Asks running and later steps of a session to stop: they end with
/// [`SessionError::Cancelled`] until [`reset`](CancelToken::reset) is called. Staying set
/// means a loop of runs (a notebook cell) stops too, not just the step in flight. Clones share
/// the flag, so another thread (an interrupt handler, a server) can cancel.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

pub use crate::timeline::NodeTiming;

/// What bounds one step: its session's cancel token, its deadline, the memory budget, and
/// the token its calls to other workers carry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepLimits<'a> {
    pub cancel: &'a CancelToken,
    pub deadline: Option<Instant>,
    pub budget: MemoryBudget,
    pub peer: &'a crate::service::auth::PeerCredentials,
    pub inputs: &'a crate::kernels::InputReaders,
    /// Fault injection for tests (see `session::PANIC_IN_NODE_ENV`).
    pub panic_in: Option<&'a str>,
}

/// What a step records besides its values: each kernel's time, the tensors it dumps, and
/// where a failed check writes its node's inputs.
#[derive(Default)]
pub(crate) struct StepRecord<'a> {
    pub trace: Option<&'a mut Vec<NodeTiming>>,
    pub dump: Option<&'a mut StepDump>,
    pub failures: Option<&'a FailureDumps>,
}

/// One node's work within a plan.
struct Step {
    node: usize,
    name: String,
    op: Arc<dyn Op>,
    kernel: StepKernel,
    /// Whether the step changes state outside its values (see [`Effect::has_side_effect`]).
    side_effect: bool,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    /// Slots whose last reader is this step.
    release: Vec<usize>,
    /// The outputs' dtypes and shapes where the graph knows them all (checked against the
    /// memory budget without asking the op); `None`: asked of the op at each run.
    known_outputs: Option<Vec<(crate::tensor::DType, Vec<usize>)>>,
}

/// What one (feeds, fetches, targets) signature runs; built once and cached.
pub(crate) struct Plan {
    steps: Vec<Step>,
    slots: usize,
    feeds: Vec<(usize, String, TypeShape)>,
    /// The slot of each fetch, or `None` for an operation with no outputs.
    fetches: Vec<Option<usize>>,
    /// Each fetch's name, for errors.
    fetch_names: Vec<String>,
    /// The GPUs the plan's kernels run on.
    gpus: Vec<Arc<GpuDevice>>,
}

impl Plan {
    pub(crate) fn build(
        graph: &Graph,
        feeds: &[Output],
        fetches: &[Output],
        targets: &[Output],
        placement: &Placement,
    ) -> Result<Plan, SessionError> {
        let data = graph.read();
        let nodes = &data.nodes;
        let mut slot_of: HashMap<Output, usize> = HashMap::new();
        let mut feed_slots = Vec::with_capacity(feeds.len());
        for &f in feeds {
            let node = nodes
                .get(f.node())
                .filter(|_| f.graph_id() == graph.id)
                .ok_or_else(|| GraphError::UnknownNode(format!("{f:?}")))?;
            let ts = f.type_shape()?;
            let slot = slot_of.len();
            slot_of.insert(f, slot);
            feed_slots.push((slot, node.name.clone(), ts));
        }

        // Post-order depth-first walk from the fetches and targets, stopping at fed values.
        let mut order = Vec::new();
        let mut state = vec![0u8; nodes.len()]; // 0 new, 1 open, 2 done
        let roots = fetches
            .iter()
            .chain(targets)
            .filter(|o| !slot_of.contains_key(o));
        for root in roots {
            if root.graph_id() != graph.id || root.node() >= nodes.len() {
                return Err(GraphError::MixedGraphs { node: root.name() }.into());
            }
            let mut stack = vec![(root.node(), false)];
            while let Some((id, expanded)) = stack.pop() {
                if expanded {
                    state[id] = 2;
                    order.push(id);
                    continue;
                }
                if state[id] != 0 {
                    continue;
                }
                state[id] = 1;
                let node = &nodes[id];
                if let Some(e) = &node.error {
                    return Err(e.clone().into());
                }
                if node.op.effect() == Effect::Feed {
                    return Err(SessionError::MissingFeed(node.name.clone()));
                }
                stack.push((id, true));
                let deps = node
                    .inputs
                    .iter()
                    .filter(|i| !slot_of.contains_key(i))
                    .map(|i| i.node())
                    .chain(node.control_inputs.iter().copied());
                for dep in deps {
                    if state[dep] == 0 {
                        stack.push((dep, false));
                    }
                }
            }
        }
        // Sources first (a stable sort keeps the rest in order): every variable read then
        // comes ahead of the updates of the same step.
        order.sort_by_key(|&id| {
            !(nodes[id].inputs.is_empty() && nodes[id].control_inputs.is_empty())
        });
        if (order.iter()).any(|&id| nodes[id].op.effect().is_transfer()) {
            order = transfer_order(&order, nodes);
        }

        let mut steps = Vec::with_capacity(order.len());
        let mut next_slot = slot_of.len();
        for &id in &order {
            let node = &nodes[id];
            let outputs: Vec<usize> = (0..node.outputs.len())
                .map(|i| {
                    *slot_of
                        .entry(Output::new(graph.id, id, i))
                        .or_insert_with(|| {
                            next_slot += 1;
                            next_slot - 1
                        })
                })
                .collect();
            let kernel = placement.kernel(node, nodes)?;
            let known_outputs = (node.outputs.iter())
                .map(|ts| Some((ts.dtype, ts.shape.to_known()?)))
                .collect();
            steps.push(Step {
                known_outputs,
                node: id,
                name: node.name.clone(),
                op: node.op.clone(),
                kernel,
                side_effect: node.op.effect().has_side_effect(),
                inputs: Vec::new(),
                outputs,
                release: Vec::new(),
            });
        }
        for (step, &id) in steps.iter_mut().zip(&order) {
            step.inputs = nodes[id].inputs.iter().map(|i| slot_of[i]).collect();
        }
        let fetch_slots: Vec<Option<usize>> =
            fetches.iter().map(|f| slot_of.get(f).copied()).collect();
        if placement.fuse {
            let fetched: HashSet<usize> = fetch_slots.iter().flatten().copied().collect();
            let mut dtypes = vec![None; next_slot];
            for (output, &slot) in &slot_of {
                let node = nodes.get(output.node());
                let ts = node.and_then(|n| n.outputs.get(output.index()));
                if let (Some(ts), Some(entry)) = (ts, dtypes.get_mut(slot)) {
                    *entry = Some(ts.dtype);
                }
            }
            steps = fusion::fuse(steps, &fetched, &dtypes);
        }

        // Release each slot after its last reader (or right away if nothing reads it).
        let mut last_use = vec![None; next_slot];
        for (i, step) in steps.iter().enumerate() {
            for &s in step.inputs.iter().chain(&step.outputs) {
                last_use[s] = Some(i);
            }
        }
        for s in fetch_slots.iter().flatten() {
            last_use[*s] = None;
        }
        for (slot, last) in last_use.iter().enumerate() {
            if let Some(i) = last {
                steps[*i].release.push(slot);
            }
        }
        let mut gpus: Vec<Arc<GpuDevice>> = Vec::new();
        for step in &steps {
            if let Some(device) = step.kernel.gpu() {
                if !gpus.iter().any(|g| Arc::ptr_eq(g, device)) {
                    gpus.push(device.clone());
                }
            }
        }
        Ok(Plan {
            gpus,
            steps,
            slots: next_slot,
            feeds: feed_slots,
            fetches: fetch_slots,
            fetch_names: fetches.iter().map(|f| f.name()).collect(),
        })
    }

    pub(crate) fn run(
        &self,
        feeds: &[Tensor],
        variables: &mut VariableStore,
        pool: &mut BufferPool,
        graph: &Graph,
        limits: StepLimits,
        record: StepRecord,
    ) -> Result<Vec<Tensor>, SessionError> {
        let StepRecord {
            mut trace,
            mut dump,
            failures,
        } = record;
        let mut slots: Vec<Option<Value>> = (0..self.slots).map(|_| None).collect();
        // A step is cancelled only before its first write to a variable, so a cancelled step
        // leaves every variable as it was and a finished one has applied all its updates.
        let mut writes_started = false;
        for ((slot, name, declared), value) in self.feeds.iter().zip(feeds) {
            check_feed(name, declared, value)?;
            slots[*slot] = Some(Value::host(value.clone()));
        }
        // A traced step times its GPU kernels on the GPU: (entry in the trace, node, GPU).
        let mut gpu_entries: Vec<(usize, usize, Arc<GpuDevice>)> = Vec::new();
        let timing = trace.is_some().then(|| GpuTiming::begin(&self.gpus));
        let step_started = Instant::now();
        for step in &self.steps {
            if !writes_started {
                if limits.cancel.is_cancelled() {
                    return Err(SessionError::Cancelled);
                }
                if limits.deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(SessionError::DeadlineExceeded);
                }
                writes_started = step.side_effect;
            }
            let control = StepControl {
                cancel: (!writes_started).then_some(limits.cancel),
                deadline: limits.deadline.filter(|_| !writes_started),
                budget: limits.budget,
                peer: limits.peer,
                inputs: Some(limits.inputs),
            };
            let failed = |message: String| SessionError::Kernel {
                node: step.name.clone(),
                op: step.op.type_name().into(),
                message,
            };
            check_output_sizes(step, &slots, limits.budget)?;
            let inject = limits.panic_in == Some(step.name.as_str());
            let started = trace.as_ref().map(|_| Instant::now());
            let traced_gpu = step.kernel.gpu().filter(|_| trace.is_some());
            if let Some(gpu) = traced_gpu {
                gpu.trace_node(step.node);
            }
            let mut received = None;
            // Outputs go straight to their slots: no vector of them per node and step.
            match &step.kernel {
                StepKernel::Cpu(kernel) => {
                    let inputs: Vec<Tensor> = (step.inputs.iter())
                        .map(|&s| input(&mut slots, s, &failed)?.on_host().map_err(&failed))
                        .collect::<Result<_, _>>()?;
                    let refs: Vec<&Tensor> = inputs.iter().collect();
                    let mut ctx = Context {
                        node: step.node,
                        pool,
                        variables,
                        step: &control,
                        received: None,
                    };
                    let out = caught(step, inject, || kernel(&*step.op, &mut ctx, &refs))?
                        .map_err(|e| failed_kernel(e, step, graph, &mut slots, failures))?;
                    received = ctx.received.take();
                    for (&slot, t) in step.outputs.iter().zip(out) {
                        slots[slot] = Some(Value::host(t));
                    }
                }
                gpu_kernel => {
                    let device = (gpu_kernel.gpu())
                        .ok_or_else(|| failed("a GPU step without a GPU".into()))?;
                    let on_host = match gpu_kernel {
                        StepKernel::Gpu { host_inputs, .. } => *host_inputs,
                        _ => &[],
                    };
                    let inputs: Vec<_> = (step.inputs.iter().enumerate())
                        .map(|(k, &s)| {
                            let value = input(&mut slots, s, &failed)?;
                            if on_host.contains(&k) {
                                value.as_host_input()
                            } else {
                                value.for_gpu(device)
                            }
                            .map_err(&failed)
                        })
                        .collect::<Result<_, _>>()?;
                    let refs: Vec<_> = inputs.iter().collect();
                    let out = caught(step, inject, || match gpu_kernel {
                        StepKernel::Fused(fused) => fused.run(variables, &refs),
                        StepKernel::Gpu { kernel, .. } => {
                            let mut ctx = GpuContext {
                                node: step.node,
                                gpu: device,
                                variables,
                            };
                            kernel(&*step.op, &mut ctx, &refs)
                        }
                        StepKernel::Cpu(_) => Err(KernelError::Message("a CPU kernel".into())),
                    })?
                    .map_err(|e| failed_kernel(e, step, graph, &mut slots, failures))?;
                    for (&slot, t) in step.outputs.iter().zip(out) {
                        slots[slot] = Some(Value::gpu(device.clone(), t));
                    }
                }
            }
            // Timed on the GPU where it has timestamps and no other session's step holds them.
            let timed = |gpu: &Arc<GpuDevice>| {
                gpu.times_kernels() && timing.as_ref().is_some_and(|t| t.holds(gpu))
            };
            if let Some(gpu) = traced_gpu {
                if !timed(gpu) {
                    // No GPU timestamps: wait for the step's kernels so the host's time holds them.
                    gpu.synchronize().map_err(|e| failed(e.to_string()))?;
                }
            }
            if let (Some(trace), Some(started)) = (trace.as_deref_mut(), started) {
                if let Some(gpu) = traced_gpu.filter(|g| timed(g)) {
                    gpu_entries.push((trace.len(), step.node, gpu.clone()));
                }
                let device = traced_gpu.map_or(HOST_DEVICE, |gpu| gpu.info().name.as_str());
                trace.push(NodeTiming {
                    node: step.name.clone(),
                    op: step.op.type_name(),
                    family: Some(step.op.family()),
                    start_micros: started.duration_since(step_started).as_secs_f64() * 1e6,
                    micros: started.elapsed().as_secs_f64() * 1e6,
                    device: device.to_string(),
                    estimate_micros: None,
                    transfer: received,
                });
            }
            if let Some(dump) = dump.as_deref_mut().filter(|d| d.wants(&step.name)) {
                for (k, &slot) in step.outputs.iter().enumerate() {
                    match slots[slot].as_mut().map(Value::on_host) {
                        Some(Ok(t)) => dump.write(&step.name, step.op.type_name(), k, &t),
                        Some(Err(e)) => dump.failed(&step.name, k, &e),
                        None => {}
                    }
                }
            }
            for &slot in &step.release {
                // Fed values go back to the allocator, not the pool: the caller allocates the
                // next feed, and malloc reuses freed memory where the pool would hoard it.
                if let Some(value) = slots[slot].take() {
                    value.release(pool, slot >= self.feeds.len());
                }
            }
        }
        if let Some(trace) = trace {
            self.gpu_times(trace, &gpu_entries)?;
        }
        // The step's GPU work goes out in one submission; the previous step's must have
        // finished, so a loop that fetches nothing cannot run ahead of its GPU.
        for gpu in &self.gpus {
            gpu.end_step().map_err(|e| SessionError::Kernel {
                node: gpu.info().name.clone(),
                op: "GPU step".into(),
                message: e.to_string(),
            })?;
        }
        (self.fetches.iter().zip(&self.fetch_names))
            .map(|(f, name)| match f.and_then(|slot| slots[slot].as_mut()) {
                Some(value) => value.on_host().map_err(|message| SessionError::Kernel {
                    node: name.clone(),
                    op: "copy to the host".into(),
                    message,
                }),
                None => Ok(Tensor::zeros(crate::tensor::DType::F32, &[0])),
            })
            .collect()
    }
}

/// A topological order of a worker's part of a step in which sends run as soon as they can
/// and receives as late as they can: a receive may wait for another worker, which may be
/// waiting for one of this worker's sends.
fn transfer_order(order: &[usize], nodes: &[crate::graph::Node]) -> Vec<usize> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let position: HashMap<usize, usize> =
        order.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let mut waiting = vec![0usize; order.len()];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); order.len()];
    for (i, &id) in order.iter().enumerate() {
        let node = &nodes[id];
        let deps =
            (node.inputs.iter().map(|o| o.node())).chain(node.control_inputs.iter().copied());
        for dep in deps {
            if let Some(&j) = position.get(&dep) {
                waiting[i] += 1;
                users[j].push(i);
            }
        }
    }
    let class = |i: usize| match nodes[order[i]].op.effect() {
        Effect::Send => 0,
        Effect::Recv => 2,
        _ => 1,
    };
    let mut ready: BinaryHeap<Reverse<(u8, usize)>> = (0..order.len())
        .filter(|&i| waiting[i] == 0)
        .map(|i| Reverse((class(i), i)))
        .collect();
    let mut out = Vec::with_capacity(order.len());
    while let Some(Reverse((_, i))) = ready.pop() {
        out.push(order[i]);
        for &u in &users[i] {
            waiting[u] -= 1;
            if waiting[u] == 0 {
                ready.push(Reverse((class(u), u)));
            }
        }
    }
    out
}
