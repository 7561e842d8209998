//! What a training loop is asked to do and what it reports: shared by the in-process loop
//! (`Session::fit`, in session/fit_loop.rs) and the remote one (`RemoteSession::fit`).

use crate::graph::Output;
use std::time::Duration;

/// How a data set's labels are fed to the labels placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelFormat {
    /// `[batch, classes]` f32 rows (for `y_ * log(y)` or dense cross-entropy).
    OneHot,
    /// `[batch]` i64 class indices (for sparse cross-entropy).
    Indices,
}

/// What `fit` trains and how.
#[derive(Debug, Clone)]
pub struct FitConfig {
    /// Placeholder fed with the inputs, `[batch, features]`.
    pub inputs: Output,
    /// Placeholder fed with the labels, in `label_format`.
    pub labels: Output,
    pub label_format: LabelFormat,
    /// Scalar loss, fetched every step.
    pub loss: Output,
    /// The train op (e.g. from `minimize`).
    pub train: Output,
    pub batch_size: usize,
    pub steps: usize,
    /// Orders the mini-batches.
    pub seed: u64,
    /// Steps between progress reports (the last step is always reported).
    pub report_every: usize,
}

impl FitConfig {
    /// 1,000 steps of 100 one-hot examples, reporting every 50 steps.
    pub fn new(inputs: Output, labels: Output, loss: Output, train: Output) -> FitConfig {
        FitConfig {
            inputs,
            labels,
            label_format: LabelFormat::OneHot,
            loss,
            train,
            batch_size: 100,
            steps: 1000,
            seed: 0,
            report_every: 50,
        }
    }
}

/// One progress report.
#[derive(Debug, Clone, PartialEq)]
pub struct FitProgress {
    /// Steps of this fit done so far.
    pub steps_done: usize,
    pub steps_total: usize,
    /// The global step after the last update (`-1` if the train op has no step value).
    pub global_step: i64,
    /// Mean loss over the steps since the last report.
    pub loss: f64,
    pub examples_per_second: f64,
    pub elapsed: Duration,
}

/// One step's loss, as kept in a session's metric history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    /// The global step after the update (`-1` if the train op has no step value).
    pub step: i64,
    pub loss: f64,
    /// Seconds since the session was created.
    pub wall_time: f64,
}

/// What a finished fit did.
#[derive(Debug, Clone, PartialEq)]
pub struct FitSummary {
    pub steps_done: usize,
    /// The loss of every step, in order.
    pub losses: Vec<f64>,
    pub elapsed: Duration,
}
