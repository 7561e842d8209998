//! The worker service: what other workers and masters ask of a worker besides the master
//! service it also runs — the tensors its `_Send` nodes publish (RecvTensor), and its status.

use crate::distributed::rendezvous;
use crate::service::proto::worker_service_server::{WorkerService, WorkerServiceServer};
use crate::service::proto::{self, WirePrecision};
use crate::service::CPU_DEVICE;
use std::pin::Pin;
use std::time::Duration;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// The longest a RecvTensor waits for its value.
const MAX_WAIT: Duration = Duration::from_secs(3600);

type Chunks = Pin<Box<dyn Stream<Item = Result<proto::RecvTensorChunk, Status>> + Send>>;

/// Serves RecvTensor and GetStatus for the task `task` (`/job:worker/task:0`; empty when
/// the engine is no task of a cluster).
#[derive(Clone, Default)]
pub struct WorkerServer {
    task: String,
}

impl WorkerServer {
    pub fn new(task: &str) -> WorkerServer {
        WorkerServer {
            task: task.to_string(),
        }
    }

    pub fn into_service(self) -> WorkerServiceServer<WorkerServer> {
        WorkerServiceServer::new(self).max_encoding_message_size(usize::MAX)
    }
}

#[tonic::async_trait]
impl WorkerService for WorkerServer {
    type RecvTensorStream = Chunks;

    async fn recv_tensor(
        &self,
        request: Request<proto::RecvTensorRequest>,
    ) -> Result<Response<Chunks>, Status> {
        let local_ip = request.local_addr().map(|a| a.ip());
        let req = request.into_inner();
        let precision = WirePrecision::try_from(req.precision).map_err(|_| {
            Status::invalid_argument(format!("RecvTensor: unknown precision {}", req.precision))
        })?;
        let wait = Duration::from_millis(req.timeout_ms).min(MAX_WAIT);
        let value = rendezvous::take(&req.key, req.step_id, wait).await?;
        if let (true, Some(ip)) = (req.accept_bulk, local_ip) {
            if let Some(header) = rendezvous::bulk_header(&value, precision, ip) {
                let only = proto::RecvTensorChunk {
                    part: Some(proto::recv_tensor_chunk::Part::Header(header)),
                };
                return Ok(Response::new(Box::pin(tokio_stream::once(Ok(only)))));
            }
        }
        let chunks = rendezvous::chunks(&value, precision);
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks.map(Ok)))))
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
                memory_limit: 0,
            }],
        }))
    }
}
