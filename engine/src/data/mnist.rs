//! MNIST-format data sets: the embedded digits and Fashion-MNIST from a folder.

use super::idx::{parse_idx, read_idx_within, IdxArray};
use super::LoadLimits;
use super::{DataError, Dataset};
use std::path::Path;

/// Where Debian's `dataset-fashion-mnist` puts its files.
pub const DEFAULT_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

macro_rules! embedded {
    ($file:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/mnist-digits-10k/",
            $file
        ))
    };
}

/// A training set and a test set.
#[derive(Debug, Clone)]
pub struct Split {
    pub train: Dataset,
    pub test: Dataset,
}

fn dataset(images: IdxArray, labels: IdxArray, what: &str) -> Result<Dataset, DataError> {
    let n = labels.dims.first().copied().unwrap_or(0);
    if images.dims.first() != Some(&n) || labels.dims.len() != 1 {
        return Err(DataError::Mismatch(format!(
            "{what}: {:?} images but {:?} labels",
            images.dims, labels.dims
        )));
    }
    let features = images.dims[1..].iter().product();
    let classes = labels
        .data
        .iter()
        .copied()
        .max()
        .map_or(0, |m| m as usize + 1)
        .max(10);
    Ok(Dataset {
        features,
        classes,
        inputs: images.data.iter().map(|&p| p as f32 / 255.0).collect(),
        labels: labels.data,
    })
}

/// The 10,000 real MNIST digits embedded in the crate: 8,000 to train on, 2,000 to test.
pub fn mnist_digits() -> Result<Split, DataError> {
    let parse = |bytes: &[u8], name: &str| parse_idx(bytes, Path::new(name));
    Ok(Split {
        train: dataset(
            parse(
                embedded!("train-images-idx3-ubyte.gz"),
                "embedded train images",
            )?,
            parse(
                embedded!("train-labels-idx1-ubyte.gz"),
                "embedded train labels",
            )?,
            "embedded training digits",
        )?,
        test: dataset(
            parse(
                embedded!("t10k-images-idx3-ubyte.gz"),
                "embedded test images",
            )?,
            parse(
                embedded!("t10k-labels-idx1-ubyte.gz"),
                "embedded test labels",
            )?,
            "embedded test digits",
        )?,
    })
}

/// Reads a folder holding the four MNIST-style files
/// (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-...`).
pub fn load_idx_split(dir: &Path) -> Result<Split, DataError> {
    load_idx_split_within(dir, &LoadLimits::none())
}

/// [`load_idx_split`] within `limits` (the files, and the images as floats, count).
pub fn load_idx_split_within(dir: &Path, limits: &LoadLimits) -> Result<Split, DataError> {
    let [tri, trl, tei, tel] = FILES.map(|f| dir.join(f));
    let images = |path: &Path| {
        let read = read_idx_within(path, limits)?;
        // Each byte becomes an f32 in the data set.
        limits.take(path, (read.data.len() as u64).saturating_mul(4))?;
        Ok::<_, DataError>(read)
    };
    Ok(Split {
        train: dataset(
            images(&tri)?,
            read_idx_within(&trl, limits)?,
            "training set",
        )?,
        test: dataset(images(&tei)?, read_idx_within(&tel, limits)?, "test set")?,
    })
}

/// Fashion-MNIST from `dir` (default: Debian's location); a clear error names the package to
/// install when the files are not there.
pub fn fashion_mnist(dir: Option<&Path>) -> Result<Split, DataError> {
    fashion_mnist_within(dir, &LoadLimits::none())
}

pub(crate) fn fashion_mnist_within(
    dir: Option<&Path>,
    limits: &LoadLimits,
) -> Result<Split, DataError> {
    let dir = dir.unwrap_or(Path::new(DEFAULT_FASHION_MNIST_DIR));
    let missing: Vec<&str> = FILES
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(DataError::FashionMissing {
            dir: dir.to_path_buf(),
            missing: missing.join(", "),
        });
    }
    load_idx_split_within(dir, limits)
}
