//! The one road to iopub for a cell's outputs. stdout and stderr lines from evcxr's child,
//! directives the child prints, live curves from engine events, and the cell's results all
//! pass through this thread, so they reach the notebook in order and the cell's `idle`
//! comes after every one of them.

use crate::child_protocol::{self, Directive};
use crate::engine_link::EngineLink;
use crate::graph_view::{graph_svg, graph_text};
use crate::live::{LiveCurves, LiveEvent};
use crate::transport::Outbox;
use crossbeam_channel::{select, Receiver, Sender};
use jupyter_protocol::{
    DisplayData, JupyterMessage, JupyterMessageContent, Media, MediaType, Status, StreamContent,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the cell thread asks of the pump.
pub enum PumpCmd {
    /// A cell starts: outputs from now on belong to `parent`.
    Begin(Box<JupyterMessage>),
    /// Send this to iopub as the running cell's.
    Emit(JupyterMessageContent),
    /// Pass on everything the child printed so far; report what the cell told the kernel.
    Drain(Sender<CellReport>),
    /// Pass on everything the child printed so far (before the cell asks for input).
    Flush(Sender<()>),
    /// The cell ended: final curves, then `iopub` in order, then `reply` on shell, then idle.
    Finish {
        iopub: Vec<JupyterMessageContent>,
        reply: Option<Box<JupyterMessage>>,
    },
}

/// What a cell told the kernel through directives.
#[derive(Debug, Default, Clone)]
pub struct CellReport {
    pub panic: Option<String>,
    /// Text the cell printed on stdout (for history's outputs).
    pub stdout: String,
}

pub struct Pump {
    outbox: Outbox,
    engine: Arc<EngineLink>,
    parent: Option<JupyterMessage>,
    report: CellReport,
    live: LiveCurves,
    out: String,
    err: String,
    /// An empty stdout line held back: the one a cell prints before asking for input is
    /// dropped (see `sluice_notebook::input`), any other is passed on with what follows.
    blank_held: bool,
}

/// Starts the pump thread.
pub fn spawn(
    outbox: Outbox,
    engine: Arc<EngineLink>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    commands: Receiver<PumpCmd>,
    live: Receiver<LiveEvent>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let mut pump = Pump {
        outbox,
        engine,
        parent: None,
        report: CellReport::default(),
        live: LiveCurves::default(),
        out: String::new(),
        err: String::new(),
        blank_held: false,
    };
    std::thread::Builder::new()
        .name("sluice-pump".into())
        .spawn(move || pump.run(stdout, stderr, commands, live))
}

impl Pump {
    fn run(
        &mut self,
        stdout: Receiver<String>,
        stderr: Receiver<String>,
        commands: Receiver<PumpCmd>,
        live: Receiver<LiveEvent>,
    ) {
        loop {
            select! {
                recv(stdout) -> line => match line {
                    Ok(line) => self.stdout_line(line),
                    Err(_) => return,
                },
                recv(stderr) -> line => if let Ok(line) = line { self.stderr_line(line) },
                recv(commands) -> cmd => match cmd {
                    Ok(cmd) => {
                        self.drain(&stdout, &stderr, Duration::ZERO);
                        self.command(cmd, &stdout, &stderr);
                    }
                    Err(_) => return,
                },
                recv(live) -> event => if let Ok(event) = event {
                    if let LiveEvent::SessionCreated { session } = &event {
                        let addr = self.engine.addr().to_string();
                        self.engine.register(&addr, session);
                    } else if self.parent.is_some() {
                        let now = Instant::now();
                        let messages = self.live.on_event(event, now);
                        self.flush_streams();
                        messages.into_iter().for_each(|m| self.emit(m));
                    }
                },
                default(Duration::from_millis(100)) => {
                    let messages = self.live.tick(Instant::now());
                    messages.into_iter().for_each(|m| self.emit(m));
                },
            }
            self.drain(&stdout, &stderr, Duration::ZERO);
            self.flush_streams();
        }
    }

    /// Takes every line already waiting, and those arriving within `grace` of the last one.
    fn drain(&mut self, stdout: &Receiver<String>, stderr: &Receiver<String>, grace: Duration) {
        for _ in 0..10_000 {
            if let Ok(line) = stdout.try_recv() {
                self.stdout_line(line);
            } else if let Ok(line) = stderr.try_recv() {
                self.stderr_line(line);
            } else if grace.is_zero() {
                return;
            } else {
                select! {
                    recv(stdout) -> line => if let Ok(line) = line { self.stdout_line(line) },
                    recv(stderr) -> line => if let Ok(line) = line { self.stderr_line(line) },
                    default(grace) => return,
                }
            }
        }
    }

    fn command(&mut self, cmd: PumpCmd, stdout: &Receiver<String>, stderr: &Receiver<String>) {
        match cmd {
            PumpCmd::Begin(parent) => {
                self.parent = Some(*parent);
                self.report = CellReport::default();
                self.blank_held = false;
                self.emit(JupyterMessageContent::Status(Status::busy()));
            }
            PumpCmd::Emit(content) => {
                self.flush_streams();
                self.emit(content);
            }
            PumpCmd::Drain(answer) => {
                // stderr travels apart from stdout: give its last lines a moment to arrive.
                self.drain(stdout, stderr, Duration::from_millis(15));
                self.release_blank();
                self.flush_streams();
                let _ = answer.send(std::mem::take(&mut self.report));
            }
            PumpCmd::Flush(done) => {
                self.blank_held = false;
                self.flush_streams();
                let _ = done.send(());
            }
            PumpCmd::Finish { iopub, reply } => {
                self.release_blank();
                self.flush_streams();
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

    fn stdout_line(&mut self, line: String) {
        match child_protocol::parse(&line) {
            Some(directive) => self.directive(directive),
            None => {
                if self.parent.is_some() {
                    if line.is_empty() && !self.blank_held {
                        self.blank_held = true;
                        return;
                    }
                    self.release_blank();
                    if !self.err.is_empty() {
                        self.flush_streams();
                    }
                    self.out.push_str(&line);
                    self.out.push('\n');
                    if self.report.stdout.len() < 64 * 1024 {
                        self.report.stdout.push_str(&line);
                        self.report.stdout.push('\n');
                    }
                }
            }
        }
    }

    fn release_blank(&mut self) {
        if std::mem::take(&mut self.blank_held) {
            self.out.push('\n');
            if self.report.stdout.len() < 64 * 1024 {
                self.report.stdout.push('\n');
            }
        }
    }

    fn stderr_line(&mut self, line: String) {
        if self.parent.is_some() {
            if !self.out.is_empty() {
                self.flush_streams();
            }
            self.err.push_str(&line);
            self.err.push('\n');
        } else {
            eprintln!("sluice-kernel: child: {line}");
        }
    }

    fn directive(&mut self, directive: Directive) {
        match directive {
            Directive::Session { addr, handle } => self.engine.register(&addr, &handle),
            Directive::Panic(message) => self.report.panic = Some(message),
            Directive::Curve { name, step, points } => {
                let event = LiveEvent::Step {
                    session: format!("chart {name}"),
                    step,
                    scalars: points,
                    from_fit: true,
                };
                let messages = self.live.on_event(event, Instant::now());
                self.flush_streams();
                messages.into_iter().for_each(|m| self.emit(m));
            }
            Directive::ShowGraph { addr, handle } => {
                let content = match self.engine.fetch_graph(&addr, &handle) {
                    Ok(graph) => {
                        let mut media = vec![MediaType::Plain(graph_text(&graph))];
                        match graph_svg(&graph, &format!("session {handle}")) {
                            Ok(svg) => media.push(MediaType::Svg(svg)),
                            Err(e) => eprintln!("sluice-kernel: drawing the graph: {e}"),
                        }
                        JupyterMessageContent::DisplayData(DisplayData::new(Media::new(media)))
                    }
                    Err(e) => JupyterMessageContent::StreamContent(StreamContent::stderr(
                        &format!("cannot show the graph: {e}\n"),
                    )),
                };
                self.flush_streams();
                self.emit(content);
            }
        }
    }

    fn flush_streams(&mut self) {
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

    fn emit(&mut self, content: JupyterMessageContent) {
        if let Some(parent) = &self.parent {
            self.outbox
                .iopub(JupyterMessage::new(content, Some(parent)));
        }
    }
}
