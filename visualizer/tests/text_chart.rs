//! Text charts fit the requested size exactly, in every style.

use sluice_visualizer::error::VisualizerError;
use sluice_visualizer::series::Series;
use sluice_visualizer::text_chart::{render_text_chart, TextChartOptions, TextChartStyle};

fn loss(name: &str, points: usize, floor: f64) -> Series {
    Series::from_pairs(
        name,
        (0..points).map(|i| (i as f64, floor + (-(i as f64) / 200.0).exp())),
    )
}

/// The text a terminal shows: ANSI colour escapes take no room.
fn visible(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn charts_fit_the_size_exactly() {
    let series = [loss("train", 1000, 0.1), loss("test", 1000, 0.2)];
    for style in [TextChartStyle::Braille, TextChartStyle::Blocks] {
        for color in [false, true] {
            for (width, height) in [(20, 4), (20, 5), (33, 6), (40, 10), (80, 24), (123, 41)] {
                let options = TextChartOptions {
                    width,
                    height,
                    style,
                    color,
                    title: Some("a title longer than some of the charts are wide".into()),
                    ..TextChartOptions::default()
                };
                let chart = render_text_chart(&series, &options).unwrap();
                let lines: Vec<&str> = chart.split('\n').collect();
                assert_eq!(lines.len(), height, "{style:?} {width}x{height}:\n{chart}");
                for line in &lines {
                    assert_eq!(
                        visible(line).chars().count(),
                        width,
                        "{style:?} {width}x{height}: {line:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_chart_shows_the_curve_axes_and_legend() {
    let options = TextChartOptions {
        width: 60,
        height: 15,
        title: Some("loss".into()),
        ..TextChartOptions::default()
    };
    let chart = render_text_chart(&[loss("train", 500, 0.1)], &options).unwrap();
    let lines: Vec<&str> = chart.lines().collect();
    assert_eq!(lines[0].trim(), "loss");
    assert!(lines[1].contains('┤'), "top label row: {}", lines[1]);
    // A decaying curve starts at the top left and ends at the bottom right.
    let plot = &lines[1..lines.len() - 3];
    let label_width = lines[1]
        .find('┤')
        .map(|b| lines[1][..b].chars().count())
        .unwrap();
    let first_row: Vec<char> = plot[0].chars().skip(label_width + 1).collect();
    let last_row: Vec<char> = plot[plot.len() - 1].chars().skip(label_width + 1).collect();
    assert_ne!(first_row[0], ' ');
    assert_ne!(last_row[last_row.len() - 1], ' ');
    assert!(lines[lines.len() - 3].contains('└'));
    assert!(lines[lines.len() - 2].trim_start().starts_with('0'));
    assert!(lines[lines.len() - 2].trim_end().ends_with("499"));
    assert!(lines[lines.len() - 1].starts_with("━ train 0.1"));
}

#[test]
fn log_scale_and_smoothing_work_in_text_too() {
    let options = TextChartOptions {
        width: 50,
        height: 12,
        log_y: true,
        smoothing: Some(0.9),
        ..TextChartOptions::default()
    };
    let chart = render_text_chart(&[loss("train", 300, 0.01)], &options).unwrap();
    assert_eq!(chart.lines().count(), 12);
}

#[test]
fn too_small_or_empty_is_an_error() {
    let series = [loss("train", 10, 0.1)];
    for (width, height) in [(19, 10), (40, 3), (0, 0)] {
        let options = TextChartOptions {
            width,
            height,
            ..TextChartOptions::default()
        };
        assert!(matches!(
            render_text_chart(&series, &options),
            Err(VisualizerError::InvalidSize { .. })
        ));
    }
    assert!(matches!(
        render_text_chart(&[Series::new("empty")], &TextChartOptions::default()),
        Err(VisualizerError::NoData(_))
    ));
}
