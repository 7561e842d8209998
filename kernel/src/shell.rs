//! Shell requests. Everything but `execute_request` is answered here at once, even while a
//! cell runs: completions and inspections ask evcxr when it is idle and fall back to names
//! the kernel knows when it is busy.

use crate::cell_thread::{Job, Shared};
use crate::transport::Outbox;
use crossbeam_channel::Sender;
use jupyter_protocol::{
    CodeMirrorMode, CommClose, CommInfoReply, CompleteReply, CompleteRequest, ExecuteReply,
    ExecutionCount, HistoryReply, InspectReply, InspectRequest, IsCompleteReply, JupyterMessage,
    JupyterMessageContent, KernelInfoReply, LanguageInfo, Media, MediaType, ReplyError,
    ReplyStatus, Status,
};
use sluice_frontend::completion::{self, byte_to_char, char_to_byte, Completion};
use sluice_frontend::is_complete::{self, Completeness};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How long a completion or inspection may wait for evcxr (its first analysis of the
/// standard library takes seconds).
const ANALYSIS_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct ShellHandler {
    pub outbox: Outbox,
    pub jobs: Sender<Job>,
    pub shared: Arc<Shared>,
}

impl ShellHandler {
    /// Queues an execute request for the cell thread; gives back any other request.
    pub fn queue_execute(&self, message: JupyterMessage) -> Option<JupyterMessage> {
        if let JupyterMessageContent::ExecuteRequest(_) = &message.content {
            if let Err(unsent) = self.jobs.send(Job::Execute(Box::new(message))) {
                tracing::error!("the cell thread is gone");
                if let Job::Execute(message) = unsent.0 {
                    self.reply_without_cells(&message);
                }
            }
            return None;
        }
        Some(message)
    }

    /// An error reply for a cell no thread can run.
    fn reply_without_cells(&self, message: &JupyterMessage) {
        let reply = ExecuteReply {
            status: ReplyStatus::Error,
            execution_count: ExecutionCount::new(0),
            payload: Vec::new(),
            user_expressions: Some(HashMap::new()),
            error: Some(Box::new(ReplyError {
                ename: "KernelError".into(),
                evalue: "the kernel cannot run cells (see its log); restart it".into(),
                traceback: Vec::new(),
            })),
        };
        self.outbox
            .iopub(JupyterMessage::new(Status::busy(), Some(message)));
        self.outbox.shell(JupyterMessage::new(reply, Some(message)));
        self.outbox
            .iopub(JupyterMessage::new(Status::idle(), Some(message)));
    }

    /// Answers a request other than execute_request.
    pub async fn handle(&self, message: JupyterMessage) {
        self.outbox
            .iopub(JupyterMessage::new(Status::busy(), Some(&message)));
        if let Some(reply) = self.reply(&message).await {
            self.outbox
                .shell(JupyterMessage::new(reply, Some(&message)));
        }
        self.outbox
            .iopub(JupyterMessage::new(Status::idle(), Some(&message)));
    }

    async fn reply(&self, message: &JupyterMessage) -> Option<JupyterMessageContent> {
        match &message.content {
            JupyterMessageContent::KernelInfoRequest(_) => Some(kernel_info().into()),
            JupyterMessageContent::IsCompleteRequest(r) => Some(
                match is_complete::check(&r.code) {
                    Completeness::Complete => IsCompleteReply::complete(),
                    Completeness::Incomplete(indent) => IsCompleteReply::incomplete(indent),
                    Completeness::Invalid => IsCompleteReply::invalid(),
                }
                .into(),
            ),
            JupyterMessageContent::HistoryRequest(r) => {
                let history = self
                    .shared
                    .history
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .query(r);
                Some(HistoryReply::new(history).into())
            }
            JupyterMessageContent::CommInfoRequest(_) => Some(
                CommInfoReply {
                    status: ReplyStatus::Ok,
                    comms: HashMap::new(),
                    error: None,
                }
                .into(),
            ),
            JupyterMessageContent::CommOpen(open) => {
                // No comm targets: close it at once, as the protocol asks.
                let close = CommClose {
                    comm_id: open.comm_id.clone(),
                    data: Default::default(),
                };
                self.outbox.iopub(JupyterMessage::new(close, Some(message)));
                None
            }
            JupyterMessageContent::CompleteRequest(r) => Some(self.complete(r).await.into()),
            JupyterMessageContent::InspectRequest(r) => Some(self.inspect(r).await.into()),
            JupyterMessageContent::CommMsg(_) | JupyterMessageContent::CommClose(_) => None,
            other => {
                tracing::warn!("shell: unhandled {}", other.message_type());
                None
            }
        }
    }

    async fn complete(&self, request: &CompleteRequest) -> CompleteReply {
        let code = request.code.clone();
        // Jupyter counts the cursor in characters; evcxr in bytes.
        let pos = char_to_byte(&code, request.cursor_pos);
        let analysed = if self.shared.busy.load(Ordering::SeqCst) {
            None
        } else {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let job = Job::Complete {
                code: code.clone(),
                pos,
                answer: tx,
            };
            if self.jobs.send(job).is_ok() {
                wait(rx).await.and_then(|r| r.ok())
            } else {
                None
            }
        };
        let found = match analysed {
            Some(c) if !c.matches.is_empty() => c,
            _ => completion::known(&code, pos, &self.variables()),
        };
        completion_reply(&code, found)
    }

    fn variables(&self) -> Vec<(String, String)> {
        self.shared
            .variables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn inspect(&self, request: &InspectRequest) -> InspectReply {
        let code = request.code.clone();
        let pos = char_to_byte(&code, request.cursor_pos);
        let mut reply = InspectReply::default();
        let found = if self.shared.busy.load(Ordering::SeqCst) {
            None
        } else {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let job = Job::Inspect {
                code: code.clone(),
                pos,
                answer: tx,
            };
            if self.jobs.send(job).is_ok() {
                wait(rx).await.and_then(|r| r.ok()).flatten()
            } else {
                None
            }
        };
        let found = found.or_else(|| {
            completion::variable_type(&code, pos, &self.variables()).map(|t| (t, String::new()))
        });
        if let Some((plain, html)) = found {
            reply.found = true;
            let mut media = vec![MediaType::Plain(plain)];
            if !html.is_empty() {
                media.push(MediaType::Html(html));
            }
            reply.data = Media::new(media);
        }
        reply
    }
}

/// The reply: the names, where they go (in characters), and their kinds in the metadata
/// JupyterLab reads (`_jupyter_types_experimental`) to mark each with its icon.
fn completion_reply(code: &str, found: Completion) -> CompleteReply {
    let start = byte_to_char(code, found.start);
    let end = byte_to_char(code, found.end);
    let types: Vec<serde_json::Value> = found
        .matches
        .iter()
        .map(|m| serde_json::json!({"text": m.text, "type": m.kind, "start": start, "end": end}))
        .collect();
    let mut metadata = serde_json::Map::new();
    metadata.insert("_jupyter_types_experimental".into(), types.into());
    CompleteReply {
        matches: found.matches.into_iter().map(|m| m.text).collect(),
        cursor_start: start,
        cursor_end: end,
        metadata,
        status: ReplyStatus::Ok,
        error: None,
    }
}

async fn wait<T: Send + 'static>(rx: crossbeam_channel::Receiver<T>) -> Option<T> {
    tokio::task::spawn_blocking(move || rx.recv_timeout(ANALYSIS_TIMEOUT).ok())
        .await
        .ok()
        .flatten()
}

/// What kernel_info_request is answered with.
pub fn kernel_info() -> KernelInfoReply {
    KernelInfoReply {
        status: ReplyStatus::Ok,
        protocol_version: "5.5".into(),
        implementation: "sluice-kernel".into(),
        implementation_version: env!("CARGO_PKG_VERSION").into(),
        language_info: LanguageInfo {
            name: "rust".into(),
            version: String::new(),
            mimetype: Some("text/rust".into()),
            file_extension: Some(".rs".into()),
            pygments_lexer: Some("rust".into()),
            codemirror_mode: Some(CodeMirrorMode::Simple("rust".into())),
            nbconvert_exporter: None,
        },
        banner: format!(
            "Sluice {} - Rust cells against a Sluice engine (evcxr). `sess` and `graph` are ready; `:graph` draws the graph.",
            env!("CARGO_PKG_VERSION")
        ),
        help_links: Vec::new(),
        debugger: false,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_frontend::completion::Candidate;

    #[test]
    fn replies_count_characters_and_carry_kinds() {
        let code = "é.sw";
        let found = Completion {
            matches: vec![Candidate {
                text: "swap".into(),
                kind: "function".into(),
            }],
            start: 3,
            end: 5,
        };
        let reply = completion_reply(code, found);
        assert_eq!((reply.cursor_start, reply.cursor_end), (2, 4));
        assert_eq!(reply.matches, vec!["swap".to_string()]);
        assert_eq!(
            reply.metadata["_jupyter_types_experimental"][0]["type"],
            "function"
        );
    }
}
