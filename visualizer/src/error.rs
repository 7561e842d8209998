//! The one error type of the crate.

use thiserror::Error;

/// Everything that can go wrong when drawing. Caller input is checked and reported here;
/// the library never panics on it.
#[derive(Debug, Error)]
pub enum VisualizerError {
    /// The requested picture is too small (or too large) to hold a chart.
    #[error("invalid size {width}x{height}: {reason}")]
    InvalidSize {
        width: u32,
        height: u32,
        reason: &'static str,
    },
    /// No series has a single finite point to draw (or, on a log scale, a positive one).
    #[error("nothing to draw: {0}")]
    NoData(String),
    /// An option is out of its range, e.g. a smoothing weight outside [0, 1).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Two nodes of a graph view share an id.
    #[error("duplicate node id {0}")]
    DuplicateNodeId(usize),
    /// An edge names a node id that the graph view does not hold.
    #[error("edge {from} -> {to} names an unknown node id")]
    UnknownEdgeEndpoint { from: usize, to: usize },
    /// A span or arrow of a timeline view is malformed: which one (with its label) and why.
    #[error("invalid timeline {item}: {reason}")]
    InvalidTimeline { item: String, reason: String },
    /// The embedded font could not be loaded.
    #[error("font error: {0}")]
    Font(String),
    /// plotters failed while drawing.
    #[error("drawing failed: {0}")]
    Drawing(String),
    /// The PNG encoder failed.
    #[error("PNG encoding failed: {0}")]
    PngEncoding(#[from] png::EncodingError),
    /// Writing a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = VisualizerError> = std::result::Result<T, E>;
