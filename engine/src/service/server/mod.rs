//! The master service: sessions on engine-side graphs, extended by deltas and run by steps.
//!
//! Sessions live in a map from handle to the session's graph and its in-process
//! [`Session`]; any number of clients may use one handle. Calls wait for their session in a
//! bounded queue that holds no thread ([`entry`]); steps run outside the async workers' work
//! (`block_in_place`, or tokio's blocking threads), one at a time per session. Graph changes
//! are serialised per session too, and a change built on a stale version is refused.

mod config;
mod entry;
mod events;
mod fit;
mod runs;
mod serve;
mod step;

use crate::devices::DeviceSet;
use crate::graph::Graph;
use crate::service::auth::{caller_of, Caller, PeerCredentials};
use crate::service::chunks::{TensorChunks, CHUNK_BYTES};
use crate::service::proto::master_service_server::{MasterService, MasterServiceServer};
use crate::service::proto::run_step_chunk::Part;
use crate::service::proto::{self, RunStepChunk};
use crate::service::status::{
    graph_status, session_status, stale_version, unknown_session, wire_status,
};
use crate::service::wire::{graph_def_from_proto, graph_def_to_proto};
use crate::session::Session;
pub use config::EngineConfig;
use entry::{Entry, Held};
use events::EventBus;
pub use events::WatchStream;
pub use fit::FitStream;
use proto::engine_event::Kind;
pub use serve::serve;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
pub use step::ChunkStream;
pub(crate) use step::MAX_REPEAT;
use step::{first_part, part_name, read_tensors, resolve, run_step_blocking};
use tonic::{Request, Response, Status, Streaming};

/// The most feeds one step may carry.
pub const MAX_FEEDS: u32 = 65_536;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

    /// A master service whose sessions get `config`'s memory budget, queue and peer token;
    /// with `config.logdir`, it writes one TensorBoard run per session there.
    pub fn with_config(config: &EngineConfig) -> MasterServer {
        let server = MasterServer {
            limits: Arc::new(config.clone()),
            ..MasterServer::default()
        };
        if let Some(logdir) = &config.logdir {
            let sessions = Arc::downgrade(&server.sessions);
            if let Err(e) = runs::spawn(logdir.clone(), &server.events, sessions) {
                tracing::error!("no TensorBoard runs in {}: {e}", logdir.display());
            }
        }
        server
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
        session.set_data_roots(self.limits.data_roots.clone());
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
        let options = header.options.clone().unwrap_or_default();
        let trace = options.trace;
        let deadline = (options.timeout_ms > 0)
            .then(|| std::time::Instant::now() + Duration::from_millis(options.timeout_ms));
        let names = header.fetch.clone();
        let stepped = entry.clone();
        let step = async move {
            let feeds = read_tensors(&mut stream, header.feed_count as usize).await?;
            let held = entry.acquire().await?;
            let run = move || run_step_blocking(&entry, held, &header, feeds, trace, deadline);
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
            self.limits.clone(),
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
