//! The five ZeroMQ sockets of a Jupyter kernel. Every message read is checked against the
//! connection's HMAC key by jupyter-zmq-client; one that fails is dropped and logged, never
//! handled. Outgoing messages go through queues so that threads without a runtime (the cell
//! thread, the output pump) can send, and so that iopub keeps one order.

use crate::error::{JupyterError, Result};
use jupyter_protocol::{ConnectionInfo, IoPubWelcome, JupyterMessage, JupyterMessageContent};
use jupyter_zmq_client::{
    create_kernel_control_connection, create_kernel_heartbeat_connection,
    create_kernel_iopub_xpub_connection, create_kernel_shell_connection,
    create_kernel_stdin_connection, RouterRecvConnection, RouterSendConnection, RuntimeError,
    SubscriptionEvent,
};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// An input_request on its way out, and where its answer goes.
type InputAsk = (JupyterMessage, crossbeam_channel::Sender<String>);

/// Where outgoing messages are queued. Cheap to clone; sending never blocks.
#[derive(Clone)]
pub struct Outbox {
    iopub: UnboundedSender<JupyterMessage>,
    shell: UnboundedSender<JupyterMessage>,
    control: UnboundedSender<JupyterMessage>,
    stdin: UnboundedSender<InputAsk>,
}

impl Outbox {
    pub fn iopub(&self, mut message: JupyterMessage) {
        // iopub frames before the delimiter are a topic, not a route back to the requester.
        message.zmq_identities.clear();
        // Fails only once the kernel is shutting down.
        let _ = self.iopub.send(message);
    }

    pub fn shell(&self, message: JupyterMessage) {
        let _ = self.shell.send(message);
    }

    pub fn control(&self, message: JupyterMessage) {
        let _ = self.control.send(message);
    }

    /// Sends an input_request (addressed to the client that asked for the cell) on stdin;
    /// the value of its input_reply arrives on the returned queue. A newer request replaces
    /// one still unanswered.
    pub fn ask_input(&self, request: JupyterMessage) -> crossbeam_channel::Receiver<String> {
        let (answer, value) = crossbeam_channel::bounded(1);
        let _ = self.stdin.send((request, answer));
        value
    }

    /// An outbox whose messages land in the returned queues (iopub, shell, control): for tests.
    pub fn capture() -> (
        Outbox,
        UnboundedReceiver<JupyterMessage>,
        UnboundedReceiver<JupyterMessage>,
        UnboundedReceiver<JupyterMessage>,
    ) {
        let (iopub, iopub_rx) = unbounded_channel();
        let (shell, shell_rx) = unbounded_channel();
        let (control, control_rx) = unbounded_channel();
        // Input requests asked of a captured outbox are never answered.
        let (stdin, _) = unbounded_channel();
        (
            Outbox {
                iopub,
                shell,
                control,
                stdin,
            },
            iopub_rx,
            shell_rx,
            control_rx,
        )
    }
}

/// The receiving halves the kernel reads requests from.
pub struct Inbound {
    pub shell: RouterRecvConnection,
    pub control: RouterRecvConnection,
}

/// Binds every socket of `info` and starts the tasks that write to them and answer heartbeats.
/// Must run inside a Tokio runtime.
pub async fn bind(info: &ConnectionInfo, session_id: &str) -> Result<(Outbox, Inbound)> {
    if !info.key.is_empty() && info.signature_scheme != "hmac-sha256" {
        return Err(JupyterError::SignatureScheme(info.signature_scheme.clone()));
    }
    let (shell_send, shell_recv) = create_kernel_shell_connection(info, session_id)
        .await?
        .split();
    let (control_send, control_recv) = create_kernel_control_connection(info, session_id)
        .await?
        .split();
    let (stdin_send, stdin_recv) = create_kernel_stdin_connection(info, session_id)
        .await?
        .split();
    let mut iopub = create_kernel_iopub_xpub_connection(info, session_id).await?;
    let mut heartbeat = create_kernel_heartbeat_connection(info).await?;

    let (mut outbox, mut iopub_rx, shell_rx, control_rx) = Outbox::capture();
    let (stdin, stdin_rx) = unbounded_channel();
    outbox.stdin = stdin;
    spawn_stdin(stdin_send, stdin_recv, stdin_rx);
    tokio::spawn(async move {
        loop {
            if let Err(e) = heartbeat.single_heartbeat().await {
                tracing::warn!("heartbeat: {e}");
            }
        }
    });
    tokio::spawn(async move {
        loop {
            tokio::select! {
                message = iopub_rx.recv() => match message {
                    Some(message) => {
                        if let Err(e) = iopub.send(message).await {
                            tracing::warn!("iopub send: {e}");
                        }
                    }
                    None => break,
                },
                // XPUB: a client subscribed; JEP 65 says welcome it, so it knows iopub works.
                event = iopub.recv_subscription() => match event {
                    Ok(SubscriptionEvent::Subscribe(topic)) => {
                        if let Err(e) = iopub.send(IoPubWelcome::new(topic).into()).await {
                            tracing::warn!("iopub welcome: {e}");
                        }
                    }
                    Ok(SubscriptionEvent::Unsubscribe(_)) => {}
                    Err(e) => tracing::warn!("iopub subscription: {e}"),
                },
            }
        }
    });
    spawn_sender("shell", shell_send, shell_rx);
    spawn_sender("control", control_send, control_rx);
    Ok((
        outbox,
        Inbound {
            shell: shell_recv,
            control: control_recv,
        },
    ))
}

fn spawn_sender(
    name: &'static str,
    mut socket: RouterSendConnection,
    mut rx: UnboundedReceiver<JupyterMessage>,
) {
    tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            if let Err(e) = socket.send(message).await {
                tracing::warn!("{name} send: {e}");
            }
        }
    });
}

/// The input request waiting for its reply: its message id, and where the answer goes.
type Waiting = Arc<Mutex<Option<(String, crossbeam_channel::Sender<String>)>>>;

/// Sends input requests and hands each input_reply to the request it answers (by its parent
/// header): a late reply to an abandoned request never reaches a newer one.
fn spawn_stdin(
    mut socket: RouterSendConnection,
    mut replies: RouterRecvConnection,
    mut asks: UnboundedReceiver<InputAsk>,
) {
    let waiting: Waiting = Arc::default();
    let waiter = waiting.clone();
    let lock = |w: &Waiting| w.lock().unwrap_or_else(|e| e.into_inner()).take();
    tokio::spawn(async move {
        while let Some((request, answer)) = asks.recv().await {
            let id = request.header.msg_id.clone();
            *waiter.lock().unwrap_or_else(|e| e.into_inner()) = Some((id, answer));
            if let Err(e) = socket.send(request).await {
                // Nobody will answer: the cell reads an empty line instead of waiting.
                tracing::warn!("stdin send: {e}");
                drop(lock(&waiter));
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let message = next_request("stdin", &mut replies).await;
            let parent = message.parent_header.as_ref().map(|h| h.msg_id.clone());
            match message.content {
                JupyterMessageContent::InputReply(reply) => {
                    let mut slot = waiting.lock().unwrap_or_else(|e| e.into_inner());
                    match slot.take() {
                        Some((id, answer)) if parent.as_ref().is_none_or(|p| *p == id) => {
                            let _ = answer.send(reply.value);
                        }
                        other => {
                            *slot = other;
                            tracing::warn!("stdin: an input_reply to no waiting request");
                        }
                    }
                }
                other => tracing::warn!("stdin: unexpected {}", other.message_type()),
            }
        }
    });
}

/// Reads the next request that passes the signature check. Messages that fail it (or are
/// malformed) are logged and dropped: they are never handled.
pub async fn next_request(channel: &str, socket: &mut RouterRecvConnection) -> JupyterMessage {
    loop {
        match crate::wire::read(socket).await {
            Ok(message) => return message,
            Err(RuntimeError::VerifyError(_)) => {
                tracing::warn!("{channel}: dropped a message with a bad signature");
            }
            Err(RuntimeError::ZmqError(e)) => {
                tracing::warn!("{channel}: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(e) => tracing::warn!("{channel}: dropped a malformed message: {e}"),
        }
    }
}
