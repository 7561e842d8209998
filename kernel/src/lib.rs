//! The Sluice Jupyter kernel: Rust cells run through evcxr against a persistent engine.
//!
//! What it shares with the terminal REPL (evcxr with the Sluice prelude, the engine link,
//! cell outputs, completions) is `sluice_frontend`; this crate is the Jupyter side. The
//! transport (ZeroMQ sockets, HMAC signatures, iopub with JEP 65's welcome) lives in
//! [`transport`] and [`wire`]; shell and control requests in [`shell`] and [`control`];
//! cells run on one thread ([`cell_thread`]) and every output of a cell goes to iopub through
//! one ordered sink ([`iopub_sink`]), live curves included ([`live_displays`]). The
//! history survives the kernel ([`history`]); [`install`] writes the kernelspec.

pub mod cell_thread;
pub mod control;
pub mod error;
pub mod history;
pub mod install;
pub mod iopub_sink;
pub mod kernel;
pub mod live_displays;
pub mod outputs;
pub mod prewarm;
pub mod shell;
pub mod transport;
pub mod wire;

pub use error::JupyterError;
