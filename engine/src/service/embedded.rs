//! An engine served from inside another program: its own runtime on its own thread, listening
//! on loopback like a standalone one. What a frontend starts when it wants other clients to
//! share its sessions without a separate process.

use super::server::{serve, EngineConfig};
use std::net::SocketAddr;

/// A running embedded engine; dropping it stops the server.
pub struct EmbeddedEngine {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl EmbeddedEngine {
    /// Starts an engine listening on `addr` (`127.0.0.1:0` picks a free port).
    pub fn start(addr: &str, config: EngineConfig) -> std::io::Result<EmbeddedEngine> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("sluice-engine")
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("sluice-engine".into())
            .spawn(move || {
                let result = runtime.block_on(serve(listener, config, async {
                    let _ = stopped.await;
                }));
                if let Err(e) = result {
                    tracing::error!("the embedded engine on {addr} stopped: {e}");
                }
                runtime.shutdown_background();
            })?;
        Ok(EmbeddedEngine {
            addr,
            stop: Some(stop),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for EmbeddedEngine {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
