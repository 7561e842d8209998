//! Render times: `cargo bench -p sluice-visualizer --bench render`.
//! Prints the median of several runs for each case; targets (2-core machine): 10,000-point
//! curve to SVG under 20 ms, 100,000-point under 50 ms, 1,000-node graph under 500 ms.

#[path = "../tests/common/mod.rs"]
mod common;

use sluice_visualizer::curve::{render_curve_png, render_curve_svg, CurveOptions};
use sluice_visualizer::graph_svg::render_graph_svg;
use sluice_visualizer::layout::GraphDrawOptions;
use sluice_visualizer::scopes::CollapseOptions;
use sluice_visualizer::series::Series;
use sluice_visualizer::text_chart::{render_text_chart, TextChartOptions};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn median_time<T>(runs: usize, mut work: impl FnMut() -> T) -> Duration {
    black_box(work()); // warm-up: font parsing, allocations
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(work());
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn noisy_loss(points: usize) -> Series {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    Series::from_pairs(
        "train",
        (0..points).map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 11) as f64 / (1u64 << 53) as f64;
            let clean = 0.1 + 2.3 * (-(i as f64) * 5.0 / points as f64).exp();
            (i as f64, clean * (0.8 + 0.4 * noise))
        }),
    )
}

fn report(name: &str, target_ms: Option<f64>, time: Duration) {
    let ms = time.as_secs_f64() * 1e3;
    let verdict = match target_ms {
        Some(target) if ms < target => format!("(target < {target} ms: met)"),
        Some(target) => format!("(target < {target} ms: MISSED)"),
        None => String::new(),
    };
    println!("{name:<52} {ms:>9.2} ms  {verdict}");
}

fn main() {
    let runs = 21;
    let options = CurveOptions::default();
    let smoothed = CurveOptions {
        smoothing: Some(0.9),
        ..CurveOptions::default()
    };
    println!("median of {runs} runs each");
    for (points, target) in [(10_000, 20.0), (100_000, 50.0)] {
        let series = [noisy_loss(points)];
        let t = median_time(runs, || {
            render_curve_svg(&series, &options).map(|s| s.len())
        });
        report(&format!("curve, {points} points -> SVG"), Some(target), t);
        let t = median_time(runs, || {
            render_curve_svg(&series, &smoothed).map(|s| s.len())
        });
        report(
            &format!("curve, {points} points, EMA smoothing -> SVG"),
            None,
            t,
        );
        let t = median_time(runs, || {
            render_curve_png(&series, &options).map(|s| s.len())
        });
        report(&format!("curve, {points} points -> PNG 800x450"), None, t);
        let text = TextChartOptions::default();
        let t = median_time(runs, || render_text_chart(&series, &text).map(|s| s.len()));
        report(&format!("curve, {points} points -> text 80x20"), None, t);
    }
    let graph = common::scoped_model_graph(55);
    let collapsed = GraphDrawOptions::default();
    let t = median_time(runs, || {
        render_graph_svg(&graph, &collapsed).map(|s| s.len())
    });
    report("graph, 1000 nodes, default collapse -> SVG", Some(500.0), t);
    let expanded = GraphDrawOptions {
        collapse: CollapseOptions::expand_all(),
        edge_labels: true,
        ..GraphDrawOptions::default()
    };
    let t = median_time(runs, || {
        render_graph_svg(&graph, &expanded).map(|s| s.len())
    });
    report(
        "graph, 1000 nodes, all expanded, edge labels -> SVG",
        Some(500.0),
        t,
    );
}
