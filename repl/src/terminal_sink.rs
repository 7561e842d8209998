//! The REPL's [`Sink`]: what a cell puts out, printed in the terminal. Lines print around
//! the progress bars; rich outputs show their text form, and pictures and HTML (which a
//! terminal cannot show) are saved to files whose paths are printed; graphs print as
//! outlines, or go to an SVG file for `:graph --svg`.

use crate::charts;
use crate::live::{Live, SharedLastRun};
use console::style;
use sluice::Graph;
use sluice_frontend::graph_view::graph_outline;
use sluice_frontend::live::LiveEvent;
use sluice_frontend::output::Sink;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the front asks of the terminal sink.
pub enum TerminalCommand {
    /// The next graph a cell shows goes to this SVG file rather than the screen.
    GraphTo(PathBuf),
}

/// What the sink tells the front.
#[derive(Debug, Default)]
pub struct SinkState {
    /// Where `:graph --svg` asked the next graph to go.
    graph_to: Option<PathBuf>,
    /// How the last graph the cells showed went: its node count, or why it failed.
    pub last_graph: Option<Result<usize, String>>,
}

pub type SharedSinkState = Arc<Mutex<SinkState>>;

pub struct TerminalSink {
    live: Live,
    state: SharedSinkState,
    /// Where pictures and HTML are saved (a private folder made when first needed, kept
    /// after the REPL so the person can open them), and how many so far.
    saved_dir: Option<PathBuf>,
    saved: usize,
}

impl TerminalSink {
    pub fn new(last: SharedLastRun, state: SharedSinkState) -> TerminalSink {
        TerminalSink {
            live: Live::new(last),
            state,
            saved_dir: None,
            saved: 0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Saves a form a terminal cannot show; returns the file's path.
    fn save(&mut self, mime: &str, content: &str) -> std::io::Result<PathBuf> {
        let (extension, bytes) = match mime {
            "image/png" => ("png", decode_base64(content)?),
            "image/jpeg" => ("jpg", decode_base64(content)?),
            "image/svg+xml" => ("svg", content.as_bytes().to_vec()),
            "text/html" => ("html", content.as_bytes().to_vec()),
            other => (extension_for(other), content.as_bytes().to_vec()),
        };
        let dir = match &self.saved_dir {
            Some(dir) => dir.clone(),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("sluice-outputs-")
                    .tempdir()?
                    .keep();
                self.saved_dir = Some(dir.clone());
                dir
            }
        };
        self.saved += 1;
        let path = dir.join(format!("output-{}.{extension}", self.saved));
        std::fs::write(&path, bytes)?;
        Ok(path)
    }
}

fn extension_for(mime: &str) -> &'static str {
    match mime {
        "text/markdown" => "md",
        "application/json" => "json",
        "text/latex" => "tex",
        _ => "txt",
    }
}

fn decode_base64(content: &str) -> std::io::Result<Vec<u8>> {
    use base64::Engine;
    let compact: String = content.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(std::io::Error::other)
}

impl Sink for TerminalSink {
    type Command = TerminalCommand;

    fn stdout(&mut self, line: &str) {
        self.live.print_out(line);
    }

    fn stderr(&mut self, line: &str) {
        self.live.print_err(line);
    }

    fn display(&mut self, forms: Vec<(String, String)>) {
        let text = forms
            .iter()
            .find(|(m, _)| m == "text/plain" || m == "text/markdown")
            .map(|(_, c)| c.clone());
        if let Some(text) = text {
            return self.live.print_out(&text);
        }
        // No text form: the first form, kept in a file.
        let Some((mime, content)) = forms.into_iter().next() else {
            return;
        };
        let line = match self.save(&mime, &content) {
            Ok(path) => format!("[{mime}, {} bytes: {}]", content.len(), path.display()),
            Err(e) => format!("[{mime}: cannot save it: {e}]"),
        };
        self.live.print_out(&style(line).dim().to_string());
    }

    fn graph(&mut self, graph: sluice_frontend::Result<Graph>) {
        let to_file = self.lock().graph_to.take();
        let outcome = graph.map_err(|e| e.to_string()).and_then(|graph| {
            match &to_file {
                Some(path) => charts::write_graph_svg(&graph, path)
                    .map(|()| println!("wrote {} ({} nodes)", path.display(), graph.len()))
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
                None => self
                    .live
                    .around_bars(|| print!("{}", graph_outline(&graph))),
            }
            Ok(graph.len())
        });
        if let Err(e) = &outcome {
            crate::report::error(&format!("cannot show the graph: {e}"));
        }
        self.lock().last_graph = Some(outcome);
    }

    fn live(&mut self, event: LiveEvent, _now: Instant) {
        self.live.on_event(event);
    }

    fn tick(&mut self, _now: Instant) {}

    fn note(&mut self, text: &str) {
        self.live.around_bars(|| crate::report::note(text));
    }

    fn flush(&mut self) {}

    fn awaits_events(&self) -> bool {
        self.live.fit_running()
    }

    fn cell_done(&mut self) {
        self.live.finish_cell();
    }

    fn command(&mut self, command: TerminalCommand) {
        match command {
            TerminalCommand::GraphTo(path) => {
                let mut state = self.lock();
                state.graph_to = Some(path);
                state.last_graph = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_saved_to_files() {
        let mut sink = TerminalSink::new(SharedLastRun::default(), SharedSinkState::default());
        // A 1x1 PNG's first bytes, base64.
        let path = sink.save("image/png", "iVBORw0KGgo=").expect("saved");
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("png"));
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert_eq!(&bytes[1..4], b"PNG");
        let _ = std::fs::remove_dir_all(path.parent().unwrap_or(&path));
    }
}
