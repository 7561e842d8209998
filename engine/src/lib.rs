//! Sluice: a dataflow engine for tensors.
//!
//! A program is a graph of operations built through small `Copy` handles ([`Output`]);
//! [`gradients`] adds the reverse-mode derivative to the same graph; a [`Session`] holds the
//! variables and runs the part of the graph that the fetches need.

pub mod autodiff;
pub mod data;
pub mod error;
pub mod executor;
pub mod fit;
pub mod graph;
pub mod ops;
pub mod optimizers;
pub mod runner;
pub mod service;
pub mod session;
pub mod tensor;

pub use autodiff::{gradient, gradients};
pub use error::{GraphError, RemoteError, SessionError};
pub use executor::{CancelToken, NodeTiming};
pub use fit::{FitConfig, FitProgress, FitSummary, LabelFormat, MetricPoint};
pub use graph::{AttrValue, Graph, GraphDef, Initializer, NodeDef, Output};
pub use ops::*;
pub use optimizers::{Adam, GradientDescent, Momentum, Optimizer};
pub use runner::{connect_or_local, Runner};
pub use service::RemoteSession;
pub use session::Session;
pub use tensor::{DType, Tensor, TensorError};

/// Everything a program or a notebook cell needs, in one `use`.
pub mod prelude {
    pub use crate::autodiff::{gradient, gradients};
    pub use crate::data::{Batches, Dataset};
    pub use crate::fit::{FitConfig, FitProgress, LabelFormat};
    pub use crate::graph::{Graph, Initializer, Output};
    pub use crate::ops::*;
    pub use crate::optimizers::{Adam, GradientDescent, Momentum, Optimizer};
    pub use crate::runner::{connect_or_local, Runner};
    pub use crate::service::RemoteSession;
    pub use crate::session::Session;
    pub use crate::tensor::{DType, Tensor};
}
