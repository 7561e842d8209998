//! Pictures from plain data for Sluice's frontends: loss curves (SVG for notebooks, PNG
//! for files, braille text for terminals), graph drawings (SVG or PNG with a layered
//! layout, nodes coloured by device, name scopes as collapsible boxes; a text outline) and
//! step timelines (kernels per device over time, transfers as arrows; SVG or text).
//!
//! The inputs are this crate's own small types, [`Series`], [`GraphView`] and
//! [`TimelineView`]; the frontends convert the engine's data to them, so nothing here
//! depends on the engine.
//!
//! ```
//! use sluice_visualizer::{render_curve_svg, CurveOptions, Series};
//! let train = Series::from_pairs("train", (0..100).map(|i| (i as f64, 1.0 / (1.0 + i as f64))));
//! let svg = render_curve_svg(&[train], &CurveOptions::default()).unwrap();
//! assert!(svg.starts_with("<svg"));
//! ```

pub mod curve;
pub mod error;
pub mod graph_png;
pub mod graph_svg;
pub mod graph_view;
pub mod layout;
pub mod outline;
pub mod scopes;
pub mod series;
pub mod text_chart;
pub mod timeline;

mod font;
mod hierarchy;
mod label_wrap;
mod layered;
mod log_axis;
mod number_format;
mod palette;
mod png_out;
mod svg_text;

pub use curve::{render_curve_png, render_curve_svg, save_curve, CurveOptions};
pub use error::{Result, VisualizerError};
pub use graph_png::{render_graph_png, render_layout_png};
pub use graph_svg::{render_graph_svg, render_layout_svg};
pub use graph_view::{EdgeView, GraphView, NodeView};
pub use layout::{
    layout_graph, BoxKind, EdgePath, GraphDrawOptions, GraphLayout, NodeBox, Rect, ScopeBox,
};
pub use outline::render_outline;
pub use scopes::{CollapseOptions, TRAINING_SCOPES};
pub use series::{Point, Series};
pub use text_chart::{render_text_chart, TextChartOptions, TextChartStyle};
pub use timeline::{
    render_timeline_svg, render_timeline_text, ArrowView, LaneView, SpanView, TimelineOptions,
    TimelineView,
};
