//! evcxr runs two kinds of helper process as the frontend's own binary: the process that
//! runs the cells, and a wrapper around rustc. [`take_child_roles`] is the first thing a
//! frontend's `main` calls: in either role it never returns.

/// In evcxr's cell process: relays stdout (see [`crate::relay`]) and runs evcxr's runtime.
/// As the rustc wrapper: adds the standard library's metadata (see
/// [`crate::shared_linking`]) and wraps rustc. Otherwise returns at once.
pub fn take_child_roles() {
    crate::shared_linking::patch_rustc_wrapper();
    if std::env::var_os("EVCXR_IS_RUNTIME").is_some() && !crate::relay::install() {
        // Blocks printed mid-cell then merge into the result, as in plain evcxr.
        eprintln!("sluice: rich output is shown with the cell's result only (no stdout relay)");
    }
    evcxr::runtime_hook();
}
