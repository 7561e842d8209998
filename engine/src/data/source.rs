//! Data sets the engine can load by name: what a remote `Fit` asks for.

#[cfg(feature = "engine")]
use super::columnar::{load_table_split, Columns, TableFormat};
use super::mnist::fashion_mnist_within;
use super::{load_idx_split_within, mnist_digits, DataError, LoadLimits, Split};
use std::path::PathBuf;

/// A data set the engine can load by name (see [`DataSource::from_str`] for the names).
///
/// [`DataSource::from_str`]: std::str::FromStr::from_str
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// The embedded MNIST digits (`mnist-digits`).
    MnistDigits,
    /// Fashion-MNIST from a folder, or from Debian's location (`fashion-mnist[:DIR]`).
    FashionMnist(Option<PathBuf>),
    /// The four MNIST-style IDX files in a folder (`idx:DIR`).
    Idx(PathBuf),
    /// An Arrow IPC file (Feather v2) (`arrow:PATH?label=COL[&features=A,B][&test=PATH2]`).
    Arrow {
        path: PathBuf,
        /// The column of class indices.
        label: String,
        /// The feature columns; `None`: every numeric column but the label.
        features: Option<Vec<String>>,
        /// The file of the test set; `None`: the last 20% of `path`'s rows.
        test: Option<PathBuf>,
    },
    /// A Parquet file (`parquet:PATH?label=COL[&features=A,B][&test=PATH2]`), as `Arrow`.
    Parquet {
        path: PathBuf,
        label: String,
        features: Option<Vec<String>>,
        test: Option<PathBuf>,
    },
}

impl DataSource {
    /// The files and folders loading the data set reads (none for the embedded digits).
    pub fn paths(&self) -> Vec<PathBuf> {
        match self {
            DataSource::MnistDigits => Vec::new(),
            DataSource::FashionMnist(dir) => vec![dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(super::DEFAULT_FASHION_MNIST_DIR))],
            DataSource::Idx(dir) => vec![dir.clone()],
            DataSource::Arrow { path, test, .. } | DataSource::Parquet { path, test, .. } => {
                std::iter::once(path.clone()).chain(test.clone()).collect()
            }
        }
    }

    /// Reads the data set. A table without `test` is split in file order: the first 80% of
    /// its rows to train on, the last 20% (rounded down) to test on.
    pub fn load(&self) -> Result<Split, DataError> {
        self.load_within(&LoadLimits::none())
    }

    /// [`DataSource::load`] within `limits`: an engine loads what a client names within its
    /// memory budget, and stops when the fit that asked is cancelled.
    pub fn load_within(&self, limits: &LoadLimits) -> Result<Split, DataError> {
        match self {
            DataSource::MnistDigits => mnist_digits(),
            DataSource::FashionMnist(dir) => fashion_mnist_within(dir.as_deref(), limits),
            DataSource::Idx(dir) => load_idx_split_within(dir, limits),
            #[cfg(feature = "engine")]
            DataSource::Arrow {
                path,
                label,
                features,
                test,
            } => load(TableFormat::ArrowIpc, path, label, features, test, limits),
            #[cfg(feature = "engine")]
            DataSource::Parquet {
                path,
                label,
                features,
                test,
            } => load(TableFormat::Parquet, path, label, features, test, limits),
            // The light client reads IDX files only; an engine reads tables.
            #[cfg(not(feature = "engine"))]
            DataSource::Arrow { path, .. } | DataSource::Parquet { path, .. } => {
                Err(DataError::BadSpec {
                    spec: path.display().to_string(),
                    reason: "tables are read by an engine: build sluice with its `engine` \
                             feature, or fit through an engine (RemoteSession::fit)"
                        .into(),
                })
            }
        }
    }
}

#[cfg(feature = "engine")]
fn load(
    format: TableFormat,
    path: &std::path::Path,
    label: &str,
    features: &Option<Vec<String>>,
    test: &Option<PathBuf>,
    limits: &LoadLimits,
) -> Result<Split, DataError> {
    let columns = Columns {
        label,
        features: features.as_deref(),
    };
    load_table_split(path, format, columns, test.as_deref(), limits)
}

impl std::str::FromStr for DataSource {
    type Err = DataError;

    /// `mnist-digits`, `fashion-mnist[:DIR]`, `idx:DIR`, or a table:
    /// `arrow:PATH?label=COL[&features=A,B,...][&test=PATH2]` or the same with `parquet:`
    /// (paths may not hold `?` or `&`).
    fn from_str(name: &str) -> Result<DataSource, DataError> {
        match name.split_once(':') {
            None if name == "mnist-digits" => Ok(DataSource::MnistDigits),
            None if name == "fashion-mnist" => Ok(DataSource::FashionMnist(None)),
            Some(("fashion-mnist", dir)) => Ok(DataSource::FashionMnist(Some(dir.into()))),
            Some(("idx", dir)) => Ok(DataSource::Idx(dir.into())),
            Some(("arrow", rest)) => {
                let t = parse_table_spec(name, rest)?;
                Ok(DataSource::Arrow {
                    path: t.path,
                    label: t.label,
                    features: t.features,
                    test: t.test,
                })
            }
            Some(("parquet", rest)) => {
                let t = parse_table_spec(name, rest)?;
                Ok(DataSource::Parquet {
                    path: t.path,
                    label: t.label,
                    features: t.features,
                    test: t.test,
                })
            }
            _ => Err(DataError::UnknownSource {
                name: name.to_string(),
            }),
        }
    }
}

/// A table data source as named by a spec: `PATH?label=COL[&features=A,B,...][&test=PATH2]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TableSpec {
    path: PathBuf,
    label: String,
    features: Option<Vec<String>>,
    test: Option<PathBuf>,
}

/// Parses the part of a data source name after `arrow:` or `parquet:`; `spec` is the whole
/// name, for errors.
fn parse_table_spec(spec: &str, rest: &str) -> Result<TableSpec, DataError> {
    let bad = |reason: String| DataError::BadSpec {
        spec: spec.to_string(),
        reason,
    };
    let Some((path, query)) = rest.split_once('?') else {
        return Err(bad("name the label column: PATH?label=COLUMN".into()));
    };
    if path.is_empty() {
        return Err(bad("the path is empty".into()));
    }
    let (mut label, mut features, mut test) = (None, None, None);
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if value.is_empty() {
            return Err(bad(format!("'{key}' needs a value (KEY=VALUE)")));
        }
        let slot_taken = match key {
            "label" => label.replace(value.to_string()).is_some(),
            "features" => {
                let names: Vec<String> = value.split(',').map(|s| s.trim().to_string()).collect();
                if names.iter().any(String::is_empty) {
                    return Err(bad(format!("empty column name in features={value}")));
                }
                features.replace(names).is_some()
            }
            "test" => test.replace(PathBuf::from(value)).is_some(),
            _ => {
                return Err(bad(format!(
                    "unknown key '{key}': use label=COL, features=A,B,... and test=PATH"
                )))
            }
        };
        if slot_taken {
            return Err(bad(format!("'{key}' is given twice")));
        }
    }
    let label = label.ok_or_else(|| bad("name the label column: PATH?label=COLUMN".into()))?;
    Ok(TableSpec {
        path: PathBuf::from(path),
        label,
        features,
        test,
    })
}
