//! The wire under a remote session: connecting, blocking on the client's own runtime, and
//! reading a step's streamed answer.

use crate::error::{RemoteError, SessionError};
use crate::ops::registry::OP_TYPES;
use crate::ops::OpFamily;
use crate::runner::{NodeTiming, TransferTiming};
use crate::service::auth::{token_from_env, SendToken};
use crate::service::chunks::Assembler;
use crate::service::proto::master_service_client::MasterServiceClient;
use crate::service::proto::run_step_chunk::Part;
use crate::service::proto::worker_service_client::WorkerServiceClient;
use crate::service::proto::RunStepChunk;
use crate::service::status::session_error;
use crate::service::tls::{self, TrustedCa};
use crate::service::wire::WireError;
use crate::service::{CONNECTION_WINDOW, MAX_FRAME, STREAM_WINDOW};
use crate::tensor::Tensor;
use std::future::Future;
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A client of the master service that sends the engine's token, if one is set.
pub(super) type Client = MasterServiceClient<InterceptedService<Channel, SendToken>>;
/// The same for the worker service (a distributed session's calls on its workers).
pub(super) type WorkerClient = WorkerServiceClient<InterceptedService<Channel, SendToken>>;

/// The largest message other than a tensor chunk that the client decodes (a graph).
const MAX_MESSAGE_BYTES: usize = 1 << 30;

pub(super) fn protocol(e: WireError) -> SessionError {
    RemoteError::Protocol(e.to_string()).into()
}

/// The same static name the in-process timing would hold.
fn op_name(op: &str) -> &'static str {
    OP_TYPES
        .iter()
        .find(|&&t| t == op)
        .copied()
        .unwrap_or("unknown")
}

/// Reads a step's answer: `wanted` tensors, then the metadata.
pub(super) async fn read_answer(
    answer: &mut tonic::Streaming<RunStepChunk>,
    wanted: usize,
) -> Result<(Vec<Tensor>, Vec<NodeTiming>), SessionError> {
    let mut assembler = Assembler::default();
    let mut values = Vec::with_capacity(wanted.min(1024));
    loop {
        let chunk = answer.message().await.map_err(session_error)?;
        let part = chunk.and_then(|c| c.part);
        let done = match part {
            Some(Part::Tensor(begin)) => assembler.begin(begin).map_err(protocol)?,
            Some(Part::Data(data)) => assembler.data(&data).map_err(protocol)?,
            Some(Part::Metadata(meta)) => {
                assembler.finish().map_err(protocol)?;
                if values.len() != wanted {
                    return Err(RemoteError::Protocol(format!(
                        "{} values came back for {wanted} fetches",
                        values.len()
                    ))
                    .into());
                }
                let timings = meta
                    .timing
                    .into_iter()
                    .map(|t| NodeTiming {
                        op: op_name(&t.op),
                        family: (!t.family.is_empty()).then(|| OpFamily::from_name(&t.family)),
                        start_micros: t.start_micros,
                        micros: t.micros,
                        device: t.device,
                        estimate_micros: None,
                        transfer: t.transfer.map(|r| TransferTiming {
                            tensor: r.tensor,
                            from_task: r.from_task,
                            sender: String::new(),
                            wait_micros: r.wait_micros,
                            transfer_micros: r.transfer_micros,
                            wire_bytes: r.wire_bytes,
                            bulk: r.bulk,
                        }),
                        node: t.node,
                    })
                    .collect();
                return Ok((values, timings));
            }
            None => {
                return Err(
                    RemoteError::Protocol("the answer ended before its metadata".into()).into(),
                )
            }
            Some(_) => {
                return Err(RemoteError::Protocol(
                    "the answer holds a message that only requests hold".into(),
                )
                .into())
            }
        };
        values.extend(done.map(|(_, t)| t));
        if values.len() > wanted {
            return Err(RemoteError::Protocol(format!(
                "more values came back than the {wanted} fetches"
            ))
            .into());
        }
    }
}

/// The client's own single-threaded runtime. Dropping it never blocks, so a session dropped
/// in async code does not panic.
pub(super) struct ClientRuntime(Option<tokio::runtime::Runtime>);

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

fn refuse_inside_runtime() -> Result<(), SessionError> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Err(RemoteError::InsideRuntime.into()),
        Err(_) => Ok(()),
    }
}

/// Runs `f` to completion on `runtime`, refusing to block inside another async runtime.
pub(super) fn block<F: Future>(runtime: &ClientRuntime, f: F) -> Result<F::Output, SessionError> {
    refuse_inside_runtime()?;
    let runtime = runtime.0.as_ref().ok_or(RemoteError::InsideRuntime)?;
    Ok(runtime.block_on(f))
}

/// A small single-threaded runtime and a client connected to the engine at `addr`.
pub(super) fn connect(addr: &str) -> Result<(ClientRuntime, Client), SessionError> {
    connect_both(addr).map(|(runtime, client, _)| (runtime, client))
}

/// As [`connect`], with a worker-service client on the same connection.
pub(super) fn connect_both(
    addr: &str,
) -> Result<(ClientRuntime, Client, WorkerClient), SessionError> {
    let failed = |message: String| RemoteError::Connect {
        addr: addr.to_string(),
        message,
    };
    refuse_inside_runtime()?;
    let token = token_from_env()
        .and_then(|t| SendToken::new(t.as_deref()))
        .map_err(|e| failed(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(format!("cannot start the client runtime: {e}")))?;
    let runtime = ClientRuntime(Some(runtime));
    let ca = TrustedCa::from_env().map_err(|e| failed(e.to_string()))?;
    let endpoint = tls::endpoint(addr, ca.as_ref())
        .map_err(|e| failed(e.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .initial_stream_window_size(Some(STREAM_WINDOW))
        .initial_connection_window_size(Some(CONNECTION_WINDOW))
        .max_frame_size(Some(MAX_FRAME));
    let channel = block(&runtime, endpoint.connect())?.map_err(|e| {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message = format!("{message}: {s}");
            source = s.source();
        }
        failed(message)
    })?;
    let client = MasterServiceClient::with_interceptor(channel.clone(), token.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(usize::MAX);
    let worker = WorkerServiceClient::with_interceptor(channel, token)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(usize::MAX);
    Ok((runtime, client, worker))
}
