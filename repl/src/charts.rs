//! Text pictures for the terminal: loss charts sized to the terminal, and graph drawings
//! written to SVG files.

use crate::error::Result;
use sluice::Graph;
use sluice_frontend::graph_view::graph_svg;
use sluice_visualizer::{render_text_chart, Series, TextChartOptions};
use std::io::IsTerminal;
use std::path::Path;

/// The chart's size in characters: the terminal's width (at most 100), 14 lines.
fn chart_size() -> (usize, usize) {
    let (_rows, cols) = console::Term::stdout().size();
    let width = usize::from(cols).clamp(40, 100);
    (width, 14)
}

/// The series as a braille chart ending in a newline; a one-line note when there is
/// nothing to draw or the chart cannot be drawn.
pub fn loss_chart(series: &[Series], title: &str) -> String {
    if series.iter().all(|s| s.points.is_empty()) {
        return format!("{title}: no points to draw\n");
    }
    let (width, height) = chart_size();
    let options = TextChartOptions {
        width,
        height,
        title: Some(title.to_string()),
        color: std::io::stdout().is_terminal(),
        ..TextChartOptions::default()
    };
    match render_text_chart(series, &options) {
        Ok(mut chart) => {
            if !chart.ends_with('\n') {
                chart.push('\n');
            }
            chart
        }
        Err(e) => format!("{title}: cannot draw the chart: {e}\n"),
    }
}

/// Writes the graph's drawing to `path` as SVG.
pub fn write_graph_svg(graph: &Graph, path: &Path) -> Result<()> {
    let svg = graph_svg(graph)?;
    std::fs::write(path, svg)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_text() {
        let series = Series::from_pairs("loss", (1..50).map(|i| (i as f64, 1.0 / i as f64)));
        let chart = loss_chart(&[series], "loss");
        assert!(chart.lines().count() > 5, "{chart}");
        assert!(loss_chart(&[], "loss").contains("no points"));
    }
}
