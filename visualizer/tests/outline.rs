//! The text outline shows every name whole, keeping its columns aligned.

use sluice_visualizer::graph_view::{EdgeView, GraphView, NodeView};
use sluice_visualizer::outline::render_outline;
use sluice_visualizer::scopes::CollapseOptions;

const LONG: &str = "weighted_sparse_softmax_cross_entropy_with_logits_value";

#[test]
fn long_names_are_shown_whole_with_their_columns_aligned() {
    let mut graph = GraphView::new();
    graph.add_node(NodeView::new(0, "logits", "BiasAdd").typed("f32", &[None, Some(10)]));
    graph.add_node(NodeView::new(1, format!("loss/{LONG}"), "Mean").typed("f32", &[]));
    graph.add_node(NodeView::new(2, "loss/total", "Identity").typed("f32", &[]));
    graph.add_edge(EdgeView::data(0, 1));
    graph.add_edge(EdgeView::data(1, 2));
    let text = render_outline(&graph, &CollapseOptions::default());
    let lines: Vec<&str> = text.lines().collect();
    assert!(!text.contains('…'), "{text}");
    let name_line = lines
        .iter()
        .position(|l| l.ends_with(LONG))
        .unwrap_or_else(|| panic!("{LONG} is cut:\n{text}"));
    // The columns follow on the next line, under the other rows' columns, and the tree
    // line to the next sibling goes on through it.
    let columns = lines[name_line + 1];
    let op_column = |line: &str, op: &str| line.find(op).map(|at| line[..at].chars().count());
    assert_eq!(
        op_column(columns, "Mean"),
        op_column(lines[1], "BiasAdd"),
        "{text}"
    );
    assert!(columns.starts_with("    │"), "{text}");
    assert!(lines[name_line + 2].contains("└── total"), "{text}");
}
