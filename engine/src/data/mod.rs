//! Data: IDX files (the MNIST format), the embedded MNIST digits, Fashion-MNIST from disk, and
//! shuffled mini-batches.

mod batches;
mod idx;
mod mnist;

pub use batches::{Batch, Batches};
pub use idx::{read_idx, IdxArray};
pub use mnist::{fashion_mnist, load_idx_split, mnist_digits, Split, DEFAULT_FASHION_MNIST_DIR};

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
}

/// A data set the engine can load by name: what a remote `Fit` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// The embedded MNIST digits (`mnist-digits`).
    MnistDigits,
    /// Fashion-MNIST from a folder, or from Debian's location (`fashion-mnist[:DIR]`).
    FashionMnist(Option<PathBuf>),
    /// The four MNIST-style IDX files in a folder (`idx:DIR`).
    Idx(PathBuf),
}

impl DataSource {
    pub fn load(&self) -> Result<Split, DataError> {
        match self {
            DataSource::MnistDigits => mnist_digits(),
            DataSource::FashionMnist(dir) => fashion_mnist(dir.as_deref()),
            DataSource::Idx(dir) => load_idx_split(dir),
        }
    }
}

impl std::str::FromStr for DataSource {
    type Err = DataError;

    fn from_str(name: &str) -> Result<DataSource, DataError> {
        match name.split_once(':') {
            None if name == "mnist-digits" => Ok(DataSource::MnistDigits),
            None if name == "fashion-mnist" => Ok(DataSource::FashionMnist(None)),
            Some(("fashion-mnist", dir)) => Ok(DataSource::FashionMnist(Some(dir.into()))),
            Some(("idx", dir)) => Ok(DataSource::Idx(dir.into())),
            _ => Err(DataError::Mismatch(format!(
                "unknown data set '{name}': use mnist-digits, fashion-mnist[:DIR] or idx:DIR"
            ))),
        }
    }
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
