//! How the REPL tells the user that something failed: one clear message on stderr, coloured
//! on a terminal; evcxr's compile errors with their source spans.

use console::style;

/// An error line: `error: message`.
pub fn error(message: &str) {
    eprintln!("{} {message}", style("error:").red().bold());
}

/// A note line: `note: message`.
pub fn note(message: &str) {
    eprintln!("{} {message}", style("note:").yellow().bold());
}

/// What evcxr reported: compile errors with their spans (as the kernel draws them),
/// anything else as one message.
pub fn evcxr_error(e: &evcxr::Error) {
    let output = sluice_kernel::outputs::evcxr_error(e);
    match e {
        evcxr::Error::CompilationErrors(_) => {
            let plain = !console::colors_enabled_stderr();
            for line in &output.traceback {
                if plain {
                    eprintln!("{}", console::strip_ansi_codes(line));
                } else {
                    eprintln!("{line}");
                }
            }
        }
        evcxr::Error::SubprocessTerminated(message) => {
            error(&format!("the cell's process ended: {}", message.trim()));
        }
        other => error(other.to_string().trim()),
    }
}
