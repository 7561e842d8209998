//! The kernel's errors.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum KernelError {
    #[error("connection file {path}: {source}")]
    ConnectionFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connection file {path} is not valid JSON: {source}")]
    ConnectionJson {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported signature scheme `{0}` (only hmac-sha256)")]
    SignatureScheme(String),
    #[error("jupyter transport: {0}")]
    Transport(#[from] jupyter_zmq_client::RuntimeError),
    #[error("evcxr: {0}")]
    Evcxr(String),
    #[error("engine: {0}")]
    Engine(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("kernelspec: {0}")]
    Install(String),
    #[error("drawing: {0}")]
    Draw(#[from] sluice_visualizer::VisualizerError),
}

impl From<evcxr::Error> for KernelError {
    fn from(e: evcxr::Error) -> Self {
        KernelError::Evcxr(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, KernelError>;
