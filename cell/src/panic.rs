//! Panics reported to the frontend, which shows them as the cell's error.

use crate::directive;
use crate::protocol::PANIC;

/// Installs the hook that tells the frontend a cell panicked, with the message and where.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
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
