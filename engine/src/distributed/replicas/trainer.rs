//! The data-parallel trainer: drives the replicas of a [`Replicated`] graph on a cluster,
//! writes checkpoints, and keeps the job alive when tasks fail: a failed step is checked
//! against the tasks (a heartbeat to each); a lost task aborts a synchronous step or is
//! skipped by asynchronous ones; once every task answers again the session is built anew
//! and the variables come back from the newest checkpoint. A task that does not come back
//! within the stall time is named in a stall report.

use super::coordinate::{self, Outcome};
use super::strategy::{Phases, Replicated};
use super::summaries::TrainSummaries;
use crate::checkpoint::{self, CheckpointError};
use crate::distributed::cluster::ClusterSpec;
use crate::distributed::peer;
use crate::distributed::{DistributedOptions, DistributedSession};
use crate::error::{GraphError, SessionError};
use crate::runner::Runner;
use crate::tensor::Tensor;
use crate::tensorboard::{SummaryError, SummaryWriter};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why training stopped short.
#[derive(Debug, Error)]
pub enum TrainError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The TensorBoard run (`logdir`) could not be started.
    #[error(transparent)]
    Summaries(#[from] SummaryError),
    /// Tasks stayed unreachable past the recovery time.
    #[error("training stalled: no answer from {} for {seconds:.1} s", missing.join(", "))]
    Stalled { missing: Vec<String>, seconds: f64 },
    #[error("batch for replica {replica}: {message}")]
    Batch { replica: usize, message: String },
    /// Steps kept failing on lost tasks without any progress in between.
    #[error("training failed {times} times at step {step} without progress; last: {message}")]
    Failing {
        times: u32,
        step: u64,
        message: String,
    },
}

/// Recoveries in a row at the same step before the trainer gives up.
const MAX_RECOVERIES_WITHOUT_PROGRESS: u32 = 5;

/// How long to train and how to stay alive.
#[derive(Debug, Clone)]
pub struct TrainerOptions {
    /// Train until the global step reaches this.
    pub steps: u64,
    /// Where checkpoints go (none: no checkpoints, and a restart begins again at step 0).
    pub checkpoint_dir: Option<PathBuf>,
    /// A checkpoint every this many global steps...
    pub checkpoint_steps: Option<u64>,
    /// ... and/or every this many seconds.
    pub checkpoint_secs: Option<f64>,
    /// Checkpoints kept (0: all).
    pub keep: usize,
    /// After this long without a step, a stall report names the tasks that do not answer.
    pub stall_after: Duration,
    /// How long to wait for lost tasks to come back before giving up.
    pub recovery_timeout: Duration,
    /// Steps between per-worker reports.
    pub report_every: u64,
    /// The distributed session's options (its RPC deadline above all).
    pub session: DistributedOptions,
    /// All-reduce training whose towers read their own batches (`Tower::reading`): steps
    /// each worker runs per order from the trainer, in one call (its loss and events are
    /// the last step's). More steps per order take the trainer's round trips off the
    /// step time; 1 gives an event per step.
    pub steps_per_order: u32,
    /// Where to write a TensorBoard run (none: no summaries): the placed graph, the loss of
    /// every step, each worker's examples/s, staleness and dropped gradients, and the job's
    /// events (checkpoints, lost tasks) as text.
    pub logdir: Option<PathBuf>,
}

impl Default for TrainerOptions {
    fn default() -> Self {
        TrainerOptions {
            steps: 1000,
            checkpoint_dir: None,
            checkpoint_steps: None,
            checkpoint_secs: None,
            keep: 3,
            stall_after: Duration::from_secs(10),
            recovery_timeout: Duration::from_secs(60),
            report_every: 100,
            session: DistributedOptions::default(),
            steps_per_order: 1,
            logdir: None,
        }
    }
}

/// What the trainer tells a frontend as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// A global step: the mean loss of the gradients it applied.
    Step {
        step: u64,
        loss: f64,
    },
    /// One replica's progress since its last report.
    Worker {
        replica: usize,
        task: String,
        steps: u64,
        examples_per_sec: f64,
        /// Updates by others between this replica's read of the variables and its own
        /// update (asynchronous), or steps behind when its gradient came (synchronous).
        mean_staleness: f64,
        /// Gradients dropped as stale since the last report.
        dropped: u64,
    },
    Checkpoint {
        step: u64,
        path: PathBuf,
    },
    /// A step failed because these tasks are gone (or restarted).
    Lost {
        tasks: Vec<String>,
        message: String,
    },
    /// No step for `seconds`: these tasks do not answer.
    Stalled {
        missing: Vec<String>,
        seconds: f64,
    },
    /// A new session runs, from this checkpoint's step (none: from the start).
    Restored {
        step: u64,
        checkpoint: Option<PathBuf>,
    },
}

/// Drives a replicated graph on a cluster; see the module's documentation.
pub struct Trainer {
    pub(crate) model: Replicated,
    cluster: ClusterSpec,
    pub(crate) options: TrainerOptions,
    /// Shared with the replica threads while they run.
    pub(crate) session: Option<Arc<DistributedSession>>,
    pub(crate) step: u64,
    /// What the last all-reduce step moved between workers.
    pub(crate) last_transfers: crate::distributed::StepTransfers,
    last_checkpoint: (u64, Instant),
    restored_from: Option<PathBuf>,
    summaries: Option<TrainSummaries>,
}

fn no_session() -> TrainError {
    SessionError::Placement("the trainer has no session (its recovery failed)".into()).into()
}

impl Trainer {
    /// Connects to the cluster and gives the variables their values: from the newest
    /// checkpoint in the checkpoint folder when there is one, else their initialisers.
    pub fn new(
        model: Replicated,
        cluster: &ClusterSpec,
        options: TrainerOptions,
    ) -> Result<Trainer, TrainError> {
        let summaries = match &options.logdir {
            Some(dir) => Some(TrainSummaries::new(SummaryWriter::new(dir)?)),
            None => None,
        };
        let mut trainer = Trainer {
            model,
            cluster: cluster.clone(),
            options,
            session: None,
            step: 0,
            last_transfers: Default::default(),
            last_checkpoint: (0, Instant::now()),
            restored_from: None,
            summaries,
        };
        // Tasks that are still starting (pods, srun) are waited for, up to the recovery time.
        trainer.recover(&mut |_| {}, None)?;
        Ok(trainer)
    }

    /// The global step reached.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The checkpoint the current session started from, if any.
    pub fn restored_from(&self) -> Option<&PathBuf> {
        self.restored_from.as_ref()
    }

    pub fn model(&self) -> &Replicated {
        &self.model
    }

    /// The distributed session, for evaluation or inspection.
    pub fn session(&self) -> Result<&DistributedSession, TrainError> {
        self.session.as_deref().ok_or_else(no_session)
    }

    /// The session for calls that change it (placement tables, pictures of the graph).
    pub fn session_mut(&mut self) -> Result<&mut DistributedSession, TrainError> {
        self.session
            .as_mut()
            .and_then(Arc::get_mut)
            .ok_or_else(no_session)
    }

    /// The TensorBoard run the trainer writes (`logdir`), for a program's own summaries
    /// (test accuracy, say).
    pub fn summary_writer(&self) -> Option<&SummaryWriter> {
        self.summaries.as_ref().map(TrainSummaries::writer)
    }

    /// What the last all-reduce step moved between the workers.
    pub fn last_step_transfers(&self) -> &crate::distributed::StepTransfers {
        &self.last_transfers
    }

    /// A new session; variables from the newest checkpoint, or `carry` (values read from the
    /// last session, with their step) when given.
    fn connect(
        &mut self,
        carry: Option<(u64, Vec<(crate::graph::Output, Tensor)>)>,
    ) -> Result<(), TrainError> {
        self.session = None;
        let graph = self.model.graph.clone();
        let mut sess =
            DistributedSession::new(&graph, &self.cluster, self.options.session.clone())?;
        sess.init_variables()?;
        self.step = 0;
        self.restored_from = None;
        let from_checkpoint = if carry.is_some() {
            None
        } else {
            self.options.checkpoint_dir.as_ref()
        };
        if let Some(dir) = from_checkpoint {
            if let Some(latest) = checkpoint::latest(dir)? {
                let restored = checkpoint::restore(&mut sess, &graph, &latest.path)?;
                self.step = restored.step;
                self.restored_from = Some(latest.path);
            }
        }
        if let Some((step, values)) = carry {
            for (var, value) in values {
                sess.set_variable(var, value)?;
            }
            self.step = step;
        }
        if let Phases::AllReduce { copies, .. } = &self.model.phases {
            // Every replica starts from replica 0's values.
            for copy in copies.iter().skip(1) {
                for (&from, &to) in copies[0].iter().zip(copy) {
                    if let Some(value) = sess.variable(from)? {
                        sess.set_variable(to, value)?;
                    }
                }
            }
        }
        sess.prepare_graph()?;
        if let Some(summaries) = &mut self.summaries {
            summaries.graph(&mut sess);
        }
        self.session = Some(Arc::new(sess));
        self.last_checkpoint = (self.step, Instant::now());
        Ok(())
    }

    /// Trains until the global step reaches `options.steps`. `batches(replica)` gives a
    /// replica's next batch: one tensor per input of its tower, in order. Failed tasks are
    /// waited for and the job goes on from the newest checkpoint.
    pub fn fit(
        &mut self,
        batches: &mut dyn FnMut(usize) -> Vec<Tensor>,
        on_event: &mut dyn FnMut(&TrainEvent),
    ) -> Result<u64, TrainError> {
        // The summaries see every event the caller sees; they stay with the trainer after.
        let Some(mut summaries) = self.summaries.take() else {
            return self.fit_events(batches, on_event);
        };
        let reached = self.fit_events(batches, &mut |event| {
            summaries.record(event);
            on_event(event);
        });
        summaries.flush();
        self.summaries = Some(summaries);
        reached
    }

    fn fit_events(
        &mut self,
        batches: &mut dyn FnMut(usize) -> Vec<Tensor>,
        on_event: &mut dyn FnMut(&TrainEvent),
    ) -> Result<u64, TrainError> {
        if self.session.is_none() {
            self.recover(on_event, None)?;
        }
        let mut failures = (self.step, 0u32);
        while self.step < self.options.steps {
            match coordinate::run(self, batches, on_event)? {
                Outcome::Finished => break,
                Outcome::Lost { tasks, message } => {
                    failures = match failures {
                        (step, times) if step == self.step => (step, times + 1),
                        _ => (self.step, 1),
                    };
                    if failures.1 > MAX_RECOVERIES_WITHOUT_PROGRESS {
                        return Err(TrainError::Failing {
                            times: failures.1,
                            step: self.step,
                            message,
                        });
                    }
                    // With every parameter server still up, the variables are where they
                    // were: carry them over (none of them is lost). Else the checkpoint.
                    let servers_up = !tasks.iter().any(|t| t.starts_with("/job:ps"));
                    let carry = servers_up.then(|| self.snapshot().ok()).flatten();
                    on_event(&TrainEvent::Lost { tasks, message });
                    self.recover(on_event, carry)?;
                }
                Outcome::Rejoin => {
                    // Nothing is lost: the values go over to a session with everyone.
                    let carry = self.snapshot()?;
                    self.recover(on_event, Some(carry))?;
                }
            }
        }
        // The last step is kept, whatever the interval.
        if self.step > self.last_checkpoint.0 {
            self.checkpoint(on_event)?;
        }
        Ok(self.step)
    }

    /// Metrics of replica 0's tower on one batch (its inputs in order), by name.
    pub fn evaluate(&mut self, inputs: &[Tensor]) -> Result<Vec<(String, f64)>, TrainError> {
        let tower = self.model.towers[0].clone();
        let feeds: Vec<_> = tower
            .inputs
            .iter()
            .copied()
            .zip(inputs.iter().cloned())
            .collect();
        let outputs: Vec<_> = tower.metrics.iter().map(|(_, m)| *m).collect();
        let (values, _) = self.session()?.run_concurrent(&outputs, &feeds, &[])?;
        Ok((tower.metrics.iter())
            .zip(values)
            .map(|((name, _), v)| (name.clone(), v.scalar_f64().unwrap_or(f64::NAN)))
            .collect())
    }

    /// The step at which the next checkpoint by steps is due, if any.
    pub(crate) fn next_checkpoint_step(&self) -> Option<u64> {
        let every = self.options.checkpoint_steps?;
        Some(self.last_checkpoint.0 + every.max(1))
    }

    /// Writes a checkpoint if one is due (by steps or seconds).
    pub(crate) fn checkpoint_if_due(
        &mut self,
        on_event: &mut dyn FnMut(&TrainEvent),
    ) -> Result<(), TrainError> {
        let (at, when) = self.last_checkpoint;
        let by_steps = (self.options.checkpoint_steps).is_some_and(|n| self.step >= at + n.max(1));
        let by_time =
            (self.options.checkpoint_secs).is_some_and(|s| when.elapsed().as_secs_f64() >= s);
        if (by_steps || by_time) && self.step > at {
            self.checkpoint(on_event)?;
        }
        Ok(())
    }

    /// Writes a checkpoint of the current step now (when a folder is set).
    pub fn checkpoint(&mut self, on_event: &mut dyn FnMut(&TrainEvent)) -> Result<(), TrainError> {
        let Some(dir) = self.options.checkpoint_dir.clone() else {
            return Ok(());
        };
        let Some(sess) = self.session.as_ref() else {
            return Ok(());
        };
        let saved = checkpoint::save_variables(
            sess.as_ref(),
            &self.model.graph,
            &self.model.saved,
            &dir,
            self.step,
            self.options.keep,
        )?;
        self.last_checkpoint = (self.step, Instant::now());
        on_event(&TrainEvent::Checkpoint {
            step: self.step,
            path: saved.path,
        });
        Ok(())
    }

    /// The tasks that do not answer a heartbeat within a second, or answer as a different
    /// incarnation than the session knows (they restarted and lost its graph).
    pub(crate) fn lost_tasks(&self) -> Vec<String> {
        let known = self.session.as_ref().map(|s| s.tasks()).unwrap_or_default();
        let probes: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (self.cluster.tasks().into_iter())
                .map(|task| {
                    let addr = self.cluster.addr(&task).unwrap_or_default().to_string();
                    let known = known.iter().find(|k| k.name == task).map(|k| k.incarnation);
                    scope.spawn(move || {
                        let answer = peer::status(&addr, Duration::from_secs(1));
                        let alive = match (answer, known) {
                            (Ok((_, now)), Some(then)) => now == then,
                            (Ok(_), None) => true,
                            (Err(_), _) => false,
                        };
                        (task.to_string(), alive)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        (probes.into_iter())
            .filter(|(_, alive)| !alive)
            .map(|(task, _)| task)
            .collect()
    }

    /// The saved variables' values now, with the step.
    fn snapshot(&self) -> Result<(u64, Vec<(crate::graph::Output, Tensor)>), TrainError> {
        let sess = self.session()?;
        let mut values = Vec::with_capacity(self.model.saved.len());
        let mut step = self.step;
        for &var in &self.model.saved {
            if let Some(value) = sess.variable(var)? {
                // The step the values belong to (an update may have landed after the last
                // step the trainer counted).
                if var == self.model.global_step {
                    step = value.scalar_f64().map_or(step, |s| s as u64);
                }
                values.push((var, value));
            }
        }
        Ok((step, values))
    }

    /// Tasks that do not answer at all (restarted ones do).
    pub(crate) fn unreachable_tasks(&self) -> Vec<String> {
        let tasks = self.cluster.tasks();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (tasks.iter())
                .map(|task| {
                    let addr = self.cluster.addr(task).unwrap_or_default().to_string();
                    scope.spawn(move || peer::status(&addr, Duration::from_secs(1)).is_err())
                })
                .collect();
            (tasks.iter().zip(handles))
                .filter_map(|(t, h)| h.join().unwrap_or(true).then(|| t.to_string()))
                .collect()
        })
    }

    /// Waits for every task to answer, then starts a new session from the newest
    /// checkpoint; gives up with a stall report past the recovery time.
    fn recover(
        &mut self,
        on_event: &mut dyn FnMut(&TrainEvent),
        carry: Option<(u64, Vec<(crate::graph::Output, Tensor)>)>,
    ) -> Result<(), TrainError> {
        // The old session's graphs are gone with the restarted tasks; the others drop theirs.
        self.session = None;
        let started = Instant::now();
        let mut reported = false;
        loop {
            let mut missing = self.unreachable_tasks();
            if missing.is_empty() {
                match self.connect(carry.clone()) {
                    Ok(()) => break,
                    // A task went away again while the session was being built: wait on.
                    Err(TrainError::Session(SessionError::Remote(e))) => {
                        missing = vec![e.to_string()];
                    }
                    Err(e) => return Err(e),
                }
            }
            let seconds = started.elapsed().as_secs_f64();
            if !reported && started.elapsed() >= self.options.stall_after {
                on_event(&TrainEvent::Stalled {
                    missing: missing.clone(),
                    seconds,
                });
                reported = true;
            }
            if started.elapsed() >= self.options.recovery_timeout {
                return Err(TrainError::Stalled { missing, seconds });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        on_event(&TrainEvent::Restored {
            step: self.step,
            checkpoint: self.restored_from.clone(),
        });
        Ok(())
    }
}
