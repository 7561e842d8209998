//! A failed cell, ready to show: compile errors with their spans, a panic at a line of the
//! cell, a `?`'s error, an interrupt, a restarted process; and how a frontend tells them
//! apart.

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
    pub(crate) fn new(
        kind: FailureKind,
        name: &str,
        message: &str,
        traceback: Vec<String>,
    ) -> Failure {
        Failure {
            kind,
            name: name.to_string(),
            message: message.to_string(),
            traceback,
        }
    }
}

/// Which line (from 0) of the cell `generated` (a line of evcxr's crate) came from: the
/// same line, or one that evcxr wrapped (a final expression, say) inside it.
pub(crate) fn cell_line_of(code: &str, generated: &str) -> Option<usize> {
    let wanted = generated.trim();
    if wanted.is_empty() {
        return None;
    }
    let lines: Vec<&str> = code.lines().map(str::trim).collect();
    // Short text (`}`, `x`) would match anywhere.
    let long = |text: &str| text.len() > 8;
    lines
        .iter()
        .position(|l| *l == wanted)
        .or_else(|| lines.iter().position(|l| long(l) && wanted.contains(l)))
        .or_else(|| (long(wanted)).then(|| lines.iter().position(|l| l.contains(wanted)))?)
}

pub(crate) fn panic_failure(message: &str, place: Option<&str>) -> Failure {
    let at = place.map(|p| format!(" at {p}")).unwrap_or_default();
    Failure::new(
        FailureKind::Panic,
        "Panic",
        message,
        vec![format!("\x1b[31mpanicked\x1b[0m{at}: {message}")],
    )
}

/// A `?` returned early: its error, as evcxr printed it on stderr (the last paragraph).
pub(crate) fn question_mark_failure(stderr_tail: &[String]) -> Failure {
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
        // A final expression sits on a line of its own in evcxr's crate.
        assert_eq!(cell_line_of("let b = 0;\nlet r = 1; r / b", "r / b"), None);
        assert_eq!(
            cell_line_of("let b = 0;\nlet r = 1; 10 / b.max(0)", "10 / b.max(0)"),
            Some(1)
        );
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
