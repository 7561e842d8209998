//! Prints a braille loss chart and the outline of a small graph, as the REPL shows them.
//!
//! `cargo run --release -p sluice-visualizer --example terminal [WIDTH HEIGHT]`

use sluice_visualizer::graph_view::{EdgeView, GraphView, NodeView};
use sluice_visualizer::outline::render_outline;
use sluice_visualizer::scopes::CollapseOptions;
use sluice_visualizer::series::Series;
use sluice_visualizer::text_chart::{render_text_chart, TextChartOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let width = args.next().and_then(|a| a.parse().ok()).unwrap_or(72);
    let height = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);

    let curve = |name: &str, every: usize, floor: f64| {
        Series::from_pairs(
            name,
            (0..2000).step_by(every).map(|i| {
                let wobble = 0.08 * ((i as f64) * 0.37).sin() * ((i as f64) * 0.011).cos();
                (i as f64, floor + 2.2 * (-(i as f64) / 400.0).exp() + wobble)
            }),
        )
    };
    let options = TextChartOptions {
        width,
        height,
        title: Some("cross-entropy".into()),
        color: std::env::var_os("NO_COLOR").is_none(),
        ..TextChartOptions::default()
    };
    println!(
        "{}\n",
        render_text_chart(
            &[curve("train", 1, 0.25), curve("test", 50, 0.32)],
            &options
        )?
    );

    let mut graph = GraphView::new();
    let nodes = [
        NodeView::new(0, "x", "Placeholder").typed("f32", &[None, Some(784)]),
        NodeView::new(1, "dense/W", "Variable").typed("f32", &[Some(784), Some(10)]),
        NodeView::new(2, "dense/MatMul", "MatMul").typed("f32", &[None, Some(10)]),
        NodeView::new(3, "Softmax", "Softmax").typed("f32", &[None, Some(10)]),
        NodeView::new(4, "gradients/MatMul_grad/MatMul_1", "MatMul"),
        NodeView::new(5, "GradientDescent/update_W", "ApplyGradientDescent"),
        NodeView::new(6, "train", "NoOp"),
    ];
    for node in nodes {
        graph.add_node(node.on("/job:localhost/task:0/device:CPU:0"));
    }
    for (from, to) in [(0, 2), (1, 2), (2, 3), (3, 4), (4, 5)] {
        graph.add_edge(EdgeView::data(from, to));
    }
    graph.add_edge(EdgeView::control(5, 6));
    print!("{}", render_outline(&graph, &CollapseOptions::default()));
    Ok(())
}
