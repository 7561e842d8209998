//! The REPL's errors.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReplError {
    /// The kernel's evcxr front or engine link failed.
    #[error(transparent)]
    Kernel(#[from] sluice_kernel::KernelError),
    #[error("evcxr: {0}")]
    Evcxr(String),
    #[error("engine: {0}")]
    Engine(String),
    #[error("drawing: {0}")]
    Draw(#[from] sluice_visualizer::VisualizerError),
    #[error("line editor: {0}")]
    Editor(#[from] rustyline::error::ReadlineError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Usage(String),
}

impl From<evcxr::Error> for ReplError {
    fn from(e: evcxr::Error) -> Self {
        ReplError::Evcxr(e.to_string())
    }
}

impl From<sluice::SessionError> for ReplError {
    fn from(e: sluice::SessionError) -> Self {
        ReplError::Engine(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, ReplError>;
