//! One replica's part of a data-parallel model, as the model function returns it.

use crate::graph::Output;

/// What the model function returns for one replica: the placeholders its batches feed (in
/// the order the batches list them), its loss, and named metrics to evaluate.
#[derive(Debug, Clone)]
pub struct Tower {
    pub inputs: Vec<Output>,
    pub loss: Output,
    pub metrics: Vec<(String, Output)>,
    /// Where the replica reads its own batches on its worker (`ops::read_batches`): the
    /// examples of one; the trainer then feeds it nothing while training.
    pub reads: Option<usize>,
}

impl Tower {
    pub fn new(loss: Output, inputs: &[Output]) -> Tower {
        Tower {
            inputs: inputs.to_vec(),
            loss,
            metrics: Vec::new(),
            reads: None,
        }
    }

    /// A tower whose `inputs` come from a reader on its worker ([`crate::ops::read_batches`])
    /// that gives `batch` examples a step: training sends step orders only, and evaluation
    /// still feeds `inputs` (a fed output is not read).
    pub fn reading(loss: Output, inputs: &[Output], batch: usize) -> Tower {
        Tower {
            reads: Some(batch),
            ..Tower::new(loss, inputs)
        }
    }

    /// Adds a metric (accuracy, say) that evaluation reports by name.
    pub fn metric(mut self, name: &str, value: Output) -> Tower {
        self.metrics.push((name.to_string(), value));
        self
    }
}
