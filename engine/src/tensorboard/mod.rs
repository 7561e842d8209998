//! TensorBoard's event files, written by Sluice: scalars, histograms, text and graphs in
//! TensorFlow's own format (TFRecord framing, `Event` and `Summary` protobufs), so that
//! `tensorboard --logdir DIR` and TensorFlow's readers show a Sluice run as they show a
//! TensorFlow one. [`SummaryWriter`] writes one run; [`tensorflow_graph_def`] is a graph in
//! TensorFlow's form; [`read_event_file`] reads a file back.

mod graph_def;
mod histogram;
pub mod records;
mod step_stats;
mod writer;

pub use graph_def::{data_type, tensorflow_graph_def};
pub use histogram::histogram;
pub use step_stats::run_metadata;
pub use writer::{read_event_file, SummaryWriter, DEFAULT_FLUSH_INTERVAL};

use std::path::{Path, PathBuf};

/// TensorFlow's messages, as `proto/tensorboard.proto` declares them.
pub mod proto {
    #![allow(clippy::all)]
    tonic::include_proto!("tensorflow");
}

/// What went wrong writing or reading an event file.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("event file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("event file {}: {source}", path.display())]
    Record {
        path: PathBuf,
        source: records::RecordError,
    },
    #[error("event file {}: record {index} is no Event: {source}", path.display())]
    Decode {
        path: PathBuf,
        index: usize,
        source: prost::DecodeError,
    },
}

impl SummaryError {
    fn io(path: &Path, source: std::io::Error) -> SummaryError {
        SummaryError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
