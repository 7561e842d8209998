//! `:logdir DIR`: the cells' sessions and charts as TensorBoard runs
//! ([`SessionRuns`]), written on a thread of their own: a new run asks the engine for its
//! session's graph, which must not hold up the cell's outputs and replies.

use crate::engine_link::EngineLink;
use crossbeam_channel::{Sender, TrySendError};
use sluice::service::{EngineEvent, SessionRuns};
use std::path::PathBuf;
use std::sync::Arc;

/// Events waiting for the writer; past this they are dropped (and said so, once).
const BACKLOG: usize = 4096;

enum Input {
    Event(EngineEvent),
    Chart {
        name: String,
        step: i64,
        points: Vec<(String, f64)>,
    },
}

/// The writer of one log folder; dropping it ends its thread, which flushes every run.
pub struct LogdirWriter {
    tx: Sender<Input>,
    dropped: bool,
}

impl LogdirWriter {
    /// Starts writing runs under `dir` (made now; a relative folder is the frontend's).
    pub fn start(dir: &str, engine: Arc<EngineLink>) -> std::io::Result<(LogdirWriter, PathBuf)> {
        let mut runs = SessionRuns::new(dir)?;
        let shown = std::path::absolute(dir).unwrap_or_else(|_| dir.into());
        let (tx, rx) = crossbeam_channel::bounded::<Input>(BACKLOG);
        std::thread::Builder::new()
            .name("sluice-logdir".into())
            .spawn(move || {
                let mut graph_of = |handle: &str| engine.fetch_graph(engine.addr(), handle).ok();
                for input in rx {
                    match input {
                        Input::Event(event) => runs.record(&event, &mut graph_of),
                        Input::Chart { name, step, points } => runs.chart(&name, step, &points),
                    }
                }
                runs.flush();
            })?;
        Ok((LogdirWriter { tx, dropped: false }, shown))
    }

    pub fn event(&mut self, event: &EngineEvent) {
        self.send(Input::Event(event.clone()));
    }

    pub fn chart(&mut self, name: &str, step: i64, points: &[(String, f64)]) {
        self.send(Input::Chart {
            name: name.to_string(),
            step,
            points: points.to_vec(),
        });
    }

    fn send(&mut self, input: Input) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(input) {
            if !std::mem::replace(&mut self.dropped, true) {
                tracing::warn!("TensorBoard runs fall behind: events are left out");
            }
        }
    }
}
