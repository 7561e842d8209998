//! One replica's thread: told to step (a version of the variables and a batch), it runs the
//! replica's two phases as concurrent steps of the distributed session and reports what
//! came of them to the coordinator.

use super::tower::Tower;
use super::trainer::TrainError;
use crate::distributed::DistributedSession;
use crate::error::SessionError;
use crate::graph::Output;
use crate::tensor::Tensor;
use std::sync::mpsc::{Receiver, Sender};

/// Go: compute a gradient from the variables of global step `version` on this batch.
pub(super) struct Order {
    pub(super) version: u64,
    pub(super) batch: Vec<Tensor>,
    pub(super) examples: usize,
}

pub(super) enum Report {
    Done {
        replica: usize,
        version: u64,
        loss: f64,
        /// The global step when the variables were read, and after this replica's update
        /// (asynchronous only).
        read: u64,
        after: Option<u64>,
        examples: usize,
    },
    Failed {
        replica: usize,
        error: SessionError,
    },
}

/// What one replica's thread runs.
pub(super) struct ReplicaPlan {
    pub(super) replica: usize,
    pub(super) inputs: Vec<Output>,
    pub(super) loss: Output,
    pub(super) global_step: Output,
    pub(super) compute: Output,
    /// Synchronous: deliver the buffers; asynchronous: apply them (targets).
    pub(super) second: Vec<Output>,
    /// Asynchronous: the op that advances the global step (its value is the step after).
    pub(super) advance: Option<Output>,
}

pub(super) fn scalar(t: Option<&Tensor>) -> f64 {
    t.and_then(Tensor::scalar_f64).unwrap_or(f64::NAN)
}

pub(super) fn replica_loop(
    sess: &DistributedSession,
    plan: ReplicaPlan,
    orders: Receiver<Order>,
    reports: Sender<Report>,
) {
    while let Ok(order) = orders.recv() {
        let examples = order.examples;
        let feeds: Vec<(Output, Tensor)> = plan.inputs.iter().copied().zip(order.batch).collect();
        let result = sess
            .run_concurrent(&[plan.loss, plan.global_step], &feeds, &[plan.compute])
            .and_then(|(first, _)| {
                let after = match plan.advance {
                    Some(advance) => {
                        let (v, _) = sess.run_concurrent(&[advance], &[], &plan.second)?;
                        Some(scalar(v.first()) as u64)
                    }
                    None => {
                        sess.run_concurrent(&[], &[], &plan.second)?;
                        None
                    }
                };
                Ok((scalar(first.first()), scalar(first.get(1)) as u64, after))
            });
        let report = match result {
            Ok((loss, read, after)) => Report::Done {
                replica: plan.replica,
                version: order.version,
                loss,
                read,
                after,
                examples,
            },
            Err(error) => Report::Failed {
                replica: plan.replica,
                error,
            },
        };
        if reports.send(report).is_err() {
            break;
        }
    }
}

/// What a replica is fed each step: a batch for each of its `inputs`, or nothing where it
/// reads `reads` examples itself.
#[derive(Debug, Clone, Copy)]
pub(super) struct Feeding {
    pub(super) inputs: usize,
    pub(super) reads: Option<usize>,
}

impl Feeding {
    pub(super) fn of(towers: &[Tower]) -> Vec<Feeding> {
        (towers.iter())
            .map(|t| Feeding {
                inputs: t.inputs.len(),
                reads: t.reads,
            })
            .collect()
    }
}

/// Gives `replica` its next batch, which must feed each input of its tower (none where it
/// reads its own).
pub(super) fn send(
    orders: &[Sender<Order>],
    replica: usize,
    version: u64,
    batches: &mut dyn FnMut(usize) -> Vec<Tensor>,
    feeding: &[Feeding],
) -> Result<(), TrainError> {
    let (batch, examples) = checked_batch(batches, replica, feeding[replica])?;
    // A replica whose thread has ended reports nothing more; the coordinator notices.
    let _ = orders[replica].send(Order {
        version,
        batch,
        examples,
    });
    Ok(())
}

/// The replica's batch and its examples.
pub(super) fn checked_batch(
    batches: &mut dyn FnMut(usize) -> Vec<Tensor>,
    replica: usize,
    feeding: Feeding,
) -> Result<(Vec<Tensor>, usize), TrainError> {
    if let Some(examples) = feeding.reads {
        return Ok((Vec::new(), examples));
    }
    let inputs = feeding.inputs;
    let batch = batches(replica);
    if batch.len() != inputs {
        return Err(TrainError::Batch {
            replica,
            message: format!(
                "{} tensors for the tower's {inputs} inputs (the data may have run out)",
                batch.len()
            ),
        });
    }
    let examples = (batch.first()).map_or(0, |t| t.shape().first().copied().unwrap_or(1));
    Ok((batch, examples))
}
