//! The frontends' shared errors.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum FrontendError {
    /// evcxr could not start, or failed outside a cell's own errors.
    #[error("evcxr: {0}")]
    Evcxr(String),
    /// The engine could not be started or reached.
    #[error("engine: {0}")]
    Engine(String),
    /// The packed client sources could not be unpacked.
    #[error("client sources in {path}: {message}")]
    ClientSources { path: String, message: String },
    /// No build folder could be had.
    #[error("build folder: {0}")]
    BuildDir(String),
    /// A traced step's trace file could not be read back.
    #[error("cannot draw the trace {path}: {source}")]
    Trace {
        path: String,
        source: sluice::timeline::TimelineError,
    },
    #[error("drawing: {0}")]
    Draw(#[from] sluice_visualizer::VisualizerError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<evcxr::Error> for FrontendError {
    fn from(e: evcxr::Error) -> Self {
        FrontendError::Evcxr(e.to_string())
    }
}

impl From<sluice::SessionError> for FrontendError {
    fn from(e: sluice::SessionError) -> Self {
        FrontendError::Engine(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, FrontendError>;
