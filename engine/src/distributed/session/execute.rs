//! Running one step over the cluster: the nodes it needs, one RunGraph per task at once
//! with the sends and receives its transfers need, and the abort of the step everywhere
//! when one task's part fails.

use super::{peer, unreachable_task, STEP};
use super::{DistributedSession, StepTransfers, TaskWork, Traced, ABORTED};
use crate::error::{RemoteError, SessionError};
use crate::graph::Output;
use crate::runner::NodeTiming;
use crate::tensor::Tensor;
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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

    /// One step of the prepared graph: a RunGraph on each task with work in it, at once.
    pub(super) fn execute(
        &self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
        trace: bool,
    ) -> Result<(Vec<Tensor>, Vec<NodeTiming>, StepTransfers), SessionError> {
        let n = self.tasks.len();
        let fed: HashSet<Output> = feeds.iter().map(|(o, _)| *o).collect();
        let roots: Vec<Output> = fetches.iter().chain(targets).copied().collect();
        let needed = self.needed(&roots, &fed);
        let step_id = self.step.fetch_add(1, Ordering::Relaxed) + 1;
        let step = Tensor::scalar(step_id as i64);
        let mut work: Vec<TaskWork> = vec![(Vec::new(), Vec::new(), Vec::new()); n];
        let mut wanted = Vec::with_capacity(fetches.len());
        for &f in fetches {
            let t = self.task_of(f)?;
            wanted.push((t, work[t].0.len()));
            work[t].0.push(self.local(t, f)?);
        }
        for (o, value) in feeds {
            let t = self.task_of(*o)?;
            work[t].1.push((self.local(t, *o)?, value.clone()));
        }
        for &o in targets {
            let t = self.task_of(o)?;
            work[t].2.push(self.local(t, o)?);
        }
        // Every transfer into a needed node: its send runs on the source, and the receiver
        // reports the bytes it took.
        let mut byte_fetches = vec![0usize; n];
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
                    if !work[src_task].2.contains(&send) {
                        work[src_task].2.push(send);
                        let recv = self.parts.graphs[task].get(&t.recv)?.output(1);
                        work[task].0.push(recv);
                        byte_fetches[task] += 1;
                    }
                }
            }
        }
        drop(data);
        let aborting = std::sync::atomic::AtomicBool::new(false);
        let step_started = Instant::now();
        let results: Vec<Result<Traced, SessionError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (self.tasks.iter())
                .zip(&work)
                .enumerate()
                .map(|(t, (task, (fetch, feed, target)))| {
                    let step = step.clone();
                    let graph = &self.parts.graphs[t];
                    let aborting = &aborting;
                    scope.spawn(move || {
                        if fetch.is_empty() && target.is_empty() {
                            return Ok((Vec::new(), Vec::new()));
                        }
                        let mut feed = feed.clone();
                        feed.push((graph.get(STEP)?, step));
                        let started = Instant::now();
                        let result = if trace {
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
                            // The first failure aborts the step everywhere (StartAbort): the
                            // other tasks' parts waiting for its tensors end now.
                            if !aborting.swap(true, Ordering::SeqCst) {
                                self.abort_step(
                                    step_id,
                                    &format!("{} failed: {e}", task.info.name),
                                );
                            }
                        }
                        result.map_err(|e| match e {
                            SessionError::Remote(RemoteError::Status {
                                code: tonic::Code::Unavailable | tonic::Code::DeadlineExceeded,
                                message,
                            }) => unreachable_task(
                                &task.info.name,
                                &task.info.addr,
                                format!(
                                    "{message} (after {:.1} s)",
                                    started.elapsed().as_secs_f64()
                                ),
                            ),
                            other => other,
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(SessionError::Kernel {
                            node: String::new(),
                            op: "RunGraph".into(),
                            message: "a step thread failed".into(),
                        })
                    })
                })
                .collect()
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
        let values = wanted
            .into_iter()
            .map(|(t, i)| outputs[t][i].clone())
            .collect();
        Ok((values, timings, last))
    }

    /// Tells every task that step `step` is aborted, all at once (a task that is gone costs
    /// one short deadline).
    pub(super) fn abort_step(&self, step: u64, reason: &str) {
        let graph = self.parts.graph_key();
        let timeout = self.options.rpc_timeout.min(Duration::from_secs(2));
        std::thread::scope(|scope| {
            for task in &self.tasks {
                let graph = &graph;
                scope.spawn(move || {
                    let _ = peer::abort_step(&task.info.addr, graph, step, reason, timeout);
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
