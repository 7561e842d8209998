//! Transfers between workers: the `_Send` and `_Recv` pairs the partitioner puts on each edge
//! that crosses tasks. Both take the step id (`_step`, fed each step) so that a value of one
//! step is never taken for another's.

use super::{expect_inputs, Attrs, Effect, Op};

use crate::graph::{AttrValue, Shape, TypeShape};
use crate::tensor::DType;

fn expect_step(inputs: &[TypeShape], at: usize) -> Result<(), String> {
    let step = &inputs[at];
    if step.dtype != DType::I64 || !step.shape.dims().is_empty() {
        return Err(format!("the step id must be an i64 scalar, got {step}"));
    }
    Ok(())
}

/// Publishes its first input under `key` for the `_Recv` of another worker.
#[derive(Debug, Clone)]
pub struct Send {
    pub key: String,
}

impl Op for Send {
    fn type_name(&self) -> &'static str {
        "_Send"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![("key", AttrValue::Str(self.key.clone()))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        expect_step(inputs, 1)?;
        Ok(vec![])
    }

    fn effect(&self) -> Effect {
        Effect::Send
    }
}

/// The value a `_Send` of the worker at `peer` published under `key`, and the number of
/// bytes it took on the wire (an i64 scalar, the second output).
#[derive(Debug, Clone)]
pub struct Recv {
    pub key: String,
    pub peer: String,
    pub dtype: DType,
    pub shape: Shape,
    /// `f32`, `bf16`, `f16` or `int8`: how a float value travels.
    pub precision: String,
    pub timeout_ms: i64,
}

impl Op for Recv {
    fn type_name(&self) -> &'static str {
        "_Recv"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![
            ("key", AttrValue::Str(self.key.clone())),
            ("peer", AttrValue::Str(self.peer.clone())),
            ("dtype", AttrValue::DType(self.dtype)),
            ("shape", AttrValue::Shape(self.shape.clone())),
            ("precision", AttrValue::Str(self.precision.clone())),
            ("timeout_ms", AttrValue::Int(self.timeout_ms)),
        ]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        expect_step(inputs, 0)?;
        Ok(vec![
            TypeShape::new(self.dtype, self.shape.clone()),
            TypeShape::new(DType::I64, Shape::scalar()),
        ])
    }

    fn effect(&self) -> Effect {
        Effect::Recv
    }
}
