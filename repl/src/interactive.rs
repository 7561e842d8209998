//! The prompt: read an entry, run it, keep it in the history file; Ctrl-C clears the line,
//! Ctrl-D leaves.

use crate::editor::{editor, history_path};
use crate::error::Result;
use crate::front::{Flow, Front};
use rustyline::error::ReadlineError;

pub const PROMPT: &str = "sluice> ";

/// Runs the prompt until `:quit` or Ctrl-D.
pub fn run(front: &mut Front) -> Result<()> {
    let mut editor = editor(front.cells())?;
    let history = history_path();
    if let Some(dir) = history.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    loop {
        match editor.readline(PROMPT) {
            Ok(entry) => {
                if !entry.trim().is_empty() {
                    let _ = editor.add_history_entry(entry.as_str());
                    // Appended at once, so that a REPL that dies keeps what was typed.
                    if let Err(e) = editor.append_history(&history) {
                        crate::report::error(&format!(
                            "cannot write the history {}: {e}",
                            history.display()
                        ));
                    }
                }
                if front.run_entry(&entry) == Flow::Quit {
                    return Ok(());
                }
            }
            // Ctrl-C at the prompt: the line is dropped, a new prompt comes.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}
