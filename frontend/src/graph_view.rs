//! A graph as the visualizer's plain data, and its drawings: SVG for notebooks, an outline
//! for terminals, a one-line text for clients that show no pictures.

use crate::error::Result;
use sluice::Graph;
use sluice_visualizer::{
    render_graph_svg, render_outline, CollapseOptions, EdgeView, GraphDrawOptions, GraphView,
    NodeView,
};

/// Nodes (name, op, device, dtype and shape of the first output) and edges (data and control).
pub fn graph_view(graph: &Graph) -> GraphView {
    let mut view = GraphView::new();
    let nodes = graph.nodes();
    for (id, node) in nodes.iter().enumerate() {
        let mut v = NodeView::new(id, node.name.clone(), node.op_name());
        if !node.device.is_empty() {
            v = v.on(node.device.clone());
        }
        if let Some(out) = node.outputs.first() {
            let shape: Vec<Option<u64>> = out.shape.0.iter().map(|d| d.map(|d| d as u64)).collect();
            v = v.typed(out.dtype.name(), &shape);
        }
        view.add_node(v);
    }
    for (id, node) in nodes.iter().enumerate() {
        for input in &node.inputs {
            if input.node() < nodes.len() {
                view.add_edge(EdgeView::data(input.node(), id));
            }
        }
        for &control in &node.control_inputs {
            if control < nodes.len() {
                view.add_edge(EdgeView::control(control, id));
            }
        }
    }
    view
}

/// What a drawing of the graph is titled: its size, as the summary counts it.
pub fn graph_title(graph: &Graph) -> String {
    let summary = graph.summary();
    format!(
        "{} nodes, {} trainable parameters",
        summary.nodes,
        sluice::graph::thousands(summary.parameters)
    )
}

/// The graph drawn as SVG, training scopes collapsed.
pub fn graph_svg(graph: &Graph) -> Result<String> {
    let options = GraphDrawOptions {
        title: Some(graph_title(graph)),
        edge_labels: true,
        ..GraphDrawOptions::default()
    };
    Ok(render_graph_svg(&graph_view(graph), &options)?)
}

/// The graph as an indented outline (name scopes as groups, training scopes collapsed).
pub fn graph_outline(graph: &Graph) -> String {
    let mut text = render_outline(&graph_view(graph), &CollapseOptions::default());
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// A one-paragraph text form of the graph, for clients that show no pictures.
pub fn graph_text(graph: &Graph) -> String {
    let nodes = graph.nodes();
    let mut ops: std::collections::BTreeMap<&str, usize> = Default::default();
    for n in &nodes {
        *ops.entry(n.op_name()).or_default() += 1;
    }
    let ops = ops
        .iter()
        .map(|(op, n)| format!("{op} x{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("Graph with {} nodes: {ops}", nodes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice::prelude::*;

    #[test]
    fn converts_nodes_and_edges() {
        let g = Graph::new();
        let x = g.placeholder("x", DType::F32, &[-1, 3]);
        let w = g.variable("W", &[3, 2], Initializer::Zeros);
        let _y = matmul(x, w);
        let view = graph_view(&g);
        assert_eq!(view.nodes.len(), g.len());
        assert!(view
            .nodes
            .iter()
            .any(|n| n.name == "x" && n.op == "Placeholder"));
        assert!(view.edges.len() >= 2);
        let svg = graph_svg(&g).unwrap_or_default();
        assert!(svg.contains("<svg"));
        assert!(svg.contains("6 trainable parameters"), "titled by its size");
        assert!(graph_text(&g).contains("nodes"));
        assert!(graph_outline(&g).contains("graph:"));
    }
}
