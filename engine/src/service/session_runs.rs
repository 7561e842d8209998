//! An engine's sessions as TensorBoard runs, one folder per session under a log folder
//! (`LOGDIR/session-3`), written from the engine's events: what `sluice-engine serve
//! --logdir` writes for every session, and what the notebook's and the REPL's `:logdir`
//! write for the cells' sessions. Each run holds the session's graph (written again when it
//! grows), the scalars of its steps (a RunStep's scalar fetches by name, at the session's
//! step count) and of its fits (`fit/loss`, `fit/examples_per_second`, at the global step),
//! and the fits' starts and ends as text.

use crate::graph::Graph;
use crate::service::EngineEvent;
use crate::tensorboard::{SummaryError, SummaryWriter, DEFAULT_FLUSH_INTERVAL};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// The key of the charts' run among the sessions' (no handle looks like it).
const CHARTS_KEY: &str = " charts";

/// One session's run.
struct Run {
    writer: SummaryWriter,
    /// Text notes so far: their steps.
    notes: AtomicI64,
}

type Runs = Arc<Mutex<HashMap<String, Arc<Run>>>>;

/// Writes [`EngineEvent`]s into one run per session; one thread writes every run's buffered
/// events out every 2 seconds.
pub struct SessionRuns {
    logdir: PathBuf,
    runs: Runs,
    /// The folder each session's run took, kept after the run closes: a session whose run
    /// was closed early (see [`EngineEvent::Lagged`]) goes on in the same folder.
    folders: HashMap<String, PathBuf>,
    /// Written once: a full disk should not flood the log.
    warned: bool,
}

impl SessionRuns {
    /// Runs under `logdir`, which is made now.
    pub fn new(logdir: impl Into<PathBuf>) -> std::io::Result<SessionRuns> {
        let logdir = logdir.into();
        std::fs::create_dir_all(&logdir)?;
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
            logdir,
            runs,
            folders: HashMap::new(),
            warned: false,
        })
    }

    /// Records `event`. `graph_of(session)` gives a session's graph (None: the session is
    /// gone, and no run is started for it); it is asked when a run starts and when the graph
    /// grows, never while a lock is held. A summary that cannot be written is reported
    /// (once) on the log, not to the session, whose work goes on.
    pub fn record(&mut self, event: &EngineEvent, graph_of: &mut dyn FnMut(&str) -> Option<Graph>) {
        let written = self.write(event, graph_of);
        self.check(written);
    }

    /// Writes every run's buffered events out.
    pub fn flush(&self) {
        flush_all(&self.runs);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Run>>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn existing(&self, key: &str) -> Option<Arc<Run>> {
        self.lock().get(key).cloned()
    }

    /// The run of `session`, started with the session's graph if it is new; None when the
    /// session is unknown to `graph_of` (an event that came after its session closed).
    fn run(
        &mut self,
        session: &str,
        graph_of: &mut dyn FnMut(&str) -> Option<Graph>,
    ) -> Result<Option<Arc<Run>>, SummaryError> {
        if let Some(run) = self.existing(session) {
            return Ok(Some(run));
        }
        let Some(graph) = graph_of(session) else {
            return Ok(None);
        };
        let run = self.start(session, &run_name(session))?;
        run.writer.graph(&graph)?;
        Ok(Some(run))
    }

    /// Starts the run `key` in a folder of its own: one a session had before, else `name`,
    /// or `name-2`, ... where an earlier engine's session left `name` (after a restart,
    /// numbers start again, and steps must not mix).
    fn start(&mut self, key: &str, name: &str) -> Result<Arc<Run>, SummaryError> {
        let dir = match self.folders.get(key) {
            Some(dir) => dir.clone(),
            None => (1..)
                .map(|n| match n {
                    1 => self.logdir.join(name),
                    n => self.logdir.join(format!("{name}-{n}")),
                })
                .find(|dir| !dir.exists())
                .unwrap_or_else(|| self.logdir.join(name)),
        };
        let run = Arc::new(Run {
            writer: SummaryWriter::without_timer(&dir)?,
            notes: AtomicI64::new(0),
        });
        self.folders.insert(key.to_string(), dir);
        self.lock().insert(key.to_string(), run.clone());
        Ok(run)
    }

    /// Points a cell plotted for its chart `name` (`sluice_cell::plot`): the run `charts`,
    /// one tag per chart and series (`name/series`).
    pub fn chart(&mut self, name: &str, step: i64, points: &[(String, f64)]) {
        let run = match self.existing(CHARTS_KEY) {
            Some(run) => Ok(run),
            None => self.start(CHARTS_KEY, "charts"),
        };
        let written = run.and_then(|run| {
            let tags: Vec<(String, f64)> = points
                .iter()
                .map(|(series, v)| (format!("{name}/{series}"), *v))
                .collect();
            let values: Vec<(&str, f64)> = tags.iter().map(|(t, v)| (t.as_str(), *v)).collect();
            run.writer.scalars(step, &values)
        });
        self.check(written);
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
                // A new run starts with the graph as it is now; a known one gets it anew.
                if let Some(run) = self.existing(session) {
                    if let Some(graph) = graph_of(session) {
                        run.writer.graph(&graph)?;
                    }
                    return Ok(());
                }
                self.run(session, graph_of)?;
                Ok(())
            }
            EngineEvent::Step {
                session,
                step,
                scalars,
                examples_per_second,
                from_fit,
                ..
            } => {
                let Some(run) = self.run(session, graph_of)? else {
                    return Ok(());
                };
                let mut values: Vec<(String, f64)> = scalars
                    .iter()
                    .map(|(name, v)| match from_fit {
                        true => (format!("fit/{name}"), *v),
                        false => (tag_of(name).to_string(), *v),
                    })
                    .collect();
                if let Some(rate) = examples_per_second {
                    values.push(("fit/examples_per_second".into(), *rate));
                }
                let values: Vec<(&str, f64)> =
                    values.iter().map(|(t, v)| (t.as_str(), *v)).collect();
                run.writer.scalars(*step, &values)
            }
            EngineEvent::FitStarted {
                session,
                steps,
                dataset,
            } => match self.run(session, graph_of)? {
                Some(run) => run.note(&format!("a fit of {steps} steps on `{dataset}` started")),
                None => Ok(()),
            },
            EngineEvent::FitEnded {
                session,
                steps_done,
                error,
            } => {
                let how = match error {
                    None => format!("a fit ended: {steps_done} steps done"),
                    Some(e) => format!("a fit stopped after {steps_done} steps: {e}"),
                };
                match self.run(session, graph_of)? {
                    Some(run) => {
                        run.note(&how)?;
                        run.writer.flush()
                    }
                    None => Ok(()),
                }
            }
            EngineEvent::SessionClosed { session } => {
                let closed = self.lock().remove(session);
                match closed {
                    Some(run) => run.writer.flush(),
                    None => Ok(()),
                }
            }
            EngineEvent::Lagged { missed } => {
                tracing::warn!("session summaries missed {missed} events (written too slowly)");
                // A SessionClosed may be among them: close the runs of sessions gone.
                let open: Vec<String> = (self.lock().keys())
                    .filter(|k| k.as_str() != CHARTS_KEY)
                    .cloned()
                    .collect();
                for session in open {
                    if graph_of(&session).is_none() {
                        if let Some(run) = self.lock().remove(&session) {
                            run.writer.flush()?;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

impl Run {
    /// A line of text in the run's `fits` notes, at the next note's step.
    fn note(&self, text: &str) -> Result<(), SummaryError> {
        let step = self.notes.fetch_add(1, Ordering::Relaxed) + 1;
        self.writer.text("fits", step, text)
    }
}

fn flush_all(runs: &Runs) {
    let runs: Vec<Arc<Run>> = (runs.lock().unwrap_or_else(|e| e.into_inner()))
        .values()
        .cloned()
        .collect();
    for run in runs {
        if let Err(e) = run.writer.flush() {
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
