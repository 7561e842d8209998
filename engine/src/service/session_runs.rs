//! An engine's sessions as TensorBoard runs, one folder per session under a log folder
//! (`LOGDIR/session-3`), written from the engine's events: what `sluice-engine serve
//! --logdir` writes for every session, and what the notebook's and the REPL's `:logdir`
//! write for the cells' sessions. Each run holds the session's graph (written again when it
//! grows), the scalars of every step (a RunStep's scalar fetches by name; a fit's loss and
//! examples/s at the global step) and the fits' starts and ends as text.

use crate::graph::Graph;
use crate::service::EngineEvent;
use crate::tensorboard::{SummaryError, SummaryWriter, DEFAULT_FLUSH_INTERVAL};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The key of the charts' run among the sessions' (no handle looks like it).
const CHARTS_KEY: &str = " charts";

type Runs = Arc<Mutex<HashMap<String, Arc<SummaryWriter>>>>;

/// Writes [`EngineEvent`]s into one run per session; one thread writes every run's buffered
/// events out every 2 seconds.
pub struct SessionRuns {
    logdir: PathBuf,
    runs: Runs,
    /// Written once: a full disk should not flood the log.
    warned: bool,
    notes: i64,
}

impl SessionRuns {
    /// Runs under `logdir` (made when the first run starts).
    pub fn new(logdir: impl Into<PathBuf>) -> std::io::Result<SessionRuns> {
        let runs = Runs::default();
        let ticking = Arc::downgrade(&runs);
        std::thread::Builder::new()
            .name("sluice-session-runs".into())
            .spawn(move || loop {
                std::thread::sleep(DEFAULT_FLUSH_INTERVAL);
                let Some(runs) = ticking.upgrade() else {
                    return;
                };
                flush_all(&runs);
            })?;
        Ok(SessionRuns {
            logdir: logdir.into(),
            runs,
            warned: false,
            notes: 0,
        })
    }

    pub fn logdir(&self) -> &Path {
        &self.logdir
    }

    /// Records `event`. `graph_of(session)` gives a session's graph when it is new or has
    /// grown. A summary that cannot be written is reported (once) on the log, not to the
    /// session, whose work goes on.
    pub fn record(&mut self, event: &EngineEvent, graph_of: &mut dyn FnMut(&str) -> Option<Graph>) {
        let written = self.write(event, graph_of);
        self.check(written);
    }

    /// Writes every run's buffered events out.
    pub fn flush(&self) {
        flush_all(&self.runs);
    }

    /// The run of `session`, started (with the session's graph) if it is new.
    fn run(
        &mut self,
        session: &str,
        graph_of: &mut dyn FnMut(&str) -> Option<Graph>,
    ) -> Result<Arc<SummaryWriter>, SummaryError> {
        let name = run_name(session);
        self.run_named(session, &name, &mut || graph_of(session))
    }

    fn run_named(
        &mut self,
        key: &str,
        name: &str,
        graph: &mut dyn FnMut() -> Option<Graph>,
    ) -> Result<Arc<SummaryWriter>, SummaryError> {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        match runs.entry(key.to_string()) {
            Entry::Occupied(run) => Ok(run.get().clone()),
            Entry::Vacant(slot) => {
                // A folder an earlier engine's session left (after a restart, numbers
                // start again) is not reused: its steps would mix with the new ones.
                let dir = (1..)
                    .map(|n| match n {
                        1 => self.logdir.join(name),
                        n => self.logdir.join(format!("{name}-{n}")),
                    })
                    .find(|dir| !dir.exists())
                    .unwrap_or_else(|| self.logdir.join(name));
                let run = Arc::new(SummaryWriter::without_timer(dir)?);
                if let Some(graph) = graph() {
                    run.graph(&graph)?;
                }
                Ok(slot.insert(run).clone())
            }
        }
    }

    /// Points a cell plotted for its chart `name` (`sluice_cell::plot`): the run `charts`,
    /// one tag per chart and series (`name/series`).
    pub fn chart(&mut self, name: &str, step: i64, points: &[(String, f64)]) {
        let written = self
            .run_named(CHARTS_KEY, "charts", &mut || None)
            .and_then(|run| {
                let tags: Vec<(String, f64)> = points
                    .iter()
                    .map(|(series, v)| (format!("{name}/{series}"), *v))
                    .collect();
                let values: Vec<(&str, f64)> = tags.iter().map(|(t, v)| (t.as_str(), *v)).collect();
                run.scalars(step, &values)
            });
        self.check(written);
    }

    /// Text notes' steps: in the order they were written.
    fn next_note(&mut self) -> i64 {
        self.notes += 1;
        self.notes
    }

    fn check(&mut self, result: Result<(), SummaryError>) {
        if let Err(e) = result {
            if !std::mem::replace(&mut self.warned, true) {
                tracing::warn!("session summaries are not written: {e}");
            }
        }
    }

    fn write(
        &mut self,
        event: &EngineEvent,
        graph_of: &mut dyn FnMut(&str) -> Option<Graph>,
    ) -> Result<(), SummaryError> {
        match event {
            EngineEvent::SessionCreated { session, .. } => {
                self.run(session, graph_of)?;
                Ok(())
            }
            EngineEvent::GraphChanged { session, .. } => {
                let run = self.run(session, &mut |_| None)?;
                match graph_of(session) {
                    Some(graph) => run.graph(&graph),
                    None => Ok(()),
                }
            }
            EngineEvent::Step {
                session,
                step,
                scalars,
                examples_per_second,
                ..
            } => {
                let mut values: Vec<(String, f64)> = scalars
                    .iter()
                    .map(|(name, v)| (tag_of(name).to_string(), *v))
                    .collect();
                if let Some(rate) = examples_per_second {
                    values.push(("examples_per_second".into(), *rate));
                }
                let values: Vec<(&str, f64)> =
                    values.iter().map(|(t, v)| (t.as_str(), *v)).collect();
                self.run(session, graph_of)?.scalars(*step, &values)
            }
            EngineEvent::FitStarted {
                session,
                steps,
                dataset,
            } => {
                let note = self.next_note();
                self.run(session, graph_of)?.text(
                    "fits",
                    note,
                    &format!("a fit of {steps} steps on `{dataset}` started"),
                )
            }
            EngineEvent::FitEnded {
                session,
                steps_done,
                error,
            } => {
                let how = match error {
                    None => format!("a fit ended: {steps_done} steps done"),
                    Some(e) => format!("a fit stopped after {steps_done} steps: {e}"),
                };
                let note = self.next_note();
                let run = self.run(session, graph_of)?;
                run.text("fits", note, &how)?;
                run.flush()
            }
            EngineEvent::SessionClosed { session } => {
                let closed = (self.runs.lock().unwrap_or_else(|e| e.into_inner())).remove(session);
                match closed {
                    Some(run) => run.flush(),
                    None => Ok(()),
                }
            }
            EngineEvent::Lagged { missed } => {
                tracing::warn!("session summaries missed {missed} events (written too slowly)");
                Ok(())
            }
        }
    }
}

fn flush_all(runs: &Runs) {
    let runs: Vec<Arc<SummaryWriter>> = (runs.lock().unwrap_or_else(|e| e.into_inner()))
        .values()
        .cloned()
        .collect();
    for run in runs {
        if let Err(e) = run.flush() {
            tracing::warn!("session summaries are not written: {e}");
        }
    }
}

/// A run's folder name: the handle's public part (`s3-...` gives `session-3`); the rest of a
/// handle is its secret and stays out of the log folder.
fn run_name(session: &str) -> String {
    let public = session.split('-').next().unwrap_or("");
    let number = public
        .strip_prefix('s')
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()));
    match number {
        Some(n) if !n.is_empty() => format!("session-{n}"),
        _ => "session".to_string(),
    }
}

/// A scalar's tag: a fetch's name without the `:0` of a node's first output.
fn tag_of(name: &str) -> &str {
    name.strip_suffix(":0").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_named_without_the_handles_secret() {
        assert_eq!(run_name("s3-00ab12ff"), "session-3");
        assert_eq!(run_name("s12-x"), "session-12");
        assert_eq!(run_name("../../etc"), "session");
        assert_eq!(run_name("sx-1"), "session");
        assert_eq!(tag_of("loss:0"), "loss");
        assert_eq!(tag_of("split:1"), "split:1");
    }
}
