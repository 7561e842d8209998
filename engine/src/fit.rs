//! What a training loop is asked to do and what it reports: shared by the in-process loop
//! (`Session::fit`, in session/fit_loop.rs) and the remote one (`RemoteSession::fit`).

use crate::error::SessionError;
use crate::graph::Output;
use crate::tensorboard::SummaryWriter;
use std::path::PathBuf;
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
    /// Where to write the fit's TensorBoard run (none: no run): each report's loss and
    /// examples/s at its global step. The caller's side writes it, for a remote fit too.
    pub logdir: Option<PathBuf>,
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
            logdir: None,
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

/// `on_progress`, writing each report into the fit's TensorBoard run first when
/// `config.logdir` asks for one (at the global step, or the fit's own steps without one).
/// A report that cannot be written is logged once; the fit goes on.
pub(crate) fn with_summaries<'a>(
    config: &FitConfig,
    on_progress: &'a mut dyn FnMut(&FitProgress),
) -> Result<impl FnMut(&FitProgress) + 'a, SessionError> {
    let writer = match &config.logdir {
        Some(dir) => Some(
            SummaryWriter::new(dir)
                .map_err(|e| SessionError::Summaries(format!("the fit's TensorBoard run: {e}")))?,
        ),
        None => None,
    };
    let mut warned = false;
    Ok(move |p: &FitProgress| {
        if let Some(writer) = &writer {
            let step = if p.global_step >= 0 {
                p.global_step
            } else {
                i64::try_from(p.steps_done).unwrap_or(i64::MAX)
            };
            let values = [
                ("loss", p.loss),
                ("examples_per_second", p.examples_per_second),
            ];
            let last = p.steps_done == p.steps_total;
            let written = (writer.scalars(step, &values)).and_then(|()| {
                if last {
                    writer.flush()
                } else {
                    Ok(())
                }
            });
            if let Err(e) = written {
                if !std::mem::replace(&mut warned, true) {
                    tracing::warn!("the fit goes on without its TensorBoard run: {e}");
                }
            }
        }
        on_progress(p);
    })
}
