//! The kernel's [`Sink`]: a cell's outputs as iopub messages. The frontend's output thread
//! calls it in order for everything a cell puts out; the cell thread's own messages (the
//! cell's start, its result, its reply) come through the same thread as commands, so the
//! notebook sees them in order and the cell's `idle` after every one of them.

use crate::live_displays::LiveDisplays;
use crate::outputs::media;
use crate::transport::Outbox;
use jupyter_protocol::{
    DisplayData, JupyterMessage, JupyterMessageContent, Media, MediaType, Status, StreamContent,
};
use sluice::Graph;
use sluice_frontend::graph_view::{graph_svg, graph_text};
use sluice_frontend::live::LiveEvent;
use sluice_frontend::output::Sink;
use std::time::Instant;

/// What the cell thread asks of the iopub sink.
pub enum IopubCommand {
    /// A cell starts: outputs from now on belong to `parent`.
    Begin(Box<JupyterMessage>),
    /// Send this to iopub as the running cell's.
    Emit(JupyterMessageContent),
    /// The cell ended: final curves, then `iopub` in order, then `reply` on shell, then idle.
    Finish {
        iopub: Vec<JupyterMessageContent>,
        reply: Option<Box<JupyterMessage>>,
    },
}

pub struct IopubSink {
    outbox: Outbox,
    parent: Option<JupyterMessage>,
    live: LiveDisplays,
    out: String,
    err: String,
}

impl IopubSink {
    pub fn new(outbox: Outbox) -> IopubSink {
        IopubSink {
            outbox,
            parent: None,
            live: LiveDisplays::default(),
            out: String::new(),
            err: String::new(),
        }
    }

    fn emit(&mut self, content: JupyterMessageContent) {
        if let Some(parent) = &self.parent {
            self.outbox
                .iopub(JupyterMessage::new(content, Some(parent)));
        }
    }

    fn emit_all(&mut self, contents: Vec<JupyterMessageContent>) {
        if !contents.is_empty() {
            self.flush();
            contents.into_iter().for_each(|c| self.emit(c));
        }
    }
}

impl Sink for IopubSink {
    type Command = IopubCommand;

    fn stdout(&mut self, line: &str) {
        if self.parent.is_none() {
            return tracing::debug!("cell process, between cells: {line}");
        }
        if !self.err.is_empty() {
            self.flush();
        }
        self.out.push_str(line);
        self.out.push('\n');
    }

    fn stderr(&mut self, line: &str) {
        if self.parent.is_none() {
            return tracing::debug!("cell process, between cells: {line}");
        }
        if !self.out.is_empty() {
            self.flush();
        }
        self.err.push_str(line);
        self.err.push('\n');
    }

    fn display(&mut self, forms: Vec<(String, String)>) {
        self.flush();
        let data = media(&forms);
        self.emit(JupyterMessageContent::DisplayData(DisplayData::new(data)));
    }

    fn graph(&mut self, graph: sluice_frontend::Result<Graph>) {
        self.flush();
        let content = match graph {
            Ok(graph) => {
                let mut forms = vec![MediaType::Plain(graph_text(&graph))];
                match graph_svg(&graph) {
                    Ok(svg) => forms.push(MediaType::Svg(svg)),
                    Err(e) => tracing::warn!("drawing the graph: {e}"),
                }
                JupyterMessageContent::DisplayData(DisplayData::new(Media::new(forms)))
            }
            Err(e) => JupyterMessageContent::StreamContent(StreamContent::stderr(&format!(
                "cannot show the graph: {e}\n"
            ))),
        };
        self.emit(content);
    }

    fn live(&mut self, event: LiveEvent, now: Instant) {
        if self.parent.is_none() {
            return;
        }
        let messages = self.live.on_event(event, now);
        self.emit_all(messages);
    }

    fn tick(&mut self, now: Instant) {
        let messages = self.live.tick(now);
        self.emit_all(messages);
    }

    fn note(&mut self, text: &str) {
        self.flush();
        let note = format!("note: {text}\n");
        self.emit(JupyterMessageContent::StreamContent(StreamContent::stderr(
            &note,
        )));
    }

    fn flush(&mut self) {
        if !self.out.is_empty() {
            let text = std::mem::take(&mut self.out);
            self.emit(JupyterMessageContent::StreamContent(StreamContent::stdout(
                &text,
            )));
        }
        if !self.err.is_empty() {
            let text = std::mem::take(&mut self.err);
            self.emit(JupyterMessageContent::StreamContent(StreamContent::stderr(
                &text,
            )));
        }
    }

    fn awaits_events(&self) -> bool {
        self.live.fit_running()
    }

    fn cell_done(&mut self) {}

    fn command(&mut self, command: IopubCommand) {
        match command {
            IopubCommand::Begin(parent) => {
                self.parent = Some(*parent);
                self.emit(JupyterMessageContent::Status(Status::busy()));
            }
            IopubCommand::Emit(content) => self.emit(content),
            IopubCommand::Finish { iopub, reply } => {
                let curves = self.live.finish(Instant::now());
                curves.into_iter().for_each(|m| self.emit(m));
                iopub.into_iter().for_each(|m| self.emit(m));
                if let Some(reply) = reply {
                    self.outbox.shell(*reply);
                }
                self.emit(JupyterMessageContent::Status(Status::idle()));
                self.parent = None;
            }
        }
    }
}
