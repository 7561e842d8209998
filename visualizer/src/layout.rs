//! Graph layout: what a drawing holds (boxes, scope frames, edge paths) and how big its
//! labels make each box; the nesting of scopes is done in `hierarchy`.

use crate::error::{Result, VisualizerError};
use crate::font::TextMeasure;
use crate::graph_view::GraphView;
use crate::hierarchy::{lay_out, open_containers, visible_edges, BoxLabels, Spacing};
use crate::label_wrap::wrap_label;
use crate::scopes::{CollapseOptions, Item, ScopeTree};
use std::collections::HashSet;

/// How a graph drawing looks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GraphDrawOptions {
    /// Which name scopes are collapsed into one node.
    pub collapse: CollapseOptions,
    /// Label data edges with the shape of the tensor they carry.
    pub edge_labels: bool,
    /// A heading above the drawing.
    pub title: Option<String>,
}

/// An axis-aligned rectangle; y grows downwards as in SVG.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl Rect {
    pub fn right(&self) -> f64 {
        self.x + self.width
    }

    pub fn bottom(&self) -> f64 {
        self.y + self.height
    }

    pub fn center(&self) -> (f64, f64) {
        (self.x + self.width / 2.0, self.y + self.height / 2.0)
    }

    /// Whether the two share some area (touching edges do not count).
    pub fn intersects(&self, other: &Rect) -> bool {
        self.x < other.right()
            && other.x < self.right()
            && self.y < other.bottom()
            && other.y < self.bottom()
    }

    /// Whether `other` lies entirely inside this one.
    pub fn contains(&self, other: &Rect) -> bool {
        other.x >= self.x
            && other.y >= self.y
            && other.right() <= self.right()
            && other.bottom() <= self.bottom()
    }
}

/// What a node box stands for.
#[derive(Debug, Clone, PartialEq)]
pub enum BoxKind {
    /// One node: its index in `GraphView::nodes`.
    Node(usize),
    /// A collapsed name scope and the indices of all nodes inside it.
    CollapsedScope { path: String, members: Vec<usize> },
}

/// A box drawn for a node or a collapsed scope, with its two labels: a bold heading (the
/// op, or the scope's name) and a detail (the node's name, or the scope's size; may be
/// empty). Labels are never cut: a box is as wide as its longest line, and text wider than
/// a generous limit wraps onto further lines in a taller box.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeBox {
    pub kind: BoxKind,
    pub rect: Rect,
    /// The whole heading, as in the tooltip.
    pub heading: String,
    /// The whole detail, as in the tooltip.
    pub detail: String,
    /// The heading as drawn, one entry a line.
    pub heading_lines: Vec<String>,
    /// The detail as drawn, one entry a line; empty when there is no detail.
    pub detail_lines: Vec<String>,
}

/// One drawn line of a node's label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LabelLine<'a> {
    pub text: &'a str,
    /// Part of the bold heading rather than the detail.
    pub heading: bool,
    /// The text's baseline, below the box's top.
    pub baseline: f64,
}

impl NodeBox {
    /// Heading lines then detail lines, as a block centred in the box, `LINE_STEP` apart.
    pub(crate) fn label_lines(&self) -> Vec<LabelLine<'_>> {
        let count = self.heading_lines.len() + self.detail_lines.len();
        // A 12 px line looks centred on y when its baseline is at y + 4.
        let first = self.rect.height / 2.0 + 4.0 - LINE_STEP * (count as f64 - 1.0) / 2.0;
        let heading = self.heading_lines.iter().map(|text| (text, true));
        let detail = self.detail_lines.iter().map(|text| (text, false));
        heading
            .chain(detail)
            .enumerate()
            .map(|(i, (text, heading))| LabelLine {
                text,
                heading,
                baseline: first + LINE_STEP * i as f64,
            })
            .collect()
    }
}

/// The frame around an open name scope.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeBox {
    pub path: String,
    pub label: String,
    pub depth: usize,
    pub node_count: usize,
    pub rect: Rect,
}

/// A drawn edge between two boxes (indices into `GraphLayout::boxes`). Edges between the
/// same two boxes are merged; `count` says how many.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgePath {
    pub from: usize,
    pub to: usize,
    pub points: Vec<(f64, f64)>,
    /// Every merged edge is a control dependency.
    pub control: bool,
    pub count: usize,
    /// Shape label, when asked for and the edge carries data.
    pub label: Option<String>,
    /// Touches a collapsed gradient or optimizer scope: drawn faint, so that the model's
    /// own dataflow stands out from the many edges into training machinery.
    pub auxiliary: bool,
}

/// A laid-out graph, in pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphLayout {
    pub width: f64,
    pub height: f64,
    pub boxes: Vec<NodeBox>,
    pub scopes: Vec<ScopeBox>,
    pub edges: Vec<EdgePath>,
}

pub(crate) const FONT_PX: f32 = 12.0;
/// Bold text runs about this much wider than regular.
const BOLD_FACTOR: f32 = 1.1;
/// Height of a box with one or two label lines.
pub(crate) const NODE_HEIGHT: f64 = 36.0;
/// Distance between the baselines of label lines; each line past the second makes the box
/// this much taller.
pub(crate) const LINE_STEP: f64 = 14.0;
const NODE_PAD_X: f64 = 10.0;
const MIN_NODE_WIDTH: f64 = 56.0;
/// Widest label line before text wraps: generous, so that op names such as
/// `SparseSoftmaxCrossEntropyWithLogits` stay on one line.
const MAX_LINE_WIDTH: f32 = 300.0;
/// Lines per label at most; past them the label ends in `…` (the tooltip has it whole).
const MAX_LABEL_LINES: usize = 8;
pub(crate) const SCOPE_PAD: f64 = 12.0;
pub(crate) const SCOPE_TITLE: f64 = 22.0;
const NODE_GAP: f64 = 20.0;
const LAYER_GAP: f64 = 36.0;
const LABELLED_LAYER_GAP: f64 = 52.0;
const MARGIN: f64 = 16.0;

/// Lays out `graph` as it would be drawn with `options`.
pub fn layout_graph(graph: &GraphView, options: &GraphDrawOptions) -> Result<GraphLayout> {
    let index = graph.index_by_id()?;
    let measure = TextMeasure::new()?;
    let tree = ScopeTree::build(graph, &options.collapse);
    let containers = open_containers(&tree);
    let visible = visible_edges(graph, &tree, &containers, &index, options.edge_labels);

    let mut labels = BoxLabels::new();
    for &container in &containers {
        for child in tree.children(container) {
            if !matches!(child, Item::Open(_)) {
                labels.insert(child, box_text(graph, &tree, &measure, child));
            }
        }
    }
    let title_width = |scope: usize| {
        f64::from(measure.width(&format!("{}/", tree.scopes[scope].name), FONT_PX) * BOLD_FACTOR)
            + 8.0
    };
    let spacing = Spacing {
        node_gap: NODE_GAP,
        layer_gap: if options.edge_labels {
            LABELLED_LAYER_GAP
        } else {
            LAYER_GAP
        },
        scope_pad: SCOPE_PAD,
        scope_title: SCOPE_TITLE,
        margin: MARGIN,
    };
    let mut layout = lay_out(&tree, &containers, &visible, labels, title_width, &spacing);
    let is_training = |b: usize| match &layout.boxes[b].kind {
        BoxKind::CollapsedScope { path, .. } => {
            let top_level = path.split('/').next().unwrap_or("");
            options.collapse.is_collapsed_by_default(top_level)
        }
        BoxKind::Node(_) => false,
    };
    let auxiliary: Vec<bool> = layout
        .edges
        .iter()
        .map(|e| is_training(e.from) || is_training(e.to))
        .collect();
    // A source's shape is the same on all its out-edges: label only the first of them.
    let mut labelled_sources = HashSet::new();
    for (edge, auxiliary) in layout.edges.iter_mut().zip(auxiliary) {
        edge.auxiliary = auxiliary;
        if edge.label.is_some() && !labelled_sources.insert(edge.from) {
            edge.label = None;
        }
    }
    Ok(layout)
}

/// Checks that every box of `layout` names a node of `graph`, so that drawing a layout
/// with the wrong graph is an error rather than a panic.
pub(crate) fn check_layout_matches(graph: &GraphView, layout: &GraphLayout) -> Result<()> {
    let count = graph.nodes.len();
    let fits = layout.boxes.iter().all(|b| match &b.kind {
        BoxKind::Node(n) => *n < count,
        BoxKind::CollapsedScope { members, .. } => members.iter().all(|m| *m < count),
    });
    if fits {
        Ok(())
    } else {
        Err(VisualizerError::InvalidOption(
            "the layout was made for another graph".into(),
        ))
    }
}

/// What a node or collapsed-scope box says, as wrapped lines, and the size they need.
pub(crate) struct BoxText {
    pub heading: String,
    pub detail: String,
    pub heading_lines: Vec<String>,
    pub detail_lines: Vec<String>,
    pub size: (f64, f64),
}

/// The heading and detail of a node or collapsed scope, wrapped, and the box they need.
fn box_text(graph: &GraphView, tree: &ScopeTree, measure: &TextMeasure, item: Item) -> BoxText {
    let (heading, detail) = match item {
        Item::Node(n) => {
            let node = &graph.nodes[n];
            let name = node.short_name();
            let detail = if name == node.op { "" } else { name };
            (node.op.clone(), detail.to_string())
        }
        Item::Collapsed(s) | Item::Open(s) => {
            let scope = &tree.scopes[s];
            let count = scope.all_nodes.len();
            let noun = if count == 1 { "node" } else { "nodes" };
            (format!("{}/", scope.name), format!("{count} {noun}"))
        }
    };
    let bold = |text: &str| measure.width(text, FONT_PX) * BOLD_FACTOR;
    let regular = |text: &str| measure.width(text, FONT_PX);
    let heading_lines = wrap_label(&heading, &bold, MAX_LINE_WIDTH, MAX_LABEL_LINES);
    let detail_lines = if detail.is_empty() {
        Vec::new()
    } else {
        wrap_label(&detail, &regular, MAX_LINE_WIDTH, MAX_LABEL_LINES)
    };
    let text_width = heading_lines
        .iter()
        .map(|line| bold(line))
        .chain(detail_lines.iter().map(|line| regular(line)))
        .fold(0.0, f32::max);
    let width = (f64::from(text_width) + 2.0 * NODE_PAD_X).max(MIN_NODE_WIDTH);
    let lines = heading_lines.len() + detail_lines.len();
    let height = NODE_HEIGHT + LINE_STEP * lines.saturating_sub(2) as f64;
    BoxText {
        heading,
        detail,
        heading_lines,
        detail_lines,
        size: (width.ceil(), height),
    }
}
