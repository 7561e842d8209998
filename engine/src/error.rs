//! Typed errors of graph construction and of running a session.

use crate::tensor::{DType, TensorError};
use thiserror::Error;

/// A node could not be added, or a graph-level request could not be met.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum GraphError {
    /// The op's inputs do not fit it; the text names the node, its op, shapes and dtypes.
    #[error("node '{node}' ({op}): {message}")]
    InvalidNode {
        node: String,
        op: String,
        message: String,
    },
    #[error("handles from different graphs were combined in node '{node}'")]
    MixedGraphs { node: String },
    #[error("no node named '{0}' in the graph")]
    UnknownNode(String),
    #[error("a node named '{0}' already exists")]
    DuplicateName(String),
    #[error("cannot differentiate through node '{node}': op {op} has no gradient")]
    NoGradient { node: String, op: String },
    #[error("'{x}' does not influence '{y}': no gradient path between them")]
    Unconnected { x: String, y: String },
    #[error("'{node}' is not a variable (op {op})")]
    NotAVariable { node: String, op: String },
    #[error("the handle refers to no graph of this process")]
    GraphDropped,
}

/// A step could not run; nothing already computed or stored is lost.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SessionError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("placeholder '{0}' needs a value: feed it in the run call")]
    MissingFeed(String),
    #[error("fed value for '{node}' has shape {fed:?}, which does not fit the declared shape {declared}")]
    FeedShape {
        node: String,
        fed: Vec<usize>,
        declared: String,
    },
    #[error("fed value for '{node}' has dtype {fed}, but the node has dtype {declared}")]
    FeedDType {
        node: String,
        fed: DType,
        declared: DType,
    },
    #[error("variable '{0}' is not initialised: call init_variables() on the session first")]
    Uninitialized(String),
    #[error("node '{node}' ({op}) failed: {message}")]
    Kernel {
        node: String,
        op: String,
        message: String,
    },
    #[error("check_numerics: {message} in '{node}' (first bad value at flat index {index})")]
    NonFinite {
        node: String,
        message: String,
        index: usize,
    },
    #[error(transparent)]
    Tensor(#[from] TensorError),
}
