//! The plain data a graph drawing is made from. Frontends convert the engine's graph to
//! this, so the visualizer needs nothing of the engine.

use crate::error::{Result, VisualizerError};
use std::collections::HashMap;

/// One operation of the graph.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeView {
    /// Unique within the view; edges refer to nodes by it.
    pub id: usize,
    /// Full name with `/`-separated scopes, e.g. `gradients/MatMul_grad/MatMul_1`.
    pub name: String,
    /// Op type name, e.g. `MatMul`.
    pub op: String,
    /// Device string, e.g. `/job:worker/task:1/device:GPU:0`; empty when unplaced.
    pub device: String,
    /// Output dtype, e.g. `f32`; empty when unknown.
    pub dtype: String,
    /// Output shape: `None` for an unknown rank, `None` dimensions for unknown sizes.
    pub shape: Option<Vec<Option<u64>>>,
    /// Name scope the node is drawn in (`gradients/MatMul_grad`); `""` for the top level.
    pub scope: String,
}

impl NodeView {
    /// A node whose scope is taken from its name (everything before the last `/`).
    pub fn new(id: usize, name: impl Into<String>, op: impl Into<String>) -> NodeView {
        let name = name.into();
        let scope = scope_of(&name).to_string();
        NodeView {
            id,
            name,
            op: op.into(),
            scope,
            ..NodeView::default()
        }
    }

    /// Sets the device.
    pub fn on(mut self, device: impl Into<String>) -> NodeView {
        self.device = device.into();
        self
    }

    /// Sets dtype and shape; `None` dimensions are unknown (`?`).
    pub fn typed(mut self, dtype: impl Into<String>, shape: &[Option<u64>]) -> NodeView {
        self.dtype = dtype.into();
        self.shape = Some(shape.to_vec());
        self
    }

    /// The last component of the name: what the node's box says.
    pub fn short_name(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }

    /// `f32[?, 784]`, the way the engine prints types; empty when nothing is known.
    pub fn type_label(&self) -> String {
        let dims = self.shape.as_ref().map(|dims| {
            let dims: Vec<String> = dims
                .iter()
                .map(|d| d.map_or_else(|| "?".to_string(), |d| d.to_string()))
                .collect();
            format!("[{}]", dims.join(", "))
        });
        match (self.dtype.is_empty(), dims) {
            (true, None) => String::new(),
            (false, None) => format!("{}[..]", self.dtype),
            (_, Some(dims)) => format!("{}{dims}", self.dtype),
        }
    }
}

/// The scope part of a full node name: `a/b` for `a/b/c`, `""` for `c`.
pub fn scope_of(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(scope, _)| scope)
}

/// A value (or, for a control edge, an ordering) flowing from one node to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EdgeView {
    pub from: usize,
    pub to: usize,
    /// A control dependency (`^name`): drawn dashed, and without a shape label.
    pub control: bool,
}

impl EdgeView {
    pub fn data(from: usize, to: usize) -> EdgeView {
        EdgeView {
            from,
            to,
            control: false,
        }
    }

    pub fn control(from: usize, to: usize) -> EdgeView {
        EdgeView {
            from,
            to,
            control: true,
        }
    }
}

/// A graph as plain data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GraphView {
    pub nodes: Vec<NodeView>,
    pub edges: Vec<EdgeView>,
}

impl GraphView {
    pub fn new() -> GraphView {
        GraphView::default()
    }

    /// Adds a node and returns its id, for chaining edges.
    pub fn add_node(&mut self, node: NodeView) -> usize {
        let id = node.id;
        self.nodes.push(node);
        id
    }

    pub fn add_edge(&mut self, edge: EdgeView) {
        self.edges.push(edge);
    }

    /// Maps each node id to its index in `nodes`, checking that ids are unique and that
    /// every edge names known nodes.
    pub fn index_by_id(&self) -> Result<HashMap<usize, usize>> {
        let mut index = HashMap::with_capacity(self.nodes.len());
        for (i, node) in self.nodes.iter().enumerate() {
            if index.insert(node.id, i).is_some() {
                return Err(VisualizerError::DuplicateNodeId(node.id));
            }
        }
        for edge in &self.edges {
            if !index.contains_key(&edge.from) || !index.contains_key(&edge.to) {
                return Err(VisualizerError::UnknownEdgeEndpoint {
                    from: edge.from,
                    to: edge.to,
                });
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_labels_read_like_the_engine() {
        let x = NodeView::new(0, "x", "Placeholder").typed("f32", &[None, Some(784)]);
        assert_eq!(x.type_label(), "f32[?, 784]");
        assert_eq!(NodeView::new(1, "a/b/c", "Add").scope, "a/b");
        assert_eq!(NodeView::new(1, "a/b/c", "Add").short_name(), "c");
        assert_eq!(NodeView::new(2, "s", "Sum").type_label(), "");
    }

    #[test]
    fn unknown_edge_endpoints_are_errors() {
        let mut g = GraphView::new();
        g.add_node(NodeView::new(0, "a", "Const"));
        g.add_edge(EdgeView::data(0, 7));
        assert!(matches!(
            g.index_by_id(),
            Err(VisualizerError::UnknownEdgeEndpoint { from: 0, to: 7 })
        ));
        g.edges.clear();
        g.add_node(NodeView::new(0, "b", "Const"));
        assert!(matches!(
            g.index_by_id(),
            Err(VisualizerError::DuplicateNodeId(0))
        ));
    }
}
