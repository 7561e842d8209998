//! An engine-side training loop: mini-batches from a data set held by the engine, one step
//! after another, with progress reported as it goes and cancellation between (never within)
//! variable updates.

use crate::data::{Batch, Dataset};
use crate::error::SessionError;
use crate::graph::Output;
use crate::session::Session;
use std::time::{Duration, Instant};

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

impl Session {
    /// Trains on `data` as `config` says, calling `on_progress` every `report_every` steps
    /// and after the last. A cancel (see [`Session::cancel_token`]) ends it with
    /// [`SessionError::Cancelled`] after the step in flight; the updates made so far stay.
    pub fn fit(
        &mut self,
        data: &Dataset,
        config: &FitConfig,
        on_progress: &mut dyn FnMut(&FitProgress),
    ) -> Result<FitSummary, SessionError> {
        if data.is_empty() {
            return Err(SessionError::Kernel {
                node: config.inputs.name(),
                op: "Fit".into(),
                message: "the data set is empty".into(),
            });
        }
        let started = Instant::now();
        let mut batches = data.batches(config.batch_size.max(1), config.seed);
        // Capped: a huge `steps` (from a remote request) must not allocate up front.
        let mut losses = Vec::with_capacity(config.steps.min(1 << 20));
        let (mut window_loss, mut window_steps, mut window_start) = (0.0, 0usize, started);
        let report_every = config.report_every.max(1);
        for done in 1..=config.steps {
            let Some(batch) = batches.next() else { break };
            let examples = batch.inputs.shape().first().copied().unwrap_or(0);
            let feed = feed_values(batch, config.label_format);
            let values = self.run(
                &[config.loss, config.train],
                &[(config.inputs, feed.0), (config.labels, feed.1)],
            )?;
            let loss = values[0].scalar_f64().unwrap_or(f64::NAN);
            let global_step = values[1].scalar_f64().map_or(-1, |s| s as i64);
            losses.push(loss);
            self.record(global_step, loss);
            window_loss += loss;
            window_steps += 1;
            if done % report_every == 0 || done == config.steps {
                let seconds = window_start.elapsed().as_secs_f64().max(1e-9);
                on_progress(&FitProgress {
                    steps_done: done,
                    steps_total: config.steps,
                    global_step,
                    loss: window_loss / window_steps as f64,
                    examples_per_second: (window_steps * examples) as f64 / seconds,
                    elapsed: started.elapsed(),
                });
                (window_loss, window_steps, window_start) = (0.0, 0, Instant::now());
            }
        }
        Ok(FitSummary {
            steps_done: losses.len(),
            losses,
            elapsed: started.elapsed(),
        })
    }
}

/// The (inputs, labels) feed values of a batch.
fn feed_values(batch: Batch, format: LabelFormat) -> (crate::Tensor, crate::Tensor) {
    match format {
        LabelFormat::OneHot => (batch.inputs, batch.one_hot),
        LabelFormat::Indices => (batch.inputs, batch.labels),
    }
}
