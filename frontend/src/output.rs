//! The one road for what a cell puts out. The cell process's stdout and stderr lines, the
//! directives among them, and the engine's events all pass through one thread, which keeps
//! them in order and hands each to the frontend's [`Sink`]: the kernel turns them into iopub
//! messages, the REPL prints them. The thread also keeps what the cell told the frontend (a
//! panic, a `?` that returned early) for the cell's end.

use crate::directives::{Directive, Directives};
use crate::engine_link::EngineLink;
use crate::live::LiveEvent;
use crate::logdir::LogdirWriter;
use crossbeam_channel::{Receiver, Select, Sender};
use sluice::service::EngineEvent;
use sluice::Graph;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long stderr (which travels apart from stdout) gets to deliver a cell's last lines.
const STDERR_GRACE: Duration = Duration::from_millis(15);
/// How long a `?` error's message (on stderr) may take when none has arrived yet.
const ERROR_MESSAGE_GRACE: Duration = Duration::from_millis(500);
/// How long a fit may take to report its end after the cell returned.
const FIT_END_GRACE: Duration = Duration::from_millis(1500);
/// How often the sink is ticked for throttled redraws.
const TICK: Duration = Duration::from_millis(100);
/// Stdout kept per cell for the report (history's outputs).
const KEPT_STDOUT: usize = 64 * 1024;

/// What a frontend does with a cell's outputs. Called on the output thread, in order.
pub trait Sink: Send + 'static {
    /// Requests of the frontend's own for its output thread, kept in order with the rest.
    type Command: Send + 'static;

    /// A line the cell printed on stdout, without its newline.
    fn stdout(&mut self, line: &str);
    /// A line the cell printed on stderr, without its newline.
    fn stderr(&mut self, line: &str);
    /// A rich output the cell printed: its forms, (MIME type, content).
    fn display(&mut self, forms: Vec<(String, String)>);
    /// The graph a cell asked to see (`sess.show_graph()`), or why it could not be had.
    fn graph(&mut self, graph: crate::Result<Graph>);
    /// Training progress: engine events about the cells' sessions, charts cells plot.
    fn live(&mut self, event: LiveEvent, now: Instant);
    /// Time passed (every 100 ms or so): throttled redraws.
    fn tick(&mut self, now: Instant);
    /// A note for the person, not the cell's own output.
    fn note(&mut self, text: &str);
    /// Passes on what is buffered.
    fn flush(&mut self);
    /// Whether events are still expected for this cell (a fit that has not ended).
    fn awaits_events(&self) -> bool;
    /// The cell's outputs are all in: close what is open.
    fn cell_done(&mut self);
    /// A request of the frontend's own.
    fn command(&mut self, command: Self::Command);
}

/// What the output thread is asked.
pub enum OutputCommand<C> {
    /// A cell starts.
    Begin,
    /// Pass on everything printed so far, finish the cell's displays, and report.
    Drain(Sender<CellReport>),
    /// Pass on everything printed so far (the cell is about to ask for input).
    Flush(Sender<()>),
    /// The frontend's own.
    Sink(C),
}

/// Where a cell panicked, as the panic hook saw it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PanicReport {
    pub message: String,
    pub file: String,
    pub line: u32,
}

/// What a cell told the frontend.
#[derive(Debug, Default, Clone)]
pub struct CellReport {
    /// The cell's code panicked (evcxr caught it).
    pub panicked: bool,
    /// The last panic the panic hook reported (its message and place), caught or not.
    pub panic: Option<PanicReport>,
    /// A `?` returned an error early (its message went to stderr).
    pub question_mark: bool,
    /// The last lines the cell printed on stderr (the `?` error's message is among them).
    pub stderr_tail: Vec<String>,
    /// Text the cell printed on stdout (for history's outputs), at most 64 KiB.
    pub stdout: String,
}

/// Starts the output thread. It runs until its command channel closes; a cell process that
/// dies does not end it (the frontend still needs its cells answered).
pub fn spawn<S: Sink>(
    sink: S,
    engine: Arc<EngineLink>,
    directives: Directives,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    events: Receiver<EngineEvent>,
    commands: Receiver<OutputCommand<S::Command>>,
) -> std::io::Result<()> {
    let mut router = Router {
        sink,
        engine,
        directives,
        report: CellReport::default(),
        blank_held: false,
        stdout,
        stderr,
        events,
        runs: None,
    };
    std::thread::Builder::new()
        .name("sluice-output".into())
        .spawn(move || router.run(&commands))?;
    Ok(())
}

struct Router<S: Sink> {
    sink: S,
    engine: Arc<EngineLink>,
    /// The cell process's directive lines.
    directives: Directives,
    report: CellReport,
    /// An empty stdout line held back: the one a cell prints before asking for input is
    /// dropped (see `sluice_cell::input`), any other is passed on with what follows.
    blank_held: bool,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    events: Receiver<EngineEvent>,
    /// TensorBoard runs of the cells' sessions and charts, once `:logdir` asked for them.
    runs: Option<LogdirWriter>,
}

/// What the output thread received.
enum Input<C> {
    Stdout(String),
    Stderr(String),
    Event(EngineEvent),
    Command(OutputCommand<C>),
    /// The frontend is gone: the thread ends.
    CommandsClosed,
    /// A stream of the cell process closed (evcxr restarts it, or the frontend is ending).
    StreamClosed,
    /// Nothing arrived in time.
    Quiet,
}

impl<S: Sink> Router<S> {
    fn run(&mut self, commands: &Receiver<OutputCommand<S::Command>>) {
        loop {
            match self.next(Some(commands), TICK) {
                Input::Command(command) => {
                    self.take_waiting();
                    self.command(command);
                }
                Input::CommandsClosed => return,
                Input::Quiet => self.sink.tick(Instant::now()),
                other => self.take(other),
            }
            self.take_waiting();
            self.sink.flush();
        }
    }

    /// The next thing to arrive within `wait`: a line, an event, or (when given) a command.
    /// A closed stream of the cell process is not waited on again, so commands are still
    /// answered after the process is gone.
    fn next(
        &mut self,
        commands: Option<&Receiver<OutputCommand<S::Command>>>,
        wait: Duration,
    ) -> Input<S::Command> {
        let (stdout, stderr, events) = (
            self.stdout.clone(),
            self.stderr.clone(),
            self.events.clone(),
        );
        let mut select = Select::new();
        let from_stdout = select.recv(&stdout);
        let from_stderr = select.recv(&stderr);
        let from_events = select.recv(&events);
        let from_commands = commands.map(|c| select.recv(c));
        let Ok(ready) = select.select_timeout(wait) else {
            return Input::Quiet;
        };
        let index = ready.index();
        if index == from_stdout {
            ready.recv(&stdout).map_or_else(
                |_| {
                    self.stdout = crossbeam_channel::never();
                    Input::StreamClosed
                },
                Input::Stdout,
            )
        } else if index == from_stderr {
            ready.recv(&stderr).map_or_else(
                |_| {
                    self.stderr = crossbeam_channel::never();
                    Input::StreamClosed
                },
                Input::Stderr,
            )
        } else if index == from_events {
            ready.recv(&events).map_or_else(
                |_| {
                    self.events = crossbeam_channel::never();
                    Input::StreamClosed
                },
                Input::Event,
            )
        } else {
            match (commands, from_commands) {
                (Some(commands), Some(_)) => ready
                    .recv(commands)
                    .map_or(Input::CommandsClosed, Input::Command),
                _ => Input::Quiet,
            }
        }
    }

    /// Hands a line or an event on.
    fn take(&mut self, input: Input<S::Command>) {
        match input {
            Input::Stdout(line) => self.stdout_line(line),
            Input::Stderr(line) => self.stderr_line(line),
            Input::Event(event) => self.event(event),
            _ => {}
        }
    }

    /// Takes every line already waiting.
    fn take_waiting(&mut self) {
        for _ in 0..10_000 {
            if let Ok(line) = self.stdout.try_recv() {
                self.stdout_line(line);
            } else if let Ok(line) = self.stderr.try_recv() {
                self.stderr_line(line);
            } else {
                return;
            }
        }
    }

    fn command(&mut self, command: OutputCommand<S::Command>) {
        match command {
            OutputCommand::Begin => {
                self.report = CellReport::default();
                self.blank_held = false;
            }
            OutputCommand::Drain(answer) => {
                self.drain();
                self.release_blank();
                self.sink.flush();
                self.sink.cell_done();
                let _ = answer.send(std::mem::take(&mut self.report));
            }
            OutputCommand::Flush(done) => {
                self.blank_held = false;
                self.sink.flush();
                let _ = done.send(());
            }
            OutputCommand::Sink(command) => {
                self.sink.flush();
                self.sink.command(command);
            }
        }
    }

    /// The cell returned: its last stderr lines, and the end of a fit still on its way.
    fn drain(&mut self) {
        let fit_deadline = Instant::now() + FIT_END_GRACE;
        loop {
            let wait = if self.sink.awaits_events() {
                fit_deadline
                    .saturating_duration_since(Instant::now())
                    .max(STDERR_GRACE)
            } else if self.report.question_mark && self.report.stderr_tail.is_empty() {
                ERROR_MESSAGE_GRACE
            } else {
                STDERR_GRACE
            };
            match self.next(None, wait) {
                Input::Quiet => return,
                other => self.take(other),
            }
            if Instant::now() >= fit_deadline {
                return;
            }
        }
    }

    fn stdout_line(&mut self, line: String) {
        if let Some(directive) = self.directives.parse(&line) {
            return self.directive(directive);
        }
        if line.is_empty() && !self.blank_held {
            self.blank_held = true;
            return;
        }
        self.release_blank();
        self.keep_stdout(&line);
        self.sink.stdout(&line);
    }

    fn release_blank(&mut self) {
        if std::mem::take(&mut self.blank_held) {
            self.keep_stdout("");
            self.sink.stdout("");
        }
    }

    fn keep_stdout(&mut self, line: &str) {
        if self.report.stdout.len() < KEPT_STDOUT {
            self.report.stdout.push_str(line);
            self.report.stdout.push('\n');
        }
    }

    fn stderr_line(&mut self, line: String) {
        let tail = &mut self.report.stderr_tail;
        if tail.len() == 20 {
            tail.remove(0);
        }
        tail.push(line.clone());
        self.sink.stderr(&line);
    }

    fn directive(&mut self, directive: Directive) {
        match directive {
            Directive::Session { addr, handle } => self.engine.register(&addr, &handle),
            Directive::ShowGraph { addr, handle } => {
                self.release_blank();
                let graph = self.engine.fetch_graph(&addr, &handle);
                self.sink.graph(graph);
            }
            Directive::Panic {
                message,
                file,
                line,
            } => {
                self.report.panic = Some(PanicReport {
                    message,
                    file,
                    line,
                })
            }
            Directive::QuestionMark => self.report.question_mark = true,
            Directive::Panicked => self.report.panicked = true,
            Directive::Display(forms) => {
                self.release_blank();
                self.sink.display(forms);
            }
            Directive::Logdir(dir) => self.start_runs(&dir),
            Directive::Timeline(path) => {
                self.release_blank();
                match crate::timeline_view::draw(&path) {
                    Ok(forms) => self.sink.display(forms),
                    Err(e) => self.sink.note(&e.to_string()),
                }
            }
            Directive::Curve { name, step, points } => {
                if let Some(runs) = &mut self.runs {
                    runs.chart(&name, step, &points);
                }
                let event = LiveEvent::Chart { name, step, points };
                self.sink.live(event, Instant::now());
            }
            Directive::Note(text) => self.sink.note(&text),
            Directive::Bundle(_) => {}
        }
    }

    fn event(&mut self, event: EngineEvent) {
        if let EngineEvent::SessionCreated { session, .. } = &event {
            // Every session on an embedded engine is the cells' (they may make sessions of
            // their own); on a shared engine, only those the cells announce.
            if self.engine.is_embedded() {
                let addr = self.engine.addr().to_string();
                self.engine.register(&addr, session);
                self.record(&event);
            }
            return;
        }
        let ours = event.session().is_some_and(|s| self.engine.is_ours(s));
        if ours {
            self.record(&event);
            self.sink.live(LiveEvent::Engine(event), Instant::now());
        }
    }

    /// `:logdir DIR`: the cells' sessions and charts are written under DIR from now on.
    fn start_runs(&mut self, dir: &str) {
        match LogdirWriter::start(dir, self.engine.clone()) {
            Ok((runs, shown)) => {
                self.sink.note(&format!(
                    "TensorBoard runs go to {} (see them with `tensorboard --logdir {dir}`)",
                    shown.display()
                ));
                self.runs = Some(runs);
            }
            Err(e) => self
                .sink
                .note(&format!("no TensorBoard runs in {dir}: {e}")),
        }
    }

    /// Hands an event of the cells' sessions to their runs, if `:logdir` asked for them.
    fn record(&mut self, event: &EngineEvent) {
        if let Some(runs) = &mut self.runs {
            runs.event(event);
        }
    }
}
