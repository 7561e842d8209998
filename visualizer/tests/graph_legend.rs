//! The device legend: drawn when devices tell nodes apart, left out (with its room) when
//! no node has a device, as in most notebooks.

mod common;

use common::drawing::{number, parse, text_of, with_class, Pixels};
use sluice_visualizer::graph_png::render_graph_png;
use sluice_visualizer::graph_svg::render_graph_svg;
use sluice_visualizer::graph_view::{EdgeView, GraphView, NodeView};
use sluice_visualizer::layout::{layout_graph, GraphDrawOptions};

const GPU: &str = "/job:localhost/replica:0/task:0/device:GPU:0";

/// `y = matmul(x, W)`, with `device` on W and nothing on the others.
fn matmul_graph(device_of_w: &str) -> GraphView {
    let mut g = GraphView::new();
    g.add_node(NodeView::new(0, "x", "Placeholder").typed("f32", &[None, Some(784)]));
    g.add_node(NodeView::new(1, "W", "Variable").on(device_of_w));
    g.add_node(NodeView::new(2, "y", "MatMul"));
    g.add_edge(EdgeView::data(0, 2));
    g.add_edge(EdgeView::data(1, 2));
    g
}

#[test]
fn a_graph_without_devices_has_no_legend_in_svg() {
    let graph = matmul_graph("");
    let options = GraphDrawOptions::default();
    let svg = render_graph_svg(&graph, &options).unwrap();
    let doc = parse(&svg);
    assert!(with_class(&doc, "legend").is_empty(), "{svg}");
    assert!(!svg.contains("(no device)") && !svg.contains(">Devices<"));
    // No room is kept for it either: the drawing is as wide as the graph.
    let layout = layout_graph(&graph, &options).unwrap();
    let width = number(&doc.root_element(), "width");
    assert!(
        (width - layout.width).abs() < 0.1,
        "{width} for {}",
        layout.width
    );
}

#[test]
fn a_graph_without_devices_has_no_legend_in_png() {
    let graph = matmul_graph("");
    let options = GraphDrawOptions::default();
    let png = Pixels::decode(&render_graph_png(&graph, &options).unwrap());
    let layout = layout_graph(&graph, &options).unwrap();
    // PNGs are at least 160 pixels wide.
    let expected = (layout.width.ceil() as u32).max(160);
    assert_eq!(png.width, expected, "graph {} wide", layout.width);
}

#[test]
fn unplaced_nodes_are_listed_beside_placed_ones() {
    let graph = matmul_graph(GPU);
    let options = GraphDrawOptions::default();
    let svg = render_graph_svg(&graph, &options).unwrap();
    let doc = parse(&svg);
    let legend: Vec<String> = with_class(&doc, "legend-label")
        .iter()
        .map(text_of)
        .collect();
    assert_eq!(legend, [GPU, "(no device)"]);
    let layout = layout_graph(&graph, &options).unwrap();
    let png = Pixels::decode(&render_graph_png(&graph, &options).unwrap());
    assert!(
        f64::from(png.width) > layout.width + 100.0,
        "the PNG keeps room for the legend"
    );
}
