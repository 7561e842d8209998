//! The remote session: the in-process session's API, run by a standalone engine over gRPC.
//!
//! Build the graph locally as always; before each call the session sends the nodes added
//! since the last one (ExtendSession with the graph version it knows). If another client
//! extended the engine's graph meanwhile, it first pulls their nodes into the local graph
//! (GetGraph) and then sends its own. Which local nodes are still unsent is tracked by id,
//! since ids may differ between client and engine; names are what travel.
//!
//! Dropping a `RemoteSession` leaves the engine's session alive: [`RemoteSession::attach`]
//! finds it again by handle, and its nodes by name. [`RemoteSession::close`] ends it.

pub mod events;
mod sync;
mod transport;

use super::chunks::TensorChunks;
use super::proto::run_step_chunk::Part;
use super::proto::{self, RunStepChunk};
use super::status::session_error;
use super::wire::graph_def_to_proto;
use crate::error::SessionError;
use crate::fit::{FitConfig, FitProgress, LabelFormat};
use crate::graph::{Graph, Output};
use crate::runner::NodeTiming;
use crate::tensor::Tensor;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use sync::SyncState;
use transport::{block, connect, connect_both, read_answer, Client, ClientRuntime, WorkerClient};

/// A device of the engine, as ListDevices reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub name: String,
    /// `CPU` or `GPU`.
    pub device_type: String,
    /// Bytes of the device's own memory, 0 where unknown.
    pub memory_limit: u64,
    /// What the device is: `NVIDIA H100 80GB HBM3`, `16 cores`.
    pub description: String,
    /// How the engine drives it: `host`, `vulkan`.
    pub backend: String,
}

/// A session on a standalone engine (`sluice-engine serve`), with the methods of
/// [`crate::Session`]. Its calls block: use it from plain code, not from async code.
pub struct RemoteSession {
    addr: String,
    runtime: ClientRuntime,
    client: Client,
    /// Set for a graph registered on a worker: steps are RunGraph, closing is CleanupGraph.
    worker: Option<WorkerClient>,
    graph: Graph,
    handle: String,
    timeout: Option<Duration>,
    state: Mutex<SyncState>,
}

impl RemoteSession {
    /// Opens a session on the engine at `addr` (`host:port`) with the whole of `graph`.
    pub fn create(addr: &str, graph: &Graph) -> Result<RemoteSession, SessionError> {
        Self::open(addr, graph, false)
    }

    /// Registers `graph` on the worker at `addr` as its part of a distributed graph
    /// (WorkerService.RegisterGraph): steps are RunGraph calls, [`close`](Self::close) is
    /// CleanupGraph, which also drops the values its `_Send` nodes left behind.
    pub fn register(addr: &str, graph: &Graph) -> Result<RemoteSession, SessionError> {
        Self::open(addr, graph, true)
    }

    fn open(addr: &str, graph: &Graph, on_worker: bool) -> Result<RemoteSession, SessionError> {
        let (runtime, client, worker) = connect_both(addr)?;
        let seen = graph.len();
        let request = proto::CreateSessionRequest {
            graph_def: Some(graph_def_to_proto(&graph.to_graph_def(0))),
        };
        let reply = if on_worker {
            let mut w = worker.clone();
            block(&runtime, w.register_graph(request))?
        } else {
            let mut c = client.clone();
            block(&runtime, c.create_session(request))?
        }
        .map_err(session_error)?
        .into_inner();
        Ok(RemoteSession {
            addr: addr.to_string(),
            runtime,
            client,
            worker: on_worker.then_some(worker),
            graph: graph.clone(),
            handle: reply.session_handle,
            timeout: None,
            state: Mutex::new(SyncState {
                engine_version: reply.graph_version,
                seen,
                unsent: BTreeSet::new(),
            }),
        })
    }

    /// Attaches to an existing session by its handle: the engine's graph is rebuilt in a
    /// fresh local graph, where `graph.get("W")` finds a node by name again.
    pub fn attach(addr: &str, handle: &str) -> Result<(RemoteSession, Graph), SessionError> {
        let (runtime, client) = connect(addr)?;
        let graph = Graph::new();
        let session = RemoteSession {
            addr: addr.to_string(),
            runtime,
            client,
            worker: None,
            graph: graph.clone(),
            handle: handle.to_string(),
            timeout: None,
            state: Mutex::new(SyncState {
                engine_version: 0,
                seen: 0,
                unsent: BTreeSet::new(),
            }),
        };
        session.pull(&mut session.state())?;
        Ok((session, graph))
    }

    /// The engine session's handle, for [`attach`](Self::attach).
    pub fn handle(&self) -> &str {
        &self.handle
    }

    /// The engine's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The version (node count) of the engine's graph when this client last saw it.
    pub fn engine_graph_version(&self) -> u64 {
        self.state().engine_version
    }

    /// Sets a deadline for each later step (None: none); a step past it fails with
    /// DEADLINE_EXCEEDED, though the engine may still finish it.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    fn state(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn block<F: Future>(&self, f: F) -> Result<F::Output, SessionError> {
        block(&self.runtime, f)
    }

    /// Gives every variable that has no value yet its initial value; returns how many.
    pub fn init_variables(&mut self) -> Result<usize, SessionError> {
        self.sync()?;
        let request = proto::InitVariablesRequest {
            session_handle: self.handle.clone(),
        };
        let mut c = self.client.clone();
        let reply = self
            .block(c.init_variables(request))?
            .map_err(session_error)?;
        Ok(usize::try_from(reply.into_inner().initialized).unwrap_or(usize::MAX))
    }

    /// Computes `fetches`, feeding `feeds` (placeholders, or any value to override).
    pub fn run(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
    ) -> Result<Vec<Tensor>, SessionError> {
        self.run_with_targets(fetches, feeds, &[])
    }

    /// Like [`run`](Self::run), also running `targets` (ops whose results are not returned).
    pub fn run_with_targets(
        &self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
    ) -> Result<Vec<Tensor>, SessionError> {
        Ok(self.step(fetches, feeds, targets, false, None)?.0)
    }

    /// Runs the step `times` times in a row on the engine, in one call, and returns the last
    /// run's values; `advance`, a fed scalar i64, is increased by one for each later run (a
    /// distributed step's id). A step whose inputs the engine reads itself (input readers)
    /// trains that many steps for one round trip.
    pub fn run_repeated(
        &self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
        times: u32,
        advance: Option<Output>,
    ) -> Result<Vec<Tensor>, SessionError> {
        let advance = advance.map(|o| self.wire_name(o)).transpose()?;
        let repeat = Repeat {
            times,
            advance: advance.unwrap_or_default(),
        };
        Ok(self.step(fetches, feeds, targets, false, Some(repeat))?.0)
    }

    /// Like [`run`](Self::run), also returning how long each node's kernel took on the
    /// engine, in the order they ran.
    pub fn run_traced(
        &mut self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
    ) -> Result<(Vec<Tensor>, Vec<NodeTiming>), SessionError> {
        self.step(fetches, feeds, &[], true, None)
    }

    /// [`run_traced`](Self::run_traced) with targets: what a distributed step runs on each
    /// worker.
    pub fn run_traced_with_targets(
        &self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
    ) -> Result<(Vec<Tensor>, Vec<NodeTiming>), SessionError> {
        self.step(fetches, feeds, targets, true, None)
    }

    /// The current value of a variable, or `None` if it has none yet. Unlike the in-process
    /// session's, this returns a `Result`: the engine is asked, and the network can fail.
    pub fn variable(&self, var: Output) -> Result<Option<Tensor>, SessionError> {
        self.graph.variable_node(var)?;
        match self.step(&[var], &[], &[], false, None) {
            Ok((mut values, _)) => Ok(values.pop()),
            Err(SessionError::Uninitialized(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets a variable's value; its dtype and shape must fit the variable's.
    pub fn set_variable(&mut self, var: Output, value: Tensor) -> Result<(), SessionError> {
        self.graph.variable_node(var)?;
        self.sync()?;
        let name = self.wire_name(var)?;
        let header = RunStepChunk {
            part: Some(Part::SetVariable(proto::SetVariableHeader {
                session_handle: self.handle.clone(),
                variable: name.clone(),
            })),
        };
        let chunks = TensorChunks::new(vec![header], vec![(name, value)], None);
        let mut c = self.client.clone();
        self.block(c.set_variable(tokio_stream::iter(chunks)))?
            .map_err(session_error)?;
        Ok(())
    }

    /// Trains engine-side on the data set the engine loads as `dataset` (`mnist-digits`,
    /// `idx:DIR`, ...; see [`crate::data::DataSource`]), as [`crate::Session::fit`] does,
    /// calling `on_progress` with each report as it arrives. Returns the last report (`None`
    /// when no step ran). A cancel ([`cancel_token`](Self::cancel_token)) ends it with
    /// [`SessionError::Cancelled`]; the updates made so far stay.
    pub fn fit(
        &mut self,
        dataset: &str,
        config: &FitConfig,
        on_progress: &mut dyn FnMut(&FitProgress),
    ) -> Result<Option<FitProgress>, SessionError> {
        self.sync()?;
        let request = proto::FitRequest {
            session_handle: self.handle.clone(),
            dataset: dataset.to_string(),
            inputs: self.wire_name(config.inputs)?,
            labels: self.wire_name(config.labels)?,
            loss: self.wire_name(config.loss)?,
            train: self.wire_name(config.train)?,
            label_format: match config.label_format {
                LabelFormat::OneHot => proto::LabelFormat::OneHot,
                LabelFormat::Indices => proto::LabelFormat::Indices,
            } as i32,
            batch_size: config.batch_size as u64,
            steps: config.steps as u64,
            seed: config.seed,
            report_every: config.report_every as u64,
        };
        let mut on_progress = crate::fit::with_summaries(config, on_progress)?;
        let mut c = self.client.clone();
        self.block(async move {
            let mut reports = c.fit(request).await.map_err(session_error)?.into_inner();
            let mut last = None;
            while let Some(m) = reports.message().await.map_err(session_error)? {
                let progress = FitProgress {
                    steps_done: usize::try_from(m.steps_done).unwrap_or(usize::MAX),
                    steps_total: usize::try_from(m.steps_total).unwrap_or(usize::MAX),
                    global_step: m.global_step,
                    loss: m.loss,
                    examples_per_second: m.examples_per_second,
                    elapsed: Duration::try_from_secs_f64(m.elapsed_seconds).unwrap_or_default(),
                };
                on_progress(&progress);
                last = Some(progress);
            }
            Ok(last)
        })?
    }

    /// Pulls the nodes other clients added to the engine's graph into the local graph, so
    /// `graph().get(name)` finds them; returns how many arrived.
    pub fn refresh(&self) -> Result<usize, SessionError> {
        let mut state = self.state();
        let before = state.engine_version;
        self.pull(&mut state)?;
        Ok(usize::try_from(state.engine_version.saturating_sub(before)).unwrap_or(usize::MAX))
    }

    /// A handle that cancels this session's steps from another thread (an interrupt
    /// handler) while one blocks in [`run`](Self::run); see [`RemoteCancelToken`].
    pub fn cancel_token(&self) -> RemoteCancelToken {
        RemoteCancelToken {
            addr: self.addr.clone(),
            handle: self.handle.clone(),
        }
    }

    /// This session's events as they happen (its steps, fits and graph changes), from
    /// another connection: read them on another thread while this one runs steps.
    pub fn watch_events(&self) -> Result<events::EventStream, SessionError> {
        events::watch_events(&self.addr, Some(&self.handle))
    }

    /// The engine's devices.
    pub fn list_devices(&self) -> Result<Vec<Device>, SessionError> {
        let mut c = self.client.clone();
        let reply = self
            .block(c.list_devices(proto::ListDevicesRequest {}))?
            .map_err(session_error)?;
        Ok(reply
            .into_inner()
            .device
            .into_iter()
            .map(|d| Device {
                name: d.name,
                device_type: d.device_type,
                memory_limit: d.memory_limit,
                description: d.physical_device_desc,
                backend: d.backend,
            })
            .collect())
    }

    /// Ends the engine's session: its graph and variables are gone for every client.
    pub fn close(self) -> Result<(), SessionError> {
        let request = proto::CloseSessionRequest {
            session_handle: self.handle.clone(),
        };
        let (mut c, worker) = (self.client.clone(), self.worker.clone());
        let call = async move {
            match worker {
                Some(mut w) => w.cleanup_graph(request).await.map(|_| ()),
                None => c.close_session(request).await.map(|_| ()),
            }
        };
        // The step deadline, if one is set, bounds closing too (a worker may be gone).
        let result = match self.timeout {
            Some(limit) => self
                .block(async move { tokio::time::timeout(limit, call).await })?
                .map_err(|_| {
                    session_error(tonic::Status::deadline_exceeded(format!(
                        "closing session {} took more than {} ms",
                        self.handle,
                        limit.as_millis()
                    )))
                })?,
            None => self.block(call)?,
        };
        result.map_err(session_error)
    }

    /// How a handle is written on the wire: `name`, or `name:index` past the first output.
    /// An invalid node reports its error here, as a local run would.
    fn wire_name(&self, output: Output) -> Result<String, SessionError> {
        let data = self.graph.read();
        let node = data
            .nodes
            .get(output.node())
            .filter(|_| output.graph_id() == self.graph.id)
            .ok_or_else(|| crate::error::GraphError::MixedGraphs {
                node: output.name(),
            })?;
        if let Some(e) = &node.error {
            return Err(e.clone().into());
        }
        Ok(match output.index() {
            0 => node.name.clone(),
            i => format!("{}:{i}", node.name),
        })
    }

    fn step(
        &self,
        fetches: &[Output],
        feeds: &[(Output, Tensor)],
        targets: &[Output],
        trace: bool,
        repeat: Option<Repeat>,
    ) -> Result<(Vec<Tensor>, Vec<NodeTiming>), SessionError> {
        // Names after the sync: catching up may rename nodes not sent before.
        self.sync()?;
        let fetch = (fetches.iter())
            .map(|&o| self.wire_name(o))
            .collect::<Result<Vec<_>, _>>()?;
        let target = (targets.iter())
            .map(|&o| self.wire_name(o))
            .collect::<Result<Vec<_>, _>>()?;
        let feeds = (feeds.iter())
            .map(|(o, t)| Ok((self.wire_name(*o)?, t.clone())))
            .collect::<Result<Vec<_>, SessionError>>()?;
        let header = RunStepChunk {
            part: Some(Part::Header(proto::RunStepHeader {
                session_handle: self.handle.clone(),
                fetch,
                target,
                feed_count: u32::try_from(feeds.len()).unwrap_or(u32::MAX),
                options: Some(proto::RunOptions {
                    // A repeated step's deadline is the session's for each run.
                    timeout_ms: self.timeout.map_or(0, |t| {
                        let runs = repeat.as_ref().map_or(1, |r| u64::from(r.times.max(1)));
                        (t.as_millis().max(1) as u64).saturating_mul(runs)
                    }),
                    trace,
                    repeat: repeat.as_ref().map_or(0, |r| r.times),
                    advance_feed: repeat.map(|r| r.advance).unwrap_or_default(),
                }),
            })),
        };
        let chunks = TensorChunks::new(vec![header], feeds, None);
        let mut c = self.client.clone();
        let worker = self.worker.clone();
        let wanted = fetches.len();
        self.block(async move {
            let stream = tokio_stream::iter(chunks);
            let answer = match worker {
                Some(mut w) => w.run_graph(stream).await,
                None => c.run_step(stream).await,
            };
            let mut answer = answer.map_err(session_error)?.into_inner();
            read_answer(&mut answer, wanted).await
        })?
    }
}

/// A step run several times in one call: how often, and the feed advanced by one each run.
struct Repeat {
    times: u32,
    advance: String,
}

/// Cancels the steps of an engine session, as [`crate::CancelToken`] does in-process: the
/// running step and later ones end with [`SessionError::Cancelled`] (no update half-applied)
/// until [`reset`](Self::reset). Each call opens its own connection, so it works from any
/// thread while another blocks in a step.
#[derive(Debug, Clone)]
pub struct RemoteCancelToken {
    addr: String,
    handle: String,
}

impl RemoteCancelToken {
    /// The token of the session `handle` on the engine at `addr`: what a frontend that did
    /// not open the session (it saw it in [`events::watch_events`]) uses to interrupt it.
    pub fn new(addr: &str, handle: &str) -> RemoteCancelToken {
        RemoteCancelToken {
            addr: addr.to_string(),
            handle: handle.to_string(),
        }
    }

    pub fn cancel(&self) -> Result<(), SessionError> {
        self.send(false)
    }

    /// Lets steps run again.
    pub fn reset(&self) -> Result<(), SessionError> {
        self.send(true)
    }

    fn send(&self, reset: bool) -> Result<(), SessionError> {
        let (runtime, mut client) = connect(&self.addr)?;
        let request = proto::CancelRequest {
            session_handle: self.handle.clone(),
            reset,
        };
        block(&runtime, client.cancel(request))?.map_err(session_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RemoteError;

    #[test]
    fn an_unreachable_engine_is_named() {
        // Port 1 on loopback: nothing listens there.
        let err = RemoteSession::create("127.0.0.1:1", &Graph::new()).err();
        match err {
            Some(SessionError::Remote(RemoteError::Connect { addr, .. })) => {
                assert_eq!(addr, "127.0.0.1:1")
            }
            other => panic!("expected a connect error, got {other:?}"),
        }
    }

    #[test]
    fn a_remote_session_refuses_to_block_inside_a_runtime() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err =
            runtime.block_on(async { RemoteSession::create("127.0.0.1:1", &Graph::new()).err() });
        assert_eq!(err, Some(RemoteError::InsideRuntime.into()));
    }
}
