//! A trainer's TensorBoard run (`TrainerOptions::logdir`): the placed graph once, the loss of
//! every global step, each worker's examples/s, staleness and dropped gradients at its
//! reports, and what happened to the job (checkpoints, lost and stalled tasks, restores) as
//! text. A summary that cannot be written is reported once and training goes on: the run's
//! log is worth less than the run.

use super::trainer::TrainEvent;
use crate::distributed::DistributedSession;
use crate::tensorboard::{SummaryError, SummaryWriter};

pub(crate) struct TrainSummaries {
    writer: SummaryWriter,
    /// The global step of the last `Step` event, for the events that carry none.
    step: i64,
    graph_written: bool,
    warned: bool,
}

impl TrainSummaries {
    pub(crate) fn new(writer: SummaryWriter) -> TrainSummaries {
        TrainSummaries {
            writer,
            step: 0,
            graph_written: false,
            warned: false,
        }
    }

    pub(crate) fn writer(&self) -> &SummaryWriter {
        &self.writer
    }

    /// The graph as the first session placed it (each node on its task and device).
    pub(crate) fn graph(&mut self, session: &mut DistributedSession) {
        if self.graph_written {
            return;
        }
        self.graph_written = true;
        let written = session
            .placed_graph()
            .map_err(|e| e.to_string())
            .and_then(|placed| self.writer.graph(&placed).map_err(|e| e.to_string()));
        if let Err(e) = written {
            tracing::warn!("the trainer's graph is not in its TensorBoard run: {e}");
        }
    }

    pub(crate) fn record(&mut self, event: &TrainEvent) {
        let written = self.write(event);
        self.check(written);
    }

    pub(crate) fn flush(&mut self) {
        let flushed = self.writer.flush();
        self.check(flushed);
    }

    fn check(&mut self, result: Result<(), SummaryError>) {
        if let Err(e) = result {
            if !std::mem::replace(&mut self.warned, true) {
                tracing::warn!("training goes on without its TensorBoard summaries: {e}");
            }
        }
    }

    fn write(&mut self, event: &TrainEvent) -> Result<(), SummaryError> {
        let w = &self.writer;
        match event {
            TrainEvent::Step { step, loss } => {
                self.step = i64::try_from(*step).unwrap_or(i64::MAX);
                w.scalar("loss", self.step, *loss)
            }
            TrainEvent::Worker {
                replica,
                examples_per_sec,
                mean_staleness,
                dropped,
                ..
            } => w.scalars(
                self.step,
                &[
                    (
                        &format!("worker{replica}/examples_per_second"),
                        *examples_per_sec,
                    ),
                    (&format!("worker{replica}/staleness"), *mean_staleness),
                    (
                        &format!("worker{replica}/dropped_gradients"),
                        *dropped as f64,
                    ),
                ],
            ),
            TrainEvent::Checkpoint { step, path } => w.text(
                "events",
                i64::try_from(*step).unwrap_or(i64::MAX),
                &format!("checkpoint `{}`", path.display()),
            ),
            TrainEvent::Lost { tasks, message } => w.text(
                "events",
                self.step,
                &format!("lost {}: {message}", tasks.join(", ")),
            ),
            TrainEvent::Stalled { missing, seconds } => w.text(
                "events",
                self.step,
                &format!(
                    "no step for {seconds:.1} s; no answer from {}",
                    missing.join(", ")
                ),
            ),
            TrainEvent::Restored { step, checkpoint } => {
                let from = checkpoint
                    .as_ref()
                    .map_or("the start".to_string(), |c| format!("`{}`", c.display()));
                w.text(
                    "events",
                    i64::try_from(*step).unwrap_or(i64::MAX),
                    &format!("a new session goes on from {from}"),
                )
            }
        }
    }
}
