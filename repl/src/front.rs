//! The REPL's front: evcxr (through the kernel's evaluator) with the Sluice prelude, the
//! engine link, the output thread, and what running an entry means: a cell, or one of the
//! REPL's commands.

use crate::commands::{self, Command, HELP};
use crate::error::{ReplError, Result};
use crate::interrupt;
use crate::live::SharedLastRun;
use crate::output::{self, CellReport, Cmd, CELL_DONE};
use crate::{charts, report, watch};
use crossbeam_channel::Sender;
use sluice::service::RemoteSession;
use sluice_kernel::engine_link::{EngineLink, ENGINE_ENV};
use sluice_kernel::evaluator::{Evaluator, Setup};
use sluice_kernel::workdir::WorkDir;
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

/// How a cell ended.
struct CellOutcome {
    ok: bool,
    report: CellReport,
}

pub struct Front {
    evaluator: Rc<RefCell<Evaluator>>,
    engine: Arc<EngineLink>,
    output: Sender<Cmd>,
    last_run: SharedLastRun,
    _build_dir: WorkDir,
}

impl Front {
    /// Starts the engine (or attaches to `engine`, else to `SLUICE_ENGINE`), evcxr in the
    /// shared build folder, and runs the prelude. Call before any other thread starts: it
    /// sets environment variables.
    pub fn start(engine: Option<&str>) -> Result<Front> {
        if let Some(addr) = engine {
            std::env::set_var(ENGINE_ENV, addr);
        }
        // Cells link one shared copy of their dependencies (the kernel's shared_linking).
        let build_dir = sluice_kernel::kernel::claim_build_dir()?;
        let engine = Arc::new(EngineLink::start()?);
        let setup = Setup {
            engine_addr: engine.addr().to_string(),
            engine_dir: sluice_kernel::prelude::engine_source_dir(),
            build_dir: build_dir.path().to_path_buf(),
        };
        let (evaluator, outputs) = Evaluator::start(&setup)?;
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        watch::spawn(engine.addr(), events_tx);
        let (output_tx, output_rx) = crossbeam_channel::unbounded();
        let last_run = SharedLastRun::default();
        output::spawn(
            engine.clone(),
            outputs.stdout,
            outputs.stderr,
            events_rx,
            output_rx,
            last_run.clone(),
        )?;
        let front = Front {
            evaluator: Rc::new(RefCell::new(evaluator)),
            engine,
            output: output_tx,
            last_run,
            _build_dir: build_dir,
        };
        let _ = front.output.send(Cmd::Begin);
        let prelude = front.evaluator.borrow_mut().prelude();
        front.drain();
        prelude.map_err(|e| ReplError::Evcxr(format!("the Sluice prelude failed: {e}")))?;
        Ok(front)
    }

    /// The evaluator, for completions at the prompt.
    pub fn evaluator(&self) -> Rc<RefCell<Evaluator>> {
        self.evaluator.clone()
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
                ok: self.cell(input).ok,
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
            Command::Graph { svg } => self.graph(svg.as_deref()),
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
                let mut vars = self.evaluator.borrow().variables();
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

    fn graph(&mut self, svg: Option<&std::path::Path>) -> bool {
        // The session sends its new nodes first, then names itself.
        let outcome = self.cell("sess.show_graph();");
        let Some((addr, handle)) = outcome.report.show_graph.filter(|_| outcome.ok) else {
            if outcome.ok {
                report::error("`sess` did not answer with its graph");
            }
            return false;
        };
        let graph = match self.engine.fetch_graph(&addr, &handle) {
            Ok(graph) => graph,
            Err(e) => {
                report::error(&format!("cannot fetch the graph: {e}"));
                return false;
            }
        };
        match svg {
            None => {
                print!("{}", charts::graph_outline(&graph));
                true
            }
            Some(path) => match charts::write_graph_svg(&graph, &format!("session {handle}"), path)
            {
                Ok(()) => {
                    println!("wrote {} ({} nodes)", path.display(), graph.len());
                    true
                }
                Err(e) => {
                    report::error(&format!("cannot write {}: {e}", path.display()));
                    false
                }
            },
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
                    println!("{:<40} {:<6} {memory}", d.name, d.device_type);
                }
                true
            }
            Err(e) => {
                report::error(&format!("cannot list the engine's devices: {e}"));
                false
            }
        }
    }

    /// Runs code as a cell; Ctrl-C meanwhile cancels its engine work.
    /// Ctrl-C while a cell runs: the first cancels the engine work, the second stops the
    /// cell's process.
    fn interrupt_watch(&self, child: Arc<Mutex<Child>>) -> interrupt::Watch {
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
                let mut child = child.lock().unwrap_or_else(|e| e.into_inner());
                let _ = child.kill();
            }
        }))
    }

    /// Prints what the cell wrote so far (before it asks for input).
    fn flush_output(&self) {
        let (done, flushed) = crossbeam_channel::bounded(1);
        if self.output.send(Cmd::Flush(done)).is_ok() {
            let _ = flushed.recv_timeout(std::time::Duration::from_secs(1));
        }
    }

    fn cell(&mut self, code: &str) -> CellOutcome {
        let (code, marked) = with_end_marker(code);
        let _ = self.output.send(Cmd::Begin);
        // Taken now: the evaluator is borrowed while the cell runs.
        let child = self.evaluator.borrow().process_handle();
        let watch = RefCell::new(Some(self.interrupt_watch(child.clone())));
        let earlier_presses = std::cell::Cell::new(0);
        let variables_before = self.evaluator.borrow().variables();
        // Reading the answer to a cell's question needs the keyboard the Ctrl-C watch holds.
        let input = |prompt: &str, secret: bool| {
            let presses = watch.borrow_mut().take().map_or(0, interrupt::Watch::stop);
            earlier_presses.set(earlier_presses.get() + presses);
            self.flush_output();
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
        let result = self.evaluator.borrow_mut().execute(&code, &input);
        let presses = earlier_presses.get() + watch.into_inner().map_or(0, interrupt::Watch::stop);
        let report = self.drain();
        if presses > 0 {
            for failure in self.engine.reset_all() {
                report::error(&format!("after the interrupt: {failure}"));
            }
        }
        let ok = match result {
            Err(e) => {
                report::evcxr_error(&e);
                if matches!(e, evcxr::Error::SubprocessTerminated(_)) {
                    self.recover(&variables_before);
                }
                false
            }
            Ok(outputs) => {
                if let Some(panic) = &report.panic {
                    report::error(&format!("panicked: {panic}"));
                    false
                } else if marked && !report.done {
                    if presses > 0 {
                        report::note(
                            "interrupted: the engine work was cancelled; variables are intact",
                        );
                    } else {
                        report::error("the cell stopped at a `?` (the error is above); what it defined is not kept");
                    }
                    false
                } else {
                    if let Some(text) = outputs.content_by_mime_type.get("text/plain") {
                        println!("{text}");
                    }
                    true
                }
            }
        };
        CellOutcome { ok, report }
    }

    /// evcxr restarted its child: `sess` and `graph` come back from the engine.
    fn recover(&mut self, variables_before: &[(String, String)]) {
        report::note("the cell's process was restarted; trained variables stay in the engine");
        let lost = sluice_kernel::evaluator::lost_variables(variables_before);
        if !lost.is_empty() {
            report::note(&format!(
                "lost: {} (find graph nodes again with graph.get(\"name\"))",
                lost.join(", ")
            ));
        }
        let Some(handle) = self.engine.sessions().first().cloned() else {
            return;
        };
        let _ = self.output.send(Cmd::Begin);
        let addr = self.engine.addr().to_string();
        let result = self.evaluator.borrow_mut().reattach(&addr, &handle);
        self.drain();
        match result {
            Ok(_) => report::note("`sess` and `graph` are back, on the same engine session"),
            Err(e) => report::error(&format!("cannot attach to the session again: {e}")),
        }
    }

    fn drain(&self) -> CellReport {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.output.send(Cmd::Drain(tx)).is_err() {
            return CellReport::default();
        }
        rx.recv().unwrap_or_default()
    }
}

/// The cell with a line that tells the REPL it ran to its end, when it ends in a statement
/// (a `?` that returns early skips it). A cell ending in an expression shows its value
/// instead and is left as it is.
pub fn with_end_marker(code: &str) -> (String, bool) {
    let trimmed = code.trim_end();
    let evcxr_command = trimmed.lines().all(|l| l.trim_start().starts_with(':'));
    if trimmed.ends_with(';') && !evcxr_command {
        (format!("{trimmed}\nprintln!(\"{CELL_DONE}\");"), true)
    } else {
        (code.to_string(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_only_after_statements() {
        let (code, marked) = with_end_marker("let a = 1;\n");
        assert!(marked);
        assert!(code.ends_with(&format!("println!(\"{CELL_DONE}\");")));
        assert_eq!(with_end_marker("a + 1"), ("a + 1".to_string(), false));
        assert!(!with_end_marker(":dep foo = \"1\";").1);
    }
}
