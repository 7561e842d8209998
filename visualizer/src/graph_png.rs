//! Graph drawings as PNG, for files and terminals that show images: the same layout and
//! colours as the SVG, drawn with plotters' bitmap backend (no tooltips in a bitmap).

use crate::curve::check_size;
use crate::error::{Result, VisualizerError};
use crate::font::{self, PLOTTERS_FAMILY};
use crate::graph_svg::{label_anchor, Frame, LEGEND_ROW, SWATCH};
use crate::graph_view::GraphView;
use crate::layout::{
    check_layout_matches, layout_graph, BoxKind, GraphDrawOptions, GraphLayout, FONT_PX,
};
use crate::palette::DeviceColors;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// plotters' ab_glyph scale is the font's full height; DejaVu's em is 2048/2384 of it.
fn glyph_scale(em_pixels: f64) -> f64 {
    em_pixels * 2384.0 / 2048.0
}

const EDGE_GREY: RGBColor = RGBColor(107, 114, 128);
/// EDGE_GREY at 35% on white, as the SVG draws auxiliary edges.
const FAINT_EDGE_GREY: RGBColor = RGBColor(200, 203, 206);
const INK: RGBColor = RGBColor(17, 24, 39);

/// Lays out and draws `graph` as a PNG file's bytes.
pub fn render_graph_png(graph: &GraphView, options: &GraphDrawOptions) -> Result<Vec<u8>> {
    let layout = layout_graph(graph, options)?;
    render_layout_png(graph, &layout, options)
}

/// Draws an already computed layout as a PNG file's bytes. Drawings past 8192 pixels a
/// side are refused: collapse more scopes, or use SVG.
pub fn render_layout_png(
    graph: &GraphView,
    layout: &GraphLayout,
    options: &GraphDrawOptions,
) -> Result<Vec<u8>> {
    font::ensure_registered()?;
    check_layout_matches(graph, layout)?;
    let colors = DeviceColors::new(graph);
    let frame = Frame::new(graph, layout, options, &colors)?;
    let (width, height) = (frame.width.ceil() as u32, frame.height.ceil() as u32);
    check_size(width.max(160), height.max(120))?;
    let (width, height) = (width.max(160), height.max(120));
    let mut rgb = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        draw(&root, graph, layout, options, &colors, &frame).map_err(VisualizerError::Drawing)?;
        root.present()
            .map_err(|e| VisualizerError::Drawing(e.to_string()))?;
    }
    crate::png_out::encode_rgb(&rgb, width, height)
}

fn text_style(size: f64, bold: bool, color: RGBColor, h: HPos) -> TextStyle<'static> {
    let style = if bold {
        FontStyle::Bold
    } else {
        FontStyle::Normal
    };
    (PLOTTERS_FAMILY, glyph_scale(size), style)
        .into_font()
        .color(&color)
        .pos(Pos::new(h, VPos::Center))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    graph: &GraphView,
    layout: &GraphLayout,
    options: &GraphDrawOptions,
    colors: &DeviceColors,
    frame: &Frame,
) -> std::result::Result<(), String> {
    let fail = |e: plotters::drawing::DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let px = |v: f64| v.round() as i32;
    let top = frame.top;
    let at = |x: f64, y: f64| (px(x), px(y + top));
    root.fill(&WHITE).map_err(fail)?;
    if let Some(title) = &options.title {
        root.draw(&Text::new(
            title.clone(),
            (16, 15),
            text_style(16.0, true, INK, HPos::Left),
        ))
        .map_err(fail)?;
    }
    for scope in &layout.scopes {
        let r = scope.rect;
        let fill = if scope.depth % 2 == 1 {
            RGBColor(243, 245, 248)
        } else {
            RGBColor(230, 234, 240)
        };
        let corners = [at(r.x, r.y), at(r.right(), r.bottom())];
        root.draw(&Rectangle::new(corners, fill.filled()))
            .map_err(fail)?;
        root.draw(&Rectangle::new(corners, RGBColor(154, 165, 177)))
            .map_err(fail)?;
        let label = format!("{}/", scope.label);
        root.draw(&Text::new(
            label,
            at(r.x + 8.0, r.y + 11.0),
            text_style(f64::from(FONT_PX), true, RGBColor(61, 72, 82), HPos::Left),
        ))
        .map_err(fail)?;
    }
    for edge in &layout.edges {
        let points: Vec<(i32, i32)> = edge.points.iter().map(|&(x, y)| at(x, y)).collect();
        let grey = if edge.auxiliary {
            FAINT_EDGE_GREY
        } else {
            EDGE_GREY
        };
        let style = grey.stroke_width(if edge.count > 1 { 2 } else { 1 });
        if edge.control {
            root.draw(&DashedPathElement::new(points.clone(), 5, 4, style))
                .map_err(fail)?;
        } else {
            root.draw(&PathElement::new(points.clone(), style))
                .map_err(fail)?;
        }
        if let [.., before, tip] = points.as_slice() {
            root.draw(&arrow_head(*before, *tip, grey)).map_err(fail)?;
        }
        if let (Some(label), Some((x, y))) = (&edge.label, label_anchor(edge)) {
            root.draw(&Text::new(
                label.clone(),
                at(x + 4.0, y),
                text_style(10.0, false, RGBColor(55, 65, 81), HPos::Left),
            ))
            .map_err(fail)?;
        }
    }
    for node in &layout.boxes {
        let color = colors.of_box(graph, &node.kind);
        let r = node.rect;
        if matches!(node.kind, BoxKind::CollapsedScope { .. }) {
            let behind = [
                at(r.x + 3.0, r.y - 3.0),
                at(r.right() + 3.0, r.bottom() - 3.0),
            ];
            root.draw(&Rectangle::new(behind, color.fill.filled()))
                .map_err(fail)?;
            root.draw(&Rectangle::new(behind, color.stroke))
                .map_err(fail)?;
        }
        let corners = [at(r.x, r.y), at(r.right(), r.bottom())];
        root.draw(&Rectangle::new(corners, color.fill.filled()))
            .map_err(fail)?;
        root.draw(&Rectangle::new(corners, color.stroke.stroke_width(1)))
            .map_err(fail)?;
        let cx = r.center().0;
        for line in node.label_lines() {
            let style = if line.heading {
                text_style(f64::from(FONT_PX), true, INK, HPos::Center)
            } else {
                text_style(11.0, false, RGBColor(55, 65, 81), HPos::Center)
            };
            // plotters centres text on y; the SVG's baselines are 4 px below the centre.
            root.draw(&Text::new(
                line.text.to_string(),
                at(cx, r.y + line.baseline - 4.0),
                style,
            ))
            .map_err(fail)?;
        }
    }
    if frame.legend.is_empty() {
        return Ok(());
    }
    let x = frame.legend_x;
    root.draw(&Text::new(
        "Devices",
        at(x, 24.0),
        text_style(f64::from(FONT_PX), true, INK, HPos::Left),
    ))
    .map_err(fail)?;
    for (i, (label, color)) in frame.legend.iter().enumerate() {
        let y = 16.0 + LEGEND_ROW * (i as f64 + 1.0);
        let swatch = [at(x, y), at(x + SWATCH, y + SWATCH)];
        root.draw(&Rectangle::new(swatch, color.fill.filled()))
            .map_err(fail)?;
        root.draw(&Rectangle::new(swatch, color.stroke))
            .map_err(fail)?;
        root.draw(&Text::new(
            label.clone(),
            at(x + SWATCH + 8.0, y + SWATCH / 2.0),
            text_style(f64::from(FONT_PX), false, INK, HPos::Left),
        ))
        .map_err(fail)?;
    }
    Ok(())
}

/// A filled triangle at `tip`, pointing along the segment from `before`.
fn arrow_head(before: (i32, i32), tip: (i32, i32), color: RGBColor) -> Polygon<(i32, i32)> {
    let (dx, dy) = (f64::from(tip.0 - before.0), f64::from(tip.1 - before.1));
    let length = (dx * dx + dy * dy).sqrt().max(1e-9);
    let (ux, uy) = (dx / length, dy / length);
    let (size, half) = (8.0, 3.5);
    let base = (f64::from(tip.0) - ux * size, f64::from(tip.1) - uy * size);
    let corner = |side: f64| {
        (
            (base.0 - uy * half * side).round() as i32,
            (base.1 + ux * half * side).round() as i32,
        )
    };
    Polygon::new(vec![tip, corner(1.0), corner(-1.0)], color.filled())
}
