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

/// A cell's result: the forms of its final value, (MIME type, content).
pub type Result = Vec<(String, String)>;

/// What kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The frontend could not start evcxr: no cell can run.
    Start,
    Compile,
    Panic,
    /// A `?` returned an error early.
    Error,
    Interrupted,
    /// The cell's process died (or was stopped) and was started again.
    Restarted,
    /// evcxr failed otherwise.
    Evcxr,
}

/// A failed cell, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    /// A short name (Jupyter's `ename`).
    pub name: String,
    /// The message (Jupyter's `evalue`).
    pub message: String,
    /// The lines to show, with ANSI colours.
    pub traceback: Vec<String>,
}

impl Failure {
    fn new(kind: FailureKind, name: &str, message: &str, traceback: Vec<String>) -> Failure {
        Failure {
            kind,
            name: name.to_string(),
            message: message.to_string(),
            traceback,
        }
    }
}

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
        output::spawn(sink, engine.clone(), stdout, stderr, events, commands)?;
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
        if let Err(e) = result {
            let mut message = format!("the Sluice prelude failed: {e}");
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
        let _ = self.output.send(OutputCommand::Begin);
        let result = ev.execute(code, input);
        let report = self.drain();
        let mut notes = Vec::new();
        let outcome = match result {
            Err(e) => {
                if matches!(e, evcxr::Error::SubprocessTerminated(_)) {
                    notes = self.recover(&variables_before);
                }
                Err(evcxr_failure(&e))
            }
            Ok(out) => {
                if let Some(panic) = &report.panic {
                    let place = self.panic_place(code, &panic.file, panic.line);
                    Err(panic_failure(&panic.message, place.as_deref()))
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
            match ev.reattach(addr, handle) {
                Ok(_) => notes.push(
                    "`sess` and `graph` are back, attached to the same engine session.".into(),
                ),
                Err(e) => notes.push(format!("Could not attach to the session again: {e}")),
            }
            self.drain();
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

/// Which line (from 0) of the cell `generated` (a line of evcxr's crate) came from: the
/// same line, or one that evcxr wrapped (a final expression, say) inside it.
fn cell_line_of(code: &str, generated: &str) -> Option<usize> {
    let wanted = generated.trim();
    if wanted.is_empty() {
        return None;
    }
    let lines: Vec<&str> = code.lines().map(str::trim).collect();
    lines.iter().position(|l| *l == wanted).or_else(|| {
        // Short lines (`}`, `x`) would match anywhere.
        lines.iter().position(|l| l.len() > 8 && wanted.contains(l))
    })
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

fn panic_failure(message: &str, place: Option<&str>) -> Failure {
    let at = place.map(|p| format!(" at {p}")).unwrap_or_default();
    Failure::new(
        FailureKind::Panic,
        "Panic",
        message,
        vec![format!("\x1b[31mpanicked\x1b[0m{at}: {message}")],
    )
}

/// A `?` returned early: its error, as evcxr printed it on stderr (the last paragraph).
fn question_mark_failure(stderr_tail: &[String]) -> Failure {
    let lines: Vec<&str> = stderr_tail
        .iter()
        .map(|l| l.trim_end())
        .rev()
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect();
    let message = if lines.is_empty() {
        "an error (see above)".to_string()
    } else {
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    };
    Failure::new(
        FailureKind::Error,
        "Error",
        &message,
        vec![
            format!("\x1b[31merror\x1b[0m: {message}"),
            "(a `?` returned it; what the cell defined is not kept)".into(),
        ],
    )
}

/// What evcxr reported, ready to show.
pub fn evcxr_failure(error: &evcxr::Error) -> Failure {
    match error {
        evcxr::Error::CompilationErrors(errors) => {
            let traceback = errors.iter().flat_map(compilation_error_lines).collect();
            let message = errors
                .iter()
                .map(|e| e.message())
                .collect::<Vec<_>>()
                .join("\n");
            Failure::new(
                FailureKind::Compile,
                "CompilationError",
                &message,
                traceback,
            )
        }
        evcxr::Error::SubprocessTerminated(message) => Failure::new(
            FailureKind::Restarted,
            "ChildRestarted",
            message.trim(),
            vec![format!(
                "\x1b[31mthe cell's process ended\x1b[0m: {}",
                message.trim()
            )],
        ),
        other => {
            let text = other.to_string();
            let lines = text.lines().map(str::to_string).collect();
            Failure::new(FailureKind::Evcxr, "Error", text.trim(), lines)
        }
    }
}

/// A compile error as rustc draws it: the message, each span's source line with carets and
/// its label, and help with its suggestion indented under it.
fn compilation_error_lines(error: &evcxr::CompilationError) -> Vec<String> {
    let mut lines = Vec::new();
    let code = error.code().map(|c| format!("[{c}]")).unwrap_or_default();
    lines.push(format!(
        "\x1b[31m{}{}\x1b[0m: {}",
        error.level(),
        code,
        error.message()
    ));
    for spanned in error.spanned_messages() {
        lines.extend(spanned.lines.iter().cloned());
        if let Some(span) = &spanned.span {
            let pad = " ".repeat(span.start_column.saturating_sub(1));
            let carets = "^".repeat(span.end_column.saturating_sub(span.start_column).max(1));
            lines.push(format!("{pad}\x1b[31m{carets}\x1b[0m {}", spanned.label));
        } else if !spanned.label.is_empty() {
            lines.push(spanned.label.clone());
        }
    }
    for help in error.help() {
        // evcxr puts a suggested replacement after a blank line.
        let (what, suggestion) = help.split_once("\n\n").unwrap_or((help.as_str(), ""));
        lines.push(format!("\x1b[36mhelp\x1b[0m: {}", what.trim()));
        lines.extend(
            suggestion
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| format!("    {l}")),
        );
    }
    lines
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

    #[test]
    fn question_marks_name_the_error() {
        let tail: Vec<String> = [
            "earlier output",
            "",
            "data set 'x': not found",
            "  at the end",
            "",
        ]
        .map(String::from)
        .to_vec();
        let f = question_mark_failure(&tail);
        assert_eq!(f.kind, FailureKind::Error);
        assert_eq!(f.message, "data set 'x': not found\n  at the end");
    }

    #[test]
    fn generated_lines_map_to_the_cell() {
        let code = "let a = 1;\nif a == 1 { panic!(\"boom\"); }\n}";
        assert_eq!(
            cell_line_of(code, "    if a == 1 { panic!(\"boom\"); }"),
            Some(1)
        );
        assert_eq!(
            cell_line_of(code, "sluice_cell::__result(&(let a = 1;"),
            Some(0)
        );
        assert_eq!(cell_line_of(code, "}"), Some(2));
        assert_eq!(cell_line_of(code, "other();"), None);
    }

    #[test]
    fn panics_say_where() {
        let f = panic_failure("boom", Some("line 2 of the cell"));
        assert!(
            f.traceback[0].contains("at line 2 of the cell: boom"),
            "{:?}",
            f.traceback
        );
    }
}
