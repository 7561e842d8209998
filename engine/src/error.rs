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
    /// Import: the name is already taken, in the graph or earlier in the same delta.
    #[error("node '{node}' is redefined: {}", redefined_where(*.in_graph))]
    Redefined { node: String, in_graph: bool },
    /// Import: an input names no node of the graph or the delta.
    #[error(
        "dangling input '{input}' of node '{node}': no node of that name in the graph or the delta"
    )]
    DanglingInput { node: String, input: String },
    /// Import: an input asks for an output that its node does not have.
    #[error("dangling input '{input}' of node '{node}': no output {index}, its node has {outputs} output(s)")]
    NoSuchOutput {
        node: String,
        input: String,
        index: usize,
        outputs: usize,
    },
    /// Import: the delta's nodes depend on each other in a circle; `node` is on it.
    #[error("node '{node}' is on a cycle: it depends on itself through its inputs")]
    Cycle { node: String },
    /// Import: no op of this type exists.
    #[error("node '{node}': unknown op type '{op}'")]
    UnknownOp { node: String, op: String },
    /// Import: an attribute is missing, has the wrong type, or holds a value the op rejects.
    #[error("node '{node}' ({op}): {message}")]
    BadAttr {
        node: String,
        op: String,
        message: String,
    },
    /// Import: a node definition that is malformed in some other way (an empty name, ...).
    #[error("node '{node}': {message}")]
    BadNodeDef { node: String, message: String },
}

fn redefined_where(in_graph: bool) -> &'static str {
    if in_graph {
        "a node of that name is already in the graph"
    } else {
        "the delta defines it twice"
    }
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
    #[error("node '{node}' asks for {device}, but {found}")]
    NoDevice {
        node: String,
        device: String,
        /// What there is instead (`this machine has no GPU`, `there are 2 GPUs`).
        found: String,
    },
    #[error("node '{node}' ({op}) has no kernel for the {device}")]
    NoKernel {
        node: String,
        op: String,
        device: String,
    },
    #[error("node '{node}' ({op}) failed: {message}")]
    Kernel {
        node: String,
        op: String,
        message: String,
    },
    #[error(
        "check_numerics: {message} in '{node}' (first bad value at flat index {index}){}",
        dump_note(.dump)
    )]
    NonFinite {
        node: String,
        message: String,
        index: usize,
        /// The folder the checked values were written to (`input0.npy`), where they were.
        dump: Option<std::path::PathBuf>,
    },
    /// A tensor the step would make is larger than the memory budget allows; nothing was
    /// allocated for it.
    #[error("node '{node}': {error}")]
    OverBudget {
        node: String,
        error: crate::tensor::OverBudget,
    },
    /// A kernel failed in a way the engine did not foresee (a panic, caught): a bug to
    /// report. The session stays usable.
    #[error("node '{node}' ({op}) failed inside the engine (a bug, please report it): {message}")]
    Internal {
        node: String,
        op: String,
        message: String,
    },
    /// The step's deadline passed before it changed any variable; it was stopped there.
    #[error("the step passed its deadline and was stopped before it changed any variable")]
    DeadlineExceeded,
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// A node could not be placed on the cluster (an unknown job or task, a bad device).
    #[error("placement: {0}")]
    Placement(String),
    /// A fit's data set could not be named or read.
    #[error("data set '{dataset}': {message}")]
    Data { dataset: String, message: String },
    /// Work was cancelled. A step stops before it changes any variable, so a fit (or loop)
    /// keeps what its earlier steps trained.
    #[error("cancelled: the step in flight was stopped before it changed any variable; what earlier steps trained stays (reset the session's cancel token to run again)")]
    Cancelled,
    /// A TensorBoard run asked for (a fit's `logdir`) could not be started.
    #[error("{0}")]
    Summaries(String),
    /// A remote session could not reach its engine, or the engine refused the request.
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// What went wrong between a remote session and its engine.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum RemoteError {
    #[error("cannot reach the engine at {addr}: {message}")]
    Connect { addr: String, message: String },
    /// The engine answered with an error status; `message` is its text.
    #[error("{message} (engine status {code:?})")]
    Status { code: tonic::Code, message: String },
    /// The engine's answer does not follow the protocol.
    #[error("the engine sent a malformed answer: {0}")]
    Protocol(String),
    /// The blocking remote session was called from async code, where it would block the
    /// executor.
    #[error("a remote session blocks: call it from plain code, not from inside an async runtime")]
    InsideRuntime,
    /// The light client build (without the `engine` feature) has no in-process session.
    #[error("no engine to run on: set SLUICE_ENGINE=HOST:PORT (this build of sluice is the light client, without the `engine` feature)")]
    NoEngine,
}

/// Where a failed check's inputs went, for its message.
fn dump_note(dump: &Option<std::path::PathBuf>) -> String {
    dump.as_ref().map_or_else(String::new, |dir| {
        format!("; the checked values are in {} (numpy.load)", dir.display())
    })
}
