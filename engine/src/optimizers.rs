//! Optimizers: each builds update nodes for the variables; `minimize(loss)` returns the train
//! op, whose value is the global step after the update.

use crate::autodiff::gradients;
use crate::error::GraphError;
use crate::graph::{Graph, Initializer, Output};
use crate::ops::optimizer::{ApplyUpdate, Rule};
use crate::ops::AssignKind;
use std::sync::Arc;

/// Something that turns gradients into variable updates.
pub trait Optimizer {
    /// The update rule with its hyper-parameters.
    fn rule(&self) -> Rule;

    /// Builds one update per (gradient, variable) pair and a train op that runs them all and
    /// then advances the global step.
    fn apply_gradients(&self, grads_and_vars: &[(Output, Output)]) -> Result<Output, GraphError> {
        let Some(&(_, first)) = grads_and_vars.first() else {
            return Err(GraphError::UnknownNode("no variables to update".into()));
        };
        let graph = first.graph()?;
        let step = graph.global_step();
        let updates = self.apply_updates(grads_and_vars, step)?;
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
        let Some(&(_, first)) = grads_and_vars.first() else {
            return Err(GraphError::UnknownNode("no variables to update".into()));
        };
        let graph = first.graph()?;
        let rule = self.rule();
        let _scope = graph.name_scope(self.name());
        (grads_and_vars.iter())
            .map(|&(grad, var)| apply(&graph, &rule, grad, var, step))
            .collect()
    }

    /// Differentiates `loss` with respect to every trainable variable it depends on and
    /// applies the updates.
    fn minimize(&self, loss: Output) -> Result<Output, GraphError> {
        let graph = loss.graph()?;
        let vars = graph.trainable_variables();
        let grads = gradients(&[loss], &vars)?;
        let pairs: Vec<(Output, Output)> = grads
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
        self.apply_gradients(&pairs)
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

fn apply(
    graph: &Graph,
    rule: &Rule,
    grad: Output,
    var: Output,
    step: Output,
) -> Result<usize, GraphError> {
    let node = graph.variable_node(var)?;
    // Slots live where their variable does (a parameter server's, say).
    let _device = (!node.device.is_empty()).then(|| graph.device(&node.device));
    let var_type = var.type_shape()?;
    let shape = var_type.shape.to_known().unwrap_or_default();
    let slot = |suffix: &str| {
        graph
            .variable_with(
                &format!("{}/{suffix}", node.name),
                var_type.dtype,
                &shape,
                Initializer::Zeros,
                false,
            )
            .node()
    };
    let slots = match rule {
        Rule::GradientDescent { .. } => vec![],
        Rule::Momentum { .. } => vec![slot("momentum")],
        Rule::Adam { .. } => vec![slot("adam_m"), slot("adam_v")],
    };
    let mut inputs = vec![grad];
    if matches!(rule, Rule::Adam { .. }) {
        inputs.push(step);
    }
    let op = ApplyUpdate {
        rule: rule.clone(),
        var: var.node(),
        var_type,
        slots,
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
