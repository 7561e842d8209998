//! The directive lines a cell's process prints for the kernel: `SLUICE_KERNEL <verb> ...`.

/// Every directive line starts with this.
pub const DIRECTIVE_PREFIX: &str = "SLUICE_KERNEL ";
/// `session ADDR HANDLE`: a session the cells use (cancelled on interrupt).
pub const SESSION: &str = "session";
/// `show_graph ADDR HANDLE`: draw that session's graph.
pub const SHOW_GRAPH: &str = "show_graph";
/// `panic MESSAGE` (escaped with `escape_default`): the cell panicked.
pub const PANIC: &str = "panic";
