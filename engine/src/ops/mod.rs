//! Op definitions: one file per family. Each op keeps side by side its type inference, its
//! attributes, its [`Effect`] and its gradient (built as graph nodes from the same public op
//! functions). Nothing here is device-specific: what computes an op lives in
//! `crate::kernels`, registered per device kind.

pub mod array;
pub mod broadcast;
pub mod conv;
pub mod debug;
pub mod indexing;
pub mod input;
pub mod linalg;
pub mod math;
pub mod nn;
pub mod optimizer;
pub mod pool;
pub mod reduce;
pub mod registry;
pub mod sparse;
pub mod state;
pub mod transfer;
pub mod window;

pub use array::*;
pub use conv::*;
pub use debug::*;
pub use indexing::*;
pub use input::*;
pub use linalg::*;
pub use math::*;
pub use nn::*;
pub use pool::*;
pub use reduce::*;
pub use sparse::*;
pub use state::*;
pub use window::Padding;

use crate::graph::{AttrValue, Graph, Output, TypeShape};
use std::fmt::Debug;
use std::sync::Arc;

/// An op's attributes, by name: what [`registry::op_from_def`] rebuilds the op from.
pub type Attrs = Vec<(&'static str, AttrValue)>;

/// An operation type. Implementations hold their attributes as fields.
pub trait Op: std::any::Any + Send + Sync + Debug {
    /// The op's type name, e.g. `MatMul`; also the default node name.
    fn type_name(&self) -> &'static str;

    /// Output dtypes and shapes from the input ones; the error text names what does not fit.
    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String>;

    /// Gradients with respect to each input, given the gradients flowing into the outputs.
    /// `None` for an input means "no gradient flows there".
    fn gradient(&self, grad: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let _ = grad;
        Err(GradientError::NotDifferentiable)
    }

    /// The gradients as autodiff passes them on: an op whose gradient with respect to an
    /// input is a few rows of it (a gather's table) says so with [`Gradient::Sparse`]; the
    /// default wraps [`Op::gradient`]'s dense tensors.
    fn gradient_values(&self, grad: &GradContext) -> Result<Vec<Option<Gradient>>, GradientError> {
        let dense = self.gradient(grad)?;
        Ok(dense.into_iter().map(|d| d.map(Gradient::Dense)).collect())
    }

    /// The attributes that, with the type name, describe the op (empty when the type name
    /// says it all). `name_of` gives the name of a node that the op refers to by id: the
    /// variable that an assignment or an update writes.
    fn attrs(&self, name_of: &dyn Fn(usize) -> String) -> Attrs {
        let _ = name_of;
        Vec::new()
    }

    /// What the op does besides computing outputs from inputs.
    fn effect(&self) -> Effect {
        Effect::Pure
    }

    /// The family the op belongs to: the file of this module that defines it (one family per
    /// file), read from the implementing type's path so no op can be filed under another.
    fn family(&self) -> OpFamily {
        OpFamily::of_type_path(std::any::type_name::<Self>())
    }
}

/// An op's family: what timelines colour kernels by and profiles group them by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpFamily {
    Array,
    Broadcast,
    Conv,
    Debug,
    Indexing,
    Input,
    Linalg,
    Math,
    Nn,
    Optimizer,
    Pool,
    Reduce,
    Sparse,
    State,
    Transfer,
    Window,
    /// An op defined outside this module (a fused kernel's, a program's own).
    Other,
}

impl OpFamily {
    pub const ALL: [OpFamily; 17] = [
        OpFamily::Array,
        OpFamily::Broadcast,
        OpFamily::Conv,
        OpFamily::Debug,
        OpFamily::Indexing,
        OpFamily::Input,
        OpFamily::Linalg,
        OpFamily::Math,
        OpFamily::Nn,
        OpFamily::Optimizer,
        OpFamily::Pool,
        OpFamily::Reduce,
        OpFamily::Sparse,
        OpFamily::State,
        OpFamily::Transfer,
        OpFamily::Window,
        OpFamily::Other,
    ];

    /// The family's name: its file's (`linalg`, `math`, ...).
    pub fn name(self) -> &'static str {
        match self {
            OpFamily::Array => "array",
            OpFamily::Broadcast => "broadcast",
            OpFamily::Conv => "conv",
            OpFamily::Debug => "debug",
            OpFamily::Indexing => "indexing",
            OpFamily::Input => "input",
            OpFamily::Linalg => "linalg",
            OpFamily::Math => "math",
            OpFamily::Nn => "nn",
            OpFamily::Optimizer => "optimizer",
            OpFamily::Pool => "pool",
            OpFamily::Reduce => "reduce",
            OpFamily::Sparse => "sparse",
            OpFamily::State => "state",
            OpFamily::Transfer => "transfer",
            OpFamily::Window => "window",
            OpFamily::Other => "other",
        }
    }

    /// The family named `name` ([`OpFamily::Other`] for a name no family has).
    pub fn from_name(name: &str) -> OpFamily {
        (OpFamily::ALL.into_iter())
            .find(|f| f.name() == name)
            .unwrap_or(OpFamily::Other)
    }

    /// The family of the type at `path` (`sluice::ops::linalg::MatMul`): the file of this
    /// module that holds it (a type of another crate is [`OpFamily::Other`]).
    fn of_type_path(path: &str) -> OpFamily {
        let file = (path.strip_prefix(concat!(module_path!(), "::")))
            .and_then(|rest| rest.split("::").next());
        file.map_or(OpFamily::Other, OpFamily::from_name)
    }
}

/// What an op does besides computing its outputs from its inputs: a typed property that the
/// executor, the tools and the summaries read instead of op names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Outputs depend on the inputs and attributes alone.
    Pure,
    /// Outputs a value fed at run time (a placeholder).
    Feed,
    /// Outputs a value stored in the graph.
    Constant,
    /// Outputs the current value of the variable it holds.
    ReadVariable,
    /// Writes the variable held by node `var`.
    WriteVariable { var: usize },
    /// Publishes its input for another worker.
    Send,
    /// Takes a value that another worker published.
    Recv,
    /// Reads the next batch of a data set; the reader's place in it is session state.
    ReadInput,
}

impl Effect {
    /// Reads or changes session state or talks to other workers: never shares a cached result
    /// and always runs.
    pub fn is_stateful(self) -> bool {
        !matches!(self, Effect::Pure | Effect::Feed | Effect::Constant)
    }

    /// Changes something outside the step's own values: the point after which a step can no
    /// longer be cancelled without leaving a trace.
    pub fn has_side_effect(self) -> bool {
        matches!(
            self,
            Effect::WriteVariable { .. } | Effect::Send | Effect::Recv
        )
    }

    /// A send or a receive.
    pub fn is_transfer(self) -> bool {
        matches!(self, Effect::Send | Effect::Recv)
    }
}

/// Why a gradient could not be built.
#[derive(Debug, Clone, PartialEq)]
pub enum GradientError {
    NotDifferentiable,
}

/// What an op's gradient function sees of the node being differentiated.
pub struct GradContext<'a> {
    pub inputs: &'a [Output],
    pub outputs: &'a [Output],
    pub input_types: &'a [TypeShape],
    pub output_types: &'a [TypeShape],
    /// Gradient flowing into each output; `None` where none flows.
    pub dys: &'a [Option<Output>],
}

impl GradContext<'_> {
    /// The gradient of the first output (zeros if none flows into it).
    pub fn dy(&self) -> Output {
        self.dy_of(0)
    }

    /// The gradient of output `i` (zeros if none flows into it).
    pub fn dy_of(&self, i: usize) -> Output {
        self.dys[i].unwrap_or_else(|| zeros_like(self.outputs[i]))
    }

    pub fn x(&self, i: usize) -> Output {
        self.inputs[i]
    }

    pub fn y(&self) -> Output {
        self.outputs[0]
    }
}

/// Adds a node for `op` with `inputs` to the inputs' graph.
pub(crate) fn build(op: impl Op, inputs: &[Output]) -> Output {
    build_arc(Arc::new(op), inputs)
}

pub(crate) fn build_arc(op: Arc<dyn Op>, inputs: &[Output]) -> Output {
    let graph = inputs
        .first()
        .and_then(|x| x.graph().ok())
        .unwrap_or_default();
    graph.add_node(op, inputs.to_vec(), vec![], None)
}

/// Checks an input count; the message is what users see after the node's name.
pub(crate) fn expect_inputs(inputs: &[TypeShape], n: usize) -> Result<(), String> {
    if inputs.len() == n {
        Ok(())
    } else {
        Err(format!("takes {n} inputs, got {}", inputs.len()))
    }
}

pub(crate) fn expect_float(t: &TypeShape, what: &str) -> Result<(), String> {
    if t.dtype.is_float() {
        Ok(())
    } else {
        Err(format!("{what} must be f32 or f64, got {}", t.dtype))
    }
}

/// A graph handle for building nodes without inputs next to `like`.
pub(crate) fn graph_of(like: Output) -> Graph {
    like.graph().unwrap_or_default()
}
