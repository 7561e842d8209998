//! Transfers between workers: the `_Send` and `_Recv` pairs the partitioner puts on each edge
//! that crosses tasks. Both take the step id (`_step`, fed each step) so that a value of one
//! step is never taken for another's.

use super::{expect_inputs, Attrs, Op};
#[cfg(feature = "engine")]
use super::{Context, KernelError};
use crate::graph::{AttrValue, Shape, TypeShape};
use crate::tensor::DType;
#[cfg(feature = "engine")]
use crate::tensor::Tensor;

fn expect_step(inputs: &[TypeShape], at: usize) -> Result<(), String> {
    let step = &inputs[at];
    if step.dtype != DType::I64 || !step.shape.dims().is_empty() {
        return Err(format!("the step id must be an i64 scalar, got {step}"));
    }
    Ok(())
}

#[cfg(feature = "engine")]
fn step_id(t: &Tensor) -> Result<u64, KernelError> {
    t.as_slice::<i64>()
        .ok()
        .and_then(|s| s.first().copied())
        .and_then(|s| u64::try_from(s).ok())
        .ok_or_else(|| KernelError::Message("the step id is not a non-negative i64".into()))
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

    #[cfg(feature = "engine")]
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let step = step_id(inputs[1])?;
        crate::distributed::rendezvous::publish(&self.key, step, inputs[0].clone());
        Ok(vec![])
    }

    fn is_stateful(&self) -> bool {
        true
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

    #[cfg(feature = "engine")]
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        use crate::distributed::{precision, rendezvous};
        let step = step_id(inputs[0])?;
        let wire = precision::parse(&self.precision)?;
        let timeout = std::time::Duration::from_millis(self.timeout_ms.max(1) as u64);
        let (value, bytes) = rendezvous::fetch(&self.peer, &self.key, step, wire, timeout)
            .map_err(|e| KernelError::Message(format!("receiving '{}': {e}", self.key)))?;
        let fits = value.dtype() == self.dtype
            && value.rank() == self.shape.dims().len()
            && (value.shape().iter())
                .zip(self.shape.dims())
                .all(|(&d, want)| want.is_none_or(|w| w == d));
        if !fits {
            return Err(KernelError::Message(format!(
                "'{}' arrived as {} {:?}, but {} {} was expected",
                self.key,
                value.dtype(),
                value.shape(),
                self.dtype,
                self.shape
            )));
        }
        Ok(vec![value, Tensor::scalar(bytes as i64)])
    }

    fn is_stateful(&self) -> bool {
        true
    }
}
