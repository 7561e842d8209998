//! How the REPL tells the user that something failed: one clear message on stderr, coloured
//! on a terminal; evcxr's compile errors with their source spans.

use console::style;
use sluice_frontend::cell::{Failure, FailureKind};

/// An error line: `error: message`.
pub fn error(message: &str) {
    eprintln!("{} {message}", style("error:").red().bold());
}

/// A note line: `note: message`.
pub fn note(message: &str) {
    eprintln!("{} {message}", style("note:").yellow().bold());
}

/// A failed cell: compile errors with their spans, a panic and where, a `?`'s error.
pub fn failure(failure: &Failure) {
    if failure.kind == FailureKind::Error {
        error(&failure.message);
        note("the cell stopped at a `?` (the error is above); what it defined is not kept");
        return;
    }
    let plain = !console::colors_enabled_stderr();
    for line in &failure.traceback {
        if plain {
            eprintln!("{}", console::strip_ansi_codes(line));
        } else {
            eprintln!("{line}");
        }
    }
}
