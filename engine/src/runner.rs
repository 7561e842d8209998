//! One API over both sessions: [`Runner`] is what the in-process [`Session`] and the
//! [`RemoteSession`] both do, so a program (an example, a notebook) is written once and runs
//! embedded or against a standalone engine, as `SLUICE_ENGINE` says.

use crate::error::SessionError;
use crate::fit::{FitConfig, FitProgress};
use crate::graph::{Graph, Output};
use crate::service::RemoteSession;
#[cfg(feature = "engine")]
use crate::session::Session;
use crate::tensor::Tensor;
pub use crate::timeline::{NodeTiming, TransferTiming};

/// The environment variable naming a standalone engine (`host:port`) to run against.
pub const ENGINE_ENV: &str = "SLUICE_ENGINE";

/// What both sessions do; see [`Session`] for each method.
pub trait Runner {
    fn init_variables(&mut self) -> Result<usize, SessionError>;

    fn run(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
    ) -> Result<Vec<Tensor>, SessionError> {
        self.run_with_targets(fetches, feeds, &[])
    }

    fn run_with_targets(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
    ) -> Result<Vec<Tensor>, SessionError>;

    fn run_traced(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
    ) -> Result<(Vec<Tensor>, Vec<NodeTiming>), SessionError> {
        self.run_traced_with_targets(fetches, feeds, &[])
    }

    /// A traced step that also runs `targets` (a training step's updates).
    fn run_traced_with_targets(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
    ) -> Result<(Vec<Tensor>, Vec<NodeTiming>), SessionError>;

    /// The current value of a variable, `None` if it has none yet (a remote session may also
    /// fail to ask).
    fn variable(&self, var: Output) -> Result<Option<Tensor>, SessionError>;

    fn set_variable(&mut self, var: Output, value: Tensor) -> Result<(), SessionError>;

    /// Trains on the data set named `dataset` (`mnist-digits`, `fashion-mnist`, `idx:DIR`,
    /// `arrow:PATH?label=COL`, ...), loaded where the steps run, calling `on_progress` with
    /// each report. Returns the last report (`None` when no step ran).
    fn fit(
        &mut self,
        dataset: &str,
        config: &FitConfig,
        on_progress: &mut dyn FnMut(&FitProgress),
    ) -> Result<Option<FitProgress>, SessionError>;

    /// Where the steps run: `in-process`, or the engine's address.
    fn location(&self) -> String;
}

#[cfg(feature = "engine")]
impl Runner for Session {
    fn init_variables(&mut self) -> Result<usize, SessionError> {
        Session::init_variables(self)
    }

    fn run_with_targets(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
    ) -> Result<Vec<Tensor>, SessionError> {
        Session::run_with_targets(self, fetches, feeds, targets)
    }

    fn run_traced_with_targets(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
    ) -> Result<(Vec<Tensor>, Vec<NodeTiming>), SessionError> {
        let options = crate::session::StepOptions {
            deadline: None,
            trace: true,
        };
        Session::run_step(self, fetches, feeds, targets, &options)
    }

    fn variable(&self, var: Output) -> Result<Option<Tensor>, SessionError> {
        Ok(Session::variable(self, var))
    }

    fn set_variable(&mut self, var: Output, value: Tensor) -> Result<(), SessionError> {
        Session::set_variable(self, var, value)
    }

    fn fit(
        &mut self,
        dataset: &str,
        config: &FitConfig,
        on_progress: &mut dyn FnMut(&FitProgress),
    ) -> Result<Option<FitProgress>, SessionError> {
        let data = crate::training::load_named(dataset)?;
        let mut last = None;
        Session::fit(self, &data, config, &mut |p| {
            last = Some(p.clone());
            on_progress(p);
        })?;
        Ok(last)
    }

    fn location(&self) -> String {
        "in-process".to_string()
    }
}

impl Runner for RemoteSession {
    fn init_variables(&mut self) -> Result<usize, SessionError> {
        RemoteSession::init_variables(self)
    }

    fn run_with_targets(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
    ) -> Result<Vec<Tensor>, SessionError> {
        RemoteSession::run_with_targets(self, fetches, feeds, targets)
    }

    fn run_traced_with_targets(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
    ) -> Result<(Vec<Tensor>, Vec<NodeTiming>), SessionError> {
        RemoteSession::run_traced_with_targets(self, fetches, feeds, targets)
    }

    fn variable(&self, var: Output) -> Result<Option<Tensor>, SessionError> {
        RemoteSession::variable(self, var)
    }

    fn set_variable(&mut self, var: Output, value: Tensor) -> Result<(), SessionError> {
        RemoteSession::set_variable(self, var, value)
    }

    fn fit(
        &mut self,
        dataset: &str,
        config: &FitConfig,
        on_progress: &mut dyn FnMut(&FitProgress),
    ) -> Result<Option<FitProgress>, SessionError> {
        RemoteSession::fit(self, dataset, config, on_progress)
    }

    fn location(&self) -> String {
        format!("engine at {}", self.addr())
    }
}

/// A session on the engine named by `SLUICE_ENGINE` if it is set (and not empty), else an
/// in-process one: what every example starts with. Built without the `engine` feature there
/// is no in-process session, and an unset `SLUICE_ENGINE` is an error that says so.
pub fn connect_or_local(graph: &Graph) -> Result<Box<dyn Runner + Send>, SessionError> {
    match std::env::var(ENGINE_ENV) {
        Ok(addr) if !addr.trim().is_empty() => {
            Ok(Box::new(RemoteSession::create(addr.trim(), graph)?))
        }
        #[cfg(feature = "engine")]
        _ => Ok(Box::new(Session::new(graph))),
        #[cfg(not(feature = "engine"))]
        _ => Err(crate::error::RemoteError::NoEngine.into()),
    }
}
