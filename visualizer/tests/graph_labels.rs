//! Node labels are shown whole: a long op name widens its box, longer text wraps onto
//! further lines in a taller box, and boxes still never overlap. Ordinary labels keep
//! their one-line look.

mod common;

use common::drawing::{
    assert_no_overlaps, child_with_class, number, parse, rect_of, text_lines, text_of, tooltip,
    with_class, Pixels,
};
use common::scoped_model_graph;
use roxmltree::{Document, Node};
use sluice_visualizer::graph_png::render_graph_png;
use sluice_visualizer::graph_svg::render_graph_svg;
use sluice_visualizer::graph_view::{EdgeView, GraphView, NodeView};
use sluice_visualizer::layout::{layout_graph, GraphDrawOptions, Rect};
use sluice_visualizer::scopes::CollapseOptions;

const XENT: &str = "SparseSoftmaxCrossEntropyWithLogits";
/// A node name far wider than any box may grow.
const LONG_NAME: &str =
    "weighted_sparse_softmax_cross_entropy_with_logits_and_label_smoothing_for_the_class_value";

/// A classifier's loss as TensorFlow names it, with short-named nodes in the same layers.
fn loss_graph() -> GraphView {
    let mut g = GraphView::new();
    g.add_node(NodeView::new(0, "dense/BiasAdd", "BiasAdd"));
    g.add_node(NodeView::new(1, "labels", "Placeholder"));
    g.add_node(NodeView::new(2, format!("loss/{XENT}"), XENT));
    g.add_node(NodeView::new(3, "loss/Softmax", "Softmax"));
    g.add_node(NodeView::new(4, format!("loss/{LONG_NAME}"), "Mean"));
    g.add_node(NodeView::new(5, "loss/Max", "Max"));
    g.add_node(NodeView::new(6, "total", "AddN"));
    for (from, to) in [(0, 2), (1, 2), (0, 3), (2, 4), (3, 5), (4, 6), (5, 6)] {
        g.add_edge(EdgeView::data(from, to));
    }
    g
}

/// The `<g class="node">` whose tooltip starts with the node's full name.
fn node_named<'a>(doc: &'a Document, name: &str) -> Node<'a, 'a> {
    with_class(doc, "node")
        .into_iter()
        .find(|n| tooltip(n).starts_with(&format!("{name}\n")))
        .unwrap_or_else(|| panic!("no node {name}"))
}

#[test]
fn long_op_names_are_drawn_whole() {
    let svg = render_graph_svg(&loss_graph(), &GraphDrawOptions::default()).unwrap();
    let doc = parse(&svg);
    let node = node_named(&doc, &format!("loss/{XENT}"));
    let op = child_with_class(&node, "node-op").unwrap();
    assert_eq!(text_of(&op), XENT);
    // The box grows to fit it on one line.
    assert_eq!(text_lines(&op).len(), 1);
    let labels = with_class(&doc, "node-op")
        .into_iter()
        .chain(with_class(&doc, "node-name"));
    for label in labels {
        assert!(!text_of(&label).contains('…'), "{} is cut", text_of(&label));
    }
}

#[test]
fn long_names_wrap_inside_a_taller_box() {
    let svg = render_graph_svg(&loss_graph(), &GraphDrawOptions::default()).unwrap();
    let doc = parse(&svg);
    let node = node_named(&doc, &format!("loss/{LONG_NAME}"));
    let name = child_with_class(&node, "node-name").unwrap();
    assert_eq!(text_of(&name), LONG_NAME, "the lines join back to the name");
    let lines = text_lines(&name);
    assert!(lines.len() >= 2, "{LONG_NAME} is on one line");
    let rect = rect_of(&child_with_class(&node, "node-box").unwrap());
    let ordinary = rect_of(&child_with_class(&node_named(&doc, "loss/Max"), "node-box").unwrap());
    assert!(rect.height > ordinary.height, "{rect:?}");
    assert!(rect.width < 400.0, "the box stops growing: {rect:?}");
    // Every line (op first, then the name's lines) inside the box, one below the other,
    // centred on it.
    let op = child_with_class(&node, "node-op").unwrap();
    let baselines: Vec<f64> = std::iter::once(op)
        .chain(lines.iter().copied())
        .map(|line| {
            let x = number(&line, "x");
            assert!((x - rect.center().0).abs() < 0.1);
            number(&line, "y")
        })
        .collect();
    assert!(
        baselines.windows(2).all(|w| w[1] >= w[0] + 12.0),
        "{baselines:?}"
    );
    assert!(baselines[0] - 12.0 > rect.y && baselines[baselines.len() - 1] < rect.bottom());
}

#[test]
fn png_draws_every_line_of_a_wrapped_label() {
    let graph = loss_graph();
    let options = GraphDrawOptions::default();
    // Without a title the SVG and the PNG share coordinates.
    let svg = render_graph_svg(&graph, &options).unwrap();
    let doc = parse(&svg);
    let node = node_named(&doc, &format!("loss/{LONG_NAME}"));
    let rect = rect_of(&child_with_class(&node, "node-box").unwrap());
    let name_lines = text_lines(&child_with_class(&node, "node-name").unwrap());
    assert!(name_lines.len() >= 2);
    let png = Pixels::decode(&render_graph_png(&graph, &options).unwrap());
    for line in name_lines {
        let baseline = number(&line, "y");
        let band = Rect {
            x: rect.x + 3.0,
            y: baseline - 9.0,
            width: rect.width - 6.0,
            height: 10.0,
        };
        assert!(
            png.dark_pixels_in(band) > 20,
            "no text at y {baseline} in the PNG"
        );
    }
}

/// The 55-layer model's graph with every fifth node given a long name and every seventh a
/// long op, so that wide and tall boxes share layers and scopes with ordinary ones.
fn model_with_long_labels() -> GraphView {
    let mut graph = scoped_model_graph(6);
    for (i, node) in graph.nodes.iter_mut().enumerate() {
        if i % 5 == 0 {
            node.name = format!("{}_{LONG_NAME}", node.name);
        }
        if i % 7 == 0 {
            node.op = format!("{XENT}{XENT}");
        }
    }
    graph
}

#[test]
fn boxes_with_wrapped_labels_do_not_overlap() {
    let graph = model_with_long_labels();
    for collapse in [CollapseOptions::default(), CollapseOptions::expand_all()] {
        let options = GraphDrawOptions {
            collapse,
            edge_labels: true,
            ..GraphDrawOptions::default()
        };
        let layout = layout_graph(&graph, &options).unwrap();
        let rects: Vec<Rect> = layout.boxes.iter().map(|b| b.rect).collect();
        assert!(
            rects.iter().any(|r| r.height > 36.0),
            "some boxes are taller"
        );
        assert_no_overlaps(&rects);
        for scope in &layout.scopes {
            for other in &layout.scopes {
                let apart = !scope.rect.intersects(&other.rect);
                let nested = scope.rect.contains(&other.rect) || other.rect.contains(&scope.rect);
                assert!(apart || nested, "{} and {} cross", scope.path, other.path);
            }
        }
        // Each node lies inside the box of its scope.
        for b in &layout.boxes {
            let sluice_visualizer::layout::BoxKind::Node(n) = b.kind else {
                continue;
            };
            let scope = &graph.nodes[n].scope;
            if let Some(frame) = layout.scopes.iter().find(|s| &s.path == scope) {
                assert!(
                    frame.rect.contains(&b.rect),
                    "{} outside {scope}",
                    graph.nodes[n].name
                );
            }
        }
        // Edges start at their source box and end at their target box.
        for edge in &layout.edges {
            let (from, to) = (layout.boxes[edge.from].rect, layout.boxes[edge.to].rect);
            let (first, last) = (edge.points[0], edge.points[edge.points.len() - 1]);
            assert!(first.1 == from.bottom() || first.1 == from.y);
            assert!(last.1 == to.y || last.1 == to.bottom());
        }
    }
}

#[test]
fn ordinary_labels_keep_their_one_line_look() {
    let svg = render_graph_svg(&scoped_model_graph(3), &GraphDrawOptions::default()).unwrap();
    let doc = parse(&svg);
    for rect in with_class(&doc, "node-box").iter().map(rect_of) {
        assert_eq!(rect.height, 36.0);
    }
    assert!(!svg.contains("<tspan"), "short labels need no line breaks");
}
