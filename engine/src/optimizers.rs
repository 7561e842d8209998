//! Optimizers: each builds update nodes for the variables; `minimize(loss)` returns the train
//! op, whose value is the global step after the update.
//!
//! A sparse gradient (the rows of an embedding table a batch read) is applied by a sparse
//! update that touches those rows only, in the variable and in its slots: exact for gradient
//! descent, Adagrad and FTRL (the same weights as the dense update); for Momentum (as
//! TensorFlow's sparse momentum) and Adam (as TensorFlow's `LazyAdamOptimizer`, not
//! `AdamOptimizer`, whose sparse path decays every row) lazy: untouched rows keep their
//! momentum and moments until a step reads them again.

use crate::autodiff::gradient_values;
use crate::error::GraphError;
use crate::graph::{Graph, Initializer, Output};
use crate::ops::optimizer::{ApplyUpdate, Rule};
use crate::ops::{AssignKind, Gradient};
use std::sync::Arc;

/// Something that turns gradients into variable updates.
pub trait Optimizer {
    /// The update rule with its hyper-parameters.
    fn rule(&self) -> Rule;

    /// Builds one update per (gradient, variable) pair and a train op that runs them all and
    /// then advances the global step.
    fn apply_gradients(&self, grads_and_vars: &[(Output, Output)]) -> Result<Output, GraphError> {
        self.apply_gradient_values(&dense_pairs(grads_and_vars))
    }

    /// [`Optimizer::apply_gradients`] for gradient values: sparse ones update the rows they
    /// name (see the module's note).
    fn apply_gradient_values(
        &self,
        grads_and_vars: &[(Gradient, Output)],
    ) -> Result<Output, GraphError> {
        let Some((_, first)) = grads_and_vars.first() else {
            return Err(GraphError::UnknownNode("no variables to update".into()));
        };
        let graph = first.graph()?;
        let step = graph.global_step();
        let updates = self.apply_update_values(grads_and_vars, step)?;
        let _scope = graph.name_scope(self.name());
        advance_step(step, updates)
    }

    /// The update nodes alone, one per (gradient, variable) pair, without advancing a step:
    /// for strategies that advance it once for several replicas' updates. `step` is what
    /// rules that count steps (Adam) read.
    fn apply_updates(
        &self,
        grads_and_vars: &[(Output, Output)],
        step: Output,
    ) -> Result<Vec<usize>, GraphError> {
        self.apply_update_values(&dense_pairs(grads_and_vars), step)
    }

    /// [`Optimizer::apply_updates`] for gradient values.
    fn apply_update_values(
        &self,
        grads_and_vars: &[(Gradient, Output)],
        step: Output,
    ) -> Result<Vec<usize>, GraphError> {
        let Some((_, first)) = grads_and_vars.first() else {
            return Err(GraphError::UnknownNode("no variables to update".into()));
        };
        let graph = first.graph()?;
        let rule = self.rule();
        let _scope = graph.name_scope(self.name());
        (grads_and_vars.iter())
            .map(|(grad, var)| apply(&graph, &rule, grad, *var, step))
            .collect()
    }

    /// Differentiates `loss` with respect to every trainable variable it depends on and
    /// applies the updates (sparse ones where only rows of a variable were read).
    fn minimize(&self, loss: Output) -> Result<Output, GraphError> {
        let graph = loss.graph()?;
        let vars = graph.trainable_variables();
        let grads = gradient_values(&[loss], &vars)?;
        let pairs: Vec<(Gradient, Output)> = grads
            .into_iter()
            .zip(vars)
            .filter_map(|(g, v)| g.map(|g| (g, v)))
            .collect();
        if pairs.is_empty() {
            return Err(GraphError::Unconnected {
                x: "any trainable variable".into(),
                y: loss.name(),
            });
        }
        self.apply_gradient_values(&pairs)
    }

    fn name(&self) -> &'static str;
}

/// A train op: after `updates` (node ids) have run, adds one to the i64 `step` variable;
/// its value is the new step.
pub fn advance_step(step: Output, updates: Vec<usize>) -> Result<Output, GraphError> {
    let graph = step.graph()?;
    let op = crate::ops::Assign {
        var: step.node(),
        var_type: step.type_shape()?,
        kind: AssignKind::Add,
    };
    let one = graph.constant(crate::tensor::Tensor::scalar(1i64));
    Ok(graph.add_node(Arc::new(op), vec![one], updates, Some("train")))
}

fn dense_pairs(pairs: &[(Output, Output)]) -> Vec<(Gradient, Output)> {
    (pairs.iter())
        .map(|&(g, v)| (Gradient::Dense(g), v))
        .collect()
}

fn apply(
    graph: &Graph,
    rule: &Rule,
    grad: &Gradient,
    var: Output,
    step: Output,
) -> Result<usize, GraphError> {
    let node = graph.variable_node(var)?;
    // Slots live where their variable does (a parameter server's, say).
    let _device = (!node.device.is_empty()).then(|| graph.device(&node.device));
    let var_type = var.type_shape()?;
    let shape = var_type.shape.to_known().unwrap_or_default();
    let slots = (rule.slots().into_iter())
        .map(|(suffix, start)| {
            let init = if start == 0.0 {
                Initializer::Zeros
            } else {
                Initializer::Fill(start)
            };
            let name = format!("{}/{suffix}", node.name);
            graph
                .variable_with(&name, var_type.dtype, &shape, init, false)
                .node()
        })
        .collect();
    let mut inputs = match grad {
        Gradient::Dense(g) => vec![*g],
        Gradient::Sparse(rows) => vec![rows.values, rows.indices],
    };
    if rule.reads_step() {
        inputs.push(step);
    }
    let op = ApplyUpdate {
        rule: rule.clone(),
        var: var.node(),
        var_type,
        slots,
        sparse: matches!(grad, Gradient::Sparse(_)),
    };
    let update = graph.add_node(Arc::new(op), inputs, vec![], None);
    if let Some(e) = graph.node(update.node()).and_then(|n| n.error) {
        return Err(e);
    }
    Ok(update.node())
}

/// `var -= learning_rate * grad`.
#[derive(Debug, Clone)]
pub struct GradientDescent {
    pub learning_rate: f64,
}

impl GradientDescent {
    pub fn new(learning_rate: f64) -> Self {
        GradientDescent { learning_rate }
    }
}

impl Optimizer for GradientDescent {
    fn rule(&self) -> Rule {
        Rule::GradientDescent {
            learning_rate: self.learning_rate,
        }
    }
    fn name(&self) -> &'static str {
        "GradientDescent"
    }
}

/// Gradient descent with a velocity: `a = momentum * a + grad; var -= learning_rate * a`.
#[derive(Debug, Clone)]
pub struct Momentum {
    pub learning_rate: f64,
    pub momentum: f64,
    pub nesterov: bool,
}

impl Momentum {
    pub fn new(learning_rate: f64, momentum: f64) -> Self {
        Momentum {
            learning_rate,
            momentum,
            nesterov: false,
        }
    }
}

impl Optimizer for Momentum {
    fn rule(&self) -> Rule {
        Rule::Momentum {
            learning_rate: self.learning_rate,
            momentum: self.momentum,
            nesterov: self.nesterov,
        }
    }
    fn name(&self) -> &'static str {
        "Momentum"
    }
}

/// Adam (Kingma & Ba), with TensorFlow's defaults for the betas and epsilon.
#[derive(Debug, Clone)]
pub struct Adam {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
}

impl Adam {
    pub fn new(learning_rate: f64) -> Self {
        Adam {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        }
    }
}

impl Optimizer for Adam {
    fn rule(&self) -> Rule {
        Rule::Adam {
            learning_rate: self.learning_rate,
            beta1: self.beta1,
            beta2: self.beta2,
            epsilon: self.epsilon,
        }
    }
    fn name(&self) -> &'static str {
        "Adam"
    }
}

/// Adagrad: each element's step shrinks with the squares of its gradients so far, the usual
/// choice for embeddings (rare ids keep large steps). TensorFlow's defaults: the accumulator
/// starts at 0.1.
#[derive(Debug, Clone)]
pub struct Adagrad {
    pub learning_rate: f64,
    pub initial_accumulator_value: f64,
}

impl Adagrad {
    pub fn new(learning_rate: f64) -> Self {
        Adagrad {
            learning_rate,
            initial_accumulator_value: 0.1,
        }
    }
}

impl Optimizer for Adagrad {
    fn rule(&self) -> Rule {
        Rule::Adagrad {
            learning_rate: self.learning_rate,
            initial_accumulator_value: self.initial_accumulator_value,
        }
    }
    fn name(&self) -> &'static str {
        "Adagrad"
    }
}

/// FTRL-proximal (McMahan et al., "Ad click prediction: a view from the trenches"), with
/// TensorFlow's defaults: step sizes as Adagrad's, and L1 and L2 terms that make weights of
/// rare features exactly zero.
#[derive(Debug, Clone)]
pub struct Ftrl {
    pub learning_rate: f64,
    pub learning_rate_power: f64,
    pub initial_accumulator_value: f64,
    pub l1: f64,
    pub l2: f64,
}

impl Ftrl {
    pub fn new(learning_rate: f64) -> Self {
        Ftrl {
            learning_rate,
            learning_rate_power: -0.5,
            initial_accumulator_value: 0.1,
            l1: 0.0,
            l2: 0.0,
        }
    }
}

impl Optimizer for Ftrl {
    fn rule(&self) -> Rule {
        Rule::Ftrl {
            learning_rate: self.learning_rate,
            learning_rate_power: self.learning_rate_power,
            initial_accumulator_value: self.initial_accumulator_value,
            l1: self.l1,
            l2: self.l2,
        }
    }
    fn name(&self) -> &'static str {
        "Ftrl"
    }
}
