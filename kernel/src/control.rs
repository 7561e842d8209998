//! Control requests: interrupt (cancel the running cell's engine work; stop its process if
//! it does not end in time), shutdown, kernel_info.

use crate::cell_thread::Shared;
use crate::transport::Outbox;
use jupyter_protocol::{InterruptReply, JupyterMessage, JupyterMessageContent, ShutdownReply};
use sluice_frontend::engine_link::EngineLink;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a cell may take to end after an interrupt before its process is restarted.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct ControlHandler {
    pub outbox: Outbox,
    pub shared: Arc<Shared>,
    pub engine: Arc<EngineLink>,
    pub shutdown: watch::Sender<bool>,
}

impl ControlHandler {
    pub async fn handle(&self, message: JupyterMessage) {
        match &message.content {
            JupyterMessageContent::InterruptRequest(_) => {
                self.interrupt().await;
                self.outbox
                    .control(JupyterMessage::new(InterruptReply::new(), Some(&message)));
            }
            JupyterMessageContent::ShutdownRequest(r) => {
                let reply = ShutdownReply {
                    restart: r.restart,
                    ..ShutdownReply::default()
                };
                self.outbox
                    .control(JupyterMessage::new(reply, Some(&message)));
                let _ = self.shutdown.send(true);
            }
            JupyterMessageContent::KernelInfoRequest(_) => {
                self.outbox.control(JupyterMessage::new(
                    crate::shell::kernel_info(),
                    Some(&message),
                ));
            }
            other => tracing::warn!("control: unhandled {}", other.message_type()),
        }
    }

    /// Cancels the engine work of the running cell; if the cell is still running after the
    /// grace period, restarts evcxr's child (the cell then ends, and says what was lost).
    async fn interrupt(&self) {
        let Some(cell) = self.shared.interrupt() else {
            return;
        };
        // The engine's blocking client refuses to run inside an async runtime, and
        // spawn_blocking's threads are inside one: cancel from a plain thread.
        let engine = self.engine.clone();
        let (done, failures) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = done.send(engine.cancel_all());
        });
        let failures = failures.await.unwrap_or_default();
        for f in failures {
            tracing::warn!("interrupt: cannot cancel {f}");
        }
        let shared = self.shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(INTERRUPT_GRACE).await;
            if shared.busy.load(Ordering::SeqCst) && shared.cell.load(Ordering::SeqCst) == cell {
                tokio::task::spawn_blocking(move || shared.kill_child());
            }
        });
    }
}
