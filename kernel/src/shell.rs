//! Shell requests. Everything but `execute_request` is answered here at once, even while a
//! cell runs: completions and inspections ask evcxr when it is idle and fall back to names
//! the kernel knows when it is busy.

use crate::executor::{Job, Shared};
use crate::is_complete::{self, Completeness};
use crate::transport::Outbox;
use crossbeam_channel::Sender;
use jupyter_protocol::{
    CodeMirrorMode, CommClose, CommInfoReply, CompleteReply, CompleteRequest, HistoryReply,
    InspectReply, InspectRequest, IsCompleteReply, JupyterMessage, JupyterMessageContent,
    KernelInfoReply, LanguageInfo, Media, MediaType, ReplyStatus, Status,
};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How long a completion or inspection may wait for evcxr.
const ANALYSIS_TIMEOUT: Duration = Duration::from_secs(12);

/// Names every cell can use, for completions while evcxr is busy.
const KNOWN_NAMES: &[&str] = &[
    "sess",
    "graph",
    "Graph",
    "Tensor",
    "DType",
    "Initializer",
    "RemoteSession",
    "Session",
    "FitConfig",
    "LabelFormat",
    "GradientDescent",
    "Momentum",
    "Adam",
    "Optimizer",
    "matmul",
    "softmax",
    "log",
    "exp",
    "relu",
    "sigmoid",
    "tanh",
    "reduce_sum",
    "reduce_mean",
    "argmax",
    "gradients",
    "placeholder",
    "variable",
    "constant",
    "show_graph",
    "println",
    "format",
    "let",
    "mut",
    "fn",
    "for",
    "while",
    "loop",
    "match",
    "if",
    "else",
    "struct",
    "impl",
];

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
            if self.jobs.send(Job::Execute(Box::new(message))).is_err() {
                eprintln!("sluice-kernel: the cell thread is gone");
            }
            return None;
        }
        Some(message)
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
                eprintln!("sluice-kernel: shell: unhandled {}", other.message_type());
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
        let (matches, start, end) = match analysed {
            Some(c) if !c.matches.is_empty() => (c.matches, c.start, c.end),
            _ => self.known_completions(&code, pos),
        };
        CompleteReply {
            matches,
            cursor_start: byte_to_char(&code, start),
            cursor_end: byte_to_char(&code, end),
            metadata: Default::default(),
            status: ReplyStatus::Ok,
            error: None,
        }
    }

    /// Names the kernel knows that start with the word before the cursor.
    fn known_completions(&self, code: &str, pos: usize) -> (Vec<String>, usize, usize) {
        let start = word_start(code, pos);
        let prefix = &code[start..pos];
        let variables = self
            .shared
            .variables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut matches: Vec<String> = variables
            .into_iter()
            .map(|(name, _)| name)
            .chain(KNOWN_NAMES.iter().map(|s| s.to_string()))
            .filter(|n| n.starts_with(prefix))
            .collect();
        matches.sort();
        matches.dedup();
        (matches, start, pos)
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
        let found = found.or_else(|| self.variable_type(&code, pos));
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

    /// A variable's type, from the last cell's state: what inspect says while evcxr is busy.
    fn variable_type(&self, code: &str, pos: usize) -> Option<(String, String)> {
        let start = word_start(code, pos);
        let end = code[pos..]
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(code.len(), |(i, _)| pos + i);
        let word = &code[start..end];
        let variables = self
            .shared
            .variables
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        variables
            .iter()
            .find(|(name, _)| name == word)
            .map(|(name, ty)| (format!("{name}: {ty}"), String::new()))
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

/// Byte offset of character `chars` in `s` (the end when past it).
pub fn char_to_byte(s: &str, chars: usize) -> usize {
    s.char_indices().nth(chars).map_or(s.len(), |(i, _)| i)
}

/// Character count of `s` before byte offset `byte`.
pub fn byte_to_char(s: &str, byte: usize) -> usize {
    s.char_indices().take_while(|(i, _)| *i < byte).count()
}

fn word_start(code: &str, pos: usize) -> usize {
    code[..pos]
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
        .last()
        .map_or(pos, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_between_chars_and_bytes() {
        let s = "é = x";
        assert_eq!(char_to_byte(s, 1), 2);
        assert_eq!(byte_to_char(s, 2), 1);
        assert_eq!(char_to_byte(s, 99), s.len());
        assert_eq!(word_start("let abc", 7), 4);
        assert_eq!(word_start("x.", 2), 2);
    }
}
