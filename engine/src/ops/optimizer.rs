//! Update kernels of the optimizers: each changes its variables in place.

use super::{expect_inputs, Attrs, Effect, Op};

use crate::graph::{AttrValue, Shape, TypeShape};

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
    /// Per-element step sizes that shrink with the gradients seen: `accum += g^2;
    /// var -= learning_rate * g / sqrt(accum)` (TensorFlow's `ApplyAdagrad`; the accumulator
    /// starts at `initial_accumulator_value`, so the root is never of zero).
    Adagrad {
        learning_rate: f64,
        initial_accumulator_value: f64,
    },
    /// Follow-the-regularised-leader, proximal (McMahan et al.), TensorFlow's `ApplyFtrl`:
    /// sparse weights from the L1 term, as click-through models use.
    Ftrl {
        learning_rate: f64,
        /// The power of the accumulator in the step size: -0.5 is Adagrad's root.
        learning_rate_power: f64,
        initial_accumulator_value: f64,
        l1: f64,
        l2: f64,
    },
}

impl Rule {
    /// The slot variables the rule keeps, by suffix, and the value each starts at.
    pub fn slots(&self) -> Vec<(&'static str, f64)> {
        match *self {
            Rule::GradientDescent { .. } => vec![],
            Rule::Momentum { .. } => vec![("momentum", 0.0)],
            Rule::Adam { .. } => vec![("adam_m", 0.0), ("adam_v", 0.0)],
            Rule::Adagrad {
                initial_accumulator_value,
                ..
            } => vec![("accumulator", initial_accumulator_value)],
            Rule::Ftrl {
                initial_accumulator_value,
                ..
            } => vec![("accumulator", initial_accumulator_value), ("linear", 0.0)],
        }
    }

    /// Why the hyper-parameters make no update (as TensorFlow's kernels refuse them): a
    /// learning rate that is not a positive number, an accumulator that starts at zero (its
    /// root divides), FTRL's power above zero or negative penalties.
    pub fn check(&self) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            (v.is_finite() && v > 0.0)
                .then_some(())
                .ok_or_else(|| format!("{name} must be a positive number, got {v}"))
        };
        let at_least_zero = |name: &str, v: f64| {
            (v.is_finite() && v >= 0.0)
                .then_some(())
                .ok_or_else(|| format!("{name} must be zero or more, got {v}"))
        };
        match *self {
            Rule::GradientDescent { learning_rate } => positive("learning_rate", learning_rate),
            Rule::Momentum {
                learning_rate,
                momentum,
                ..
            } => {
                positive("learning_rate", learning_rate)?;
                at_least_zero("momentum", momentum)
            }
            Rule::Adam {
                learning_rate,
                beta1,
                beta2,
                epsilon,
            } => {
                positive("learning_rate", learning_rate)?;
                at_least_zero("beta1", beta1)?;
                at_least_zero("beta2", beta2)?;
                at_least_zero("epsilon", epsilon)
            }
            Rule::Adagrad {
                learning_rate,
                initial_accumulator_value,
            } => {
                positive("learning_rate", learning_rate)?;
                positive("initial_accumulator_value", initial_accumulator_value)
            }
            Rule::Ftrl {
                learning_rate,
                learning_rate_power,
                initial_accumulator_value,
                l1,
                l2,
            } => {
                positive("learning_rate", learning_rate)?;
                positive("initial_accumulator_value", initial_accumulator_value)?;
                at_least_zero("l1", l1)?;
                at_least_zero("l2", l2)?;
                if learning_rate_power.is_finite() && learning_rate_power <= 0.0 {
                    Ok(())
                } else {
                    Err(format!(
                        "learning_rate_power must be zero or less, got {learning_rate_power}"
                    ))
                }
            }
        }
    }

    /// Whether the update reads the global step (Adam's bias corrections).
    pub fn reads_step(&self) -> bool {
        matches!(self, Rule::Adam { .. })
    }
}

/// Adam's step size for the update after `step` earlier ones: the learning rate with both
/// moments' bias corrections folded in, as TensorFlow's `ApplyAdam` computes it.
pub fn adam_step_size(learning_rate: f64, beta1: f64, beta2: f64, step: f64) -> f64 {
    let t = step + 1.0;
    learning_rate * (1.0 - beta2.powf(t)).sqrt() / (1.0 - beta1.powf(t))
}

/// Applies one update to variable `var` (and its slot variables) from the gradient input.
/// Adam's last input is the global step before this update.
///
/// A sparse update (`sparse`) takes the gradient as rows and their indices (inputs 0 and 1,
/// an [`IndexedSlices`](crate::ops::IndexedSlices)) and changes those rows of the variable
/// and of its slots only, every other row as it was: TensorFlow's `SparseApply*` kernels. For
/// Momentum that is TensorFlow's own sparse rule; for Adam it is the lazy form of
/// TensorFlow's `LazyAdamOptimizer` (contrib, then Addons), not `AdamOptimizer`'s sparse
/// path, which decays every row's moments every step. Repeated indices are summed first.
#[derive(Debug, Clone)]
pub struct ApplyUpdate {
    pub rule: Rule,
    pub var: usize,
    pub var_type: TypeShape,
    /// Slot variables, as [`Rule::slots`] lists them.
    pub slots: Vec<usize>,
    pub sparse: bool,
}

impl Op for ApplyUpdate {
    fn type_name(&self) -> &'static str {
        match (self.sparse, &self.rule) {
            (false, Rule::GradientDescent { .. }) => "ApplyGradientDescent",
            (false, Rule::Momentum { .. }) => "ApplyMomentum",
            (false, Rule::Adam { .. }) => "ApplyAdam",
            (false, Rule::Adagrad { .. }) => "ApplyAdagrad",
            (false, Rule::Ftrl { .. }) => "ApplyFtrl",
            (true, Rule::GradientDescent { .. }) => "SparseApplyGradientDescent",
            (true, Rule::Momentum { .. }) => "SparseApplyMomentum",
            (true, Rule::Adam { .. }) => "SparseApplyAdam",
            (true, Rule::Adagrad { .. }) => "SparseApplyAdagrad",
            (true, Rule::Ftrl { .. }) => "SparseApplyFtrl",
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
            Rule::Adagrad {
                learning_rate,
                initial_accumulator_value,
            } => attrs.extend([
                float("learning_rate", learning_rate),
                float("initial_accumulator_value", initial_accumulator_value),
            ]),
            Rule::Ftrl {
                learning_rate,
                learning_rate_power,
                initial_accumulator_value,
                l1,
                l2,
            } => attrs.extend([
                float("learning_rate", learning_rate),
                float("learning_rate_power", learning_rate_power),
                float("initial_accumulator_value", initial_accumulator_value),
                float("l1", l1),
                float("l2", l2),
            ]),
        }
        attrs
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        let wanted = 1 + usize::from(self.sparse) + usize::from(self.rule.reads_step());
        expect_inputs(inputs, wanted)?;
        self.rule.check()?;
        let (grad, var) = (&inputs[0], &self.var_type);
        if grad.dtype != var.dtype {
            return Err(format!("gradient is {grad}, variable is {var}"));
        }
        if !self.sparse {
            if grad.shape.rank() != var.shape.rank() {
                return Err(format!("gradient is {grad}, variable is {var}"));
            }
            return Ok(vec![]);
        }
        let indices = &inputs[1];
        super::indexing::expect_indices(indices, "indices")?;
        let rows = Shape(
            (indices.shape.dims().iter().copied())
                .chain(var.shape.dims().iter().skip(1).copied())
                .collect(),
        );
        if var.shape.rank() == 0 || !super::indexing::compatible(&rows, &grad.shape) {
            return Err(format!(
                "sparse gradient rows are {grad} with indices {indices}: rows of variable {var} \
                 at those indices are {rows}"
            ));
        }
        Ok(vec![])
    }

    fn effect(&self) -> Effect {
        Effect::WriteVariable { var: self.var }
    }
}
