//! The REPL's front: the frontends' shared cells (evcxr with the Sluice prelude, the engine
//! link, the output thread) with the terminal as their sink, and what running an entry means:
//! a cell, or one of the REPL's commands.

use crate::commands::{self, Command, HELP};
use crate::error::Result;
use crate::interrupt;
use crate::live::SharedLastRun;
use crate::terminal_sink::{SharedSinkState, TerminalCommand, TerminalSink};
use crate::{charts, report};
use sluice::service::RemoteSession;
use sluice_frontend::build_dir::BuildDir;
use sluice_frontend::cell::{CellRun, Cells, FailureKind};
use sluice_frontend::engine_link::EngineLink;
use sluice_frontend::evaluator::Setup;
use sluice_frontend::FrontendError;
use std::cell::RefCell;
use std::process::Child;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// What to do after an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on; `ok` is false when the entry failed.
    Continue {
        ok: bool,
    },
    Quit,
}

pub struct Front {
    cells: Rc<RefCell<Cells<TerminalCommand>>>,
    engine: Arc<EngineLink>,
    last_run: SharedLastRun,
    sink_state: SharedSinkState,
    _build_dir: BuildDir,
}

impl Front {
    /// Starts the engine (or attaches to `engine`, else to `SLUICE_ENGINE`), evcxr in a build
    /// folder of its own, and runs the prelude. Call before any other thread starts: it sets
    /// environment variables.
    pub fn start(engine: Option<&str>) -> Result<Front> {
        let (sources, build_dir) = BuildDir::prepare()?;
        let engine = Arc::new(EngineLink::start(engine)?);
        let setup = Setup::new(engine.addr(), sources, &build_dir)?;
        let last_run = SharedLastRun::default();
        let sink_state = SharedSinkState::default();
        let sink = TerminalSink::new(last_run.clone(), sink_state.clone());
        let mut cells = Cells::start(setup, engine.clone(), sink)?;
        cells.prelude().map_err(FrontendError::Evcxr)?;
        build_dir.keep_as_template();
        Ok(Front {
            cells: Rc::new(RefCell::new(cells)),
            engine,
            last_run,
            sink_state,
            _build_dir: build_dir,
        })
    }

    /// The cells, for completions at the prompt.
    pub fn cells(&self) -> Rc<RefCell<Cells<TerminalCommand>>> {
        self.cells.clone()
    }

    pub fn engine(&self) -> &EngineLink {
        &self.engine
    }

    /// Runs one entry: a REPL command, or code (and evcxr commands) as a cell.
    pub fn run_entry(&mut self, input: &str) -> Flow {
        if input.trim().is_empty() {
            return Flow::Continue { ok: true };
        }
        match commands::parse(input) {
            Ok(Some(command)) => self.command(command),
            Ok(None) => Flow::Continue {
                ok: self.cell(input),
            },
            Err(commands::Misuse(usage)) => {
                report::error(&usage);
                Flow::Continue { ok: false }
            }
        }
    }

    fn command(&mut self, command: Command) -> Flow {
        let ok = match command {
            Command::Quit => return Flow::Quit,
            Command::Help => {
                print!("{HELP}");
                true
            }
            Command::Graph { svg } => self.graph(svg),
            Command::Summary => self.cell(":summary"),
            Command::Loss => {
                let last = self.last_run.lock().map(|l| l.clone()).unwrap_or_default();
                if last.series.is_empty() {
                    println!("no run yet: a fit, or a loop of runs that fetch a scalar, draws one");
                } else {
                    print!("{}", charts::loss_chart(&last.series, &last.title));
                }
                true
            }
            Command::Devices => self.devices(),
            Command::Vars => {
                let mut vars = self.cells.borrow().variables();
                vars.sort();
                for (name, ty) in vars {
                    println!("{name}: {ty}");
                }
                true
            }
            Command::Engine => {
                let kind = if self.engine.is_embedded() {
                    "embedded in this REPL"
                } else {
                    "standalone"
                };
                println!("engine {} ({kind})", self.engine.addr());
                println!("sessions: {}", self.engine.sessions().join(", "));
                true
            }
        };
        Flow::Continue { ok }
    }

    /// The session's graph, as an outline or to an SVG file.
    fn graph(&mut self, svg: Option<std::path::PathBuf>) -> bool {
        if let Some(path) = svg {
            self.cells
                .borrow()
                .send_to_sink(TerminalCommand::GraphTo(path));
        }
        self.sink_state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_graph = None;
        // The session sends its new nodes first, then names itself.
        if !self.cell("sess.show_graph();") {
            return false;
        }
        let shown = self
            .sink_state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_graph
            .take();
        match shown {
            Some(Ok(_)) => true,
            Some(Err(_)) => false,
            None => {
                report::error("`sess` did not answer with its graph");
                false
            }
        }
    }

    fn devices(&self) -> bool {
        let listed = match self.engine.sessions().first() {
            Some(handle) => RemoteSession::attach(self.engine.addr(), handle)
                .and_then(|(session, _)| session.list_devices()),
            None => {
                RemoteSession::create(self.engine.addr(), &sluice::Graph::new()).and_then(|s| {
                    let devices = s.list_devices();
                    let _ = s.close();
                    devices
                })
            }
        };
        match listed {
            Ok(devices) => {
                for d in devices {
                    let memory = if d.memory_limit > 0 {
                        format!("{:.1} GiB", d.memory_limit as f64 / (1u64 << 30) as f64)
                    } else {
                        "-".into()
                    };
                    println!(
                        "{:<40} {:<4} {memory:>10}  {} ({})",
                        d.name, d.device_type, d.description, d.backend
                    );
                }
                true
            }
            Err(e) => {
                report::error(&format!("cannot list the engine's devices: {e}"));
                false
            }
        }
    }

    /// Ctrl-C while a cell runs: the first cancels the engine work, the second stops the
    /// cell's process.
    fn interrupt_watch(&self, child: Option<Arc<Mutex<Child>>>) -> interrupt::Watch {
        let engine = self.engine.clone();
        interrupt::Watch::start(Box::new(move |presses| {
            if presses == 1 {
                eprint!(
                    "\r\n^C cancelling the engine work (Ctrl-C again stops the cell's process)\r\n"
                );
                for failure in engine.cancel_all() {
                    eprint!("cannot cancel {failure}\r\n");
                }
            } else if presses == 2 {
                eprint!("\r\n^C stopping the cell's process\r\n");
                if let Some(child) = &child {
                    let mut child = child.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = child.kill();
                }
            }
        }))
    }

    /// Runs code as a cell; Ctrl-C meanwhile cancels its engine work. True when it ran.
    fn cell(&self, code: &str) -> bool {
        // Taken now: the cells are borrowed while the cell runs.
        let child = self.cells.borrow().process_handle();
        let output = self.cells.borrow().output();
        let watch = RefCell::new(Some(self.interrupt_watch(child.clone())));
        let earlier_presses = std::cell::Cell::new(0);
        // Reading the answer to a cell's question needs the keyboard the Ctrl-C watch holds.
        let input = |prompt: &str, secret: bool| {
            let presses = watch.borrow_mut().take().map_or(0, interrupt::Watch::stop);
            earlier_presses.set(earlier_presses.get() + presses);
            output.flush();
            let line = crate::input::read_line(prompt, secret).unwrap_or_else(|| {
                // Ctrl-C at the question: the cell reads an empty line, as an interrupted
                // notebook cell does, and its engine work is cancelled.
                earlier_presses.set(earlier_presses.get() + 1);
                for failure in self.engine.cancel_all() {
                    report::error(&format!("cannot cancel {failure}"));
                }
                String::new()
            });
            *watch.borrow_mut() = Some(self.interrupt_watch(child.clone()));
            line
        };
        let mut run = self.cells.borrow_mut().run(code, &input);
        let presses = earlier_presses.get() + watch.into_inner().map_or(0, interrupt::Watch::stop);
        if presses > 0 {
            self.cells.borrow().interrupted(&mut run);
        }
        show(&run)
    }
}

/// Prints how a cell ended; true when it succeeded.
fn show(run: &CellRun) -> bool {
    for note in &run.notes {
        report::note(note);
    }
    match &run.outcome {
        Ok(result) => {
            let text = result
                .iter()
                .flatten()
                .find(|(mime, _)| mime == "text/plain")
                .map(|(_, text)| text);
            if let Some(text) = text {
                println!("{text}");
            }
            true
        }
        Err(failure) if failure.kind == FailureKind::Interrupted => {
            report::note(&format!(
                "interrupted: {}",
                failure
                    .message
                    .trim_start_matches("the cell was interrupted; ")
            ));
            false
        }
        Err(failure) => {
            report::failure(failure);
            false
        }
    }
}
