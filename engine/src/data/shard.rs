//! A worker's own part of a data set: which part ([`Shard`]), how it is read (Parquet row
//! groups or Arrow IPC record batches where the file has enough of them, else every
//! `count`-th row of the training split), and the endless shuffled batches a worker draws
//! from it ([`ShardReader`]), so a data-parallel trainer sends step orders, not batches.

use super::batches::EpochOrder;
use super::{Batch, DataError, DataSource, Dataset, LoadLimits};

/// Part `index` of `count` equal parts of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole data set.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Part `index` of `count`; refused unless `index < count`.
    pub fn new(index: usize, count: usize) -> Result<Shard, DataError> {
        if index >= count {
            return Err(DataError::Mismatch(format!(
                "shard {index} of {count}: the index must be below the count"
            )));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shard {} of {}", self.index, self.count)
    }
}

impl DataSource {
    /// The part of the training split that `shard` names. A table whose test rows come
    /// from their own file (`&test=`) is read by row groups (Parquet) or record batches
    /// (Arrow IPC file format): each worker decodes only its own, where the file has at
    /// least `shard.count` of them. Otherwise (embedded or IDX sets, a table split by its
    /// tail, too few groups) the training split is loaded and every `count`-th row kept.
    pub fn load_shard_within(
        &self,
        shard: Shard,
        limits: &LoadLimits,
    ) -> Result<Dataset, DataError> {
        if shard.count > 1 {
            if let Some(part) = self.load_groups(shard, limits)? {
                return Ok(part);
            }
        }
        let train = self.load_within(limits)?.train;
        Ok(train.rows_of(shard))
    }

    #[cfg(feature = "engine")]
    fn load_groups(&self, shard: Shard, limits: &LoadLimits) -> Result<Option<Dataset>, DataError> {
        use super::columnar::{load_table_groups, Columns, TableFormat};
        let (format, path, label, features) = match self {
            DataSource::Arrow {
                path,
                label,
                features,
                test: Some(_),
            } => (TableFormat::ArrowIpc, path, label, features),
            DataSource::Parquet {
                path,
                label,
                features,
                test: Some(_),
            } => (TableFormat::Parquet, path, label, features),
            _ => return Ok(None),
        };
        let columns = Columns {
            label,
            features: features.as_deref(),
        };
        load_table_groups(path, format, columns, shard, limits)
    }

    #[cfg(not(feature = "engine"))]
    fn load_groups(&self, _: Shard, _: &LoadLimits) -> Result<Option<Dataset>, DataError> {
        Ok(None)
    }
}

impl Dataset {
    /// Rows `shard.index`, `shard.index + shard.count`, ...
    pub fn rows_of(mut self, shard: Shard) -> Dataset {
        if shard.count <= 1 {
            return self;
        }
        let f = self.features;
        let keep = |row: usize| row % shard.count == shard.index;
        let mut row = 0;
        self.labels.retain(|_| {
            row += 1;
            keep(row - 1)
        });
        self.inputs = (self.inputs.chunks_exact(f.max(1)).enumerate())
            .filter(|(r, _)| keep(*r))
            .flat_map(|(_, values)| values.iter().copied())
            .collect();
        self
    }
}

/// Endless shuffled batches of one worker's part of a data set, with one-hot labels of a
/// fixed number of classes.
#[derive(Debug)]
pub struct ShardReader {
    data: Dataset,
    order: EpochOrder,
    previous: Option<Batch>,
}

impl ShardReader {
    /// Batches of `batch` rows of `data`, whose labels must be below `classes` and whose
    /// rows must have `features` values; `what` names the data in errors.
    pub fn new(
        mut data: Dataset,
        what: &str,
        features: usize,
        classes: usize,
        batch: usize,
        seed: u64,
    ) -> Result<ShardReader, DataError> {
        if data.features != features {
            return Err(DataError::Mismatch(format!(
                "{what}: {} features per row, but the reader declares {features}",
                data.features
            )));
        }
        if let Some(&label) = data.labels.iter().find(|&&l| l as usize >= classes) {
            return Err(DataError::Mismatch(format!(
                "{what}: label {label}, but the reader declares {classes} classes"
            )));
        }
        if batch == 0 || data.len() < batch {
            return Err(DataError::Mismatch(format!(
                "{what}: {} rows, fewer than one batch of {batch}",
                data.len()
            )));
        }
        data.classes = classes;
        let order = EpochOrder::new(data.len(), batch, seed);
        Ok(ShardReader {
            data,
            order,
            previous: None,
        })
    }

    /// Bytes of data held (features as f32, a byte per label).
    pub fn bytes(&self) -> u64 {
        (self.data.inputs.len() as u64)
            .saturating_mul(4)
            .saturating_add(self.data.labels.len() as u64)
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next batch; a new epoch starts in a fresh order once this one has no full batch
    /// left.
    pub fn next_batch(&mut self) -> Option<Batch> {
        let previous = self.previous.take();
        let batch = self.data.batch_of(self.order.next()?, previous);
        self.previous = Some(batch.clone());
        Some(batch)
    }
}
