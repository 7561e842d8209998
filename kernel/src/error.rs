//! The Jupyter kernel's own errors (the protocol, its files and the kernelspec); what cells
//! and the engine report comes from `sluice_frontend`.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum JupyterError {
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
    #[error("kernelspec in {path}: {message}")]
    Install { path: String, message: String },
    #[error(transparent)]
    Frontend(#[from] sluice_frontend::FrontendError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, JupyterError>;
