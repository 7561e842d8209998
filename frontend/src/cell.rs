//! Running cells, as both frontends do: evcxr (when it started), the output thread, the
//! prelude's session; each cell's outcome told apart (a result, or an error the person can
//! read: compile errors with their spans, panics at a line of the cell, a `?` that returned
//! an error, an interrupt, a restarted process).

use crate::engine_link::EngineLink;
use crate::evaluator::{lost_variables, Evaluator, Setup};
use crate::output::{self, CellReport, OutputCommand, Sink};
use crossbeam_channel::Sender;
use std::process::Child;
use std::sync::{Arc, Mutex};

use crate::failure::{cell_line_of, panic_failure, question_mark_failure};
pub use crate::failure::{evcxr_failure, Failure, FailureKind};

/// A cell's result: the forms of its final value, (MIME type, content).
pub type Result = Vec<(String, String)>;

/// How a cell ended.
#[derive(Debug, Clone)]
pub struct CellRun {
    pub outcome: std::result::Result<Option<Result>, Failure>,
    /// What to tell the person besides (what a restart lost).
    pub notes: Vec<String>,
    /// What the cell told the frontend.
    pub report: CellReport,
}

/// The output thread, reachable while a cell runs.
pub struct OutputHandle<C>(Sender<OutputCommand<C>>);

impl<C> Clone for OutputHandle<C> {
    fn clone(&self) -> Self {
        OutputHandle(self.0.clone())
    }
}

impl<C: Send + 'static> OutputHandle<C> {
    /// Passes on what the cell printed so far (before it asks for input).
    pub fn flush(&self) {
        let (done, flushed) = crossbeam_channel::bounded(1);
        if self.0.send(OutputCommand::Flush(done)).is_ok() {
            let _ = flushed.recv_timeout(std::time::Duration::from_secs(2));
        }
    }

    /// Sends a request of the frontend's own, in order with the cell's outputs.
    pub fn send_to_sink(&self, command: C) {
        let _ = self.0.send(OutputCommand::Sink(command));
    }
}

/// The cells of one frontend.
pub struct Cells<C: Send + 'static> {
    evaluator: std::result::Result<Evaluator, String>,
    setup: Setup,
    output: Sender<OutputCommand<C>>,
    engine: Arc<EngineLink>,
    /// The prelude's session (address, handle), for reattaching after a restart.
    session: Option<(String, String)>,
}

impl<C: Send + 'static> Cells<C> {
    /// Starts evcxr and the output thread (handing outputs to `sink`). A start that fails
    /// is not an error here: every cell then answers with it.
    pub fn start<S: Sink<Command = C>>(
        setup: Setup,
        engine: Arc<EngineLink>,
        sink: S,
    ) -> std::io::Result<Cells<C>> {
        let (evaluator, stdout, stderr) = match Evaluator::start(&setup) {
            Ok((ev, out)) => (Ok(ev), out.stdout, out.stderr),
            Err(e) => (
                Err(e.to_string()),
                crossbeam_channel::never(),
                crossbeam_channel::never(),
            ),
        };
        let (events_tx, events) = crossbeam_channel::unbounded();
        if let Err(e) = engine.watch(events_tx) {
            tracing::warn!("no live progress (cannot follow the engine's events: {e})");
        }
        let (output, commands) = crossbeam_channel::unbounded();
        let directives = setup.directives.clone();
        output::spawn(
            sink,
            engine.clone(),
            directives,
            stdout,
            stderr,
            events,
            commands,
        )?;
        Ok(Cells {
            evaluator,
            setup,
            output,
            engine,
            session: None,
        })
    }

    /// Runs the prelude; a failure makes every cell answer with it.
    pub fn prelude(&mut self) -> std::result::Result<(), String> {
        let _ = self.output.send(OutputCommand::Begin);
        let Ok(ev) = &mut self.evaluator else {
            return Err(self.start_error());
        };
        let result = ev.prelude(&self.setup);
        let report = self.drain();
        // evcxr answers Ok when a `?` returned early or the code panicked: what the prelude
        // was to define (`sess`, `graph`) is then not there.
        let failed = match result {
            Err(e) => Some(e.to_string()),
            Ok(_) if report.question_mark || report.panicked => {
                Some("it stopped before it made `sess` and `graph`".to_string())
            }
            Ok(_) => None,
        };
        if let Some(why) = failed {
            let mut message = format!("the Sluice prelude failed: {why}");
            if !report.stderr_tail.is_empty() {
                message.push('\n');
                message.push_str(&report.stderr_tail.join("\n"));
            }
            self.evaluator = Err(message.clone());
            return Err(message);
        }
        self.session = self
            .engine
            .sessions()
            .first()
            .map(|h| (self.engine.addr().to_string(), h.clone()));
        Ok(())
    }

    fn start_error(&self) -> String {
        match &self.evaluator {
            Err(e) => e.clone(),
            Ok(_) => String::new(),
        }
    }

    /// Whether evcxr runs (the prelude included).
    pub fn ready(&self) -> bool {
        self.evaluator.is_ok()
    }

    pub fn engine(&self) -> &Arc<EngineLink> {
        &self.engine
    }

    /// Sends a request of the frontend's own to its output thread, in order with outputs.
    pub fn send_to_sink(&self, command: C) {
        self.send(OutputCommand::Sink(command));
    }

    fn send(&self, command: OutputCommand<C>) {
        // The output thread ends only with this value.
        let _ = self.output.send(command);
    }

    /// A handle on the output thread for code that runs while a cell does (its input).
    pub fn output(&self) -> OutputHandle<C> {
        OutputHandle(self.output.clone())
    }

    fn drain(&self) -> CellReport {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(OutputCommand::Drain(tx));
        rx.recv().unwrap_or_default()
    }

    /// Runs one cell; `input` answers what the cell asks the person.
    pub fn run(&mut self, code: &str, input: &dyn Fn(&str, bool) -> String) -> CellRun {
        let ev = match &mut self.evaluator {
            Ok(ev) => ev,
            Err(e) => {
                let lines = e.lines().map(str::to_string).collect();
                return CellRun {
                    outcome: Err(Failure::new(
                        FailureKind::Start,
                        "KernelStartError",
                        e,
                        lines,
                    )),
                    notes: Vec::new(),
                    report: CellReport::default(),
                };
            }
        };
        let variables_before = ev.variables();
        let process_before = child_pid(ev);
        let _ = self.output.send(OutputCommand::Begin);
        let result = ev.execute(code, input);
        let restarted = child_pid(ev) != process_before;
        let report = self.drain();
        let mut notes = Vec::new();
        let terminated = matches!(result, Err(evcxr::Error::SubprocessTerminated(_)));
        if terminated || restarted {
            // Also after evcxr's own `:restart` or `:clear`, which start a new process.
            notes = self.recover(&variables_before);
        }
        let outcome = match result {
            Err(e) => Err(evcxr_failure(&e)),
            Ok(out) => {
                if report.panicked {
                    // The hook's last report is this panic's (a panic the cell caught
                    // itself fails nothing).
                    let panic = report.panic.clone().unwrap_or_default();
                    let place = self.panic_place(code, &panic.file, panic.line);
                    let message = Some(panic.message.as_str())
                        .filter(|m| !m.is_empty())
                        .unwrap_or("the cell panicked");
                    Err(panic_failure(message, place.as_deref()))
                } else if report.question_mark {
                    Err(question_mark_failure(&report.stderr_tail))
                } else {
                    Ok(shown_result(out.content_by_mime_type))
                }
            }
        };
        CellRun {
            outcome,
            notes,
            report,
        }
    }

    /// The cell was interrupted: lets its sessions run steps again and says so, unless it
    /// failed to compile (then it never ran).
    pub fn interrupted(&self, run: &mut CellRun) {
        for failure in self.engine.reset_all() {
            tracing::warn!("after the interrupt: {failure}");
        }
        let kind = run.outcome.as_ref().err().map(|f| f.kind);
        let (message, line) = match kind {
            // It never ran.
            Some(FailureKind::Compile) => return,
            Some(FailureKind::Restarted) => (
                "the cell was interrupted and its process restarted (see above for what was lost)",
                "\x1b[31mInterrupted\x1b[0m: the cell's process was restarted",
            ),
            _ => (
                "the cell was interrupted; its engine work was cancelled (variables are intact)",
                "\x1b[31mInterrupted\x1b[0m: engine work cancelled; variables are intact",
            ),
        };
        if let Err(f) = &run.outcome {
            if f.kind != FailureKind::Restarted {
                run.notes
                    .push(format!("before the interrupt: {}", f.message));
            }
        }
        run.outcome = Err(Failure::new(
            FailureKind::Interrupted,
            "Interrupted",
            message,
            vec![line.into()],
        ));
    }

    /// Where a panic happened, as a place in the cell when it points into evcxr's code.
    fn panic_place(&self, code: &str, file: &str, line: u32) -> Option<String> {
        if line == 0 {
            return None;
        }
        if file != "src/lib.rs" {
            return Some(format!("{file}:{line}"));
        }
        let ev = self.evaluator.as_ref().ok()?;
        let generated = ev.generated_line(line)?;
        Some(match cell_line_of(code, &generated) {
            Some(i) => format!("line {} of the cell", i + 1),
            None => format!("`{}` (code of an earlier cell)", generated.trim()),
        })
    }

    /// evcxr restarted its child: the session comes back from the engine, other variables
    /// are gone. Returns what to tell the person.
    fn recover(&mut self, variables_before: &[(String, String)]) -> Vec<String> {
        let mut notes = vec![
            "The cell's process was stopped and restarted; trained variables stay in the engine."
                .to_string(),
        ];
        let lost = lost_variables(variables_before);
        if !lost.is_empty() {
            notes.push(format!(
                "Lost variables: {} (find graph nodes again with graph.get(\"name\")).",
                lost.join(", ")
            ));
        }
        if let (Ok(ev), Some((addr, handle))) = (&mut self.evaluator, &self.session) {
            self.output.send(OutputCommand::Begin).ok();
            let result = ev.reattach(&self.setup, addr, handle);
            let report = self.drain();
            let back = result.is_ok() && !report.question_mark && !report.panicked;
            if back {
                notes.push(
                    "`sess` and `graph` are back, attached to the same engine session.".into(),
                );
            } else {
                let why = match result {
                    Err(e) => e.to_string(),
                    Ok(_) => report.stderr_tail.join("\n"),
                };
                notes.push(format!("Could not attach to the session again: {why}"));
            }
        }
        notes
    }

    /// Variables that live between cells, with their types.
    pub fn variables(&self) -> Vec<(String, String)> {
        self.evaluator
            .as_ref()
            .map(Evaluator::variables)
            .unwrap_or_default()
    }

    /// The cells' process, for the interrupt's last resort.
    pub fn process_handle(&self) -> Option<Arc<Mutex<Child>>> {
        self.evaluator.as_ref().ok().map(Evaluator::process_handle)
    }

    /// The evaluator, for completions and inspection.
    pub fn evaluator(&mut self) -> std::result::Result<&mut Evaluator, String> {
        match &mut self.evaluator {
            Ok(ev) => Ok(ev),
            Err(e) => Err(e.clone()),
        }
    }
}

/// The cells' process id, to notice a restart.
fn child_pid(ev: &Evaluator) -> u32 {
    let child = ev.process_handle();
    let id = child.lock().unwrap_or_else(|e| e.into_inner()).id();
    id
}

/// The result worth showing: none for `()` (what a cell ending in a loop or block gives).
fn shown_result(by_mime: std::collections::HashMap<String, String>) -> Option<Result> {
    if by_mime.is_empty() {
        return None;
    }
    let unit = by_mime.len() == 1 && by_mime.get("text/plain").map(String::as_str) == Some("()");
    if unit {
        return None;
    }
    let mut forms: Result = by_mime.into_iter().collect();
    forms.sort();
    Some(forms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_results_are_not_shown() {
        let mut by_mime = std::collections::HashMap::new();
        by_mime.insert("text/plain".to_string(), "()".to_string());
        assert_eq!(shown_result(by_mime.clone()), None);
        by_mime.insert("text/plain".to_string(), "3".to_string());
        assert_eq!(
            shown_result(by_mime),
            Some(vec![("text/plain".to_string(), "3".to_string())])
        );
    }
}
