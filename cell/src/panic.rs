//! Panics reported to the frontend, which shows them as the cell's error.

use crate::directive;
use crate::protocol::PANIC;

/// Installs the hook that tells the frontend where a cell's code panicked and why. Cells run
/// on the thread that installs it (the prelude is a cell); a panic on another thread goes to
/// the hook that was there before, which prints it on stderr. Installed once per process.
pub fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(install);
}

fn install() {
    let previous = std::panic::take_hook();
    let cells = std::thread::current().id();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != cells {
            return previous(info);
        }
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        let (file, line) = info
            .location()
            .map(|l| (l.file().to_string(), l.line().to_string()))
            .unwrap_or_else(|| (String::new(), "0".into()));
        directive(PANIC, &[&file, &line, &message]);
    }));
}
