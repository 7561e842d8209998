//! The worker service: what masters and other workers ask of a worker — graphs to register,
//! run and clean up (served by the session machinery of the master service the worker also
//! runs), the tensors its `_Send` nodes publish (RecvTensor), and its status.

use crate::distributed::rendezvous;
use crate::graph::AttrValue;
use crate::service::auth::caller_of;
use crate::service::chunks::CHUNK_BYTES;
use crate::service::proto::master_service_server::MasterService;
use crate::service::proto::worker_service_server::{WorkerService, WorkerServiceServer};
use crate::service::proto::RunStepChunk;
use crate::service::proto::{self, WirePrecision};
use crate::service::server::MasterServer;
use crate::service::wire::graph_def_from_proto;
use crate::service::CPU_DEVICE;
use std::pin::Pin;
use std::time::Duration;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

/// The longest a RecvTensor waits for its value.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// The longest rendezvous key RecvTensor accepts (real ones are a few hundred bytes).
const MAX_KEY_BYTES: usize = 4096;

type Chunks = Pin<Box<dyn Stream<Item = Result<proto::RecvTensorChunk, Status>> + Send>>;

/// Serves the worker service for the task `task` (`/job:worker/task:0`; empty when the
/// engine is no task of a cluster); registered graphs are sessions of `master`.
#[derive(Clone)]
pub struct WorkerServer {
    task: String,
    master: MasterServer,
    /// The address the engine listens on, for the bulk channel's port.
    listen_ip: Option<std::net::IpAddr>,
    /// How large tensors leave over the bulk channel.
    bulk: Bulk,
}

/// The bulk channel of an engine: plain TCP, TLS with the engine's certificate, or none
/// (an engine whose certificate rustls could not take sends every payload over gRPC).
#[derive(Clone)]
pub enum Bulk {
    Plain,
    Tls(std::sync::Arc<rustls::ServerConfig>),
    Off,
}

impl WorkerServer {
    pub fn new(
        task: &str,
        master: MasterServer,
        listen_ip: Option<std::net::IpAddr>,
        bulk: Bulk,
    ) -> WorkerServer {
        WorkerServer {
            task: task.to_string(),
            master,
            listen_ip,
            bulk,
        }
    }

    /// The tonic service, decoding messages (a registered graph, with its constants) up to
    /// `max_message_bytes`, as the master service does.
    pub fn into_service(self, max_message_bytes: usize) -> WorkerServiceServer<WorkerServer> {
        let limit = max_message_bytes.max(CHUNK_BYTES + (64 << 10));
        WorkerServiceServer::new(self)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(usize::MAX)
    }
}

/// The keys under which a graph's `_Send` nodes publish.
fn send_keys(graph: &proto::GraphDef) -> Result<Vec<String>, Status> {
    let graph = graph_def_from_proto(graph, "graph_def")
        .map_err(|e| Status::internal(format!("CleanupGraph: {e}")))?;
    Ok((graph.nodes.iter())
        .filter(|n| n.op == "_Send")
        .filter_map(|n| match n.attrs.get("key") {
            Some(AttrValue::Str(key)) => Some(key.clone()),
            _ => None,
        })
        .collect())
}

#[tonic::async_trait]
impl WorkerService for WorkerServer {
    type RecvTensorStream = Chunks;
    type RunGraphStream = <MasterServer as MasterService>::RunStepStream;

    async fn register_graph(
        &self,
        request: Request<proto::CreateSessionRequest>,
    ) -> Result<Response<proto::CreateSessionResponse>, Status> {
        self.master.create_session(request).await
    }

    async fn run_graph(
        &self,
        request: Request<Streaming<RunStepChunk>>,
    ) -> Result<Response<Self::RunGraphStream>, Status> {
        self.master.run_step(request).await
    }

    async fn cleanup_graph(
        &self,
        request: Request<proto::CloseSessionRequest>,
    ) -> Result<Response<proto::CloseSessionResponse>, Status> {
        let handle = request.get_ref().session_handle.clone();
        // Asked as the caller, whose session it must be.
        let mut ask = Request::new(proto::GetGraphRequest {
            session_handle: handle,
            from_version: 0,
        });
        if let Some(caller) = caller_of(&request) {
            ask.extensions_mut().insert(caller);
        }
        let graph = self.master.get_graph(ask).await?.into_inner();
        let keys = match &graph.graph_def {
            Some(def) => send_keys(def)?,
            None => Vec::new(),
        };
        let reply = self.master.close_session(request).await?;
        rendezvous::forget_keys(&keys);
        Ok(reply)
    }

    async fn recv_tensor(
        &self,
        request: Request<proto::RecvTensorRequest>,
    ) -> Result<Response<Chunks>, Status> {
        let local_ip = request.local_addr().map(|a| a.ip());
        let req = request.into_inner();
        if req.key.len() > MAX_KEY_BYTES {
            return Err(Status::invalid_argument(format!(
                "RecvTensor: a key of {} bytes, over the {MAX_KEY_BYTES} a key may have",
                req.key.len()
            )));
        }
        let precision = WirePrecision::try_from(req.precision).map_err(|_| {
            Status::invalid_argument(format!("RecvTensor: unknown precision {}", req.precision))
        })?;
        let wait = Duration::from_millis(req.timeout_ms).min(MAX_WAIT);
        let value = rendezvous::take(&req.key, req.step_id, wait).await?;
        let bulk_tls = match &self.bulk {
            Bulk::Plain => Some(None),
            Bulk::Tls(config) => Some(Some(config)),
            Bulk::Off => None,
        };
        if let (true, Some(ip), Some(tls)) = (req.accept_bulk, local_ip, bulk_tls) {
            // The bulk port listens where this service does (all addresses for 0.0.0.0).
            let ip = self.listen_ip.unwrap_or(ip);
            if let Some(header) = rendezvous::bulk_header(&value, precision, ip, &req.key, tls) {
                let only = proto::RecvTensorChunk {
                    part: Some(proto::recv_tensor_chunk::Part::Header(header)),
                };
                return Ok(Response::new(Box::pin(tokio_stream::once(Ok(only)))));
            }
        }
        let chunks = rendezvous::chunks(&value, precision);
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks.map(Ok)))))
    }

    async fn abort_step(
        &self,
        request: Request<proto::AbortStepRequest>,
    ) -> Result<Response<proto::AbortStepResponse>, Status> {
        let req = request.into_inner();
        // A repeated step's range at most: a peer cannot abort every step to come.
        let count = req.count.min(u64::from(crate::service::server::MAX_REPEAT));
        rendezvous::abort(&req.graph, req.step_id, count, &req.reason);
        Ok(Response::new(proto::AbortStepResponse {}))
    }

    async fn get_status(
        &self,
        _request: Request<proto::GetStatusRequest>,
    ) -> Result<Response<proto::GetStatusResponse>, Status> {
        Ok(Response::new(proto::GetStatusResponse {
            task: self.task.clone(),
            incarnation: rendezvous::incarnation(),
            device: vec![proto::DeviceAttributes {
                name: CPU_DEVICE.to_string(),
                device_type: "CPU".to_string(),
                memory_limit: crate::devices::host_memory(),
                ..Default::default()
            }],
        }))
    }
}
