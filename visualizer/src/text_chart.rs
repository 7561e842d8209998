//! Line charts in text for terminals: Unicode braille (2x4 dots a cell) or half blocks
//! (1x2), with y labels, an x axis and a legend, filling exactly the size asked for.

use crate::error::{Result, VisualizerError};
use crate::number_format::compact;
use crate::series::{decimate, ema_over_steps, typical_gap, Point, Series};

/// Which characters draw the curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextChartStyle {
    /// Braille patterns: 2x4 dots per character, the finest a terminal can show.
    #[default]
    Braille,
    /// Half blocks (`▀ ▄ █`): 1x2 per character, for fonts without braille.
    Blocks,
}

/// Size and look of a text chart. Every line is exactly `width` characters (not counting
/// colour escapes) and there are exactly `height` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct TextChartOptions {
    pub width: usize,
    pub height: usize,
    pub style: TextChartStyle,
    /// Shown on the first line when the chart is at least 8 lines tall.
    pub title: Option<String>,
    pub log_y: bool,
    /// EMA weight in [0, 1): the smoothed curve is drawn instead of the raw one.
    pub smoothing: Option<f64>,
    /// Colour each series with ANSI escapes; without colour, series differ only by name.
    pub color: bool,
}

impl Default for TextChartOptions {
    fn default() -> Self {
        TextChartOptions {
            width: 80,
            height: 20,
            style: TextChartStyle::Braille,
            title: None,
            log_y: false,
            smoothing: None,
            color: false,
        }
    }
}

const MIN_WIDTH: usize = 20;
const MIN_HEIGHT: usize = 4;
const ANSI_COLORS: [&str; 6] = ["34", "33", "32", "31", "35", "36"];

/// Renders the series as `options.height` lines of `options.width` characters, joined by
/// newlines (no newline after the last).
pub fn render_text_chart(series: &[Series], options: &TextChartOptions) -> Result<String> {
    let (width, height) = (options.width, options.height);
    if width < MIN_WIDTH || height < MIN_HEIGHT || width > 10_000 || height > 10_000 {
        return Err(VisualizerError::InvalidSize {
            width: u32::try_from(width).unwrap_or(u32::MAX),
            height: u32::try_from(height).unwrap_or(u32::MAX),
            reason: "a text chart needs 20x4 to 10000x10000 characters",
        });
    }
    if let Some(weight) = options.smoothing {
        if !(0.0..1.0).contains(&weight) {
            return Err(VisualizerError::InvalidOption(format!(
                "smoothing weight {weight} is outside [0, 1)"
            )));
        }
    }
    let curves = prepare(series, options)?;
    let (x0, x1) = span(curves.iter().flat_map(|c| c.points.iter().map(|p| p.step)));
    let (y0, y1) = span(curves.iter().flat_map(|c| c.points.iter().map(|p| p.value)));

    let show_title = options.title.is_some() && height >= 8;
    let show_legend = height >= 6;
    let plot_rows = height - 2 - usize::from(show_title) - usize::from(show_legend);
    let label = |v: f64| compact(if options.log_y { 10f64.powf(v) } else { v });
    let mut y_labels = vec![(0, label(y1)), (plot_rows - 1, label(y0))];
    if plot_rows >= 5 {
        y_labels.push((plot_rows / 2, label((y0 + y1) / 2.0)));
    }
    let label_width = y_labels
        .iter()
        .map(|(_, l)| l.chars().count())
        .max()
        .unwrap_or(1);
    let plot_cols = width - label_width - 1;

    let (dots_x, dots_y) = match options.style {
        TextChartStyle::Braille => (2, 4),
        TextChartStyle::Blocks => (1, 2),
    };
    let mut canvas = Canvas::new(plot_cols * dots_x, plot_rows * dots_y);
    let (last_col, last_row) = ((canvas.width - 1) as f64, (canvas.height - 1) as f64);
    for (index, curve) in curves.iter().enumerate() {
        let points = decimate(&curve.points, x0, x1, plot_cols * dots_x);
        let to_dot = |p: &Point| {
            let fx = if x1 > x0 {
                (p.step - x0) / (x1 - x0)
            } else {
                0.5
            };
            let fy = if y1 > y0 {
                (y1 - p.value) / (y1 - y0)
            } else {
                0.5
            };
            (
                (fx * last_col).round() as i64,
                (fy * last_row).round() as i64,
            )
        };
        let mut previous = None;
        for p in &points {
            let dot = to_dot(p);
            canvas.line(previous.unwrap_or(dot), dot, index);
            previous = Some(dot);
        }
    }

    let mut lines = Vec::with_capacity(height);
    if show_title {
        lines.push(centered(options.title.as_deref().unwrap_or(""), width));
    }
    for row in 0..plot_rows {
        let text = y_labels
            .iter()
            .find(|(r, _)| *r == row)
            .map(|(_, l)| l.as_str());
        let axis = if text.is_some() { '┤' } else { '│' };
        let mut line = format!("{:>label_width$}{axis}", text.unwrap_or(""));
        line.push_str(&canvas.row(row, options.style, options.color));
        lines.push(line);
    }
    lines.push(format!(
        "{}└{}",
        " ".repeat(label_width),
        "─".repeat(plot_cols)
    ));
    lines.push(x_labels(&compact(x0), &compact(x1), label_width + 1, width));
    if show_legend {
        lines.push(legend(&curves, width, options.color));
    }
    Ok(lines.join("\n"))
}

struct Curve {
    name: String,
    points: Vec<Point>,
}

fn prepare(series: &[Series], options: &TextChartOptions) -> Result<Vec<Curve>> {
    let mut curves: Vec<Curve> = series
        .iter()
        .map(|s| {
            let mut points = s.drawable_points(options.log_y);
            if options.log_y {
                points.iter_mut().for_each(|p| p.value = p.value.log10());
            }
            Curve {
                name: s.name.clone(),
                points,
            }
        })
        .collect();
    if curves.iter().all(|c| c.points.is_empty()) {
        return Err(VisualizerError::NoData(
            "no series has a drawable point".into(),
        ));
    }
    if let Some(weight) = options.smoothing.filter(|w| *w > 0.0) {
        let base_gap = curves
            .iter()
            .filter(|c| !c.points.is_empty())
            .map(|c| typical_gap(&c.points))
            .fold(f64::INFINITY, f64::min);
        for curve in &mut curves {
            curve.points = ema_over_steps(&curve.points, weight, base_gap);
        }
    }
    Ok(curves)
}

/// The range of the values, widened when flat so that the curve sits in the middle.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if high > low {
        (low, high)
    } else {
        let half = if low == 0.0 { 1.0 } else { low.abs() * 0.1 };
        (low - half, high + half)
    }
}

/// A grid of dots; each remembers the last series drawn through it, for its colour.
struct Canvas {
    width: usize,
    height: usize,
    dots: Vec<Option<usize>>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Canvas {
        Canvas {
            width,
            height,
            dots: vec![None; width * height],
        }
    }

    fn set(&mut self, x: i64, y: i64, series: usize) {
        if (0..self.width as i64).contains(&x) && (0..self.height as i64).contains(&y) {
            self.dots[y as usize * self.width + x as usize] = Some(series);
        }
    }

    /// Bresenham's line, so that steep drops stay connected.
    fn line(&mut self, from: (i64, i64), to: (i64, i64), series: usize) {
        let (mut x, mut y) = from;
        let (dx, dy) = ((to.0 - x).abs(), -(to.1 - y).abs());
        let (sx, sy) = ((to.0 - x).signum(), (to.1 - y).signum());
        let mut error = dx + dy;
        loop {
            self.set(x, y, series);
            if (x, y) == to {
                break;
            }
            let doubled = 2 * error;
            if doubled >= dy {
                error += dy;
                x += sx;
            }
            if doubled <= dx {
                error += dx;
                y += sy;
            }
        }
    }

    /// One text row of the plot, `width / dots per cell` characters.
    fn row(&self, row: usize, style: TextChartStyle, color: bool) -> String {
        let (cell_w, cell_h) = match style {
            TextChartStyle::Braille => (2, 4),
            TextChartStyle::Blocks => (1, 2),
        };
        let mut out = String::new();
        let mut current_color = None;
        for col in 0..self.width / cell_w {
            let mut bits = 0u32;
            let mut owner = None;
            for dy in 0..cell_h {
                for dx in 0..cell_w {
                    let at = (row * cell_h + dy) * self.width + col * cell_w + dx;
                    if let Some(series) = self.dots[at] {
                        bits |= 1 << (dy * cell_w + dx);
                        owner = Some(series);
                    }
                }
            }
            let glyph = match style {
                // An empty braille cell (U+2800) shows as dots in some fonts: use a space.
                TextChartStyle::Braille if bits == 0 => ' ',
                TextChartStyle::Braille => braille(bits),
                TextChartStyle::Blocks => [' ', '▀', '▄', '█'][bits as usize & 3],
            };
            if color && owner.is_some() && owner != current_color {
                let code = ANSI_COLORS[owner.unwrap_or(0) % ANSI_COLORS.len()];
                out.push_str(&format!("\x1b[{code}m"));
                current_color = owner;
            }
            out.push(glyph);
        }
        if color && current_color.is_some() {
            out.push_str("\x1b[0m");
        }
        out
    }
}

/// The braille character for dots numbered row by row (bit 2*row + column).
fn braille(bits: u32) -> char {
    // Unicode numbers braille dots down the left column (1,2,3,7), then the right (4,5,6,8).
    const DOT: [u32; 8] = [0x01, 0x08, 0x02, 0x10, 0x04, 0x20, 0x40, 0x80];
    let code = (0..8)
        .filter(|i| bits & (1 << i) != 0)
        .fold(0, |acc, i| acc | DOT[i]);
    char::from_u32(0x2800 + code).unwrap_or(' ')
}

fn centered(text: &str, width: usize) -> String {
    let text: String = text.chars().take(width).collect();
    let len = text.chars().count();
    let left = (width - len) / 2;
    format!(
        "{}{text}{}",
        " ".repeat(left),
        " ".repeat(width - len - left)
    )
}

/// Lowest step under the start of the axis, highest under its end.
fn x_labels(first: &str, last: &str, indent: usize, width: usize) -> String {
    let mut line: Vec<char> = vec![' '; width];
    for (i, c) in first.chars().enumerate() {
        if indent + i < width {
            line[indent + i] = c;
        }
    }
    let last_len = last.chars().count();
    if indent + first.chars().count() + 1 + last_len <= width {
        for (i, c) in last.chars().enumerate() {
            line[width - last_len + i] = c;
        }
    }
    line.into_iter().collect()
}

/// `━ train 0.281  ━ test 0.35`: name and last value of each series, cut to fit.
fn legend(curves: &[Curve], width: usize, color: bool) -> String {
    let mut visible = 0;
    let mut out = String::new();
    for (index, curve) in curves.iter().enumerate() {
        let last = curve
            .points
            .last()
            .map(|p| compact(p.value))
            .unwrap_or_default();
        let entry = format!("━ {} {last}", curve.name);
        let separator = if visible == 0 { "" } else { "  " };
        let room = width - visible;
        let wanted = separator.chars().count() + entry.chars().count();
        let shown: String = format!("{separator}{entry}").chars().take(room).collect();
        let shown_len = shown.chars().count();
        if color {
            let code = ANSI_COLORS[index % ANSI_COLORS.len()];
            let (sep, rest) = shown.split_at(separator.len().min(shown.len()));
            out.push_str(&format!("{sep}\x1b[{code}m{rest}\x1b[0m"));
        } else {
            out.push_str(&shown);
        }
        visible += shown_len;
        if wanted > room {
            break;
        }
    }
    out.push_str(&" ".repeat(width - visible));
    out
}
