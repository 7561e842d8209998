//! Running one step over the cluster: the nodes it needs, one RunGraph per task at once
//! with the sends and receives its transfers need, and the abort of the step everywhere
//! when one task's part fails.

use super::{peer, unreachable_task, STEP};
use super::{DistributedSession, StepTransfers, TaskWork, Traced, ABORTED};
use crate::error::{RemoteError, SessionError};
use crate::graph::Output;
use crate::runner::NodeTiming;
use crate::tensor::Tensor;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A step's (feeds, fetches, targets), as the cache of step plans keys them.
type PlanKey = (Vec<Output>, Vec<Output>, Vec<Output>);

/// Step plans kept at most; past this the cache starts again.
const MAX_STEP_PLANS: usize = 256;

/// The step plans of a session, by their (feeds, fetches, targets).
pub(super) type StepPlans = Mutex<HashMap<PlanKey, Arc<StepPlan>>>;

/// What one step of given (feeds, fetches, targets) runs on each task; the graph only
/// grows, so a plan stays right once made.
#[derive(Debug)]
pub(super) struct StepPlan {
    /// Per task: the local outputs to fetch (the step's, then each receive's byte count).
    fetches: Vec<Vec<Output>>,
    /// Per feed, in the caller's order: its task and local output.
    feeds: Vec<(usize, Output)>,
    /// Per task: the local targets (the step's, then the sends the step needs).
    targets: Vec<Vec<Output>>,
    /// Per fetch: its task and position among the task's fetches.
    wanted: Vec<(usize, usize)>,
    /// Per task: how many of its fetches are receives' byte counts (at the end).
    byte_fetches: Vec<usize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The cache holds whole plans: one left by a panicking step is still whole.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DistributedSession {
    /// The nodes a step needs: back from the fetches and targets, stopping at fed values.
    pub(super) fn needed(&self, roots: &[Output], fed: &HashSet<Output>) -> BTreeSet<usize> {
        let data = self.graph.read();
        let mut needed = BTreeSet::new();
        let mut stack: Vec<usize> = roots
            .iter()
            .filter(|o| !fed.contains(o))
            .map(|o| o.node())
            .collect();
        while let Some(id) = stack.pop() {
            if !needed.insert(id) {
                continue;
            }
            if let Some(node) = data.nodes.get(id) {
                stack.extend(
                    node.inputs
                        .iter()
                        .filter(|i| !fed.contains(i))
                        .map(|i| i.node()),
                );
                stack.extend(node.control_inputs.iter().copied());
            }
        }
        needed
    }

    /// What a step of these (feeds, fetches, targets) runs on each task, from the cache or
    /// worked out once: walking the graph and naming every transfer per step would cost the
    /// coordinator more than the step's own RPCs.
    fn step_plan(
        &self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
    ) -> Result<Arc<StepPlan>, SessionError> {
        let key: PlanKey = (
            feeds.iter().map(|(o, _)| *o).collect(),
            fetches.to_vec(),
            targets.to_vec(),
        );
        if let Some(plan) = lock(&self.plans).get(&key) {
            return Ok(plan.clone());
        }
        let plan = Arc::new(self.plan_step(&key.0, fetches, targets)?);
        let mut plans = lock(&self.plans);
        // Callers that vary their fetches endlessly (a notebook) do not grow it forever.
        if plans.len() >= MAX_STEP_PLANS {
            plans.clear();
        }
        plans.insert(key, plan.clone());
        Ok(plan)
    }

    fn plan_step(
        &self,
        feeds: &[Output],
        fetches: &[Output],
        targets: &[Output],
    ) -> Result<StepPlan, SessionError> {
        let n = self.tasks.len();
        let fed: HashSet<Output> = feeds.iter().copied().collect();
        let roots: Vec<Output> = fetches.iter().chain(targets).copied().collect();
        let needed = self.needed(&roots, &fed);
        let mut plan = StepPlan {
            fetches: vec![Vec::new(); n],
            feeds: Vec::with_capacity(feeds.len()),
            targets: vec![Vec::new(); n],
            wanted: Vec::with_capacity(fetches.len()),
            byte_fetches: vec![0; n],
        };
        for &f in fetches {
            let t = self.task_of(f)?;
            plan.wanted.push((t, plan.fetches[t].len()));
            plan.fetches[t].push(self.local(t, f)?);
        }
        for &o in feeds {
            let t = self.task_of(o)?;
            plan.feeds.push((t, self.local(t, o)?));
        }
        for &o in targets {
            let t = self.task_of(o)?;
            plan.targets[t].push(self.local(t, o)?);
        }
        // Every transfer into a needed node: its send runs on the source, and the receiver
        // reports the bytes it took.
        let data = self.graph.read();
        for &id in &needed {
            let task = self.placer.placed()[id];
            let node = &data.nodes[id];
            // A fed value consumed on another task still travels: its feed goes to the task
            // of its node, whose send runs.
            let incoming = node
                .inputs
                .iter()
                .map(|i| {
                    (
                        i.node(),
                        format!("{}:{}", data.nodes[i.node()].name, i.index()),
                    )
                })
                .chain(
                    (node.control_inputs.iter()).map(|&c| (c, format!("^{}", data.nodes[c].name))),
                );
            for (src, tensor) in incoming {
                let src_task = self.placer.placed()[src];
                if src_task == task {
                    continue;
                }
                if let Some(t) = self.parts.transfer_to(&tensor, task) {
                    let send = self.parts.graphs[src_task].get(&t.send)?;
                    if !plan.targets[src_task].contains(&send) {
                        plan.targets[src_task].push(send);
                        let recv = self.parts.graphs[task].get(&t.recv)?.output(1);
                        plan.fetches[task].push(recv);
                        plan.byte_fetches[task] += 1;
                    }
                }
            }
        }
        Ok(plan)
    }

    /// One step of the prepared graph: a RunGraph on each task with work in it, at once.
    pub(super) fn execute(
        &self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
        trace: bool,
        repeat: u32,
    ) -> Result<(Vec<Tensor>, Vec<NodeTiming>, StepTransfers), SessionError> {
        let n = self.tasks.len();
        let plan = self.step_plan(fetches, feeds, targets)?;
        // A repeated step takes `repeat` step ids in a row, one per run.
        let repeat = repeat.max(1);
        let step_id = self.step.fetch_add(u64::from(repeat), Ordering::Relaxed) + 1;
        let step = Tensor::scalar(step_id as i64);
        let mut work: Vec<TaskWork> = (0..n)
            .map(|t| (plan.fetches[t].clone(), Vec::new(), plan.targets[t].clone()))
            .collect();
        for (&(t, local), (_, value)) in plan.feeds.iter().zip(feeds) {
            work[t].1.push((local, value.clone()));
        }
        let byte_fetches = &plan.byte_fetches;
        let aborting = std::sync::atomic::AtomicBool::new(false);
        let step_started = Instant::now();
        // Each task's part, as one closure per task; the tasks with work run at once (the
        // last on this thread: a step on one task spawns no thread).
        let run_task = |t: usize| -> Result<Traced, SessionError> {
            let (task, (fetch, feed, target)) = (&self.tasks[t], &work[t]);
            let graph = &self.parts.graphs[t];
            let mut feed = feed.clone();
            let step_feed = graph.get(STEP)?;
            feed.push((step_feed, step.clone()));
            let started = Instant::now();
            let result = if repeat > 1 {
                (task
                    .session
                    .run_repeated(fetch, &feed, target, repeat, Some(step_feed)))
                .map(|v| (v, Vec::new()))
            } else if trace {
                let dispatched = started.duration_since(step_started);
                (task.session.run_traced_with_targets(fetch, &feed, target)).map(
                    |(values, times)| {
                        let times = on_coordinator_clock(times, task, dispatched);
                        (values, times)
                    },
                )
            } else {
                task.session
                    .run_with_targets(fetch, &feed, target)
                    .map(|v| (v, Vec::new()))
            };
            if let Err(e) = &result {
                // The first failure aborts the step everywhere (StartAbort): the other
                // tasks' parts waiting for its tensors end now.
                if !aborting.swap(true, Ordering::SeqCst) {
                    let steps = (step_id, u64::from(repeat));
                    self.abort_step(steps, &format!("{} failed: {e}", task.info.name));
                }
            }
            result.map_err(|e| match e {
                SessionError::Remote(RemoteError::Status {
                    code: tonic::Code::Unavailable | tonic::Code::DeadlineExceeded,
                    message,
                }) => unreachable_task(
                    &task.info.name,
                    &task.info.addr,
                    format!("{message} (after {:.1} s)", started.elapsed().as_secs_f64()),
                ),
                other => other,
            })
        };
        let busy: Vec<usize> = (0..n)
            .filter(|&t| !work[t].0.is_empty() || !work[t].2.is_empty())
            .collect();
        let mut results: Vec<Result<Traced, SessionError>> =
            (0..n).map(|_| Ok((Vec::new(), Vec::new()))).collect();
        // A panicked part ends the step everywhere, as a failed one does.
        let panicked = |t: usize| {
            if !aborting.swap(true, Ordering::SeqCst) {
                let reason = format!("{}'s step thread failed", self.tasks[t].info.name);
                self.abort_step((step_id, u64::from(repeat)), &reason);
            }
            Err(SessionError::Kernel {
                node: String::new(),
                op: "RunGraph".into(),
                message: "a step thread failed".into(),
            })
        };
        // A remote session will not block inside an async runtime's context: a step called
        // from one (a blocking task) runs every part on a thread of its own.
        let inside_runtime = tokio::runtime::Handle::try_current().is_ok();
        std::thread::scope(|scope| {
            let run_task = &run_task;
            let (inline, spawned) = match busy.split_last() {
                Some((&last, rest)) if !inside_runtime => (Some(last), rest),
                _ => (None, &busy[..]),
            };
            let handles: Vec<_> = (spawned.iter())
                .map(|&t| (t, scope.spawn(move || run_task(t))))
                .collect();
            if let Some(t) = inline {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_task(t)));
                results[t] = ran.unwrap_or_else(|_| panicked(t));
            }
            for (t, handle) in handles {
                results[t] = handle.join().unwrap_or_else(|_| panicked(t));
            }
        });
        let mut outputs = Vec::with_capacity(n);
        let mut timings = Vec::new();
        let mut errors = Vec::new();
        for result in results {
            match result {
                Ok((values, times)) => {
                    outputs.push(values);
                    timings.extend(times);
                }
                Err(e) => errors.push(e),
            }
        }
        for t in &mut timings {
            if let Some(received) = &mut t.transfer {
                let transfer = self.parts.transfers.iter().find(|x| x.recv == t.node);
                received.sender = transfer.map(|x| x.send.clone()).unwrap_or_default();
            }
        }
        if !errors.is_empty() {
            // The failure that caused the abort, not one of the waits it ended.
            let cause = errors.iter().position(|e| !e.to_string().contains(ABORTED));
            return Err(errors.swap_remove(cause.unwrap_or(0)));
        }
        let mut last = StepTransfers::default();
        for (t, values) in outputs.iter().enumerate() {
            let bytes = &values[values.len() - byte_fetches[t]..];
            last.transfers += bytes.len();
            last.wire_bytes += bytes
                .iter()
                .filter_map(|b| b.scalar_f64())
                .map(|b| b as u64)
                .sum::<u64>();
        }
        let values = (plan.wanted.iter())
            .map(|&(t, i)| outputs[t][i].clone())
            .collect();
        Ok((values, timings, last))
    }

    /// Tells every task that steps `steps.0 .. steps.0 + steps.1` are aborted, all at once (a
    /// task that is gone costs one short deadline).
    pub(super) fn abort_step(&self, steps: (u64, u64), reason: &str) {
        let graph = self.parts.graph_key();
        let timeout = self.options.rpc_timeout.min(Duration::from_secs(2));
        std::thread::scope(|scope| {
            for task in &self.tasks {
                let graph = &graph;
                scope.spawn(move || {
                    let _ = peer::abort_step(&task.info.addr, graph, steps, reason, timeout);
                });
            }
        });
    }
}

/// A task's timings on the coordinator's clock: shifted by when its part was sent, their
/// devices named as the placed graph names them (`/job:worker/replica:0/task:1/device:CPU:0`).
fn on_coordinator_clock(
    mut times: Vec<NodeTiming>,
    task: &super::Task,
    dispatched: Duration,
) -> Vec<NodeTiming> {
    let offset = dispatched.as_secs_f64() * 1e6;
    for t in &mut times {
        t.start_micros += offset;
        let gpu = (t.device.strip_prefix("/device:GPU:")).and_then(|i| i.parse().ok());
        t.device = task.info.name.device(gpu);
    }
    times
}
