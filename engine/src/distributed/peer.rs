//! The client side of the worker service, shared by masters and workers: one connection
//! per peer, driven by a runtime of its own so that callers may block on it from any thread
//! (a worker's kernels included).

use crate::service::auth::{PeerCredentials, SendToken};
use crate::service::chunks::CHUNK_BYTES;
use crate::service::proto;
use crate::service::proto::worker_service_client::WorkerServiceClient;
use crate::service::tls::{self, TrustedCa};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Client = WorkerServiceClient<InterceptedService<Channel, SendToken>>;

/// The runtime the calls to other workers run on: its own, driven by a thread of its own, so
/// a caller may wait for one from any thread (a server's worker threads and kernels too).
pub(super) fn runtime() -> Result<&'static tokio::runtime::Handle, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Handle, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the transfer runtime: {e}"))?;
            let handle = runtime.handle().clone();
            std::thread::Builder::new()
                .name("sluice-peers".into())
                .spawn(move || runtime.block_on(std::future::pending::<()>()))
                .map_err(|e| format!("cannot start the transfer thread: {e}"))?;
            Ok(handle)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The client for `peer`, whose calls carry `token`, over TLS checked against `ca` when
/// given (see [`PeerCredentials::resolve`]). Clients are kept per peer and credentials, so
/// engines in one process (tests, an embedded engine) may differ.
pub(super) fn client(
    peer: &str,
    (token, ca): (Option<String>, Option<TrustedCa>),
) -> Result<Client, String> {
    type Clients = HashMap<(String, Option<String>, Option<TrustedCa>), Client>;
    static CLIENTS: OnceLock<Mutex<Clients>> = OnceLock::new();
    let key = (peer.to_string(), token, ca);
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(c) = clients.get(&key) {
        return Ok(c.clone());
    }
    let token = SendToken::new(key.1.as_deref()).map_err(|e| e.to_string())?;
    let endpoint = tls::endpoint(peer, key.2.as_ref())
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .initial_stream_window_size(Some(crate::service::STREAM_WINDOW))
        .initial_connection_window_size(Some(crate::service::CONNECTION_WINDOW))
        .max_frame_size(Some(crate::service::MAX_FRAME));
    // Connects on first use, inside the call, where the deadline applies; made inside the
    // transfer runtime, which drives the connection.
    let _inside = runtime()?.enter();
    let channel = endpoint.connect_lazy();
    let c = WorkerServiceClient::with_interceptor(channel, token)
        .max_decoding_message_size(CHUNK_BYTES + (64 << 10));
    clients.insert(key, c.clone());
    Ok(c)
}

/// Asks the worker at `peer` for its status: its task name and incarnation.
pub fn status(peer: &str, timeout: Duration) -> Result<(String, u64), String> {
    let mut c = client(peer, PeerCredentials::FROM_ENV.resolve()?)?;
    let (tx, rx) = std::sync::mpsc::channel();
    runtime()?.spawn(async move {
        let answer = tokio::time::timeout(timeout, c.get_status(proto::GetStatusRequest {})).await;
        let _ = tx.send(answer);
    });
    match rx.recv_timeout(timeout + Duration::from_secs(1)) {
        Ok(Ok(Ok(reply))) => {
            let reply = reply.into_inner();
            Ok((reply.task, reply.incarnation))
        }
        Ok(Ok(Err(status))) => Err(format!("GetStatus failed: {}", status.message())),
        Ok(Err(_)) | Err(_) => Err(format!(
            "no answer to GetStatus within {} ms",
            timeout.as_millis()
        )),
    }
}

/// Tells the worker at `peer` that steps `steps.0 .. steps.0 + steps.1` (at least the first) of
/// graph `graph` (its key id) are aborted.
pub fn abort_step(
    peer: &str,
    graph: &str,
    steps: (u64, u64),
    reason: &str,
    timeout: Duration,
) -> Result<(), String> {
    let mut c = client(peer, PeerCredentials::FROM_ENV.resolve()?)?;
    let request = proto::AbortStepRequest {
        graph: graph.to_string(),
        step_id: steps.0,
        reason: reason.to_string(),
        count: steps.1,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    runtime()?.spawn(async move {
        let answer = tokio::time::timeout(timeout, c.abort_step(request)).await;
        let _ = tx.send(answer);
    });
    match rx.recv_timeout(timeout + Duration::from_secs(1)) {
        Ok(Ok(Ok(_))) => Ok(()),
        Ok(Ok(Err(status))) => Err(format!("AbortStep failed: {}", status.message())),
        Ok(Err(_)) | Err(_) => Err(format!(
            "no answer to AbortStep within {} ms",
            timeout.as_millis()
        )),
    }
}
