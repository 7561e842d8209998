//! The master service: sessions on engine-side graphs, extended by deltas and run by steps.
//!
//! Sessions live in a map from handle to the session's graph and its in-process
//! [`Session`]; any number of clients may use one handle. Steps run outside the async
//! workers' work (`block_in_place`, or tokio's blocking threads), one at a time per session; graph changes are serialised per session too, and a
//! change built on a stale version is refused.

mod events;
mod fit;
mod step;

use crate::data::DataRoots;
use crate::devices::DeviceSet;
use crate::executor::CancelToken;
use crate::graph::Graph;
use crate::service::auth::{caller_of, Caller, CheckToken, PeerCredentials};
use crate::service::chunks::{TensorChunks, CHUNK_BYTES};
use crate::service::proto::master_service_server::{MasterService, MasterServiceServer};
use crate::service::proto::run_step_chunk::Part;
use crate::service::proto::{self, RunStepChunk};
use crate::service::status::{
    graph_status, session_status, stale_version, unknown_session, wire_status,
};
use crate::service::tls::{ServerIdentity, TrustedCa};
use crate::service::wire::{graph_def_from_proto, graph_def_to_proto};
use crate::service::worker::{Bulk, WorkerServer};
use crate::service::{CONNECTION_WINDOW, MAX_FRAME, STREAM_WINDOW};
use crate::session::Session;
use crate::tensor::MemoryBudget;
use events::EventBus;
pub use events::WatchStream;
pub use fit::FitStream;
use proto::engine_event::Kind;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
pub use step::ChunkStream;
use step::{first_part, part_name, read_tensors, resolve, run_step_blocking};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

/// The most feeds one step may carry.
pub const MAX_FEEDS: u32 = 65_536;

/// How an engine serves.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The largest message other than a tensor chunk (a graph definition, with its
    /// constants) that the engine decodes; larger ones are refused with OUT_OF_RANGE.
    pub max_message_bytes: usize,
    /// The tokens calls must carry (`authorization: Bearer TOKEN`), one per user: a
    /// session belongs to the token that created it, and other tokens can neither use nor
    /// watch it. The first is also what the engine's own calls to other engines carry.
    /// Empty: no check, which only a loopback engine may do.
    pub tokens: Vec<String>,
    /// The cluster task this engine is (`/job:worker/task:0`), reported by GetStatus.
    pub task: Option<String>,
    /// The most bytes one tensor (a step's value, a variable, a peer's tensor) may take.
    pub memory_budget: MemoryBudget,
    /// The most sessions (registered graphs included) open at once.
    pub max_sessions: usize,
    /// The most calls (steps, fits, variable reads and writes) waiting for one session; past
    /// it a call is refused with RESOURCE_EXHAUSTED.
    pub max_queued: usize,
    /// Where the data sets clients name for a fit may be read from.
    pub data_roots: DataRoots,
    /// The engine's certificate and key: with them it serves only TLS (and its bulk channel
    /// stays closed: large tensors travel over gRPC, encrypted).
    pub tls: Option<ServerIdentity>,
    /// The authority the engine checks other engines' certificates against on its own calls
    /// (`None`: `SLUICE_TLS_CA`, if set).
    pub peer_ca: Option<TrustedCa>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_message_bytes: 256 << 20,
            tokens: Vec::new(),
            task: None,
            memory_budget: crate::devices::default_memory_budget(),
            max_sessions: 1024,
            max_queued: 64,
            data_roots: DataRoots::engine_default(),
            tls: None,
            peer_ca: None,
        }
    }
}

/// One session: its graph, its variables and steps, and what serialises changes.
struct Entry {
    handle: String,
    graph: Graph,
    /// Steps run so far (RunStep), for the step events.
    steps: AtomicI64,
    /// Taken by each call that uses the session, in the order they came (tokio's mutex is
    /// fair), waiting without a thread: see [`Entry::acquire`].
    session: Arc<tokio::sync::Mutex<Session>>,
    /// Calls waiting for (or holding) the session.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    /// Held while the graph's version is checked and a delta imported.
    extend: Mutex<()>,
    cancel: CancelToken,
    /// The token that created the session, where the engine has tokens.
    owner: Option<Caller>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A call's place in a session's queue, given up however the call ends.
struct InQueue(Arc<AtomicUsize>);

impl Drop for InQueue {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The session, held by one call; its place in the queue goes with it.
pub(super) struct Held {
    pub(super) session: tokio::sync::OwnedMutexGuard<Session>,
    _place: InQueue,
}

impl Entry {
    /// Waits for the session behind the calls before this one, on no thread: a session busy
    /// with a long step makes its own callers wait, never the engine's other sessions. Past
    /// `max_queued` waiting calls, a call is refused at once.
    pub(super) async fn acquire(&self) -> Result<Held, Status> {
        let place = InQueue(self.queued.clone());
        let before = self.queued.fetch_add(1, Ordering::SeqCst);
        if before >= self.max_queued {
            return Err(Status::resource_exhausted(format!(
                "session '{}' has {before} calls waiting, the most it queues \
                 (--max-queued {}); wait for them or cancel the running step",
                self.handle, self.max_queued
            )));
        }
        Ok(Held {
            session: self.session.clone().lock_owned().await,
            _place: place,
        })
    }
}

/// The master service. Clones share the sessions.
#[derive(Clone)]
pub struct MasterServer {
    /// What sessions get and how many there may be (see [`EngineConfig`]).
    limits: Arc<EngineConfig>,
    sessions: Arc<Mutex<HashMap<String, Arc<Entry>>>>,
    created: Arc<AtomicU64>,
    /// Data sets fits have loaded, by name.
    datasets: fit::DatasetCache,
    events: EventBus,
    /// The engine's devices, opened once and shared by its sessions.
    devices: Arc<DeviceSet>,
}

impl Default for MasterServer {
    fn default() -> Self {
        MasterServer {
            limits: Arc::new(EngineConfig::default()),
            sessions: Arc::default(),
            created: Arc::default(),
            datasets: fit::DatasetCache::default(),
            events: EventBus::default(),
            // The process's GPUs, which sessions run in this process share too.
            devices: DeviceSet::shared(crate::devices::gpu::GpuOptions::from_env()),
        }
    }
}

impl MasterServer {
    pub fn new() -> MasterServer {
        MasterServer::default()
    }

    /// A master service whose sessions get `config`'s memory budget, queue and peer token.
    pub fn with_config(config: &EngineConfig) -> MasterServer {
        MasterServer {
            limits: Arc::new(config.clone()),
            ..MasterServer::default()
        }
    }

    /// The tonic service, with the message limit of `config`.
    pub fn into_service(self, config: &EngineConfig) -> MasterServiceServer<MasterServer> {
        // A tensor chunk always fits, whatever the limit for other messages.
        let limit = config.max_message_bytes.max(CHUNK_BYTES + (64 << 10));
        MasterServiceServer::new(self)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(usize::MAX)
    }

    /// The session `handle` names, if `caller` may use it: another user's session is as
    /// unknown as one that never was.
    fn entry(&self, handle: &str, caller: Option<Caller>) -> Result<Arc<Entry>, Status> {
        lock(&self.sessions)
            .get(handle)
            .filter(|e| e.owner.is_none() || e.owner == caller)
            .cloned()
            .ok_or_else(|| unknown_session(handle))
    }

    /// A handle no other session of this process has had, and nobody can guess.
    fn new_handle(&self) -> String {
        let n = self.created.fetch_add(1, Ordering::Relaxed);
        let secret = crate::service::auth::random_u128() & ((1 << 96) - 1);
        format!("s{n}-{secret:024x}")
    }
}

/// Runs `f` on a blocking thread; a panic there becomes INTERNAL.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Status::internal(format!("the engine failed while serving the request: {e}"))
    })?
}

type ChunkResult = Result<Response<ChunkStream>, Status>;

#[tonic::async_trait]
impl MasterService for MasterServer {
    async fn create_session(
        &self,
        request: Request<proto::CreateSessionRequest>,
    ) -> Result<Response<proto::CreateSessionResponse>, Status> {
        let caller = caller_of(&request);
        let req = request.into_inner();
        let def = graph_def_from_proto(&req.graph_def.unwrap_or_default(), "graph_def")
            .map_err(|e| wire_status(&e))?;
        let graph = blocking(move || {
            let graph = Graph::new();
            match graph.import_graph_def(&def) {
                Ok(_) => Ok(graph),
                Err(e) => {
                    graph.forget();
                    Err(graph_status(&e))
                }
            }
        })
        .await?;
        let mut session = Session::with_devices(&graph, self.devices.clone(), true);
        session.set_memory_budget(self.limits.memory_budget);
        session.set_peer_credentials(PeerCredentials {
            token: self.limits.tokens.first().cloned(),
            ca: self.limits.peer_ca.clone(),
        });
        let handle = self.new_handle();
        let entry = Arc::new(Entry {
            handle: handle.clone(),
            cancel: session.cancel_token(),
            session: Arc::new(tokio::sync::Mutex::new(session)),
            queued: Arc::default(),
            max_queued: self.limits.max_queued,
            owner: caller,
            extend: Mutex::new(()),
            steps: AtomicI64::new(0),
            graph,
        });
        let version = entry.graph.len() as u64;
        {
            let mut sessions = lock(&self.sessions);
            if sessions.len() >= self.limits.max_sessions {
                entry.graph.forget();
                return Err(Status::resource_exhausted(format!(
                    "this engine has {} sessions open, the most it allows (--max-sessions); \
                     close some first",
                    sessions.len()
                )));
            }
            sessions.insert(handle.clone(), entry);
        }
        self.events.set_owner(&handle, caller);
        tracing::debug!("session {handle} created, {version} nodes");
        self.events.publish(
            &handle,
            Kind::SessionCreated(proto::SessionCreated {
                graph_version: version,
            }),
        );
        Ok(Response::new(proto::CreateSessionResponse {
            session_handle: handle,
            graph_version: version,
        }))
    }

    async fn extend_session(
        &self,
        request: Request<proto::ExtendSessionRequest>,
    ) -> Result<Response<proto::ExtendSessionResponse>, Status> {
        let caller = caller_of(&request);
        let req = request.into_inner();
        let entry = self.entry(&req.session_handle, caller)?;
        let def = graph_def_from_proto(&req.graph_def.unwrap_or_default(), "graph_def")
            .map_err(|e| wire_status(&e))?;
        let client = req.current_graph_version;
        let events = self.events.clone();
        let version = blocking(move || {
            let _serial = lock(&entry.extend);
            let engine = entry.graph.len() as u64;
            if client != engine {
                return Err(stale_version(client, engine));
            }
            entry
                .graph
                .import_graph_def(&def)
                .map_err(|e| graph_status(&e))?;
            let version = entry.graph.len() as u64;
            events.publish(
                &entry.handle,
                Kind::GraphChanged(proto::GraphChanged {
                    graph_version: version,
                    added: version - engine,
                }),
            );
            Ok(version)
        })
        .await?;
        Ok(Response::new(proto::ExtendSessionResponse {
            new_graph_version: version,
        }))
    }

    async fn get_graph(
        &self,
        request: Request<proto::GetGraphRequest>,
    ) -> Result<Response<proto::GetGraphResponse>, Status> {
        let caller = caller_of(&request);
        let req = request.into_inner();
        let entry = self.entry(&req.session_handle, caller)?;
        let (def, version) = blocking(move || {
            let _serial = lock(&entry.extend);
            let version = entry.graph.len() as u64;
            if req.from_version > version {
                return Err(Status::invalid_argument(format!(
                    "from_version {} is past the session's graph version {version}",
                    req.from_version
                )));
            }
            let from = usize::try_from(req.from_version).unwrap_or(usize::MAX);
            Ok((graph_def_to_proto(&entry.graph.to_graph_def(from)), version))
        })
        .await?;
        Ok(Response::new(proto::GetGraphResponse {
            graph_def: Some(def),
            graph_version: version,
        }))
    }

    async fn init_variables(
        &self,
        request: Request<proto::InitVariablesRequest>,
    ) -> Result<Response<proto::InitVariablesResponse>, Status> {
        let caller = caller_of(&request);
        let entry = self.entry(&request.into_inner().session_handle, caller)?;
        let mut held = entry.acquire().await?;
        let count = blocking(move || {
            held.session
                .init_variables()
                .map_err(|e| session_status(&e))
        })
        .await?;
        Ok(Response::new(proto::InitVariablesResponse {
            initialized: count as u64,
        }))
    }

    type RunStepStream = ChunkStream;

    async fn run_step(&self, request: Request<Streaming<RunStepChunk>>) -> ChunkResult {
        let caller = caller_of(&request);
        let mut stream = request.into_inner();
        let header = match first_part(&mut stream, "RunStep").await? {
            Part::Header(h) => h,
            other => {
                return Err(Status::invalid_argument(format!(
                    "RunStep: the first message is {}; it must be the header",
                    part_name(&Some(other))
                )))
            }
        };
        let entry = self.entry(&header.session_handle, caller)?;
        if header.feed_count > MAX_FEEDS {
            return Err(Status::invalid_argument(format!(
                "RunStep: {} feeds declared, at most {MAX_FEEDS} allowed",
                header.feed_count
            )));
        }
        let options = header.options.unwrap_or_default();
        let deadline = (options.timeout_ms > 0)
            .then(|| std::time::Instant::now() + Duration::from_millis(options.timeout_ms));
        let names = header.fetch.clone();
        let stepped = entry.clone();
        let step = async move {
            let feeds = read_tensors(&mut stream, header.feed_count as usize).await?;
            let held = entry.acquire().await?;
            let run =
                move || run_step_blocking(&entry, held, &header, feeds, options.trace, deadline);
            // Without a deadline to watch, the step runs on this worker thread, which hands
            // its other tasks to another: no hop to a blocking thread and back, which is most
            // of a tiny step's round trip where idle CPUs sleep deeply. With a deadline (or on
            // a single-threaded runtime) it runs on the blocking pool, so the wait can end.
            let flavor = tokio::runtime::Handle::current().runtime_flavor();
            if options.timeout_ms == 0 && flavor == tokio::runtime::RuntimeFlavor::MultiThread {
                tokio::task::block_in_place(run)
            } else {
                blocking(run).await
            }
        };
        let (values, timings) = match options.timeout_ms {
            0 => step.await?,
            ms => tokio::time::timeout(Duration::from_millis(ms), step)
                .await
                .map_err(|_| {
                    Status::deadline_exceeded(format!(
                        "the step did not finish within its {ms} ms deadline (it may still \
                         complete on the engine)"
                    ))
                })??,
        };
        let metadata = RunStepChunk {
            part: Some(Part::Metadata(proto::RunMetadata { timing: timings })),
        };
        let tensors: Vec<(String, _)> = names.into_iter().zip(values).collect();
        let step = stepped.steps.fetch_add(1, Ordering::Relaxed) + 1;
        self.events.publish_step(&stepped.handle, step, &tensors);
        Ok(Response::new(ChunkStream(TensorChunks::new(
            vec![],
            tensors,
            Some(metadata),
        ))))
    }

    async fn set_variable(
        &self,
        request: Request<Streaming<RunStepChunk>>,
    ) -> Result<Response<proto::SetVariableResponse>, Status> {
        let caller = caller_of(&request);
        let mut stream = request.into_inner();
        let header = match first_part(&mut stream, "SetVariable").await? {
            Part::SetVariable(h) => h,
            other => {
                return Err(Status::invalid_argument(format!(
                    "SetVariable: the first message is {}; it must be the set_variable header",
                    part_name(&Some(other))
                )))
            }
        };
        let entry = self.entry(&header.session_handle, caller)?;
        let mut values = read_tensors(&mut stream, 1).await?;
        let value = values
            .pop()
            .map(|(_, t)| t)
            .ok_or_else(|| Status::invalid_argument("SetVariable: no value was sent"))?;
        let mut held = entry.acquire().await?;
        blocking(move || {
            let var = resolve(&entry.graph, &header.variable, "variable")?;
            held.session
                .set_variable(var, value)
                .map_err(|e| session_status(&e))
        })
        .await?;
        Ok(Response::new(proto::SetVariableResponse {}))
    }

    async fn cancel(
        &self,
        request: Request<proto::CancelRequest>,
    ) -> Result<Response<proto::CancelResponse>, Status> {
        let caller = caller_of(&request);
        let req = request.into_inner();
        let entry = self.entry(&req.session_handle, caller)?;
        if req.reset {
            entry.cancel.reset();
        } else {
            entry.cancel.cancel();
        }
        Ok(Response::new(proto::CancelResponse {}))
    }

    type FitStream = FitStream;

    async fn fit(
        &self,
        request: Request<proto::FitRequest>,
    ) -> Result<Response<FitStream>, Status> {
        let caller = caller_of(&request);
        let req = request.into_inner();
        let entry = self.entry(&req.session_handle, caller)?;
        Ok(Response::new(fit::start_fit(
            entry,
            self.datasets.clone(),
            self.limits.data_roots.clone(),
            self.events.clone(),
            req,
        )))
    }

    async fn close_session(
        &self,
        request: Request<proto::CloseSessionRequest>,
    ) -> Result<Response<proto::CloseSessionResponse>, Status> {
        let caller = caller_of(&request);
        let handle = request.into_inner().session_handle;
        let entry = {
            let mut sessions = lock(&self.sessions);
            let theirs =
                (sessions.get(&handle)).is_some_and(|e| e.owner.is_some() && e.owner != caller);
            if theirs {
                return Err(unknown_session(&handle));
            }
            sessions
                .remove(&handle)
                .ok_or_else(|| unknown_session(&handle))?
        };
        // Steps still running end as soon as they can; the graph's memory goes with the last
        // of them.
        entry.cancel.cancel();
        entry.graph.forget();
        tracing::debug!("session {handle} closed");
        self.events
            .publish(&handle, Kind::SessionClosed(proto::SessionClosed {}));
        self.events.set_owner(&handle, None);
        Ok(Response::new(proto::CloseSessionResponse {}))
    }

    async fn list_devices(
        &self,
        _request: Request<proto::ListDevicesRequest>,
    ) -> Result<Response<proto::ListDevicesResponse>, Status> {
        let devices = self.devices.clone();
        let infos = blocking(move || Ok(devices.infos())).await?;
        let device = infos
            .into_iter()
            .map(|d| proto::DeviceAttributes {
                // `/device:GPU:0` as TensorFlow names it in a local job.
                name: match d.name.strip_prefix("/device:") {
                    Some(rest) => format!("/job:localhost/replica:0/task:0/device:{rest}"),
                    None => d.name,
                },
                device_type: d.kind.to_string(),
                memory_limit: d.memory_bytes,
                physical_device_desc: d.description,
                backend: d.backend,
            })
            .collect();
        Ok(Response::new(proto::ListDevicesResponse { device }))
    }

    type WatchEventsStream = WatchStream;

    async fn watch_events(
        &self,
        request: Request<proto::WatchEventsRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let caller = caller_of(&request);
        let session = request.into_inner().session_handle;
        if !session.is_empty() {
            self.entry(&session, caller)?;
        }
        Ok(Response::new(self.events.subscribe(session, caller)))
    }
}

/// The bulk channel an engine with `config` serves: TLS with its certificate where it has one.
fn bulk_channel(config: &EngineConfig) -> Bulk {
    match &config.tls {
        None => Bulk::Plain,
        Some(identity) => match identity.rustls_server() {
            Ok(tls) => Bulk::Tls(tls),
            Err(e) => {
                tracing::warn!("{e}; large tensors travel over gRPC");
                Bulk::Off
            }
        },
    }
}

/// Serves the master service on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: EngineConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let listen_ip = listener.local_addr().ok().map(|a| a.ip());
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let master = MasterServer::with_config(&config);
    let mut server = tonic::transport::Server::builder();
    if let Some(identity) = &config.tls {
        server = server.tls_config(identity.server_config())?;
    }
    server
        .initial_stream_window_size(Some(STREAM_WINDOW))
        .initial_connection_window_size(Some(CONNECTION_WINDOW))
        .max_frame_size(Some(MAX_FRAME))
        .add_service(InterceptedService::new(
            master.clone().into_service(&config),
            CheckToken::new(&config.tokens),
        ))
        .add_service(InterceptedService::new(
            WorkerServer::new(
                config.task.as_deref().unwrap_or_default(),
                master,
                listen_ip,
                bulk_channel(&config),
            )
            .into_service(config.max_message_bytes),
            CheckToken::new(&config.tokens),
        ))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
