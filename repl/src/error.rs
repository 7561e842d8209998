//! The REPL's errors.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReplError {
    /// Starting cells or the engine failed (what the frontends share).
    #[error(transparent)]
    Frontend(#[from] sluice_frontend::FrontendError),
    #[error("line editor: {0}")]
    Editor(#[from] rustyline::error::ReadlineError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<sluice_visualizer::VisualizerError> for ReplError {
    fn from(e: sluice_visualizer::VisualizerError) -> Self {
        ReplError::Frontend(e.into())
    }
}

pub type Result<T> = std::result::Result<T, ReplError>;
