//! Sluice: a dataflow engine for tensors.
//!
//! A program is a graph of operations built through small `Copy` handles ([`Output`]);
//! [`gradients`] adds the reverse-mode derivative to the same graph; a [`Session`] holds the
//! variables and runs the part of the graph that the fetches need.
//!
//! The default feature `engine` holds what runs steps: kernels, the executor, the in-process
//! session, the Arrow/Parquet readers and the gRPC server. Without it the crate is the light
//! client a notebook cell links against: graph building, op definitions, autodiff,
//! optimizers and [`RemoteSession`].
//!
//! The library prints nothing: it reports through `tracing` events, which a program shows
//! with a subscriber of its choice, such as the one `logging::init` installs (feature
//! `engine`; `RUST_LOG` filters it).

pub mod autodiff;
pub mod checkpoint;
pub mod data;
#[cfg(feature = "engine")]
pub mod devices;
pub mod distributed;
#[cfg(feature = "engine")]
pub mod dump;
pub mod error;
#[cfg(feature = "engine")]
pub mod executor;
pub mod fit;
pub mod graph;
#[cfg(feature = "engine")]
pub mod kernels;
#[cfg(feature = "engine")]
pub mod logging;
pub mod ops;
pub mod optimizers;
pub mod runner;
pub mod service;
#[cfg(feature = "engine")]
pub mod session;
pub mod tensor;
pub mod tensorboard;
pub mod timeline;
pub mod training;

pub use autodiff::{gradient, gradients};
pub use error::{GraphError, RemoteError, SessionError};
#[cfg(feature = "engine")]
pub use executor::CancelToken;
pub use fit::{FitConfig, FitProgress, FitSummary, LabelFormat, MetricPoint};
pub use graph::{AttrValue, Graph, GraphDef, GraphSummary, Initializer, NodeDef, Output};
pub use ops::*;
pub use optimizers::{Adam, GradientDescent, Momentum, Optimizer};
pub use runner::{connect_or_local, NodeTiming, Runner, TransferTiming};
pub use service::RemoteSession;
#[cfg(feature = "engine")]
pub use session::{Session, SessionOptions};
pub use tensor::{DType, Tensor, TensorError};
pub use tensorboard::SummaryWriter;

/// Everything a program or a notebook cell needs, in one `use`.
pub mod prelude {
    pub use crate::autodiff::{gradient, gradient_values, gradients};
    pub use crate::data::{mnist_digits, Batches, Dataset};
    pub use crate::fit::{FitConfig, FitProgress, LabelFormat};
    pub use crate::graph::{Graph, Initializer, Output};
    pub use crate::ops::*;
    pub use crate::optimizers::{Adagrad, Adam, Ftrl, GradientDescent, Momentum, Optimizer};
    pub use crate::runner::{connect_or_local, Runner};
    pub use crate::service::{RemoteCancelToken, RemoteSession};
    #[cfg(feature = "engine")]
    pub use crate::session::Session;
    pub use crate::tensor::{DType, Tensor};
    pub use crate::tensorboard::SummaryWriter;
}
