//! The prompt's line editor: rustyline with the history file, completion through evcxr, and
//! entries that continue while brackets, strings or comments are open.

use crate::terminal_sink::TerminalCommand;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper};
use sluice_frontend::cell::Cells;
use sluice_frontend::is_complete::{check, Completeness};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

/// Environment variable naming the history file.
pub const HISTORY_ENV: &str = "SLUICE_HISTORY";

/// The history file: `SLUICE_HISTORY`, else `~/.sluice_history`.
pub fn history_path() -> PathBuf {
    if let Some(path) = std::env::var_os(HISTORY_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".sluice_history")
}

pub struct ReplHelper {
    cells: Rc<RefCell<Cells<TerminalCommand>>>,
}

impl Helper for ReplHelper {}
impl Highlighter for ReplHelper {}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        if line.trim_start().starts_with(':') {
            return Ok((pos, Vec::new()));
        }
        let Ok(mut cells) = self.cells.try_borrow_mut() else {
            return Ok((pos, Vec::new()));
        };
        let completed = cells
            .evaluator()
            .and_then(|ev| ev.complete(line, pos).map_err(|e| e.to_string()));
        match completed {
            Ok(completion) => {
                let pairs = completion
                    .matches
                    .into_iter()
                    .map(|m| Pair {
                        display: m.text.clone(),
                        replacement: m.text,
                    })
                    .collect();
                Ok((completion.start.min(pos), pairs))
            }
            Err(_) => Ok((pos, Vec::new())),
        }
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(match entry_state(ctx.input()) {
            Completeness::Incomplete(_) => ValidationResult::Incomplete,
            // A stray closer goes to the compiler, which says where.
            Completeness::Complete | Completeness::Invalid => ValidationResult::Valid(None),
        })
    }
}

/// Whether an entry is ready to run: a `:` command always is; code when its brackets,
/// strings and comments are closed.
pub fn entry_state(input: &str) -> Completeness {
    if input.trim_start().starts_with(':') && !input.contains('\n') {
        return Completeness::Complete;
    }
    check(input)
}

/// A line editor with the REPL's helper and the history file loaded (a missing file is a
/// new history).
pub fn editor(
    cells: Rc<RefCell<Cells<TerminalCommand>>>,
) -> rustyline::Result<Editor<ReplHelper, FileHistory>> {
    let config = rustyline::Config::builder()
        .max_history_size(10_000)?
        .auto_add_history(false)
        .build();
    let mut editor = Editor::with_config(config)?;
    editor.set_helper(Some(ReplHelper { cells }));
    let path = history_path();
    if path.exists() {
        if let Err(e) = editor.load_history(&path) {
            crate::report::error(&format!("cannot read the history {}: {e}", path.display()));
        }
    }
    Ok(editor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_wait_for_closed_brackets() {
        assert_eq!(entry_state("let a = 1;"), Completeness::Complete);
        assert!(matches!(
            entry_state("for i in 0..3 {"),
            Completeness::Incomplete(_)
        ));
        assert_eq!(entry_state(":graph"), Completeness::Complete);
        assert_eq!(entry_state("let a = 1);"), Completeness::Invalid);
    }
}
