//! The timeline as SVG: a time axis on top, a row per lane (with sub-rows where kernels
//! overlap), spans coloured by category with tooltips, transfer arrows, a category legend.

use super::frame::{ticks, Frame, AXIS_HEIGHT, FONT_PX, LANE_PAD, MARGIN, NO_CATEGORY, SUBROW};
use super::{cut_middle, extent, SpanView, TimelineOptions, TimelineView};
use crate::error::{Result, VisualizerError};
use crate::font::{TextMeasure, SVG_FONT_FAMILY};
use crate::graph_svg::{arrowhead, LEGEND_ROW, SWATCH, TITLE_HEIGHT};
use crate::number_format::{compact, duration_us};
use crate::palette::hex;
use crate::svg_text::{escape, num};
use std::fmt::Write;

const SPAN_FONT_PX: f32 = 10.0;
const SPAN_HEIGHT: f64 = 13.0;
/// Even a span far shorter than a pixel stays visible.
const MIN_SPAN_PX: f64 = 1.0;
const EMPTY_TEXT: &str = "no kernels ran";
const MIN_WIDTH: u32 = 320;
const MAX_WIDTH: u32 = 100_000;

/// Draws `view` as an SVG document: lanes top to bottom, time left to right.
///
/// ```
/// use sluice_visualizer::{render_timeline_svg, LaneView, SpanView, TimelineOptions, TimelineView};
/// let view = TimelineView {
///     title: "step 1".into(),
///     lanes: vec![LaneView { group: "/job:worker/task:0".into(), name: "CPU:0".into() }],
///     spans: vec![SpanView {
///         lane: 0,
///         start_us: 0.0,
///         dur_us: 120.0,
///         label: "layer1/MatMul".into(),
///         category: "linalg".into(),
///         detail: String::new(),
///     }],
///     arrows: vec![],
/// };
/// let svg = render_timeline_svg(&view, &TimelineOptions::default()).unwrap();
/// assert!(svg.contains(r#"class="sluice-timeline""#));
/// ```
pub fn render_timeline_svg(view: &TimelineView, options: &TimelineOptions) -> Result<String> {
    if !(MIN_WIDTH..=MAX_WIDTH).contains(&options.width) {
        return Err(VisualizerError::InvalidOption(format!(
            "timeline width {} is outside {MIN_WIDTH}..={MAX_WIDTH} pixels",
            options.width
        )));
    }
    if options.max_spans == 0 {
        return Err(VisualizerError::InvalidOption(
            "max_spans must be at least 1".into(),
        ));
    }
    view.validate()?;
    let measure = TextMeasure::new()?;
    if view.spans.is_empty() {
        return Ok(empty_picture(view, &measure));
    }
    let extent = extent(view)?;
    let frame = Frame::new(view, options, &measure, extent);
    let mut svg = String::with_capacity(2048 + 400 * view.spans.len().min(options.max_spans));
    open(&mut svg, view, frame.width, frame.height);
    write_axis(&mut svg, &frame, &measure);
    write_lanes(&mut svg, view, &frame, &measure);
    write_spans(&mut svg, view, &frame, &measure);
    write_arrows(&mut svg, view, &frame);
    let omitted = view.spans.len() - frame.kept.len();
    if omitted > 0 {
        let spans = if omitted == 1 { "span" } else { "spans" };
        let _ = writeln!(
            svg,
            r##"<text class="omitted" x="{}" y="{}" fill="#6b7280">{omitted} shorter {spans} not drawn (max_spans {})</text>"##,
            num(MARGIN),
            num(frame.lanes_bottom + 18.0),
            options.max_spans,
        );
    }
    write_legend(&mut svg, &frame);
    svg.push_str("</svg>\n");
    Ok(svg)
}

fn open(svg: &mut String, view: &TimelineView, width: f64, height: f64) {
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="sluice-timeline" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{font}" font-size="{FONT_PX}">"#,
        w = num(width),
        h = num(height),
        font = SVG_FONT_FAMILY,
    );
    let title = if view.title.is_empty() {
        "timeline"
    } else {
        &view.title
    };
    let _ = write!(
        svg,
        "\n<title>{}</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n",
        escape(title)
    );
    if !view.title.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text class="timeline-title" x="{MARGIN}" y="21" font-size="16" font-weight="bold">{}</text>"#,
            escape(&view.title)
        );
    }
}

/// A picture of its own for a step in which nothing ran, rather than an empty axis.
fn empty_picture(view: &TimelineView, measure: &TextMeasure) -> String {
    let title_width = f64::from(measure.width(&view.title, 16.0)) * 1.1 + 2.0 * MARGIN;
    let width = f64::from(MIN_WIDTH).max(title_width);
    let top = if view.title.is_empty() {
        0.0
    } else {
        TITLE_HEIGHT
    };
    let mut svg = String::new();
    open(&mut svg, view, width, top + 48.0);
    let _ = writeln!(
        svg,
        r##"<text class="empty" x="{}" y="{}" text-anchor="middle" fill="#6b7280">{EMPTY_TEXT}</text>"##,
        num(width / 2.0),
        num(top + 28.0),
    );
    svg.push_str("</svg>\n");
    svg
}

fn write_axis(svg: &mut String, frame: &Frame, measure: &TextMeasure) {
    let (times, unit, unit_name) = ticks(frame.length, frame.plot_width);
    let axis_y = frame.axis_top + AXIS_HEIGHT;
    let _ = writeln!(
        svg,
        r##"<g class="axis"><line class="axis-line" x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#6b7280"/>"##,
        x0 = num(frame.plot_x),
        x1 = num(frame.plot_x + frame.plot_width),
        y = num(axis_y),
    );
    for time in times {
        let x = frame.x(frame.origin + time);
        let label = format!("{} {unit_name}", compact(time / unit));
        // The last label would stick out of the picture if centred on its tick.
        let half = f64::from(measure.width(&label, FONT_PX)) / 2.0;
        let anchor = if x + half > frame.width - 2.0 {
            "end"
        } else {
            "middle"
        };
        let _ = writeln!(
            svg,
            r##"<line class="tick" x1="{x}" y1="{y0}" x2="{x}" y2="{y1}" stroke="#e5e7eb"/><text class="tick-label" x="{x}" y="{ty}" text-anchor="{anchor}" fill="#374151">{label}</text>"##,
            x = num(x),
            y0 = num(axis_y - 4.0),
            y1 = num(frame.lanes_bottom),
            ty = num(axis_y - 8.0),
        );
    }
    svg.push_str("</g>\n");
}

fn write_lanes(svg: &mut String, view: &TimelineView, frame: &Frame, measure: &TextMeasure) {
    svg.push_str("<g class=\"lanes\">\n");
    // Top to bottom, so that the document reads in the order the picture does.
    for (position, &index) in frame.order.iter().enumerate() {
        let (Some(lane), Some(&(top, height))) =
            (view.lanes.get(index), frame.lane_rows.get(index))
        else {
            continue;
        };
        let title = lane.title(index);
        let shown = cut_middle(&title, |t| {
            f64::from(measure.width(t, FONT_PX)) <= frame.label_width
        });
        let band = if position % 2 == 0 {
            "#f9fafb"
        } else {
            "#f3f4f6"
        };
        let _ = writeln!(
            svg,
            r##"<g class="lane-row" data-group="{group}"><title>{full}</title><rect class="lane-band" x="0" y="{y}" width="{w}" height="{h}" fill="{band}"/><text class="lane" x="{MARGIN}" y="{ty}" fill="#111827">{shown}</text></g>"##,
            group = escape(&lane.group),
            full = escape(&title),
            y = num(top),
            w = num(frame.width),
            h = num(height),
            ty = num(top + LANE_PAD + SUBROW / 2.0 + 4.0),
            shown = escape(&shown),
        );
    }
    for &y in &frame.separators {
        let _ = writeln!(
            svg,
            r##"<line class="group-separator" x1="0" y1="{y}" x2="{w}" y2="{y}" stroke="#9ca3af" stroke-width="0.8"/>"##,
            y = num(y),
            w = num(frame.width),
        );
    }
    svg.push_str("</g>\n");
}

fn write_spans(svg: &mut String, view: &TimelineView, frame: &Frame, measure: &TextMeasure) {
    svg.push_str("<g class=\"spans\">\n");
    for &(i, level) in &frame.kept {
        let Some(span) = view.spans.get(i) else {
            continue;
        };
        let top = frame.lane_rows.get(span.lane).map_or(0.0, |&(top, _)| top);
        let x = frame.x(span.start_us);
        let width = (span.dur_us / frame.length * frame.plot_width).max(MIN_SPAN_PX);
        let y = top + LANE_PAD + SUBROW * level as f64 + (SUBROW - SPAN_HEIGHT) / 2.0;
        let color = frame.color(&span.category);
        let _ = write!(
            svg,
            r#"<rect class="span" x="{}" y="{}" width="{}" height="{SPAN_HEIGHT}" fill="{}" stroke="{}" stroke-width="0.6"><title>{}</title></rect>"#,
            num(x),
            num(y),
            num(width),
            hex(color.fill),
            hex(color.stroke),
            escape(&tooltip(span, frame.origin)),
        );
        // The whole name where it fits, else its last part, else nothing.
        let short = span.label.rsplit('/').next().unwrap_or(&span.label);
        let label = [span.label.as_str(), short]
            .into_iter()
            .find(|l| !l.is_empty() && f64::from(measure.width(l, SPAN_FONT_PX)) + 6.0 <= width);
        if let Some(label) = label {
            let _ = write!(
                svg,
                r##"<text class="span-label" x="{}" y="{}" font-size="{SPAN_FONT_PX}" fill="#111827" pointer-events="none">{}</text>"##,
                num(x + 3.0),
                num(y + SPAN_HEIGHT - 3.0),
                escape(label),
            );
        }
        svg.push('\n');
    }
    svg.push_str("</g>\n");
}

fn tooltip(span: &SpanView, origin: f64) -> String {
    let category = if span.category.is_empty() {
        NO_CATEGORY
    } else {
        &span.category
    };
    let mut text = format!(
        "{}\ncategory: {category}\nstart: {}\nduration: {}",
        span.label,
        duration_us(span.start_us - origin),
        duration_us(span.dur_us),
    );
    if !span.detail.is_empty() {
        text.push('\n');
        text.push_str(&span.detail);
    }
    text
}

fn write_arrows(svg: &mut String, view: &TimelineView, frame: &Frame) {
    svg.push_str("<g class=\"arrows\">\n");
    for arrow in &view.arrows {
        let from = (frame.x(arrow.from_us), frame.lane_middle(arrow.from_lane));
        let to = (frame.x(arrow.to_us), frame.lane_middle(arrow.to_lane));
        // Within one lane a straight line would run along the spans: bow it upwards.
        let (d, before_end) = if arrow.from_lane == arrow.to_lane {
            let control = ((from.0 + to.0) / 2.0, from.1 - SUBROW);
            let d = format!(
                "M{},{} Q{},{} {},{}",
                num(from.0),
                num(from.1),
                num(control.0),
                num(control.1),
                num(to.0),
                num(to.1)
            );
            (d, control)
        } else {
            let d = format!(
                "M{},{} L{},{}",
                num(from.0),
                num(from.1),
                num(to.0),
                num(to.1)
            );
            (d, from)
        };
        let lane_title = |lane: usize| {
            view.lanes
                .get(lane)
                .map(|l| l.title(lane))
                .unwrap_or_default()
        };
        let title = format!(
            "{}\n{} → {}\nsent at {}, arrived at {} ({} in transit)",
            if arrow.label.is_empty() {
                "transfer"
            } else {
                &arrow.label
            },
            lane_title(arrow.from_lane),
            lane_title(arrow.to_lane),
            duration_us(arrow.from_us - frame.origin),
            duration_us(arrow.to_us - frame.origin),
            duration_us(arrow.to_us - arrow.from_us),
        );
        let _ = write!(
            svg,
            r##"<g class="arrow"><title>{}</title><path d="{d}" fill="none" stroke="#374151" stroke-width="1.2" stroke-opacity="0.8"/>"##,
            escape(&title),
        );
        if let Some(head) = arrowhead(&[before_end, to]) {
            let _ = write!(
                svg,
                r##"<polygon class="arrowhead" points="{head}" fill="#374151" fill-opacity="0.8"/>"##
            );
        }
        svg.push_str("</g>\n");
    }
    svg.push_str("</g>\n");
}

fn write_legend(svg: &mut String, frame: &Frame) {
    let _ = writeln!(
        svg,
        r##"<g class="legend" transform="translate(0 {})"><text class="legend-title" x="{MARGIN}" y="11" font-weight="bold" fill="#111827">Categories</text>"##,
        num(frame.legend_top),
    );
    for ((label, color), &(x, row)) in frame.categories.iter().zip(&frame.legend) {
        let y = LEGEND_ROW * row as f64;
        let _ = writeln!(
            svg,
            r##"<g class="legend-entry"><rect class="legend-swatch" x="{}" y="{}" width="{SWATCH}" height="{SWATCH}" rx="3" fill="{}" stroke="{}"/><text class="legend-label" x="{}" y="{}" fill="#111827">{}</text></g>"##,
            num(x),
            num(y),
            hex(color.fill),
            hex(color.stroke),
            num(x + SWATCH + 6.0),
            num(y + 11.0),
            escape(label),
        );
    }
    svg.push_str("</g>\n");
}
