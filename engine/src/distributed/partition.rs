//! Partitioning: each task's part of the graph, built as the graph grows. A node goes to its
//! task's graph with its inputs rewritten: an input from another task becomes the output of
//! a `_Recv` there, fed by a `_Send` on the source task (one pair per tensor and destination;
//! a control input crossing tasks becomes a pair that carries the step id). Every part has a
//! `_step` placeholder, fed each step, that the pairs use to keep steps apart.

use super::cluster::TaskName;
use crate::error::GraphError;
use crate::graph::{AttrValue, Graph, GraphDef, NodeDef, Shape};
use crate::tensor::DType;
use std::collections::HashMap;

/// The name of each part's step-id placeholder.
pub const STEP: &str = "_step";

/// A task as the partitioner needs it.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    pub name: TaskName,
    pub addr: String,
    pub incarnation: u64,
}

/// One tensor (or control edge) crossing from one task to another.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub src_task: usize,
    pub send: String,
    pub dst_task: usize,
    pub recv: String,
    /// `name:index` of the tensor, or `^name` for a control edge.
    pub tensor: String,
}

/// The parts of a graph, one per task, and the transfers between them.
pub struct Partitions {
    pub graphs: Vec<Graph>,
    pub transfers: Vec<Transfer>,
    /// (tensor, destination task) → index into `transfers`.
    by_edge: HashMap<(String, usize), usize>,
    exported: usize,
    /// In every rendezvous key: two distributed sessions on one cluster never share values,
    /// whatever their tensors are named.
    graph_id: u64,
}

fn node_and_index(input: &str) -> (&str, usize) {
    match input.rsplit_once(':') {
        Some((name, index)) => match index.parse() {
            Ok(i) => (name, i),
            Err(_) => (input, 0),
        },
        None => (input, 0),
    }
}

/// How a tensor name reads inside a node name.
fn flat(tensor: &str) -> String {
    tensor.replace([':', '^'], "_")
}

impl Partitions {
    pub fn new(tasks: usize, seed: u64) -> Result<Partitions, GraphError> {
        let graphs: Vec<Graph> = (0..tasks).map(|_| Graph::new()).collect();
        for g in &graphs {
            g.set_seed(seed);
            g.import_graph_def(&GraphDef {
                nodes: vec![NodeDef::new(STEP, "Placeholder")
                    .attr("dtype", AttrValue::DType(DType::I64))
                    .attr("shape", AttrValue::Shape(Shape::scalar()))],
                seed,
            })?;
        }
        Ok(Partitions {
            graphs,
            transfers: Vec::new(),
            by_edge: HashMap::new(),
            exported: 0,
            graph_id: {
                use std::hash::{BuildHasher, Hasher};
                std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish()
            },
        })
    }

    /// The graph's id in rendezvous keys, as the keys write it (hex).
    pub fn graph_key(&self) -> String {
        format!("{:x}", self.graph_id)
    }

    /// The transfer that brings `tensor` to task `dst`, the transfers with an index.
    pub fn transfer_to(&self, tensor: &str, dst: usize) -> Option<&Transfer> {
        self.by_edge
            .get(&(tensor.to_string(), dst))
            .map(|&i| &self.transfers[i])
    }

    /// Adds the nodes of `full` placed since the last call (`placed[id]` is each node's
    /// task) to their parts, with the transfers they need. `precision` says how float
    /// tensors travel; `timeout_ms` bounds each wait for one.
    pub fn export_new(
        &mut self,
        full: &Graph,
        placed: &[usize],
        gpus: &[Option<usize>],
        tasks: &[TaskInfo],
        precision: &str,
        timeout_ms: i64,
    ) -> Result<(), GraphError> {
        let defs = full.to_graph_def(self.exported).nodes;
        let count = defs.len();
        let mut deltas: Vec<Vec<NodeDef>> = vec![Vec::new(); tasks.len()];
        for (offset, mut def) in defs.into_iter().enumerate() {
            let id = self.exported + offset;
            let task = placed[id];
            let mut inputs = Vec::with_capacity(def.inputs.len());
            for input in &def.inputs {
                let control = input.starts_with('^');
                let (name, index) = node_and_index(input.trim_start_matches('^'));
                let src = full.get(name)?.node();
                let src_task = placed[src];
                if src_task == task {
                    inputs.push(input.clone());
                    continue;
                }
                let tensor = if control {
                    format!("^{name}")
                } else {
                    format!("{name}:{index}")
                };
                let recv = self.ensure_transfer(
                    full,
                    &tensor,
                    src_task,
                    task,
                    tasks,
                    precision,
                    timeout_ms,
                    &mut deltas,
                )?;
                inputs.push(if control { format!("^{recv}") } else { recv });
            }
            def.inputs = inputs;
            // The placer has chosen the task and the device there: the worker's graph names
            // only the device (its GPU, or nothing for its CPU); the worker's own placement
            // runs the node there and copies values to the host at transfers.
            def.device = match gpus.get(id).copied().flatten() {
                Some(i) => format!("/device:GPU:{i}"),
                None => String::new(),
            };
            deltas[task].push(def);
        }
        let seed = full.seed();
        for (task, nodes) in deltas.into_iter().enumerate() {
            if !nodes.is_empty() {
                self.graphs[task].import_graph_def(&GraphDef { nodes, seed })?;
            }
        }
        self.exported += count;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn ensure_transfer(
        &mut self,
        full: &Graph,
        tensor: &str,
        src: usize,
        dst: usize,
        tasks: &[TaskInfo],
        precision: &str,
        timeout_ms: i64,
        deltas: &mut [Vec<NodeDef>],
    ) -> Result<String, GraphError> {
        if let Some(t) = self.transfer_to(tensor, dst) {
            return Ok(t.recv.clone());
        }
        let (from, to) = (&tasks[src], &tasks[dst]);
        let key = format!(
            "{};{:x};{};{:x};{tensor}",
            from.name, from.incarnation, to.name, self.graph_id
        );
        let tag = |t: &TaskName| format!("{}_{}", t.job, t.index);
        let send = format!("_send/{}/to_{}", flat(tensor), tag(&to.name));
        let recv = format!("_recv/{}/from_{}", flat(tensor), tag(&from.name));
        let (send_def, dtype, shape) = match tensor.strip_prefix('^') {
            Some(node) => (
                // The step id itself travels, once the node has run.
                NodeDef::new(&send, "_Send")
                    .input(STEP)
                    .input(STEP)
                    .input(&format!("^{node}")),
                DType::I64,
                Shape::scalar(),
            ),
            None => {
                let (name, index) = node_and_index(tensor);
                let out = full.get(name)?.node();
                let ts = full
                    .node(out)
                    .and_then(|n| n.outputs.get(index).cloned())
                    .ok_or_else(|| GraphError::UnknownNode(tensor.to_string()))?;
                let input = if index == 0 {
                    name.to_string()
                } else {
                    tensor.to_string()
                };
                (
                    NodeDef::new(&send, "_Send").input(&input).input(STEP),
                    ts.dtype,
                    ts.shape,
                )
            }
        };
        let wire = if dtype == DType::F32 {
            precision
        } else {
            "f32"
        };
        deltas[src].push(send_def.attr("key", AttrValue::Str(key.clone())));
        deltas[dst].push(
            NodeDef::new(&recv, "_Recv")
                .input(STEP)
                .attr("key", AttrValue::Str(key))
                .attr("peer", AttrValue::Str(from.addr.clone()))
                .attr("dtype", AttrValue::DType(dtype))
                .attr("shape", AttrValue::Shape(shape))
                .attr("precision", AttrValue::Str(wire.to_string()))
                .attr("timeout_ms", AttrValue::Int(timeout_ms)),
        );
        self.by_edge
            .insert((tensor.to_string(), dst), self.transfers.len());
        self.transfers.push(Transfer {
            src_task: src,
            send,
            dst_task: dst,
            recv: recv.clone(),
            tensor: tensor.to_string(),
        });
        Ok(recv)
    }
}
