//! Update kernels of the optimizers: each changes its variables in place.

use super::{expect_inputs, Attrs, Effect, Op};

use crate::graph::{AttrValue, TypeShape};

/// The update rule of an optimizer, with its hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    GradientDescent {
        learning_rate: f64,
    },
    Momentum {
        learning_rate: f64,
        momentum: f64,
        nesterov: bool,
    },
    Adam {
        learning_rate: f64,
        beta1: f64,
        beta2: f64,
        epsilon: f64,
    },
}

/// Adam's step size for the update after `step` earlier ones: the learning rate with both
/// moments' bias corrections folded in, as TensorFlow's `ApplyAdam` computes it.
pub fn adam_step_size(learning_rate: f64, beta1: f64, beta2: f64, step: f64) -> f64 {
    let t = step + 1.0;
    learning_rate * (1.0 - beta2.powf(t)).sqrt() / (1.0 - beta1.powf(t))
}

/// Applies one update to variable `var` (and its slot variables) from the gradient input.
/// Adam's second input is the global step before this update.
#[derive(Debug, Clone)]
pub struct ApplyUpdate {
    pub rule: Rule,
    pub var: usize,
    pub var_type: TypeShape,
    /// Slot variables: Momentum's accumulator; Adam's first and second moments.
    pub slots: Vec<usize>,
}

impl Op for ApplyUpdate {
    fn type_name(&self) -> &'static str {
        match self.rule {
            Rule::GradientDescent { .. } => "ApplyGradientDescent",
            Rule::Momentum { .. } => "ApplyMomentum",
            Rule::Adam { .. } => "ApplyAdam",
        }
    }

    fn attrs(&self, name_of: &dyn Fn(usize) -> String) -> Attrs {
        let mut attrs = vec![
            ("var", AttrValue::Str(name_of(self.var))),
            (
                "slots",
                AttrValue::Strs(self.slots.iter().map(|&s| name_of(s)).collect()),
            ),
        ];
        let float = |key, v: f64| (key, AttrValue::Float(v));
        match self.rule {
            Rule::GradientDescent { learning_rate } => {
                attrs.push(float("learning_rate", learning_rate));
            }
            Rule::Momentum {
                learning_rate,
                momentum,
                nesterov,
            } => attrs.extend([
                float("learning_rate", learning_rate),
                float("momentum", momentum),
                ("nesterov", AttrValue::Bool(nesterov)),
            ]),
            Rule::Adam {
                learning_rate,
                beta1,
                beta2,
                epsilon,
            } => attrs.extend([
                float("learning_rate", learning_rate),
                float("beta1", beta1),
                float("beta2", beta2),
                float("epsilon", epsilon),
            ]),
        }
        attrs
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        let wanted = if matches!(self.rule, Rule::Adam { .. }) {
            2
        } else {
            1
        };
        expect_inputs(inputs, wanted)?;
        if inputs[0] != self.var_type && inputs[0].shape.rank() != self.var_type.shape.rank() {
            return Err(format!(
                "gradient is {}, variable is {}",
                inputs[0], self.var_type
            ));
        }
        Ok(vec![])
    }

    fn effect(&self) -> Effect {
        Effect::WriteVariable { var: self.var }
    }
}
