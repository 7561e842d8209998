//! The graph: nodes with unique names, ops, inputs, device constraints and inferred types.
//!
//! A [`Graph`] is a cheap handle to shared graph data. Nodes are appended and never removed,
//! so node ids are a topological order. [`Output`] handles are small `Copy` values that name
//! a graph, a node and one of its outputs; op functions find the graph through them, which is
//! what lets `softmax(matmul(x, w) + b)` read like the math.

mod def;
mod handle;
mod import;
mod shape;
mod summary;
mod variables;

pub use def::{AttrValue, GraphDef, NodeDef};
pub use handle::Output;
pub use shape::{Shape, TypeShape};
pub use summary::{thousands, GraphSummary, SummaryRow, TRAINING_SCOPES};
pub use variables::{Initializer, VariableReuse, VariableSharder};

use crate::error::GraphError;
use crate::ops::{Const, Op, Placeholder};
use crate::tensor::{DType, Tensor};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One operation in the graph.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub op: Arc<dyn Op>,
    pub inputs: Vec<Output>,
    /// Nodes that must run before this one, though no value flows from them.
    pub control_inputs: Vec<usize>,
    /// Device constraint, e.g. `/job:worker/task:1/device:GPU:0`; empty for "anywhere".
    pub device: String,
    /// The output types, as inferred when the node was added (empty if it is invalid).
    pub outputs: Vec<TypeShape>,
    /// Why the node is invalid, if it is; running anything that needs it reports this.
    pub error: Option<GraphError>,
}

impl Node {
    pub fn op_name(&self) -> &'static str {
        self.op.type_name()
    }

    /// The name scope the node lives in (`"layer1/dense"` for `"layer1/dense/MatMul"`).
    pub fn scope(&self) -> &str {
        self.name.rsplit_once('/').map_or("", |(scope, _)| scope)
    }
}

#[derive(Debug, Default)]
pub(crate) struct GraphData {
    pub nodes: Vec<Node>,
    names: HashMap<String, usize>,
    scopes: Vec<String>,
    devices: Vec<String>,
    /// The constraint of nodes added outside every device scope (`--device`).
    default_device: String,
    pub seed: u64,
    pub variables: Vec<usize>,
    pub trainable: Vec<usize>,
    pub initializers: HashMap<usize, Initializer>,
    pub global_step: Option<usize>,
    /// While set, new variables go to parameter-server devices (see [`VariableSharder`]).
    pub sharder: Option<VariableSharder>,
    /// While set, `variable` hands out these existing variables instead of new ones.
    pub reuse: Option<VariableReuse>,
    /// Tables split into shard variables, which checkpoints keep whole.
    pub partitioned: Vec<crate::ops::PartitionedVariable>,
}

/// The constraint a device choice stands for: `gpu` the first GPU, `cpu` the CPU (named, so
/// that it holds under a default GPU, in the scopes optimizers re-enter too).
fn device_constraint(device: &str) -> &str {
    match device {
        "cpu" | "CPU" => "/device:CPU:0",
        "gpu" | "GPU" => "/device:GPU:0",
        name => name,
    }
}

impl GraphData {
    fn unique_name(&self, base: &str) -> String {
        let prefix = self.scopes.last().map(String::as_str).unwrap_or("");
        let full = if prefix.is_empty() {
            base.to_string()
        } else {
            format!("{prefix}/{base}")
        };
        if !self.names.contains_key(&full) {
            return full;
        }
        (1..)
            .map(|i| format!("{full}_{i}"))
            .find(|candidate| !self.names.contains_key(candidate))
            .unwrap_or(full)
    }
}

/// A dataflow graph. Clones share the same nodes.
#[derive(Clone)]
pub struct Graph {
    pub(crate) id: u32,
    pub(crate) data: Arc<RwLock<GraphData>>,
}

/// Every graph by id, so that a bare `Output` can find its graph. Graphs stay alive as long
/// as the process does, like TensorFlow's graphs: a handle never dangles.
fn registry() -> &'static Mutex<HashMap<u32, Arc<RwLock<GraphData>>>> {
    static GRAPHS: OnceLock<Mutex<HashMap<u32, Arc<RwLock<GraphData>>>>> = OnceLock::new();
    GRAPHS.get_or_init(Default::default)
}

impl Default for Graph {
    fn default() -> Self {
        Graph::new()
    }
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Graph(id={}, nodes={})", self.id, self.len())
    }
}

impl Graph {
    /// An empty graph with graph-level seed 0.
    pub fn new() -> Graph {
        static NEXT_ID: AtomicU32 = AtomicU32::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let data = Arc::new(RwLock::new(GraphData::default()));
        let mut graphs = registry().lock().unwrap_or_else(|e| e.into_inner());
        graphs.insert(id, data.clone());
        Graph { id, data }
    }

    /// The graph an [`Output`] belongs to.
    pub fn of(output: Output) -> Result<Graph, GraphError> {
        Graph::by_id(output.graph_id())
    }

    pub(crate) fn by_id(id: u32) -> Result<Graph, GraphError> {
        let graphs = registry().lock().unwrap_or_else(|e| e.into_inner());
        graphs
            .get(&id)
            .map(|data| Graph {
                id,
                data: data.clone(),
            })
            .ok_or(GraphError::GraphDropped)
    }

    #[cfg(feature = "engine")]
    /// Drops the graph from the registry, so its memory goes once the last clone does
    /// (an engine closing a session). Handles into it then report [`GraphError::GraphDropped`].
    pub(crate) fn forget(&self) {
        let mut graphs = registry().lock().unwrap_or_else(|e| e.into_inner());
        graphs.remove(&self.id);
    }

    /// Renames node `id` the way a taken name is made unique (`Const` -> `Const_1`), to a
    /// name neither in the graph nor in `avoid`; returns the new name. What a remote session
    /// does to a node it has not sent yet when another client sent one of the same name.
    pub(crate) fn rename_fresh(&self, id: usize, avoid: &HashSet<&str>) -> Option<String> {
        let mut data = self.write();
        let old = data.nodes.get(id)?.name.clone();
        let base = match old.rsplit_once('_') {
            Some((base, n)) if !base.is_empty() && n.parse::<usize>().is_ok() => base,
            _ => old.as_str(),
        };
        let fresh = (1..)
            .map(|i| format!("{base}_{i}"))
            .find(|c| !data.names.contains_key(c) && !avoid.contains(c.as_str()))?;
        data.names.remove(&old);
        data.names.insert(fresh.clone(), id);
        if let Some(node) = data.nodes.get_mut(id) {
            node.name = fresh.clone();
        }
        Some(fresh)
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, GraphData> {
        self.data.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, GraphData> {
        self.data.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the graph-level seed that every random initialiser derives from.
    pub fn set_seed(&self, seed: u64) {
        self.write().seed = seed;
    }

    pub fn seed(&self) -> u64 {
        self.read().seed
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.read().nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of node `id`.
    pub fn node(&self, id: usize) -> Option<Node> {
        self.read().nodes.get(id).cloned()
    }

    /// A copy of every node, in id (topological) order.
    pub fn nodes(&self) -> Vec<Node> {
        self.read().nodes.clone()
    }

    /// The first output of the node with this full name.
    pub fn get(&self, name: &str) -> Result<Output, GraphError> {
        self.read()
            .names
            .get(name)
            .map(|&id| Output::new(self.id, id, 0))
            .ok_or_else(|| GraphError::UnknownNode(name.to_string()))
    }

    /// Every error recorded while nodes were added.
    pub fn errors(&self) -> Vec<GraphError> {
        self.read()
            .nodes
            .iter()
            .filter_map(|n| n.error.clone())
            .collect()
    }

    /// Opens a name scope: nodes added until the guard drops get `name/` in front.
    pub fn name_scope(&self, name: &str) -> ScopeGuard {
        let mut data = self.write();
        let full = match data.scopes.last() {
            Some(outer) => format!("{outer}/{name}"),
            None => name.to_string(),
        };
        data.scopes.push(full);
        ScopeGuard {
            graph: self.clone(),
            kind: GuardKind::Scope,
        }
    }

    /// Sets a device constraint for nodes added until the guard drops: `/device:GPU:0`,
    /// `/job:worker/task:1`, or a `--device` choice: `gpu` (the first GPU), `cpu`
    /// (`/device:CPU:0`).
    pub fn device(&self, device: &str) -> ScopeGuard {
        self.write()
            .devices
            .push(device_constraint(device).to_string());
        ScopeGuard {
            graph: self.clone(),
            kind: GuardKind::Device,
        }
    }

    /// Sets the device constraint of nodes added from now on outside every device scope
    /// (what `--device` does for a whole program or notebook): `gpu`, `cpu` (no constraint),
    /// or a device name as for [`Graph::device`]. Scopes still override it.
    pub fn set_default_device(&self, device: &str) {
        let constraint = match device_constraint(device) {
            "/device:CPU:0" => "",
            other => other,
        };
        self.write().default_device = constraint.to_string();
    }

    /// The constraint that [`Graph::set_default_device`] set; empty for none (the CPU).
    pub fn default_device(&self) -> String {
        self.read().default_device.clone()
    }

    /// Adds a node. Type inference runs now; if it fails, the node is still added but marked
    /// invalid, and any run that needs it reports the error (operators cannot return errors).
    pub fn add_node(
        &self,
        op: Arc<dyn Op>,
        inputs: Vec<Output>,
        control_inputs: Vec<usize>,
        name: Option<&str>,
    ) -> Output {
        let mut data = self.write();
        let name = data.unique_name(name.unwrap_or(op.type_name()));
        let device = (data.devices.last())
            .unwrap_or(&data.default_device)
            .clone();
        let (outputs, error) = match self.infer(&data, op.as_ref(), &inputs, &name) {
            Ok(outputs) => (outputs, None),
            Err(error) => (Vec::new(), Some(error)),
        };
        let id = data.nodes.len();
        data.names.insert(name.clone(), id);
        data.nodes.push(Node {
            name,
            op,
            inputs,
            control_inputs,
            device,
            outputs,
            error,
        });
        Output::new(self.id, id, 0)
    }

    fn infer(
        &self,
        data: &GraphData,
        op: &dyn Op,
        inputs: &[Output],
        name: &str,
    ) -> Result<Vec<TypeShape>, GraphError> {
        let mut types = Vec::with_capacity(inputs.len());
        for input in inputs {
            if input.graph_id() != self.id {
                return Err(GraphError::MixedGraphs {
                    node: name.to_string(),
                });
            }
            let node = &data.nodes[input.node()];
            if let Some(error) = &node.error {
                return Err(error.clone());
            }
            match node.outputs.get(input.index()) {
                Some(t) => types.push(t.clone()),
                None => {
                    return Err(GraphError::InvalidNode {
                        node: name.to_string(),
                        op: op.type_name().to_string(),
                        message: format!(
                            "input '{}' has {} outputs, not {}",
                            node.name,
                            node.outputs.len(),
                            input.index() + 1
                        ),
                    })
                }
            }
        }
        infer_outputs(op, &types, name)
    }

    /// A placeholder: a value fed at run time. `-1` in `shape` marks an unknown dimension.
    pub fn placeholder(&self, name: &str, dtype: DType, shape: &[i64]) -> Output {
        let op = Placeholder {
            dtype,
            shape: Shape::from_dims(shape),
        };
        self.add_node(Arc::new(op), vec![], vec![], Some(name))
    }

    /// A constant node holding `value`.
    pub fn constant(&self, value: impl Into<Tensor>) -> Output {
        self.add_node(Arc::new(Const::new(value.into())), vec![], vec![], None)
    }

    /// A scalar f32 constant.
    pub fn scalar(&self, value: f32) -> Output {
        self.constant(Tensor::scalar(value))
    }
}

/// The output types of node `name` running `op` on inputs of these types; the error names
/// the node. What adding a node runs, whether built or imported.
pub(crate) fn infer_outputs(
    op: &dyn Op,
    inputs: &[TypeShape],
    name: &str,
) -> Result<Vec<TypeShape>, GraphError> {
    op.infer(inputs).map_err(|message| GraphError::InvalidNode {
        node: name.to_string(),
        op: op.type_name().to_string(),
        message,
    })
}

enum GuardKind {
    Scope,
    Device,
    Sharding,
    Reuse,
}

/// Closes a name scope or device block when dropped.
pub struct ScopeGuard {
    graph: Graph,
    kind: GuardKind,
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let mut data = self.graph.write();
        match self.kind {
            GuardKind::Scope => {
                data.scopes.pop();
            }
            GuardKind::Device => {
                data.devices.pop();
            }
            GuardKind::Sharding => data.sharder = None,
            GuardKind::Reuse => data.reuse = None,
        }
    }
}
