//! What Sluice's notebook and REPL cells link besides Sluice itself, compiled once and shared
//! by every cell: rich output ([`display_html`], [`display_svg`], [`display_png`],
//! [`display_markdown`], [`display_image`], tensors and graph summaries as tables), live charts ([`plot`]),
//! questions to the person ([`input`]), graph drawings ([`ShowGraph::show_graph`]), TensorBoard
//! runs ([`logdir`]), step timelines ([`trace`]), and panics
//! reported to the frontend. The cell's process talks to its frontend by printing directive
//! lines on stdout (see [`protocol`]), which the frontend takes out of the stream.

mod chart;
mod display;
mod input;
mod logdir;
mod panic;
pub mod protocol;
mod session;
mod tables;
mod trace;

pub use chart::{plot, plot_training};
pub use display::{
    display, display_html, display_image, display_markdown, display_png, display_svg, image_png,
    Html, Markdown, Png, SluiceDisplay, Svg,
};
pub use input::{input, password};
pub use logdir::logdir;
pub use panic::install_panic_hook;
pub use session::{
    announce_cluster_session, announce_session, use_default_device, DeviceChoiceError, ShowGraph,
    DEVICE_ENV,
};
pub use tables::{summary_html, tensor_html};
pub use trace::trace;

/// What cells get with `use sluice_cell::prelude::*` (the frontends' prelude does it).
pub mod prelude {
    pub use crate::{
        display_html, display_image, display_markdown, display_png, display_svg, input, password,
        plot, ShowGraph, SluiceDisplay,
    };
}

/// Marks the cell's final value: what the cell prints from here on is its result, not an
/// output of its own. The frontend wraps a cell's final expression `e` as
/// `sluice_cell::__result(&(e))` (a reference, so a variable shown at the end of a cell is not
/// moved); evcxr then displays the value as it would have displayed `e`.
#[doc(hidden)]
pub fn __result<T: ?Sized>(value: &T) -> &T {
    println!("{}", protocol::result_mark_line());
    value
}

/// Tells the relay in the cell's process that the frontend reads rich output as outputs of
/// their own from now on (its prelude calls this).
#[doc(hidden)]
pub fn __start_relay() {
    println!("{}", protocol::relay_line());
}

/// Prints one directive line (`verb` and its words, encoded) in one write, so that lines
/// other threads print do not cut into it.
pub(crate) fn directive(verb: &str, words: &[&str]) {
    use std::io::Write;
    let mut line = format!("{}{verb}", protocol::prefix());
    for word in words {
        line.push(' ');
        line.push_str(&protocol::encode_word(word));
    }
    line.push('\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}
