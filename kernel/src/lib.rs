//! The Sluice Jupyter kernel: Rust cells run through evcxr against a persistent engine.
//!
//! The transport (ZeroMQ sockets, HMAC signatures, iopub with JEP 65's welcome) lives in
//! [`transport`]; shell and control requests in [`shell`] and [`control`]; cells run on one
//! thread that owns evcxr ([`executor`]), and every output of a cell goes to iopub through one
//! ordered [`pump`]. Engine events become live loss curves ([`live`]); graphs become pictures
//! ([`graph_view`]).

pub mod child_protocol;
pub mod control;
pub mod engine_events;
pub mod engine_link;
pub mod error;
pub mod evaluator;
pub mod executor;
pub mod graph_view;
pub mod history;
pub mod install;
pub mod is_complete;
pub mod kernel;
pub mod live;
pub mod outputs;
pub mod prelude;
pub mod pump;
pub mod shared_linking;
pub mod shell;
pub mod transport;
pub mod wire;
pub mod workdir;

pub use error::KernelError;
