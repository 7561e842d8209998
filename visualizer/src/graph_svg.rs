//! Graph drawings as SVG: scope boxes, edges, device-coloured nodes with tooltips, legend.

use crate::error::Result;
use crate::font::{TextMeasure, SVG_FONT_FAMILY};
use crate::graph_view::GraphView;
use crate::layout::{
    check_layout_matches, layout_graph, BoxKind, EdgePath, GraphDrawOptions, GraphLayout,
    LabelLine, NodeBox, ScopeBox, FONT_PX,
};
use crate::palette::{hex, DeviceColors, MIXED};
use crate::svg_text::{escape, num};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Height of the title line, when there is a title.
pub(crate) const TITLE_HEIGHT: f64 = 30.0;
pub(crate) const LEGEND_GAP: f64 = 24.0;
pub(crate) const LEGEND_ROW: f64 = 20.0;
pub(crate) const SWATCH: f64 = 14.0;

/// Lays out and draws `graph` as an SVG document.
pub fn render_graph_svg(graph: &GraphView, options: &GraphDrawOptions) -> Result<String> {
    let layout = layout_graph(graph, options)?;
    render_layout_svg(graph, &layout, options)
}

/// Draws an already computed layout of `graph` as an SVG document.
pub fn render_layout_svg(
    graph: &GraphView,
    layout: &GraphLayout,
    options: &GraphDrawOptions,
) -> Result<String> {
    check_layout_matches(graph, layout)?;
    let colors = DeviceColors::new(graph);
    let frame = Frame::new(graph, layout, options, &colors)?;
    let mut svg = String::with_capacity(512 + 600 * layout.boxes.len());
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{font}" font-size="{size}">"#,
        w = num(frame.width),
        h = num(frame.height),
        font = SVG_FONT_FAMILY,
        size = FONT_PX,
    );
    let _ = write!(
        svg,
        "\n<title>{}</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n",
        escape(options.title.as_deref().unwrap_or("graph"))
    );
    if let Some(title) = &options.title {
        let _ = writeln!(
            svg,
            r#"<text class="graph-title" x="16" y="21" font-size="16" font-weight="bold">{}</text>"#,
            escape(title)
        );
    }
    let _ = writeln!(
        svg,
        r#"<g class="graph" transform="translate(0 {})">"#,
        num(frame.top)
    );
    svg.push_str("<g class=\"scopes\">\n");
    for scope in &layout.scopes {
        write_scope(&mut svg, scope);
    }
    svg.push_str("</g>\n<g class=\"edges\">\n");
    for edge in &layout.edges {
        write_edge(&mut svg, edge, layout);
    }
    svg.push_str("</g>\n<g class=\"nodes\">\n");
    for node in &layout.boxes {
        write_node(&mut svg, graph, node, &colors);
    }
    svg.push_str("</g>\n</g>\n");
    write_legend(&mut svg, &frame);
    svg.push_str("</svg>\n");
    Ok(svg)
}

/// Arrowheads are drawn as shapes of their own rather than as a shared `<marker>`: a
/// notebook puts many drawings in one page, and a marker id of a drawing that is hidden (a
/// collapsed output) takes the arrowheads of every other drawing with it.
const ARROW_LENGTH: f64 = 7.0;
const ARROW_HALF_WIDTH: f64 = 3.5;

/// The arrowhead at the end of `points`: a triangle pointing along the last segment.
pub(crate) fn arrowhead(points: &[(f64, f64)]) -> Option<String> {
    let [.., (x1, y1), (x2, y2)] = points else {
        return None;
    };
    let (dx, dy) = (x2 - x1, y2 - y1);
    let length = (dx * dx + dy * dy).sqrt();
    if length < f64::EPSILON {
        return None;
    }
    let (ux, uy) = (dx / length, dy / length);
    let (bx, by) = (x2 - ux * ARROW_LENGTH, y2 - uy * ARROW_LENGTH);
    let (px, py) = (-uy * ARROW_HALF_WIDTH, ux * ARROW_HALF_WIDTH);
    Some(format!(
        "{},{} {},{} {},{}",
        num(*x2),
        num(*y2),
        num(bx + px),
        num(by + py),
        num(bx - px),
        num(by - py)
    ))
}

/// Where the title, graph and legend go, computed once for SVG and PNG alike.
pub(crate) struct Frame {
    pub width: f64,
    pub height: f64,
    /// Offset of the graph below the title.
    pub top: f64,
    pub legend_x: f64,
    /// Empty when no node has a device: then no legend is drawn.
    pub legend: Vec<(String, crate::palette::DeviceColor)>,
}

impl Frame {
    pub(crate) fn new(
        graph: &GraphView,
        layout: &GraphLayout,
        options: &GraphDrawOptions,
        colors: &DeviceColors,
    ) -> Result<Frame> {
        let measure = TextMeasure::new()?;
        let any_mixed = layout
            .boxes
            .iter()
            .any(|b| colors.of_box(graph, &b.kind) == MIXED);
        let legend = colors.legend(any_mixed);
        // No legend, and no room kept for one, when there is nothing to tell apart.
        let (legend_width, legend_height) = if legend.is_empty() {
            (0.0, 0.0)
        } else {
            let legend_text = legend
                .iter()
                .map(|(label, _)| f64::from(measure.width(label, FONT_PX)))
                .fold(f64::from(measure.width("Devices", FONT_PX)) * 1.1, f64::max);
            (
                LEGEND_GAP + SWATCH + 8.0 + legend_text + 16.0,
                16.0 + LEGEND_ROW * (legend.len() as f64 + 1.0),
            )
        };
        let top = if options.title.is_some() {
            TITLE_HEIGHT
        } else {
            0.0
        };
        let title_width = options
            .title
            .as_deref()
            .map_or(0.0, |t| f64::from(measure.width(t, 16.0)) * 1.1 + 32.0);
        Ok(Frame {
            width: (layout.width + legend_width).max(title_width),
            height: top + layout.height.max(legend_height),
            top,
            legend_x: layout.width + LEGEND_GAP,
            legend,
        })
    }
}

fn write_scope(svg: &mut String, scope: &ScopeBox) {
    let r = scope.rect;
    let fill = if scope.depth % 2 == 1 {
        "#f3f5f8"
    } else {
        "#e6eaf0"
    };
    let _ = writeln!(
        svg,
        r##"<g class="scope" data-scope="{path}"><title>{path}/&#10;{count} nodes (expanded)</title><rect class="scope-box" x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="{fill}" stroke="#9aa5b1"/><text class="scope-label" x="{tx}" y="{ty}" font-weight="bold" fill="#3d4852">{label}/</text></g>"##,
        path = escape(&scope.path),
        count = scope.node_count,
        x = num(r.x),
        y = num(r.y),
        w = num(r.width),
        h = num(r.height),
        tx = num(r.x + 8.0),
        ty = num(r.y + 15.0),
        label = escape(&scope.label),
    );
}

fn write_edge(svg: &mut String, edge: &EdgePath, layout: &GraphLayout) {
    let mut d = String::new();
    for (i, &(x, y)) in edge.points.iter().enumerate() {
        let _ = write!(
            d,
            "{}{},{} ",
            if i == 0 { "M" } else { "L" },
            num(x),
            num(y)
        );
    }
    let (class, dash) = if edge.control {
        ("edge-control", r#" stroke-dasharray="5 4""#)
    } else {
        ("edge-data", "")
    };
    let width = if edge.count > 1 { 1.8 } else { 1.2 };
    let faint = if edge.auxiliary {
        r#" stroke-opacity="0.35""#
    } else {
        ""
    };
    let from = layout
        .boxes
        .get(edge.from)
        .map_or("", |b| b.heading.as_str());
    let to = layout.boxes.get(edge.to).map_or("", |b| b.heading.as_str());
    let _ = write!(
        svg,
        r##"<g class="edge"><title>{from} → {to}</title><path class="{class}" d="{d}" fill="none" stroke="#6b7280" stroke-width="{width}"{dash}{faint}/>"##,
        from = escape(from),
        to = escape(to),
        d = d.trim_end(),
    );
    if let Some(head) = arrowhead(&edge.points) {
        let faint = if edge.auxiliary {
            r#" fill-opacity="0.35""#
        } else {
            ""
        };
        let _ = write!(
            svg,
            r##"<polygon class="arrowhead" points="{head}" fill="#6b7280"{faint}/>"##
        );
    }
    if let (Some(label), Some((x, y))) = (&edge.label, label_anchor(edge)) {
        let _ = write!(
            svg,
            r##"<text class="edge-label" x="{}" y="{}" font-size="10" fill="#374151" stroke="#ffffff" stroke-width="3" paint-order="stroke">{}</text>"##,
            num(x + 4.0),
            num(y + 3.0),
            escape(label)
        );
    }
    svg.push_str("</g>\n");
}

/// Labels sit a little way along the edge's first segment, in the gap below the source,
/// where no box can be.
pub(crate) fn label_anchor(edge: &EdgePath) -> Option<(f64, f64)> {
    let (&(x0, y0), &(x1, y1)) = (edge.points.first()?, edge.points.get(1)?);
    let length = ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt();
    if length == 0.0 {
        return Some((x0, y0));
    }
    let along = (length / 2.0).min(22.0) / length;
    Some((x0 + (x1 - x0) * along, y0 + (y1 - y0) * along))
}

fn write_node(svg: &mut String, graph: &GraphView, node: &NodeBox, colors: &DeviceColors) {
    let color = colors.of_box(graph, &node.kind);
    let r = node.rect;
    let (class, device_attr, stroke_width) = match &node.kind {
        BoxKind::Node(n) => ("node", graph.nodes[*n].device.as_str(), 1.2),
        BoxKind::CollapsedScope { .. } => ("node collapsed-scope", "", 2.0),
    };
    let _ = write!(
        svg,
        r#"<g class="{class}" data-device="{device}"><title>{tooltip}</title>"#,
        device = escape(device_attr),
        tooltip = escape(&tooltip(graph, node)),
    );
    if let BoxKind::CollapsedScope { path, .. } = &node.kind {
        // A second frame peeking out behind says "there is more inside".
        let _ = write!(
            svg,
            r#"<rect class="node-stack" data-scope="{}" x="{}" y="{}" width="{}" height="{}" rx="5" fill="{}" stroke="{}"/>"#,
            escape(path),
            num(r.x + 3.0),
            num(r.y - 3.0),
            num(r.width),
            num(r.height),
            hex(color.fill),
            hex(color.stroke),
        );
    }
    let _ = write!(
        svg,
        r#"<rect class="node-box" x="{}" y="{}" width="{}" height="{}" rx="5" fill="{}" stroke="{}" stroke-width="{}"/>"#,
        num(r.x),
        num(r.y),
        num(r.width),
        num(r.height),
        hex(color.fill),
        hex(color.stroke),
        stroke_width,
    );
    let (cx, _) = r.center();
    let lines = node.label_lines();
    let (heading, detail): (Vec<LabelLine>, Vec<LabelLine>) =
        lines.into_iter().partition(|line| line.heading);
    write_label(
        svg,
        r##"class="node-op""##,
        r##"font-weight="bold" fill="#111827""##,
        cx,
        r.y,
        &heading,
    );
    write_label(
        svg,
        r##"class="node-name""##,
        r##"font-size="11" fill="#374151""##,
        cx,
        r.y,
        &detail,
    );
    svg.push_str("</g>\n");
}

/// One label of a node, centred on `cx`: a single line as plain text, several as
/// `<tspan>`s, one a line (so that the label's text content is still the whole label).
fn write_label(svg: &mut String, class: &str, style: &str, cx: f64, top: f64, lines: &[LabelLine]) {
    let Some(first) = lines.first() else {
        return;
    };
    let _ = write!(
        svg,
        r#"<text {class} x="{}" y="{}" text-anchor="middle" {style}>"#,
        num(cx),
        num(top + first.baseline),
    );
    if let [only] = lines {
        svg.push_str(&escape(only.text));
    } else {
        for line in lines {
            let _ = write!(
                svg,
                r#"<tspan x="{}" y="{}">{}</tspan>"#,
                num(cx),
                num(top + line.baseline),
                escape(line.text)
            );
        }
    }
    svg.push_str("</text>");
}

/// Full name, op, shape and device of a node; for a collapsed scope, what it holds.
pub(crate) fn tooltip(graph: &GraphView, node: &NodeBox) -> String {
    match &node.kind {
        BoxKind::Node(n) => {
            let node = &graph.nodes[*n];
            let shape = node.type_label();
            format!(
                "{}\nop: {}\nshape: {}\ndevice: {}",
                node.name,
                node.op,
                if shape.is_empty() { "unknown" } else { &shape },
                if node.device.is_empty() {
                    "(none)"
                } else {
                    &node.device
                },
            )
        }
        BoxKind::CollapsedScope { path, members } => {
            let mut ops: BTreeMap<&str, usize> = BTreeMap::new();
            let mut devices: Vec<&str> = Vec::new();
            for &m in members {
                *ops.entry(graph.nodes[m].op.as_str()).or_default() += 1;
                let device = graph.nodes[m].device.as_str();
                if !devices.contains(&device) {
                    devices.push(device);
                }
            }
            let mut by_count: Vec<(&str, usize)> = ops.into_iter().collect();
            by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let mut op_list: Vec<String> = by_count
                .iter()
                .take(8)
                .map(|(op, count)| format!("{op} ×{count}"))
                .collect();
            if by_count.len() > 8 {
                op_list.push("…".into());
            }
            devices.sort_unstable();
            let devices: Vec<&str> = devices
                .into_iter()
                .map(|d| if d.is_empty() { "(none)" } else { d })
                .collect();
            format!(
                "{path}/ (collapsed)\n{} nodes\nops: {}\ndevice: {}",
                members.len(),
                op_list.join(", "),
                devices.join(", ")
            )
        }
    }
}

fn write_legend(svg: &mut String, frame: &Frame) {
    if frame.legend.is_empty() {
        return;
    }
    let x = frame.legend_x;
    let _ = writeln!(
        svg,
        r##"<g class="legend" transform="translate({} {})"><text class="legend-title" x="{}" y="28" font-weight="bold" fill="#111827">Devices</text>"##,
        num(x),
        num(frame.top),
        0
    );
    for (i, (label, color)) in frame.legend.iter().enumerate() {
        let y = 16.0 + LEGEND_ROW * (i as f64 + 1.0);
        let _ = writeln!(
            svg,
            r##"<g class="legend-entry"><rect class="legend-swatch" x="0" y="{}" width="{SWATCH}" height="{SWATCH}" rx="3" fill="{}" stroke="{}"/><text class="legend-label" x="{}" y="{}" fill="#111827">{}</text></g>"##,
            num(y),
            hex(color.fill),
            hex(color.stroke),
            num(SWATCH + 8.0),
            num(y + 11.0),
            escape(label)
        );
    }
    svg.push_str("</g>\n");
}
