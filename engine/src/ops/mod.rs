//! Ops: one file per family. Each op keeps side by side its type inference, its CPU kernel and
//! its gradient (built as graph nodes from the same public op functions).

#[cfg(feature = "engine")]
/// Runs `$body` with `$T` bound to the Rust type of a float dtype.
macro_rules! float_kernel {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::tensor::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::tensor::DType::F64 => {
                type $T = f64;
                $body
            }
            other => Err($crate::ops::KernelError::Message(format!(
                "not defined for dtype {other}"
            ))),
        }
    };
}

#[cfg(feature = "engine")]
/// Runs `$body` with `$T` bound to the Rust type of a numeric (non-bool) dtype.
macro_rules! numeric_kernel {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::tensor::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::tensor::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::tensor::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::tensor::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::tensor::DType::U8 => {
                type $T = u8;
                $body
            }
            other => Err($crate::ops::KernelError::Message(format!(
                "not defined for dtype {other}"
            ))),
        }
    };
}

#[cfg(feature = "engine")]
/// Runs `$body` with `$T` bound to the Rust type of any dtype.
macro_rules! any_kernel {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::tensor::DType::Bool => {
                type $T = bool;
                $body
            }
            other => numeric_kernel!(other, $T => $body),
        }
    };
}

pub mod array;
pub mod broadcast;
pub mod conv;
pub mod debug;
pub mod indexing;
pub mod linalg;
pub mod math;
pub mod nn;
pub mod optimizer;
pub mod pool;
pub mod reduce;
pub mod registry;
pub mod state;
pub mod transfer;
pub mod window;

pub use array::*;
pub use conv::*;
pub use debug::*;
pub use indexing::*;
pub use linalg::*;
pub use math::*;
pub use nn::*;
pub use pool::*;
pub use reduce::*;
pub use state::*;
pub use window::Padding;

use crate::graph::{AttrValue, Graph, Output, TypeShape};
use crate::tensor::{Buffer, DType, Element, Tensor};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

/// An op's attributes, by name: what [`registry::op_from_def`] rebuilds the op from.
pub type Attrs = Vec<(&'static str, AttrValue)>;

/// An operation type. Implementations hold their attributes as fields.
pub trait Op: Send + Sync + Debug + 'static {
    /// The op's type name, e.g. `MatMul`; also the default node name.
    fn type_name(&self) -> &'static str;

    /// Output dtypes and shapes from the input ones; the error text names what does not fit.
    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String>;

    /// The CPU kernel.
    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError>;

    /// Gradients with respect to each input, given the gradients flowing into the outputs.
    /// `None` for an input means "no gradient flows there".
    fn gradient(&self, grad: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let _ = grad;
        Err(GradientError::NotDifferentiable)
    }

    /// The attributes that, with the type name, describe the op (empty when the type name
    /// says it all). `name_of` gives the name of a node that the op refers to by id: the
    /// variable that an assignment or an update writes.
    fn attrs(&self, name_of: &dyn Fn(usize) -> String) -> Attrs {
        let _ = name_of;
        Vec::new()
    }

    /// Ops that read or write session state never share a cached result.
    fn is_stateful(&self) -> bool {
        false
    }
}

/// Why a gradient could not be built.
#[derive(Debug, Clone, PartialEq)]
pub enum GradientError {
    NotDifferentiable,
}

/// What a kernel reports when it cannot compute.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelError {
    Message(String),
    /// The variable held by node `0` has no value yet.
    Uninitialized(usize),
    /// A NaN or infinity, found by `check_numerics`.
    NonFinite {
        message: String,
        index: usize,
    },
}

impl From<String> for KernelError {
    fn from(message: String) -> KernelError {
        KernelError::Message(message)
    }
}

impl From<crate::tensor::TensorError> for KernelError {
    fn from(e: crate::tensor::TensorError) -> KernelError {
        KernelError::Message(e.to_string())
    }
}

/// What a kernel may use besides its inputs.
pub struct Context<'a> {
    /// Id of the node being computed.
    pub node: usize,
    pub pool: &'a mut BufferPool,
    /// Variable values by node id.
    pub variables: &'a mut VariableStore,
}

/// Variable values held by a session, indexed by the variable's node id.
#[derive(Debug, Default, Clone)]
pub struct VariableStore {
    values: Vec<Option<Tensor>>,
}

impl VariableStore {
    pub fn get(&self, node: usize) -> Option<&Tensor> {
        self.values.get(node).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, node: usize) -> Result<&mut Tensor, KernelError> {
        self.values
            .get_mut(node)
            .and_then(Option::as_mut)
            .ok_or(KernelError::Uninitialized(node))
    }

    /// Moves a value out (to update it in place); put it back with `set`.
    pub fn take(&mut self, node: usize) -> Result<Tensor, KernelError> {
        self.values
            .get_mut(node)
            .and_then(Option::take)
            .ok_or(KernelError::Uninitialized(node))
    }

    pub fn set(&mut self, node: usize, value: Tensor) {
        if self.values.len() <= node {
            self.values.resize(node + 1, None);
        }
        self.values[node] = Some(value);
    }

    pub fn is_set(&self, node: usize) -> bool {
        self.get(node).is_some()
    }
}

/// Buffers kept from earlier steps, by dtype and length, so a step allocates nothing new.
#[derive(Debug, Default)]
pub struct BufferPool {
    free: HashMap<(DType, usize), Vec<Buffer>>,
}

impl BufferPool {
    /// A vector of `len` elements whose contents are unspecified: the kernel writes them all.
    pub fn alloc<T: Element>(&mut self, len: usize) -> Vec<T> {
        if let Some(buffers) = self.free.get_mut(&(T::DTYPE, len)) {
            while let Some(mut buf) = buffers.pop() {
                if let Some(v) = T::slice_mut(&mut buf) {
                    return std::mem::take(v);
                }
            }
        }
        vec![T::default(); len]
    }

    /// A vector of `len` zeros.
    pub fn zeros<T: Element>(&mut self, len: usize) -> Vec<T> {
        let mut v = self.alloc::<T>(len);
        v.fill(T::default());
        v
    }

    /// Takes back a tensor's buffer if nothing else holds it.
    pub fn recycle(&mut self, tensor: Tensor) {
        if let Some(buf) = tensor.into_buffer() {
            let key = (buf.dtype(), buf.len());
            let list = self.free.entry(key).or_default();
            if list.len() < 4 {
                list.push(buf);
            }
        }
    }
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
