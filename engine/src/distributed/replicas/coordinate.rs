//! The coordinator's loops: one thread per replica runs that replica's two phases when told
//! to (each a concurrent step of the distributed session), and the coordinator decides
//! what each report means: a fresh gradient, a stale one to drop, an update to apply, a
//! replica to hold back, a lost task.

use super::replica::{
    checked_batch, replica_loop, scalar, send, Feeding, Order, ReplicaPlan, Report,
};
use super::strategy::{Phases, UpdateStep};
use super::trainer::{TrainError, TrainEvent, Trainer};
use crate::distributed::DistributedSession;
use crate::error::SessionError;
use crate::graph::Output;
use crate::runner::Runner;
use crate::tensor::Tensor;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// How a run of the coordinator ended.
pub(crate) enum Outcome {
    Finished,
    /// Tasks were lost: recover from the newest checkpoint.
    Lost {
        tasks: Vec<String>,
        message: String,
    },
    /// Lost tasks answer again: start a session with all of them.
    Rejoin,
}

/// Per-replica figures between reports.
#[derive(Default, Clone)]
struct WorkerStats {
    steps: u64,
    examples: usize,
    staleness: u64,
    dropped: u64,
}

impl WorkerStats {
    /// One more step of `examples` examples.
    fn count(&mut self, examples: usize) -> &mut Self {
        self.count_steps(1, examples)
    }

    /// `steps` more steps of `examples` examples each.
    fn count_steps(&mut self, steps: u64, examples: usize) -> &mut Self {
        self.steps += steps;
        self.examples += examples.saturating_mul(steps as usize);
        self
    }
}

struct Board<'a> {
    trainer: &'a mut Trainer,
    stats: Vec<WorkerStats>,
    since: Instant,
    losses: Vec<f64>,
    /// Reports are due each time the step passes a multiple of `report_every` (steps of
    /// asynchronous replicas may jump over one).
    reported: u64,
}

impl Board<'_> {
    fn worker_reports(&mut self, on_event: &mut dyn FnMut(&TrainEvent)) {
        let every = self.trainer.options.report_every.max(1);
        if self.trainer.step / every <= self.reported {
            return;
        }
        self.reported = self.trainer.step / every;
        let wall = self.since.elapsed().as_secs_f64().max(1e-9);
        for (replica, s) in self.stats.iter_mut().enumerate() {
            on_event(&TrainEvent::Worker {
                replica,
                task: worker_name(replica),
                steps: s.steps,
                examples_per_sec: s.examples as f64 / wall,
                mean_staleness: s.staleness as f64 / s.steps.max(1) as f64,
                dropped: s.dropped,
            });
            *s = WorkerStats::default();
        }
        self.since = Instant::now();
    }

    fn stepped(&mut self, on_event: &mut dyn FnMut(&TrainEvent)) -> Result<(), TrainError> {
        let loss = self.losses.iter().sum::<f64>() / self.losses.len().max(1) as f64;
        self.losses.clear();
        on_event(&TrainEvent::Step {
            step: self.trainer.step,
            loss,
        });
        self.worker_reports(on_event);
        self.trainer.checkpoint_if_due(on_event)
    }
}

/// How many steps the next order runs: `steps_per_order`, but never past the last step, the
/// next report or the next checkpoint by steps, so those come where they would one step a
/// time.
fn steps_in_order(trainer: &Trainer) -> u32 {
    let options = &trainer.options;
    let step = trainer.step;
    let mut times = u64::from(options.steps_per_order.max(1)).min(options.steps - step);
    let every = options.report_every.max(1);
    times = times.min(every - step % every);
    if let Some(due) = trainer.next_checkpoint_step().filter(|&due| due > step) {
        times = times.min(due - step);
    }
    times.max(1) as u32
}

fn worker_name(replica: usize) -> String {
    format!("/job:worker/task:{replica}")
}

fn no_session() -> Outcome {
    Outcome::Lost {
        tasks: Vec::new(),
        message: "no session".into(),
    }
}

/// Turns a failed step into a lost-task outcome when a task is gone, else an error.
fn failure(trainer: &Trainer, error: SessionError) -> Result<Outcome, TrainError> {
    let tasks = trainer.lost_tasks();
    if tasks.is_empty() {
        return Err(error.into());
    }
    Ok(Outcome::Lost {
        tasks,
        message: error.to_string(),
    })
}

/// Runs the replicas until the last step, a lost task, or an error.
pub(crate) fn run(
    trainer: &mut Trainer,
    batches: &mut dyn FnMut(usize) -> Vec<Tensor>,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<Outcome, TrainError> {
    let phases = trainer.model.phases.clone();
    if let Phases::AllReduce { train, .. } = phases {
        return run_all_reduce(trainer, train, batches, on_event);
    }
    let Some(sess) = trainer.session.clone() else {
        return Ok(no_session());
    };
    let outcome = run_parameter_servers(trainer, &sess, &phases, batches, on_event)?;
    if let Outcome::Finished = outcome {
        // Asynchronous updates still in flight at the last step have landed since.
        if let Ok(Some(step)) = sess.variable(trainer.model.global_step) {
            let step = step.scalar_f64().map_or(0, |s| s as u64);
            trainer.step = trainer.step.max(step);
        }
    }
    Ok(outcome)
}

fn run_parameter_servers(
    trainer: &mut Trainer,
    sess: &DistributedSession,
    phases: &Phases,
    batches: &mut dyn FnMut(usize) -> Vec<Tensor>,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<Outcome, TrainError> {
    let towers = trainer.model.towers.clone();
    let n = towers.len();
    let global_step = trainer.model.global_step;
    let (report_tx, reports) = channel();
    std::thread::scope(|scope| {
        let mut orders = Vec::with_capacity(n);
        for (replica, tower) in towers.iter().enumerate() {
            let (compute, second, advance) = match phases {
                Phases::Synchronous {
                    compute, deliver, ..
                } => (compute[replica], deliver[replica].clone(), None),
                Phases::Asynchronous { compute, apply } => (
                    compute[replica],
                    apply[replica].targets.clone(),
                    Some(apply[replica].advance),
                ),
                Phases::AllReduce { .. } => unreachable!("all-reduce runs in one step"),
            };
            let plan = ReplicaPlan {
                replica,
                // A tower that reads its own batches is fed nothing.
                inputs: match tower.reads {
                    Some(_) => Vec::new(),
                    None => tower.inputs.clone(),
                },
                loss: tower.loss,
                global_step,
                compute,
                second,
                advance,
            };
            let (tx, rx) = channel();
            let report_tx = report_tx.clone();
            scope.spawn(move || replica_loop(sess, plan, rx, report_tx));
            orders.push(tx);
        }
        drop(report_tx);
        let reported = trainer.step / trainer.options.report_every.max(1);
        let mut board = Board {
            trainer,
            stats: vec![WorkerStats::default(); n],
            since: Instant::now(),
            losses: Vec::new(),
            reported,
        };
        let outcome = match phases {
            Phases::Synchronous { weights, apply, .. } => sync_loop(
                &mut board, sess, &orders, &reports, weights, apply, batches, on_event,
            ),
            _ => async_loop(&mut board, &orders, &reports, batches, on_event),
        };
        // Closing the order channels ends the replica threads after their current step.
        drop(orders);
        outcome
    })
}

/// Waits for a report, watching for a stall: after `stall_after` without one, the tasks
/// that do not answer are lost. With every replica's thread gone, the run is finished.
fn next_report(
    board: &mut Board,
    reports: &Receiver<Report>,
    last_progress: Instant,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<Report, Outcome> {
    loop {
        match reports.recv_timeout(Duration::from_millis(200)) {
            Ok(report) => return Ok(report),
            Err(RecvTimeoutError::Disconnected) => return Err(Outcome::Finished),
            Err(RecvTimeoutError::Timeout) => {
                let waited = last_progress.elapsed();
                if waited >= board.trainer.options.stall_after {
                    let missing = board.trainer.lost_tasks();
                    if !missing.is_empty() {
                        on_event(&TrainEvent::Stalled {
                            missing: missing.clone(),
                            seconds: waited.as_secs_f64(),
                        });
                        return Err(Outcome::Lost {
                            tasks: missing,
                            message: format!("no step for {:.1} s", waited.as_secs_f64()),
                        });
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn sync_loop(
    board: &mut Board,
    sess: &DistributedSession,
    orders: &[Sender<Order>],
    reports: &Receiver<Report>,
    weights: &[Output],
    apply: &UpdateStep,
    batches: &mut dyn FnMut(usize) -> Vec<Tensor>,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<Outcome, TrainError> {
    let n = orders.len();
    let feeding = Feeding::of(&board.trainer.model.towers);
    let k = match board.trainer.model.strategy.update {
        super::Update::Synchronous {
            replicas_to_aggregate,
        } => replicas_to_aggregate,
        _ => n,
    };
    let mut version = board.trainer.step;
    for r in 0..n {
        send(orders, r, version, batches, &feeding)?;
    }
    let mut fresh: Vec<usize> = Vec::with_capacity(n);
    let mut last_progress = Instant::now();
    // Backup workers can be lost: steps go on while k replicas are left.
    let mut live = vec![true; n];
    let mut last_probe = Instant::now();
    loop {
        if rejoin_due(board, &live, &mut last_probe) {
            return Ok(Outcome::Rejoin);
        }
        let report = match next_report(board, reports, last_progress, on_event) {
            Ok(report) => report,
            Err(outcome) => return Ok(outcome),
        };
        match report {
            Report::Failed { replica, error } => {
                match skip_lost(board, &mut live, replica, error, k, on_event)? {
                    Some(outcome) => return Ok(outcome),
                    None => continue,
                }
            }
            Report::Done {
                replica,
                version: v,
                loss,
                examples,
                ..
            } => {
                let stats = board.stats[replica].count(examples);
                if v != version {
                    // Computed from older variables: dropped, and the replica starts over.
                    stats.dropped += 1;
                    stats.staleness += version - v;
                    send(orders, replica, version, batches, &feeding)?;
                    continue;
                }
                fresh.push(replica);
                board.losses.push(loss);
            }
        }
        if fresh.len() < k {
            continue;
        }
        let feeds: Vec<(Output, Tensor)> = (0..n)
            .map(|r| {
                let w = if fresh.contains(&r) {
                    1.0 / k as f32
                } else {
                    0.0
                };
                (weights[r], Tensor::scalar(w))
            })
            .collect();
        if let Err(error) = sess.run_concurrent(&[apply.advance], &feeds, &apply.targets) {
            return failure(board.trainer, error);
        }
        version += 1;
        board.trainer.step = version;
        last_progress = Instant::now();
        board.stepped(on_event)?;
        if version >= board.trainer.options.steps {
            return Ok(Outcome::Finished);
        }
        for r in fresh.drain(..) {
            send(orders, r, version, batches, &feeding)?;
        }
    }
}

fn async_loop(
    board: &mut Board,
    orders: &[Sender<Order>],
    reports: &Receiver<Report>,
    batches: &mut dyn FnMut(usize) -> Vec<Tensor>,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<Outcome, TrainError> {
    let n = orders.len();
    let feeding = Feeding::of(&board.trainer.model.towers);
    let bound = match board.trainer.model.strategy.update {
        super::Update::Asynchronous { max_staleness } => max_staleness,
        _ => None,
    };
    let mut clock = vec![0u64; n];
    let mut live = vec![true; n];
    let mut parked = vec![false; n];
    for r in 0..n {
        send(orders, r, board.trainer.step, batches, &feeding)?;
    }
    let mut last_progress = Instant::now();
    let mut last_probe = Instant::now();
    loop {
        let report = match next_report(board, reports, last_progress, on_event) {
            Ok(report) => report,
            Err(outcome) => return Ok(outcome),
        };
        match report {
            Report::Failed { replica, error } => {
                if let Some(outcome) = skip_lost(board, &mut live, replica, error, 1, on_event)? {
                    return Ok(outcome);
                }
            }
            Report::Done {
                replica,
                loss,
                read,
                after,
                examples,
                ..
            } => {
                let after = after.unwrap_or(read + 1);
                let stats = board.stats[replica].count(examples);
                stats.staleness += after.saturating_sub(read + 1);
                clock[replica] += 1;
                board.losses.push(loss);
                let before = board.trainer.step;
                board.trainer.step = before.max(after);
                last_progress = Instant::now();
                if board.trainer.step > before {
                    board.stepped(on_event)?;
                }
                if board.trainer.step >= board.trainer.options.steps {
                    return Ok(Outcome::Finished);
                }
                parked[replica] = true;
            }
        }
        // Release every parked replica within the staleness bound of the slowest live one.
        let slowest = (0..n)
            .filter(|&r| live[r])
            .map(|r| clock[r])
            .min()
            .unwrap_or(0);
        for r in 0..n {
            let within = bound.is_none_or(|b| clock[r] <= slowest + b);
            if live[r] && parked[r] && within {
                parked[r] = false;
                send(orders, r, board.trainer.step, batches, &feeding)?;
            }
        }
        if rejoin_due(board, &live, &mut last_probe) {
            return Ok(Outcome::Rejoin);
        }
    }
}

/// A replica's step failed: with its task lost and at least `needed` replicas left (and
/// every parameter server up), the replica is skipped and the others go on (`None`); else
/// the outcome to end this session with, or the error when no task is lost.
fn skip_lost(
    board: &mut Board,
    live: &mut [bool],
    replica: usize,
    error: SessionError,
    needed: usize,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<Option<Outcome>, TrainError> {
    let lost = board.trainer.lost_tasks();
    if lost.is_empty() {
        return Err(error.into());
    }
    // A lost parameter server loses the variables: recover from the checkpoint.
    let left = live.iter().filter(|l| **l).count().saturating_sub(1);
    if lost.iter().any(|t| t.starts_with("/job:ps")) || left < needed {
        return Ok(Some(Outcome::Lost {
            tasks: lost,
            message: error.to_string(),
        }));
    }
    live[replica] = false;
    on_event(&TrainEvent::Lost {
        tasks: lost,
        message: format!("{error}; the other replicas go on"),
    });
    Ok(None)
}

/// Every two seconds while replicas are out: whether one's worker answers again.
fn rejoin_due(board: &Board, live: &[bool], last_probe: &mut Instant) -> bool {
    if !live.contains(&false) || last_probe.elapsed() < Duration::from_secs(2) {
        return false;
    }
    *last_probe = Instant::now();
    let unreachable = board.trainer.unreachable_tasks();
    (0..live.len()).any(|r| !live[r] && !unreachable.contains(&worker_name(r)))
}

fn run_all_reduce(
    trainer: &mut Trainer,
    train: Output,
    batches: &mut dyn FnMut(usize) -> Vec<Tensor>,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<Outcome, TrainError> {
    let towers = trainer.model.towers.clone();
    let losses: Vec<Output> = towers.iter().map(|t| t.loss).collect();
    let n = towers.len();
    let feeding = Feeding::of(&towers);
    let mut board_stats = vec![WorkerStats::default(); n];
    let mut since = Instant::now();
    let mut reported = trainer.step / trainer.options.report_every.max(1);
    // Workers that read their own batches run several steps per order.
    let reading = feeding.iter().all(|f| f.reads.is_some());
    while trainer.step < trainer.options.steps {
        let mut feeds = Vec::new();
        let mut examples = Vec::with_capacity(n);
        for (r, tower) in towers.iter().enumerate() {
            let (batch, count) = checked_batch(batches, r, feeding[r])?;
            examples.push(count);
            feeds.extend(tower.inputs.iter().copied().zip(batch));
        }
        let times = match reading {
            true => steps_in_order(trainer),
            false => 1,
        };
        let result = match trainer.session.as_ref() {
            Some(sess) if times > 1 => sess.run_repeated(&losses, &feeds, &[train], times),
            Some(sess) => sess.run_concurrent(&losses, &feeds, &[train]),
            None => return Ok(no_session()),
        };
        let values = match result {
            Ok((values, transfers)) => {
                trainer.last_transfers = transfers;
                values
            }
            Err(error) => return failure(trainer, error),
        };
        for (s, &e) in board_stats.iter_mut().zip(&examples) {
            s.count_steps(u64::from(times), e);
        }
        trainer.step += u64::from(times);
        let mut board = Board {
            trainer,
            stats: std::mem::take(&mut board_stats),
            since,
            losses: values.iter().map(|v| scalar(Some(v))).collect(),
            reported,
        };
        board.stepped(on_event)?;
        board_stats = board.stats;
        since = board.since;
        reported = board.reported;
    }
    Ok(Outcome::Finished)
}
