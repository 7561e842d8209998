//! `sluice FILE.rs`: a script runs without a prompt. Code between `:` command lines runs as
//! one cell; the first failure stops it.

use crate::editor::entry_state;
use crate::front::{Flow, Front};
use sluice_frontend::is_complete::Completeness;

/// One piece of a script.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Code(String),
    Command(String),
}

/// Splits a script into cells and commands. A `:` line inside open brackets is code.
pub fn pieces(text: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut code = String::new();
    for line in text.lines() {
        let at_top = matches!(entry_state(&code), Completeness::Complete);
        if at_top && line.trim_start().starts_with(':') {
            if !code.trim().is_empty() {
                pieces.push(Piece::Code(std::mem::take(&mut code)));
            }
            code.clear();
            pieces.push(Piece::Command(line.trim().to_string()));
        } else {
            code.push_str(line);
            code.push('\n');
        }
    }
    if !code.trim().is_empty() {
        pieces.push(Piece::Code(code));
    }
    pieces
}

/// Runs the script's pieces in order; false at the first that fails.
pub fn run(front: &mut Front, text: &str) -> bool {
    for piece in pieces(text) {
        let entry = match &piece {
            Piece::Code(code) => code,
            Piece::Command(line) => line,
        };
        match front.run_entry(entry) {
            Flow::Quit => return true,
            Flow::Continue { ok: false } => return false,
            Flow::Continue { ok: true } => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_command_lines() {
        let text = "let a = 1;\nlet b = {\n:not_a_command\n};\n:graph\nlet c = 2;\n";
        assert_eq!(
            pieces(text),
            vec![
                Piece::Code("let a = 1;\nlet b = {\n:not_a_command\n};\n".into()),
                Piece::Command(":graph".into()),
                Piece::Code("let c = 2;\n".into()),
            ]
        );
    }
}
