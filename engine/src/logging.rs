//! Where a program's diagnostics go. The library itself prints nothing: it emits `tracing`
//! events (warnings for degraded behaviour, info and debug for changes of state) under targets
//! named after its modules (`sluice::distributed::bulk`, ...). A program decides whether and
//! where they appear; [`init`] is the choice the programs of this project make (the
//! `sluice-engine` binary, the examples, and the frontends): text on standard error, filtered
//! by `RUST_LOG`.
//!
//! ```no_run
//! // In `main`, before anything else: warnings and errors unless RUST_LOG says otherwise.
//! sluice::logging::init("warn");
//! ```
//!
//! `RUST_LOG` takes `tracing-subscriber`'s filter directives: `RUST_LOG=debug`,
//! `RUST_LOG=sluice=debug`, `RUST_LOG=warn,sluice::distributed=info`.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The variable whose filter directives override the program's default.
pub const LOG_ENV: &str = EnvFilter::DEFAULT_ENV;

/// Installs the process-wide subscriber: events as lines of text on standard error (coloured
/// only on a terminal), filtered by `RUST_LOG` or, where that is unset or empty, by
/// `default_directive` (`"warn"`, `"info"`, `"sluice=debug"`, ...).
///
/// Idempotent: when a subscriber is already installed (by an earlier call, or by the program
/// itself), it changes nothing. An invalid `RUST_LOG` does not stop the program: the default
/// applies and a warning says what was wrong.
pub fn init(default_directive: &str) {
    // The default is the program's own text: directives it gets wrong are dropped, not fatal.
    let default = || EnvFilter::builder().parse_lossy(default_directive);
    let from_env = std::env::var(LOG_ENV)
        .ok()
        .filter(|directives| !directives.trim().is_empty());
    let (filter, rejected) = match from_env {
        Some(directives) => match EnvFilter::builder().parse(&directives) {
            Ok(filter) => (filter, None),
            Err(e) => (default(), Some((directives, e))),
        },
        None => (default(), None),
    };
    let installed = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .try_init()
        .is_ok();
    if let (true, Some((directives, e))) = (installed, rejected) {
        tracing::warn!("ignoring {LOG_ENV}={directives:?} ({e}); logging at {default_directive:?}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_init_changes_nothing_and_does_not_panic() {
        super::init("warn");
        super::init("debug");
        if std::env::var_os(super::LOG_ENV).is_none() {
            // Still the first filter: warnings pass, debug events do not.
            assert!(tracing::enabled!(tracing::Level::WARN));
            assert!(!tracing::enabled!(tracing::Level::DEBUG));
        }
    }
}
