//! Data: IDX files (the MNIST format), the embedded MNIST digits, Fashion-MNIST from disk,
//! tables from Arrow IPC and Parquet files, data sources by name, shuffled mini-batches, and
//! metric histories exported as Arrow IPC or Parquet.

mod batches;
#[cfg(feature = "engine")]
mod columnar;
#[cfg(feature = "engine")]
mod history;
mod idx;
mod limits;
mod mnist;
mod roots;
mod shard;
mod source;
pub mod text;

pub use batches::{Batch, Batches};
#[cfg(feature = "engine")]
pub use columnar::{load_table, load_table_split, load_table_within, Columns, TableFormat};
#[cfg(feature = "engine")]
pub use history::{write_history, HistoryFormat};
pub use idx::{parse_idx, read_idx, read_idx_within, IdxArray};
pub use limits::LoadLimits;
pub use mnist::{
    fashion_mnist, load_idx_split, load_idx_split_within, mnist_digits, Split,
    DEFAULT_FASHION_MNIST_DIR,
};
pub use roots::{engine_data_dir, DataRoots, DATA_DIR_ENV};
pub use shard::{Shard, ShardReader};
pub use source::DataSource;

use crate::tensor::Tensor;
use std::path::PathBuf;
use thiserror::Error;

/// Why a data set could not be read.
#[derive(Debug, Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an IDX file: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("Fashion-MNIST not found in {dir}: missing {missing}. Install Debian's package `dataset-fashion-mnist` (apt-get install dataset-fashion-mnist) or pass the folder that holds the IDX .gz files")]
    FashionMissing { dir: PathBuf, missing: String },
    #[error("{0}")]
    Mismatch(String),
    #[error("unknown data set '{name}': use mnist-digits, fashion-mnist[:DIR], idx:DIR, arrow:PATH?label=COL[&features=A,B,...][&test=PATH2] or parquet:PATH?label=COL[&features=A,B,...][&test=PATH2]")]
    UnknownSource { name: String },
    #[error("bad data source '{spec}': {reason}")]
    BadSpec { spec: String, reason: String },
    #[error("{path}: not a readable {format} file: {reason}")]
    Columnar {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },
    #[error("{path}: cannot tell the file format from the extension: use .arrow, .feather, .ipc or .parquet")]
    UnknownFormat { path: PathBuf },
    #[error("{path}: no column '{column}'; the columns are: {available}")]
    MissingColumn {
        path: PathBuf,
        column: String,
        available: String,
    },
    #[error("{path}: column '{column}' has type {dtype}: {expected}")]
    ColumnType {
        path: PathBuf,
        column: String,
        dtype: String,
        expected: &'static str,
    },
    #[error("{path}: column '{column}' is null at row {row} (rows count from 0); fill or drop the missing values first")]
    NullValue {
        path: PathBuf,
        column: String,
        row: usize,
    },
    #[error("{path}: label {value} in column '{column}' at row {row} (rows count from 0) is not a class index in 0..=255")]
    BadLabel {
        path: PathBuf,
        column: String,
        row: usize,
        value: i128,
    },
    #[error("{path}: the data set would take {bytes} bytes, over the {limit} bytes a load may take (the engine's --max-memory)")]
    TooLarge {
        path: PathBuf,
        bytes: u64,
        limit: u64,
    },
    #[error("the load was cancelled")]
    Cancelled,
    #[error("{path}: no numeric feature column besides the label '{label}'; the columns are: {available}")]
    NoFeatures {
        path: PathBuf,
        label: String,
        available: String,
    },
}

/// Labelled examples held in memory: `features` floats per example, in [0, 1] for images.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub features: usize,
    pub classes: usize,
    pub inputs: Vec<f32>,
    pub labels: Vec<u8>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// All inputs as a `[len, features]` f32 tensor.
    pub fn inputs_tensor(&self) -> Tensor {
        self.gather_inputs(&(0..self.len()).collect::<Vec<_>>())
    }

    /// All labels as one-hot rows, `[len, classes]` f32.
    pub fn one_hot_tensor(&self) -> Tensor {
        self.gather_one_hot(&(0..self.len()).collect::<Vec<_>>())
    }

    /// All labels as class indices, `[len]` i64.
    pub fn labels_tensor(&self) -> Tensor {
        Tensor::from_vec(self.labels.iter().map(|&l| l as i64).collect::<Vec<_>>())
    }

    pub(crate) fn gather_inputs(&self, rows: &[usize]) -> Tensor {
        self.gather_inputs_into(rows, Vec::new())
    }

    /// The inputs of `rows` as `[rows, features]`, written into `buf` (reused storage).
    pub(crate) fn gather_inputs_into(&self, rows: &[usize], mut buf: Vec<f32>) -> Tensor {
        let f = self.features;
        buf.clear();
        buf.reserve(rows.len() * f);
        for &r in rows {
            buf.extend_from_slice(&self.inputs[r * f..(r + 1) * f]);
        }
        Tensor::new(&[rows.len(), f], buf)
            .unwrap_or_else(|_| Tensor::zeros(crate::DType::F32, &[0, f]))
    }

    pub(crate) fn gather_one_hot(&self, rows: &[usize]) -> Tensor {
        self.gather_one_hot_into(rows, Vec::new())
    }

    /// The one-hot labels of `rows` as `[rows, classes]`, written into `buf`.
    pub(crate) fn gather_one_hot_into(&self, rows: &[usize], mut buf: Vec<f32>) -> Tensor {
        let c = self.classes;
        buf.clear();
        buf.resize(rows.len() * c, 0.0);
        for (i, &r) in rows.iter().enumerate() {
            buf[i * c + self.labels[r] as usize] = 1.0;
        }
        Tensor::new(&[rows.len(), c], buf)
            .unwrap_or_else(|_| Tensor::zeros(crate::DType::F32, &[0, c]))
    }

    /// Endless shuffled mini-batches, reshuffled every epoch from `seed`.
    pub fn batches(&self, batch_size: usize, seed: u64) -> Batches<'_> {
        Batches::new(self, batch_size, seed)
    }
}
