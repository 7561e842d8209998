//! `Output`: the small `Copy` handle to one output of one node, with overloaded operators.

use super::{Graph, TypeShape};
use crate::error::GraphError;
use crate::ops;
use crate::tensor::{DType, Tensor};
use std::ops::{Add, Div, Mul, Neg, Sub};

/// One output of one node of one graph.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Output {
    graph: u32,
    node: u32,
    index: u32,
}

impl Output {
    pub(crate) fn new(graph: u32, node: usize, index: usize) -> Output {
        Output {
            graph,
            node: node as u32,
            index: index as u32,
        }
    }

    pub fn graph_id(self) -> u32 {
        self.graph
    }

    /// The node's id: its position in the graph.
    pub fn node(self) -> usize {
        self.node as usize
    }

    /// Which of the node's outputs this is.
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// Another output of the same node.
    pub fn output(self, index: usize) -> Output {
        Output::new(self.graph, self.node(), index)
    }

    /// The graph this handle belongs to.
    pub fn graph(self) -> Result<Graph, GraphError> {
        Graph::by_id(self.graph)
    }

    /// The node's full name, e.g. `layer1/MatMul`.
    pub fn name(self) -> String {
        self.graph()
            .ok()
            .and_then(|g| g.read().nodes.get(self.node()).map(|n| n.name.clone()))
            .unwrap_or_else(|| format!("<node {}>", self.node))
    }

    /// The inferred dtype and shape, or the error that made the node invalid.
    pub fn type_shape(self) -> Result<TypeShape, GraphError> {
        let graph = self.graph()?;
        let data = graph.read();
        let node = data
            .nodes
            .get(self.node())
            .ok_or_else(|| GraphError::UnknownNode(format!("<node {}>", self.node)))?;
        if let Some(error) = &node.error {
            return Err(error.clone());
        }
        node.outputs
            .get(self.index())
            .cloned()
            .ok_or_else(|| GraphError::InvalidNode {
                node: node.name.clone(),
                op: node.op_name().to_string(),
                message: format!("has no output {}", self.index),
            })
    }

    /// The inferred dtype (f32 if the node is invalid; the error surfaces when it runs).
    pub fn dtype(self) -> DType {
        self.type_shape().map_or(DType::F32, |t| t.dtype)
    }

    /// A scalar constant of this handle's dtype, in its graph.
    pub fn constant_like(self, value: f64) -> Output {
        let tensor = Tensor::scalar(value).cast(self.dtype());
        match self.graph() {
            Ok(graph) => graph.constant(tensor),
            // The graph is gone: any use of the result reports it.
            Err(_) => self,
        }
    }

    /// Gives the node a name of your own (made unique within its scope if taken).
    pub fn named(self, name: &str) -> Output {
        if let Ok(graph) = self.graph() {
            graph.rename(self.node(), name);
        }
        self
    }
}

impl Graph {
    fn rename(&self, node: usize, name: &str) {
        let mut data = self.write();
        let scope = data.nodes[node].scope().to_string();
        let wanted = if scope.is_empty() {
            name.to_string()
        } else {
            format!("{scope}/{name}")
        };
        if data.names.contains_key(&wanted) {
            return;
        }
        let old = std::mem::replace(&mut data.nodes[node].name, wanted.clone());
        data.names.remove(&old);
        data.names.insert(wanted, node);
    }
}

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $function:path) => {
        impl $trait for Output {
            type Output = Output;
            fn $method(self, rhs: Output) -> Output {
                $function(self, rhs)
            }
        }
        impl $trait<f32> for Output {
            type Output = Output;
            fn $method(self, rhs: f32) -> Output {
                $function(self, self.constant_like(rhs as f64))
            }
        }
        impl $trait<f64> for Output {
            type Output = Output;
            fn $method(self, rhs: f64) -> Output {
                $function(self, self.constant_like(rhs))
            }
        }
        impl $trait<Output> for f32 {
            type Output = Output;
            fn $method(self, rhs: Output) -> Output {
                $function(rhs.constant_like(self as f64), rhs)
            }
        }
        impl $trait<Output> for f64 {
            type Output = Output;
            fn $method(self, rhs: Output) -> Output {
                $function(rhs.constant_like(self), rhs)
            }
        }
    };
}

binary_operator!(Add, add, ops::add);
binary_operator!(Sub, sub, ops::sub);
binary_operator!(Mul, mul, ops::mul);
binary_operator!(Div, div, ops::div);

impl Neg for Output {
    type Output = Output;
    fn neg(self) -> Output {
        ops::neg(self)
    }
}
