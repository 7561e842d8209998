//! Loss curves drawn with plotters: SVG for notebooks, PNG for files.

use crate::error::{Result, VisualizerError};
use crate::font::{self, PLOTTERS_FAMILY};
use crate::log_axis::Log10Axis;
use crate::number_format::compact;
use crate::palette::series_color;
use crate::series::{decimate, ema_over_steps, typical_gap, Point, Series};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// How a curve chart looks. `Default` gives an 800x450 chart of "loss" against "step".
#[derive(Debug, Clone, PartialEq)]
pub struct CurveOptions {
    pub width: u32,
    pub height: u32,
    pub title: Option<String>,
    pub x_label: String,
    pub y_label: String,
    /// Draw the y axis on a log scale (non-positive values are left out).
    pub log_y: bool,
    /// EMA smoothing weight in [0, 1): the smoothed line is drawn over a faint raw curve.
    pub smoothing: Option<f64>,
}

impl Default for CurveOptions {
    fn default() -> Self {
        CurveOptions {
            width: 800,
            height: 450,
            title: None,
            x_label: "step".into(),
            y_label: "loss".into(),
            log_y: false,
            smoothing: None,
        }
    }
}

/// Renders the series on one chart as an SVG document.
pub fn render_curve_svg(series: &[Series], options: &CurveOptions) -> Result<String> {
    let prepared = prepare(series, options)?;
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (options.width, options.height)).into_drawing_area();
        draw(&root, &prepared, options)?;
        root.present().map_err(drawing_error)?;
    }
    Ok(svg)
}

/// Renders the series on one chart as a PNG file's bytes.
pub fn render_curve_png(series: &[Series], options: &CurveOptions) -> Result<Vec<u8>> {
    let prepared = prepare(series, options)?;
    let (width, height) = (options.width, options.height);
    let mut rgb = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        draw(&root, &prepared, options)?;
        root.present().map_err(drawing_error)?;
    }
    crate::png_out::encode_rgb(&rgb, width, height)
}

/// Writes the chart to `path`, as PNG if it ends in `.png` and as SVG otherwise.
pub fn save_curve(path: impl AsRef<Path>, series: &[Series], options: &CurveOptions) -> Result<()> {
    let path = path.as_ref();
    let is_png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if is_png {
        std::fs::write(path, render_curve_png(series, options)?)?;
    } else {
        std::fs::write(path, render_curve_svg(series, options)?)?;
    }
    Ok(())
}

/// The smallest and largest chart we agree to draw; beyond them plotters has no room for
/// its axes, or the bitmap would take gigabytes.
const MIN_SIZE: (u32, u32) = (160, 120);
const MAX_SIDE: u32 = 8192;

/// A series ready to draw: finite points, decimated to the pixel width.
struct PreparedSeries {
    name: String,
    color: RGBColor,
    raw: Vec<Point>,
    smoothed: Option<Vec<Point>>,
}

struct Prepared {
    series: Vec<PreparedSeries>,
    x_range: (f64, f64),
    y_range: (f64, f64),
}

fn prepare(series: &[Series], options: &CurveOptions) -> Result<Prepared> {
    check_size(options.width, options.height)?;
    if let Some(weight) = options.smoothing {
        if !(0.0..1.0).contains(&weight) {
            return Err(VisualizerError::InvalidOption(format!(
                "smoothing weight {weight} is outside [0, 1)"
            )));
        }
    }
    font::ensure_registered()?;
    let cleaned: Vec<(usize, &Series, Vec<Point>)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s, s.drawable_points(options.log_y)))
        .filter(|(_, _, points)| !points.is_empty())
        .collect();
    let all = || cleaned.iter().flat_map(|(_, _, points)| points.iter());
    let (Some(x_min), Some(x_max)) = (
        all().map(|p| p.step).min_by(f64::total_cmp),
        all().map(|p| p.step).max_by(f64::total_cmp),
    ) else {
        let what = if options.log_y {
            "no series has a finite positive value for a log scale"
        } else {
            "no series has a finite point"
        };
        return Err(VisualizerError::NoData(what.into()));
    };
    let columns = options.width as usize;
    // Smoothing weights apply per step gap of the densest series (see `ema_over_steps`).
    let base_gap = cleaned
        .iter()
        .map(|(_, _, points)| typical_gap(points))
        .min_by(f64::total_cmp)
        .unwrap_or(1.0);
    let mut y_min = f64::INFINITY;
    let mut y_max = f64::NEG_INFINITY;
    let mut prepared = Vec::with_capacity(cleaned.len());
    for (index, source, mut points) in cleaned {
        if options.log_y {
            // Drawn in log10 space on a linear axis with decade ticks (see `Log10Axis`).
            points.iter_mut().for_each(|p| p.value = p.value.log10());
        }
        for p in &points {
            y_min = y_min.min(p.value);
            y_max = y_max.max(p.value);
        }
        // Smooth the full curve first, then thin both to the pixel width.
        let smoothed = options
            .smoothing
            .filter(|w| *w > 0.0)
            .map(|w| decimate(&ema_over_steps(&points, w, base_gap), x_min, x_max, columns));
        prepared.push(PreparedSeries {
            name: source.name.clone(),
            color: series_color(index),
            raw: decimate(&points, x_min, x_max, columns),
            smoothed,
        });
    }
    Ok(Prepared {
        series: prepared,
        x_range: widen(x_min, x_max),
        y_range: pad_y(y_min, y_max),
    })
}

pub(crate) fn check_size(width: u32, height: u32) -> Result<()> {
    if width < MIN_SIZE.0 || height < MIN_SIZE.1 {
        return Err(VisualizerError::InvalidSize {
            width,
            height,
            reason: "a chart needs at least 160x120 pixels",
        });
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(VisualizerError::InvalidSize {
            width,
            height,
            reason: "a chart side is at most 8192 pixels",
        });
    }
    Ok(())
}

/// A degenerate range (one point, a flat line) still needs some width to draw.
fn widen(low: f64, high: f64) -> (f64, f64) {
    if high > low {
        return (low, high);
    }
    let half = if low == 0.0 { 1.0 } else { low.abs() * 0.1 };
    (low - half, high + half)
}

/// A little air above and below the curves (in log10 space on a log scale).
fn pad_y(low: f64, high: f64) -> (f64, f64) {
    let (low, high) = widen(low, high);
    let pad = (high - low) * 0.05;
    (low - pad, high + pad)
}

fn drawing_error<E: std::error::Error + Send + Sync>(
    error: plotters::drawing::DrawingAreaErrorKind<E>,
) -> VisualizerError {
    VisualizerError::Drawing(error.to_string())
}

/// plotters sizes text in its own unit: the em is size / 1.24.
fn text_size(pixels: f64) -> f64 {
    pixels * 1.24
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &Prepared,
    options: &CurveOptions,
) -> Result<()> {
    root.fill(&WHITE).map_err(drawing_error)?;
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64);
    if let Some(title) = &options.title {
        builder.caption(title, (PLOTTERS_FAMILY, text_size(18.0)));
    }
    let (x0, x1) = data.x_range;
    let (y0, y1) = data.y_range;
    if options.log_y {
        let y_axis = Log10Axis::new(y0, y1);
        let chart = builder
            .build_cartesian_2d(x0..x1, y_axis)
            .map_err(drawing_error)?;
        draw_in_chart(chart, data, options, |v| compact(10f64.powf(*v)))
    } else {
        let chart = builder
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(drawing_error)?;
        draw_in_chart(chart, data, options, |v| compact(*v))
    }
}

/// The part shared by linear and log y axes, whose coordinate types differ.
fn draw_in_chart<'a, DB, Y>(
    mut chart: ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
    data: &Prepared,
    options: &CurveOptions,
    format_y: impl Fn(&f64) -> String,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let format_x = |v: &f64| compact(*v);
    chart
        .configure_mesh()
        .x_desc(options.x_label.as_str())
        .y_desc(options.y_label.as_str())
        .x_label_formatter(&format_x)
        .y_label_formatter(&format_y)
        .label_style((PLOTTERS_FAMILY, text_size(12.0)))
        .axis_desc_style((PLOTTERS_FAMILY, text_size(13.0)))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(drawing_error)?;

    for series in &data.series {
        let color = series.color;
        let as_pairs = |points: &[Point]| -> Vec<(f64, f64)> {
            points.iter().map(|p| (p.step, p.value)).collect()
        };
        let raw_style = match series.smoothed {
            Some(_) => color.mix(0.3).stroke_width(1),
            None => color.stroke_width(2),
        };
        let raw = chart
            .draw_series(LineSeries::new(as_pairs(&series.raw), raw_style))
            .map_err(drawing_error)?;
        // The legend entry goes on the line that carries the meaning: the smoothed one.
        let labelled = match &series.smoothed {
            Some(smoothed) => chart
                .draw_series(LineSeries::new(as_pairs(smoothed), color.stroke_width(2)))
                .map_err(drawing_error)?,
            None => raw,
        };
        labelled.label(series.name.as_str()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
        });
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((PLOTTERS_FAMILY, text_size(13.0)))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(drawing_error)?;
    Ok(())
}
