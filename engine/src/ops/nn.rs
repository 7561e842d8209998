//! Neural-network functions: activations, softmax, and fused softmax cross-entropy.

use super::{build, expect_float, expect_inputs, GradContext, GradientError, Op};
use crate::graph::{Output, Shape, TypeShape};
use crate::ops::math::exp;

use crate::ops::reduce::{reduce_sum_axes, BroadcastLike};
use crate::tensor::DType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationKind {
    Relu,
    Sigmoid,
    Tanh,
}

/// Elementwise activations.
#[derive(Debug, Clone)]
pub struct Activation(pub ActivationKind);

impl Op for Activation {
    fn type_name(&self) -> &'static str {
        match self.0 {
            ActivationKind::Relu => "Relu",
            ActivationKind::Sigmoid => "Sigmoid",
            ActivationKind::Tanh => "Tanh",
        }
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        expect_float(&inputs[0], "the input")?;
        Ok(vec![inputs[0].clone()])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let (y, dy) = (g.y(), g.dy());
        let dx = match self.0 {
            ActivationKind::Relu => build(ReluGrad, &[dy, y]),
            ActivationKind::Sigmoid => dy * y * (1.0 - y),
            ActivationKind::Tanh => dy * (1.0 - y * y),
        };
        Ok(vec![Some(dx)])
    }
}

/// `dy` where the relu's output is positive, else 0 (fused to skip a mask tensor).
#[derive(Debug, Clone)]
pub struct ReluGrad;

impl Op for ReluGrad {
    fn type_name(&self) -> &'static str {
        "ReluGrad"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        if inputs[0] != inputs[1] && inputs[0].shape.rank() != inputs[1].shape.rank() {
            return Err(format!("dy is {}, y is {}", inputs[0], inputs[1]));
        }
        Ok(vec![inputs[0].clone()])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![Some(build(ReluGrad, &[g.dy(), g.x(1)])), None])
    }
}

pub fn relu(x: Output) -> Output {
    build(Activation(ActivationKind::Relu), &[x])
}
pub fn sigmoid(x: Output) -> Output {
    build(Activation(ActivationKind::Sigmoid), &[x])
}
pub fn tanh(x: Output) -> Output {
    build(Activation(ActivationKind::Tanh), &[x])
}

/// `log(1 + exp(x))`, computed as `max(x, 0) + log(1 + exp(-|x|))` so that no exponential
/// overflows: the loss of a logistic unit, `softplus(-x)` being `-log(sigmoid(x))`.
pub fn softplus(x: Output) -> Output {
    let zero = x.constant_like(0.0);
    let one = x.constant_like(1.0);
    crate::ops::maximum(x, zero) + crate::ops::log(crate::ops::exp(-crate::ops::abs(x)) + one)
}

/// Softmax (or its logarithm) over the last axis, computed stably.
#[derive(Debug, Clone)]
pub struct Softmax {
    pub log: bool,
}

impl Op for Softmax {
    fn type_name(&self) -> &'static str {
        if self.log {
            "LogSoftmax"
        } else {
            "Softmax"
        }
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        expect_float(&inputs[0], "logits")?;
        if inputs[0].shape.rank() == 0 {
            return Err("needs at least one axis, got a scalar".into());
        }
        Ok(vec![inputs[0].clone()])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let (y, dy) = (g.y(), g.dy());
        let dx = if self.log {
            dy - exp(y) * reduce_sum_axes(dy, &[-1], true)
        } else {
            y * (dy - reduce_sum_axes(dy * y, &[-1], true))
        };
        Ok(vec![Some(dx)])
    }
}

pub fn softmax(logits: Output) -> Output {
    build(Softmax { log: false }, &[logits])
}
pub fn log_softmax(logits: Output) -> Output {
    build(Softmax { log: true }, &[logits])
}

/// Softmax cross-entropy of logits against labels over the last axis, fused: outputs the
/// per-example loss and the gradient with respect to the logits (softmax minus labels,
/// with the softmax scaled by the label sum when the labels do not sum to 1).
/// Dense labels are distributions shaped like the logits; sparse ones are class indices.
#[derive(Debug, Clone)]
pub struct SoftmaxCrossEntropy {
    pub sparse: bool,
}

/// Whether two shapes of equal rank agree wherever both dimensions are known.
fn dims_fit(a: &Shape, b: &Shape) -> bool {
    a.dims()
        .iter()
        .zip(b.dims())
        .all(|(x, y)| x.is_none() || y.is_none() || x == y)
}

impl Op for SoftmaxCrossEntropy {
    fn type_name(&self) -> &'static str {
        if self.sparse {
            "SparseSoftmaxCrossEntropyWithLogits"
        } else {
            "SoftmaxCrossEntropyWithLogits"
        }
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        let (logits, labels) = (&inputs[0], &inputs[1]);
        expect_float(logits, "logits")?;
        let r = logits.shape.rank();
        if r == 0 {
            return Err("logits need a class axis, got a scalar".into());
        }
        let batch = Shape(logits.shape.dims()[..r - 1].to_vec());
        if self.sparse {
            if !matches!(labels.dtype, DType::I32 | DType::I64) {
                return Err(format!("sparse labels must be i32 or i64, got {labels}"));
            }
            if labels.shape.rank() != r - 1 || !dims_fit(&labels.shape, &batch) {
                return Err(format!(
                    "sparse labels must have shape {batch} for logits {}, got {}",
                    logits.shape, labels.shape
                ));
            }
        } else if labels.dtype != logits.dtype
            || labels.shape.rank() != r
            || !dims_fit(&labels.shape, &logits.shape)
        {
            return Err(format!(
                "labels must match the logits: logits are {logits}, labels are {labels}"
            ));
        }
        Ok(vec![TypeShape::new(logits.dtype, batch), logits.clone()])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let spread = |t: Output, like: Output| {
            build(
                BroadcastLike {
                    axes: vec![-1],
                    keep_dims: false,
                },
                &[t, like],
            )
        };
        let (logits, backprop, dloss) = (g.x(0), g.outputs[1], g.dy_of(0));
        let dlogits = spread(dloss, backprop) * backprop;
        let dlabels = if self.sparse {
            None
        } else {
            Some(-(spread(dloss, logits) * log_softmax(logits)))
        };
        Ok(vec![Some(dlogits), dlabels])
    }
}

/// Per-example cross-entropy between `labels` (distributions) and `softmax(logits)`.
pub fn softmax_cross_entropy_with_logits(logits: Output, labels: Output) -> Output {
    build(SoftmaxCrossEntropy { sparse: false }, &[logits, labels])
}

/// Per-example cross-entropy where `labels` are class indices (i32 or i64).
pub fn sparse_softmax_cross_entropy_with_logits(logits: Output, labels: Output) -> Output {
    build(SoftmaxCrossEntropy { sparse: true }, &[logits, labels])
}
