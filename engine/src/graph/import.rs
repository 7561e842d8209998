//! Rebuilding nodes from a [`GraphDef`]: all of a delta, or none of it.

use super::def::{initializer_from_def, GraphDef, NodeDef};
use super::{infer_outputs, Graph, GraphData, Initializer, Node, Output, TypeShape};
use crate::error::GraphError;
use crate::ops::registry;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Where a referenced node is: already in the graph (by id) or in the delta (by position).
#[derive(Clone, Copy)]
enum Source {
    Graph(usize),
    Delta(usize),
}

/// A node's inputs, resolved to their sources.
struct Wiring<'a> {
    /// Source, output index and the input as written.
    inputs: Vec<(Source, usize, &'a str)>,
    controls: Vec<Source>,
    /// Delta positions that must be added first.
    deps: Vec<usize>,
}

/// How a variable of the delta is registered.
struct VarInfo {
    init: Initializer,
    trainable: bool,
    global_step: bool,
}

/// A node checked and ready to be added, with its variable registration if it is one.
struct Staged {
    node: Node,
    var: Option<VarInfo>,
}

impl Graph {
    /// Adds the nodes of `def` (a whole graph, or a delta on top of this graph's nodes) and
    /// returns the first output of each, in `def`'s order. The graph takes `def`'s seed.
    ///
    /// All or nothing: the whole delta is checked first (names, inputs, cycles, op types,
    /// attributes, dtypes and shapes), so a rejected delta leaves the graph unchanged. The
    /// nodes may come in any order; they are added in a topological order that keeps `def`'s
    /// order where it can, so a graph's export imports with the same node ids (which
    /// random initialisers are seeded by).
    pub fn import_graph_def(&self, def: &GraphDef) -> Result<Vec<Output>, GraphError> {
        let mut data = self.write();
        let (id_of, staged) = stage(&data, self.id, def)?;
        let base = data.nodes.len();
        for (k, staged) in staged.into_iter().enumerate() {
            let id = base + k;
            data.names.insert(staged.node.name.clone(), id);
            if let Some(var) = staged.var {
                data.variables.push(id);
                if var.trainable {
                    data.trainable.push(id);
                }
                data.initializers.insert(id, var.init);
                if var.global_step {
                    data.global_step = Some(id);
                }
            }
            data.nodes.push(staged.node);
        }
        data.seed = def.seed;
        Ok(id_of
            .into_iter()
            .map(|id| Output::new(self.id, id, 0))
            .collect())
    }
}

/// Checks the whole delta and builds its nodes without touching the graph; gives the id each
/// delta position will have, and the nodes in the order they are to be added.
fn stage(
    data: &GraphData,
    graph_id: u32,
    def: &GraphDef,
) -> Result<(Vec<usize>, Vec<Staged>), GraphError> {
    let mut delta: HashMap<&str, usize> = HashMap::new();
    for (pos, node) in def.nodes.iter().enumerate() {
        if node.name.is_empty() {
            return Err(GraphError::BadNodeDef {
                node: String::new(),
                message: format!("node {pos} of the delta ({}) has no name", node.op),
            });
        }
        if node.name.starts_with('^') {
            return Err(GraphError::BadNodeDef {
                node: node.name.clone(),
                message: "a name cannot start with '^', which marks a control input".into(),
            });
        }
        let in_graph = data.names.contains_key(&node.name);
        if in_graph || delta.insert(&node.name, pos).is_some() {
            return Err(GraphError::Redefined {
                node: node.name.clone(),
                in_graph,
            });
        }
    }
    let lookup = |name: &str| {
        data.names
            .get(name)
            .map(|&id| Source::Graph(id))
            .or_else(|| delta.get(name).map(|&pos| Source::Delta(pos)))
    };
    let wiring = def
        .nodes
        .iter()
        .map(|node| wire(data, node, &lookup, &delta))
        .collect::<Result<Vec<_>, _>>()?;
    let order = topological_order(def, &wiring)?;

    let base = data.nodes.len();
    let mut id_of = vec![0; def.nodes.len()];
    for (k, &pos) in order.iter().enumerate() {
        id_of[pos] = base + k;
    }
    // Op type and output types of the delta nodes built so far, by position.
    let mut built: Vec<Option<(&'static str, Vec<TypeShape>)>> = vec![None; def.nodes.len()];
    let mut global_step = data
        .global_step
        .and_then(|id| data.nodes.get(id))
        .map(|n| n.name.clone());
    let mut staged = Vec::with_capacity(order.len());
    for &pos in &order {
        let (Some(node_def), Some(wiring)) = (def.nodes.get(pos), wiring.get(pos)) else {
            continue;
        };
        let variable = |name: &str| -> Result<(usize, TypeShape), String> {
            let found = match lookup(name) {
                Some(Source::Graph(id)) => {
                    data.nodes.get(id).map(|n| (id, n.op_name(), &n.outputs))
                }
                Some(Source::Delta(p)) => built
                    .get(p)
                    .and_then(Option::as_ref)
                    .map(|(op, outputs)| (id_of[p], *op, outputs)),
                None => None,
            };
            let Some((id, op, outputs)) = found else {
                return Err(format!("'{name}' is no node of the graph or the delta"));
            };
            if op != "Variable" {
                return Err(format!("'{name}' is a {op}, not a Variable"));
            }
            outputs
                .first()
                .map(|t| (id, t.clone()))
                .ok_or_else(|| format!("variable '{name}' is invalid"))
        };
        let op = registry::op_from_def(node_def, &variable)?;
        let mut types = Vec::with_capacity(wiring.inputs.len());
        let mut inputs = Vec::with_capacity(wiring.inputs.len());
        for &(source, index, text) in &wiring.inputs {
            let (id, outputs) = match source {
                Source::Graph(id) => (id, data.nodes.get(id).map(|n| &n.outputs)),
                Source::Delta(p) => (
                    id_of[p],
                    built.get(p).and_then(Option::as_ref).map(|b| &b.1),
                ),
            };
            let outputs = outputs.map_or(&[][..], Vec::as_slice);
            let Some(t) = outputs.get(index) else {
                return Err(GraphError::NoSuchOutput {
                    node: node_def.name.clone(),
                    input: text.to_string(),
                    index,
                    outputs: outputs.len(),
                });
            };
            types.push(t.clone());
            inputs.push(Output::new(graph_id, id, index));
        }
        let outputs = infer_outputs(op.as_ref(), &types, &node_def.name)?;
        let var = if op.effect() == crate::ops::Effect::ReadVariable {
            let info = variable_info(node_def, &outputs, &global_step)?;
            if info.global_step {
                global_step = Some(node_def.name.clone());
            }
            Some(info)
        } else {
            None
        };
        let control_inputs = wiring
            .controls
            .iter()
            .map(|&c| match c {
                Source::Graph(id) => id,
                Source::Delta(p) => id_of[p],
            })
            .collect();
        built[pos] = Some((op.type_name(), outputs.clone()));
        staged.push(Staged {
            node: Node {
                name: node_def.name.clone(),
                op,
                inputs,
                control_inputs,
                device: node_def.device.clone(),
                outputs,
                error: None,
            },
            var,
        });
    }
    Ok((id_of, staged))
}

/// Resolves a node's inputs (`name`, `name:index`, `^name`) against the graph and the delta.
fn wire<'a>(
    data: &GraphData,
    node: &'a NodeDef,
    lookup: &dyn Fn(&str) -> Option<Source>,
    delta: &HashMap<&str, usize>,
) -> Result<Wiring<'a>, GraphError> {
    let mut wiring = Wiring {
        inputs: Vec::new(),
        controls: Vec::new(),
        deps: Vec::new(),
    };
    for text in &node.inputs {
        let dangling = || GraphError::DanglingInput {
            node: node.name.clone(),
            input: text.clone(),
        };
        if let Some(name) = text.strip_prefix('^') {
            let source = lookup(name).ok_or_else(dangling)?;
            if let Source::Delta(p) = source {
                wiring.deps.push(p);
            }
            wiring.controls.push(source);
            continue;
        }
        // A name that holds a colon itself is taken whole before `name:index` is tried.
        let (source, index) = match lookup(text) {
            Some(source) => (source, 0),
            None => text
                .rsplit_once(':')
                .and_then(|(name, index)| Some((lookup(name)?, index.parse().ok()?)))
                .ok_or_else(dangling)?,
        };
        match source {
            Source::Delta(p) => wiring.deps.push(p),
            Source::Graph(id) => {
                let Some(input) = data.nodes.get(id) else {
                    return Err(dangling());
                };
                if let Some(error) = &input.error {
                    return Err(GraphError::InvalidNode {
                        node: node.name.clone(),
                        op: node.op.clone(),
                        message: format!("input '{text}' is an invalid node: {error}"),
                    });
                }
                if index >= input.outputs.len() {
                    return Err(GraphError::NoSuchOutput {
                        node: node.name.clone(),
                        input: text.clone(),
                        index,
                        outputs: input.outputs.len(),
                    });
                }
            }
        }
        wiring.inputs.push((source, index, text));
    }
    // Variables named in attributes (an update's variable and slots) come first too.
    for name in registry::node_references(node) {
        if let Some(&p) = delta.get(name) {
            wiring.deps.push(p);
        }
    }
    Ok(wiring)
}

/// Kahn's algorithm, taking the earliest ready position first: a delta already in order
/// keeps it. A cycle is reported by a node on it.
fn topological_order(def: &GraphDef, wiring: &[Wiring]) -> Result<Vec<usize>, GraphError> {
    let n = wiring.len();
    let mut pending = vec![0usize; n];
    let mut dependents = vec![Vec::new(); n];
    for (pos, w) in wiring.iter().enumerate() {
        for &dep in &w.deps {
            pending[pos] += 1;
            dependents[dep].push(pos);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&p| pending[p] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(pos)) = ready.pop() {
        order.push(pos);
        for &d in &dependents[pos] {
            pending[d] -= 1;
            if pending[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Every node left waits on another node left: walking from one such node to one of its
    // waiting dependencies must come back to a node already seen, which is on a cycle.
    let mut current = (0..n).find(|&p| pending[p] > 0).unwrap_or(0);
    let mut seen = vec![false; n];
    while !seen[current] {
        seen[current] = true;
        match wiring[current]
            .deps
            .iter()
            .copied()
            .find(|&d| pending[d] > 0)
        {
            Some(next) => current = next,
            None => break,
        }
    }
    Err(GraphError::Cycle {
        node: def
            .nodes
            .get(current)
            .map(|n| n.name.clone())
            .unwrap_or_default(),
    })
}

/// How a variable of the delta is registered, from its attributes.
fn variable_info(
    def: &NodeDef,
    outputs: &[TypeShape],
    global_step: &Option<String>,
) -> Result<VarInfo, GraphError> {
    let bad = |message: String| GraphError::BadAttr {
        node: def.name.clone(),
        op: def.op.clone(),
        message,
    };
    let init = initializer_from_def(def).map_err(bad)?;
    if let (Initializer::Constant(t), Some(shape)) =
        (&init, outputs.first().and_then(|t| t.shape.to_known()))
    {
        if t.shape() != shape.as_slice() {
            return Err(bad(format!(
                "attribute 'value' has shape {:?}, but the variable has shape {shape:?}",
                t.shape()
            )));
        }
    }
    // An explicit attribute decides; without one, a variable named `global_step` is the
    // global step unless the graph already has one.
    let is_step = if def.attrs.contains_key("global_step") {
        let is_step = def.get_bool("global_step").map_err(bad)?;
        if let (true, Some(existing)) = (is_step, global_step) {
            return Err(GraphError::BadNodeDef {
                node: def.name.clone(),
                message: format!("cannot be the global step: '{existing}' already is"),
            });
        }
        is_step
    } else {
        def.name == "global_step" && global_step.is_none()
    };
    let trainable = if def.attrs.contains_key("trainable") {
        def.get_bool("trainable").map_err(bad)?
    } else {
        !is_step
    };
    Ok(VarInfo {
        init,
        trainable,
        global_step: is_step,
    })
}
