//! CPU kernels of [`crate::ops::input`], and the readers' state that a session keeps.

use crate::data::{DataRoots, DataSource, LoadLimits, Shard, ShardReader};
use crate::kernels::{Context, CpuKernel, KernelError};
use crate::ops::input::ReadBatches;
use crate::tensor::Tensor;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Mutex;

/// The input readers of one session, by node id, and which files they may read: a
/// program's own session reads any file it names; an engine's only those under its data
/// roots, since the graph comes from a client. The data the readers hold adds up under the
/// session's memory budget. A reader loads its data in its first step, holding the others
/// until it has (a session's steps on one task run one at a time anyway).
#[derive(Debug)]
pub struct InputReaders {
    readers: Mutex<Readers>,
    /// `None`: any file.
    roots: Option<DataRoots>,
}

#[derive(Debug, Default)]
struct Readers {
    by_node: HashMap<usize, ShardReader>,
    /// Bytes of data the readers hold.
    bytes: u64,
}

impl InputReaders {
    /// Readers that may read any file: a program's own session.
    pub fn any_file() -> InputReaders {
        InputReaders {
            readers: Mutex::default(),
            roots: None,
        }
    }

    /// Readers that read only under `roots` (and the embedded data sets).
    pub fn under(roots: DataRoots) -> InputReaders {
        InputReaders {
            readers: Mutex::default(),
            roots: Some(roots),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Readers> {
        // A reader left by a panicking step is still a consistent reader.
        self.readers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where a reader reads from, for errors: `SOURCE (shard 1 of 2)`.
fn describe(op: &ReadBatches) -> String {
    format!("{} (shard {} of {})", op.source, op.shard, op.shards)
}

/// Loads the reader's part of its data set within what the session's budget leaves (`room`
/// bytes); stops when the step is cancelled, but not at the step's deadline: a load that
/// outlasts one RPC's deadline is kept for the next step instead of starting again.
fn open(
    op: &ReadBatches,
    ctx: &Context,
    roots: Option<&DataRoots>,
    room: u64,
) -> Result<ShardReader, KernelError> {
    let what = describe(op);
    let failed = |e: crate::data::DataError| KernelError::Message(format!("reading {what}: {e}"));
    let source: DataSource = op.source.parse().map_err(failed)?;
    if let Some(roots) = roots {
        roots.allow(&op.source, &source).map_err(failed)?;
    }
    let shard = Shard::new(op.shard, op.shards).map_err(failed)?;
    let stop = || ctx.step.cancel.is_some_and(|c| c.is_cancelled());
    let limits = LoadLimits::new(&stop, room);
    let data = source.load_shard_within(shard, &limits).map_err(failed)?;
    // Each shard draws its own order from the one seed.
    let seed = op.seed ^ (op.shard as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ShardReader::new(data, &what, op.features, op.classes, op.batch, seed).map_err(failed)
}

impl CpuKernel for ReadBatches {
    fn compute(&self, ctx: &mut Context, _: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let store = ctx.step.inputs.ok_or_else(|| {
            KernelError::Message("an input reader runs in a session, which keeps its place".into())
        })?;
        let mut readers = store.lock();
        let Readers { by_node, bytes } = &mut *readers;
        let reader = match by_node.entry(ctx.node) {
            Entry::Occupied(open) => open.into_mut(),
            Entry::Vacant(slot) => {
                let room = ctx.step.budget.limit().saturating_sub(*bytes);
                let reader = open(self, ctx, store.roots.as_ref(), room)?;
                *bytes = bytes.saturating_add(reader.bytes());
                slot.insert(reader)
            }
        };
        let batch = reader.next_batch().ok_or_else(|| {
            KernelError::Message(format!(
                "{}: no full batch of {}",
                describe(self),
                self.batch
            ))
        })?;
        Ok(vec![batch.inputs, batch.one_hot, batch.labels])
    }
}
