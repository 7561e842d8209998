//! Placement: every node gets a task. Device constraints first (a full or partial
//! `/job:NAME/task:N`), variables together with the ops that update them, a node that asks
//! for a GPU on the task's GPU where the task has it (the worker's own placement then runs it
//! there, with copies to the host at the task's edges) and soft placement to the task's CPU
//! where it has none, and the rest greedily by earliest finish under a
//! cost model (compute by op type and size; transfers by bytes), whose per-op-type rates are
//! refined by the kernel times that traced steps measure.

use super::cluster::{ClusterError, ClusterSpec, TaskName};
use crate::graph::{Graph, TypeShape};
use crate::ops::registry::node_references;
use std::collections::HashMap;

/// Assumed for unknown dimensions (a batch) when estimating costs.
const UNKNOWN_DIM: usize = 100;
/// Microseconds per byte moved between tasks (about 1 GB/s), and per transfer.
const US_PER_BYTE: f64 = 1e-3;
const US_PER_TRANSFER: f64 = 50.0;

fn elements(t: &TypeShape) -> f64 {
    t.shape
        .dims()
        .iter()
        .map(|d| d.unwrap_or(UNKNOWN_DIM) as f64)
        .product()
}

/// Compute estimates by op type and device (CPU or GPU), in microseconds per unit of work
/// (elements, or multiply-adds for products), refined by measured times: host times for CPU
/// nodes, the GPU's own kernel times for GPU nodes.
#[derive(Debug, Clone, Default)]
pub struct CostModel {
    rates: HashMap<(&'static str, bool), f64>,
}

impl CostModel {
    fn work(op: &str, inputs: &[TypeShape], outputs: &[TypeShape]) -> f64 {
        let out: f64 = outputs.iter().map(elements).sum();
        match op {
            "MatMul" if inputs.len() == 2 => {
                let inner = inputs[0]
                    .shape
                    .dims()
                    .last()
                    .map_or(1.0, |d| d.unwrap_or(UNKNOWN_DIM) as f64);
                out * inner
            }
            _ => out + inputs.iter().map(elements).sum::<f64>(),
        }
    }

    /// Estimated microseconds for one node, on a GPU or a CPU (a GPU rate not yet measured
    /// is taken as the CPU's).
    pub fn estimate(
        &self,
        op: &'static str,
        gpu: bool,
        inputs: &[TypeShape],
        outputs: &[TypeShape],
    ) -> f64 {
        let rate = (self.rates.get(&(op, gpu)))
            .or_else(|| self.rates.get(&(op, false)))
            .copied()
            .unwrap_or(match op {
                "MatMul" => 2e-4,
                _ => 1e-3,
            });
        rate * Self::work(op, inputs, outputs)
    }

    /// Folds a measured kernel time on a GPU or a CPU into the op type's rate there (moving
    /// average).
    pub fn observe(
        &mut self,
        op: &'static str,
        gpu: bool,
        inputs: &[TypeShape],
        outputs: &[TypeShape],
        micros: f64,
    ) {
        let work = Self::work(op, inputs, outputs);
        if work <= 0.0 || !micros.is_finite() {
            return;
        }
        let measured = micros / work;
        let rate = self.rates.entry((op, gpu)).or_insert(measured);
        *rate = 0.7 * *rate + 0.3 * measured;
    }
}

/// Where each node of a graph runs, decided node by node as the graph grows.
#[derive(Debug, Clone)]
pub struct Placer {
    tasks: Vec<TaskName>,
    /// By node id: an index into `tasks`.
    placed: Vec<usize>,
    /// By node id: the GPU of its task it runs on, if any.
    gpus: Vec<Option<usize>>,
    /// How many GPUs each task has (as its `ListDevices` said).
    task_gpus: Vec<usize>,
    /// Why each node went where it did, for `log_device_placement` and the placement table.
    reasons: Vec<String>,
    /// Estimated finish time of each node, and when each task is next free (microseconds).
    finish: Vec<f64>,
    free: Vec<f64>,
    pub costs: CostModel,
}

impl Placer {
    pub fn new(cluster: &ClusterSpec) -> Placer {
        let tasks = cluster.tasks();
        Placer {
            free: vec![0.0; tasks.len()],
            task_gpus: vec![0; tasks.len()],
            tasks,
            placed: Vec::new(),
            gpus: Vec::new(),
            reasons: Vec::new(),
            finish: Vec::new(),
            costs: CostModel::default(),
        }
    }

    pub fn tasks(&self) -> &[TaskName] {
        &self.tasks
    }

    /// The task index of each placed node, by node id.
    pub fn placed(&self) -> &[usize] {
        &self.placed
    }

    /// The GPU (of its task) each placed node runs on, by node id; `None` for the CPU.
    pub fn gpus(&self) -> &[Option<usize>] {
        &self.gpus
    }

    /// Tells the placer how many GPUs each task has (in [`Placer::tasks`] order).
    pub fn set_task_gpus(&mut self, counts: Vec<usize>) {
        if counts.len() == self.tasks.len() {
            self.task_gpus = counts;
        }
    }

    /// The full device name of node `id`: its task's GPU or CPU.
    pub fn device_of(&self, id: usize) -> Option<String> {
        let task = self.tasks.get(*self.placed.get(id)?)?;
        Some(task.device(self.gpus.get(id).copied().flatten()))
    }

    pub fn reason(&self, node: usize) -> &str {
        self.reasons.get(node).map_or("", String::as_str)
    }

    fn task_index(&self, task: &TaskName) -> usize {
        self.tasks.iter().position(|t| t == task).unwrap_or(0)
    }

    /// Places the nodes added since the last call; returns how many.
    pub fn place_new(
        &mut self,
        graph: &Graph,
        cluster: &ClusterSpec,
    ) -> Result<usize, ClusterError> {
        let from = self.placed.len();
        let defs = graph.to_graph_def(from).nodes;
        if defs.is_empty() {
            return Ok(0);
        }
        let data = graph.read();
        // An update's variables (and their slots) go where the variable is: the update
        // follows the variable placed earlier.
        let mut colocate: HashMap<usize, usize> = HashMap::new();
        for (offset, def) in defs.iter().enumerate() {
            let id = from + offset;
            if let Some(&var) = node_references(def)
                .first()
                .and_then(|name| graph.get(name).ok())
                .map(|o| o.node())
                .as_ref()
            {
                colocate.insert(id, var);
            }
        }
        for (offset, def) in defs.iter().enumerate() {
            let id = from + offset;
            let node = &data.nodes[id];
            let (wanted, other_device) = cluster.resolve(&node.name, &def.device)?;
            let inputs: Vec<TypeShape> = node
                .inputs
                .iter()
                .filter_map(|i| data.nodes.get(i.node())?.outputs.get(i.index()).cloned())
                .collect();
            let mut cost = (self.costs).estimate(node.op_name(), false, &inputs, &node.outputs);
            let candidates: Vec<usize> = match (&wanted, def.device.is_empty()) {
                (Some(task), _) => vec![self.task_index(task)],
                (None, false) => {
                    // A job without a task index: any task of that job.
                    let job = super::cluster::DeviceSpec::parse(&def.device)?.job;
                    (0..self.tasks.len())
                        .filter(|&t| job.as_ref().is_none_or(|j| &self.tasks[t].job == j))
                        .collect()
                }
                (None, true) => (0..self.tasks.len()).collect(),
            };
            // A node that asks for a GPU goes to a task that has it, where one does.
            let device_index = (super::cluster::DeviceSpec::parse(&def.device).ok())
                .and_then(|s| s.device_index)
                .unwrap_or(0);
            let wanted_gpu = (other_device.as_deref() == Some("GPU")).then_some(device_index);
            let candidates = match wanted_gpu {
                Some(index) => {
                    let with: Vec<usize> = (candidates.iter().copied())
                        .filter(|&t| self.task_gpus.get(t).is_some_and(|&n| n > index))
                        .collect();
                    if with.is_empty() {
                        candidates
                    } else {
                        with
                    }
                }
                None => candidates,
            };
            let (task, mut reason) = match colocate.get(&id).and_then(|v| self.placed.get(*v)) {
                Some(&t) => (t, "colocated with the variable it updates".to_string()),
                // An unconstrained source (a placeholder, a constant, a variable) goes to the
                // first worker, as TensorFlow's default device: spreading sources by load
                // would only add transfers to their consumers.
                None if def.device.is_empty() && node.inputs.is_empty() => {
                    let first = (self.tasks.iter().position(|t| t.job == "worker"))
                        .or((!self.tasks.is_empty()).then_some(0))
                        .unwrap_or(0);
                    (
                        first,
                        "a source without a constraint: the first worker".to_string(),
                    )
                }
                None => {
                    let best = self.earliest_finish(node, &candidates, cost, &data.nodes);
                    let why = if def.device.is_empty() {
                        "earliest finish".to_string()
                    } else if candidates.len() == 1 {
                        format!("asked for {}", def.device)
                    } else {
                        format!("earliest finish within {}", def.device)
                    };
                    (best, why)
                }
            };
            // An update runs on the device of the variable it updates.
            let mut gpu = colocate
                .get(&id)
                .and_then(|v| self.gpus.get(*v).copied().flatten())
                .filter(|_| other_device.is_none());
            if let Some(kind) = other_device {
                let index = device_index;
                let has = self.task_gpus.get(task).copied().unwrap_or(0);
                if kind == "GPU" && index < has {
                    gpu = Some(index);
                    reason = format!("{reason}; on its GPU:{index}");
                } else {
                    reason = format!("{reason}; no {kind}:{index} there, soft-placed on the CPU");
                }
            }
            if gpu.is_some() {
                cost = (self.costs).estimate(node.op_name(), true, &inputs, &node.outputs);
            }
            let start = node
                .inputs
                .iter()
                .map(|i| self.arrival(i.node(), task, &data.nodes))
                .fold(self.free[task], f64::max);
            self.free[task] = start + cost;
            self.finish.push(start + cost);
            self.placed.push(task);
            self.gpus.push(gpu);
            self.reasons.push(reason);
        }
        Ok(defs.len())
    }

    /// When the value of node `src` is available on `task`.
    fn arrival(&self, src: usize, task: usize, nodes: &[crate::graph::Node]) -> f64 {
        let done = self.finish.get(src).copied().unwrap_or(0.0);
        if self.placed.get(src) == Some(&task) {
            return done;
        }
        let bytes: f64 = nodes.get(src).map_or(0.0, |n| {
            n.outputs
                .iter()
                .map(|t| elements(t) * t.dtype.size() as f64)
                .sum()
        });
        done + US_PER_TRANSFER + bytes * US_PER_BYTE
    }

    fn earliest_finish(
        &self,
        node: &crate::graph::Node,
        candidates: &[usize],
        cost: f64,
        nodes: &[crate::graph::Node],
    ) -> usize {
        let finish = |t: usize| {
            node.inputs
                .iter()
                .map(|i| self.arrival(i.node(), t, nodes))
                .fold(self.free[t], f64::max)
                + cost
        };
        candidates
            .iter()
            .copied()
            .min_by(|&a, &b| finish(a).total_cmp(&finish(b)))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::CostModel;
    use crate::graph::{Shape, TypeShape};
    use crate::tensor::DType;

    #[test]
    fn gpu_and_cpu_rates_are_learned_apart() {
        let t = TypeShape {
            dtype: DType::F32,
            shape: Shape::known(&[100, 100]),
        };
        let (inputs, outputs) = (vec![t.clone(), t.clone()], vec![t]);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs();
        let mut costs = CostModel::default();
        let untrained = costs.estimate("Add", true, &inputs, &outputs);
        assert_eq!(untrained, costs.estimate("Add", false, &inputs, &outputs));
        costs.observe("Add", false, &inputs, &outputs, 300.0);
        // A GPU rate not yet measured is the CPU's.
        assert!(close(costs.estimate("Add", true, &inputs, &outputs), 300.0));
        costs.observe("Add", true, &inputs, &outputs, 3.0);
        assert!(close(costs.estimate("Add", true, &inputs, &outputs), 3.0));
        assert!(close(
            costs.estimate("Add", false, &inputs, &outputs),
            300.0
        ));
    }
}
