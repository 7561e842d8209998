//! The output thread: prints what the cell's process writes (stdout and stderr lines), takes
//! out the lines that are messages to the frontend (sessions, graph requests, panics, the
//! end-of-cell marker), and draws live training from the engine's events.

use crate::live::{Live, SharedLastRun};
use crossbeam_channel::{select, Receiver, Sender};
use sluice::service::EngineEvent;
use sluice_kernel::child_protocol::{self, Directive};
use sluice_kernel::engine_link::EngineLink;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Printed by code the REPL appends to a cell: the cell ran to its end (it did not stop at
/// a `?`).
pub const CELL_DONE: &str = "SLUICE_REPL_CELL_DONE";

/// How long a cell's fit may take to report its end after the cell returned.
const FIT_END_GRACE: Duration = Duration::from_millis(1500);

/// What the output thread is asked.
pub enum Cmd {
    /// A cell starts.
    Begin,
    /// Print everything the cell's process wrote so far, close the live displays, and report.
    Drain(Sender<CellReport>),
    /// Print everything the cell's process wrote so far (it is about to ask for input).
    Flush(Sender<()>),
}

/// What a cell told the frontend.
#[derive(Debug, Default, Clone)]
pub struct CellReport {
    pub panic: Option<String>,
    /// `sess.show_graph()` ran: (engine address, session handle).
    pub show_graph: Option<(String, String)>,
    /// The end-of-cell marker came.
    pub done: bool,
}

struct Printer {
    engine: Arc<EngineLink>,
    live: Live,
    report: CellReport,
    /// An empty line held back: the one a cell prints before asking for input is dropped
    /// (see `sluice_notebook::input`), any other is printed with what follows.
    blank_held: bool,
}

/// Starts the output thread.
pub fn spawn(
    engine: Arc<EngineLink>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    events: Receiver<EngineEvent>,
    commands: Receiver<Cmd>,
    last: SharedLastRun,
) -> std::io::Result<()> {
    let mut printer = Printer {
        engine,
        live: Live::new(last),
        report: CellReport::default(),
        blank_held: false,
    };
    std::thread::Builder::new()
        .name("sluice-output".into())
        .spawn(move || printer.run(&stdout, &stderr, &events, &commands))?;
    Ok(())
}

impl Printer {
    fn run(
        &mut self,
        stdout: &Receiver<String>,
        stderr: &Receiver<String>,
        events: &Receiver<EngineEvent>,
        commands: &Receiver<Cmd>,
    ) {
        loop {
            select! {
                recv(stdout) -> line => match line {
                    Ok(line) => self.stdout_line(line),
                    // evcxr's context is gone: the REPL is ending.
                    Err(_) => return,
                },
                recv(stderr) -> line => if let Ok(line) = line { self.live.print_err(&line) },
                recv(events) -> event => if let Ok(event) = event { self.event(event) },
                recv(commands) -> cmd => match cmd {
                    Ok(Cmd::Begin) => {
                        self.report = CellReport::default();
                        self.blank_held = false;
                    }
                    Ok(Cmd::Drain(answer)) => {
                        self.drain(stdout, stderr, events);
                        self.release_blank();
                        let _ = answer.send(std::mem::take(&mut self.report));
                    }
                    Ok(Cmd::Flush(done)) => {
                        while let Ok(line) = stdout.try_recv() {
                            self.stdout_line(line);
                        }
                        self.blank_held = false;
                        let _ = done.send(());
                    }
                    Err(_) => return,
                },
            }
        }
    }

    fn stdout_line(&mut self, line: String) {
        if line == CELL_DONE {
            self.report.done = true;
            return;
        }
        match child_protocol::parse(&line) {
            Some(Directive::Session { addr, handle }) => self.engine.register(&addr, &handle),
            Some(Directive::ShowGraph { addr, handle }) => {
                self.report.show_graph = Some((addr, handle));
            }
            Some(Directive::Panic(message)) => self.report.panic = Some(message),
            Some(Directive::Curve { step, points, .. }) => self.live.chart_point(step, points),
            None if line.is_empty() && !self.blank_held => self.blank_held = true,
            None => {
                self.release_blank();
                self.live.print_out(&line);
            }
        }
    }

    fn release_blank(&mut self) {
        if std::mem::take(&mut self.blank_held) {
            self.live.print_out("");
        }
    }

    fn event(&mut self, event: EngineEvent) {
        let ours = event
            .session()
            .is_some_and(|s| self.engine.sessions().iter().any(|h| h == s));
        if ours {
            self.live.on_event(event);
        }
    }

    /// Takes the lines already written (stderr travels apart from stdout: its last lines get
    /// a moment), and the end of a fit still on its way.
    fn drain(
        &mut self,
        stdout: &Receiver<String>,
        stderr: &Receiver<String>,
        events: &Receiver<EngineEvent>,
    ) {
        let quiet = Duration::from_millis(15);
        let fit_deadline = Instant::now() + FIT_END_GRACE;
        loop {
            let wait = if self.live.fit_running() {
                fit_deadline
                    .saturating_duration_since(Instant::now())
                    .max(quiet)
            } else {
                quiet
            };
            select! {
                recv(stdout) -> line => match line {
                    Ok(line) => self.stdout_line(line),
                    Err(_) => break,
                },
                recv(stderr) -> line => if let Ok(line) = line { self.live.print_err(&line) },
                recv(events) -> event => if let Ok(event) = event { self.event(event) },
                default(wait) => break,
            }
            if self.live.fit_running() && Instant::now() >= fit_deadline {
                break;
            }
        }
        self.live.finish_cell();
    }
}
