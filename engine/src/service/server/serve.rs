//! Serving an engine on a listener: the master and worker services behind the token check,
//! over TLS where the engine has a certificate.

use super::{EngineConfig, MasterServer};
use crate::service::auth::CheckToken;
use crate::service::worker::{Bulk, WorkerServer};
use crate::service::{CONNECTION_WINDOW, MAX_FRAME, STREAM_WINDOW};
use std::future::Future;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;

/// The bulk channel an engine with `config` serves: TLS with its certificate where it has one.
fn bulk_channel(config: &EngineConfig) -> Bulk {
    match &config.tls {
        None => Bulk::Plain,
        Some(identity) => match identity.rustls_server(config.client_ca.as_ref()) {
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
        server = server.tls_config(identity.server_config(config.client_ca.as_ref()))?;
    }
    server
        .initial_stream_window_size(Some(STREAM_WINDOW))
        .initial_connection_window_size(Some(CONNECTION_WINDOW))
        .max_frame_size(Some(MAX_FRAME))
        .max_concurrent_streams(Some(config.max_streams))
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
