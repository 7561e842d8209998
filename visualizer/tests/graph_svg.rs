//! Graph drawings: parse the SVG as XML and check what a reader would look for.

mod common;

use common::drawing::{
    assert_no_overlaps, child_with_class, has_class, parse, rect_of, text_of, tooltip, with_class,
};
use common::scoped_model_graph;
use sluice_visualizer::error::VisualizerError;
use sluice_visualizer::graph_png::render_graph_png;
use sluice_visualizer::graph_svg::render_graph_svg;
use sluice_visualizer::graph_view::{EdgeView, GraphView, NodeView};
use sluice_visualizer::layout::{layout_graph, BoxKind, GraphDrawOptions, Rect};
use sluice_visualizer::scopes::CollapseOptions;
use std::collections::HashMap;

const CPU: &str = "/job:worker/task:0/device:CPU:0";
const GPU: &str = "/job:worker/task:0/device:GPU:0";
const PS: &str = "/job:ps/task:0/device:CPU:0";

/// The seed program in small: forward pass in a `model/` scope, loss at the top level,
/// gradients and optimizer scopes, and a `train` node with control inputs.
fn small_graph() -> GraphView {
    let mut g = GraphView::new();
    let mut add = |id: usize, name: &str, op: &str, device: &str, shape: &[Option<u64>]| {
        g.add_node(NodeView::new(id, name, op).on(device).typed("f32", shape));
    };
    add(0, "x", "Placeholder", CPU, &[None, Some(784)]);
    add(1, "model/W", "Variable", PS, &[Some(784), Some(10)]);
    add(2, "model/b", "Variable", PS, &[Some(10)]);
    add(3, "model/MatMul", "MatMul", GPU, &[None, Some(10)]);
    add(4, "model/Add", "Add", GPU, &[None, Some(10)]);
    add(5, "Softmax", "Softmax", GPU, &[None, Some(10)]);
    add(
        6,
        "gradients/Softmax_grad/Mul",
        "Mul",
        GPU,
        &[None, Some(10)],
    );
    add(
        7,
        "gradients/MatMul_grad/MatMul_1",
        "MatMul",
        GPU,
        &[Some(784), Some(10)],
    );
    add(
        8,
        "GradientDescent/update_W/Apply",
        "ApplyGradientDescent",
        PS,
        &[Some(784), Some(10)],
    );
    add(9, "train", "NoOp", PS, &[]);
    for (from, to) in [
        (0, 3),
        (1, 3),
        (3, 4),
        (2, 4),
        (4, 5),
        (5, 6),
        (6, 7),
        (0, 7),
        (7, 8),
        (1, 8),
    ] {
        g.add_edge(EdgeView::data(from, to));
    }
    g.add_edge(EdgeView::control(8, 9));
    g
}

#[test]
fn nodes_carry_labels_and_tooltips() {
    let graph = small_graph();
    let svg = render_graph_svg(&graph, &GraphDrawOptions::default()).unwrap();
    let doc = parse(&svg);
    let ops: Vec<String> = with_class(&doc, "node-op").iter().map(text_of).collect();
    for op in ["Placeholder", "MatMul", "Add", "Softmax", "NoOp"] {
        assert!(ops.contains(&op.to_string()), "no label {op} in {ops:?}");
    }
    let names: Vec<String> = with_class(&doc, "node-name").iter().map(text_of).collect();
    assert!(names.contains(&"x".to_string()) && names.contains(&"train".to_string()));

    let nodes = with_class(&doc, "node");
    assert!(!nodes.is_empty());
    for node in &nodes {
        let tip = tooltip(node);
        assert!(!tip.is_empty(), "a node without a tooltip");
        assert!(tip.contains("device: "), "{tip}");
    }
    let matmul = nodes
        .iter()
        .find(|n| tooltip(n).starts_with("model/MatMul\n"))
        .expect("model/MatMul is drawn");
    assert_eq!(
        tooltip(matmul),
        format!("model/MatMul\nop: MatMul\nshape: f32[?, 10]\ndevice: {GPU}")
    );
}

#[test]
fn training_scopes_are_collapsed_by_default_and_expandable() {
    let graph = small_graph();
    let svg = render_graph_svg(&graph, &GraphDrawOptions::default()).unwrap();
    let doc = parse(&svg);
    let collapsed: Vec<String> = with_class(&doc, "collapsed-scope")
        .iter()
        .map(|n| tooltip(n))
        .collect();
    assert_eq!(collapsed.len(), 2, "{collapsed:?}");
    assert!(collapsed[0].starts_with("gradients/ (collapsed)\n2 nodes"));
    assert!(collapsed[1].starts_with("GradientDescent/ (collapsed)\n1 node"));
    assert!(!svg.contains("Softmax_grad"), "gradient nodes are hidden");
    // The forward scope is open: a box with its name.
    let scopes = with_class(&doc, "scope");
    assert_eq!(scopes.len(), 1);
    assert_eq!(scopes[0].attribute("data-scope"), Some("model"));

    let options = GraphDrawOptions {
        collapse: CollapseOptions::expand_all(),
        ..GraphDrawOptions::default()
    };
    let doc_svg = render_graph_svg(&graph, &options).unwrap();
    let doc = parse(&doc_svg);
    assert!(with_class(&doc, "collapsed-scope").is_empty());
    let mut paths: Vec<&str> = with_class(&doc, "scope")
        .iter()
        .filter_map(|n| n.attribute("data-scope"))
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "GradientDescent",
            "GradientDescent/update_W",
            "gradients",
            "gradients/MatMul_grad",
            "gradients/Softmax_grad",
            "model"
        ]
    );
    let labels: Vec<String> = with_class(&doc, "scope-label")
        .iter()
        .map(text_of)
        .collect();
    assert!(labels.contains(&"update_W/".to_string()));
}

#[test]
fn scope_boxes_enclose_their_nodes() {
    let graph = small_graph();
    let options = GraphDrawOptions {
        collapse: CollapseOptions::expand_all(),
        ..GraphDrawOptions::default()
    };
    let doc_svg = render_graph_svg(&graph, &options).unwrap();
    let doc = parse(&doc_svg);
    let scope_rects: HashMap<String, Rect> = with_class(&doc, "scope")
        .iter()
        .map(|s| {
            let rect = rect_of(&child_with_class(s, "scope-box").unwrap());
            (s.attribute("data-scope").unwrap().to_string(), rect)
        })
        .collect();
    for node in with_class(&doc, "node") {
        let full_name = tooltip(&node).lines().next().unwrap().to_string();
        let rect = rect_of(&child_with_class(&node, "node-box").unwrap());
        let mut scope = full_name.as_str();
        while let Some((outer, _)) = scope.rsplit_once('/') {
            assert!(
                scope_rects[outer].contains(&rect),
                "{full_name} is outside its scope box {outer}"
            );
            scope = outer;
        }
    }
}

#[test]
fn scope_boxes_have_no_empty_band_under_their_title() {
    // x -> dense/MatMul -> y: the scope has an entry point above its node and an exit
    // point below it, which need the same short gap.
    let mut graph = GraphView::new();
    graph.add_node(NodeView::new(0, "x", "Placeholder"));
    graph.add_node(NodeView::new(1, "dense/MatMul", "MatMul"));
    graph.add_node(NodeView::new(2, "y", "Softmax"));
    graph.add_edge(EdgeView::data(0, 1));
    graph.add_edge(EdgeView::data(1, 2));
    let layout = layout_graph(&graph, &GraphDrawOptions::default()).unwrap();
    let scope = layout.scopes[0].rect;
    let node = layout
        .boxes
        .iter()
        .find(|b| b.heading == "MatMul")
        .unwrap()
        .rect;
    let (above, below) = (node.y - scope.y, scope.bottom() - node.bottom());
    // Above: the title row (22 px) and the gap; below: the gap and the padding (12 px).
    assert!(
        above - 22.0 <= below,
        "{above} px above the node, {below} below"
    );
}

#[test]
fn colours_follow_devices_and_the_legend_lists_them() {
    let graph = small_graph();
    let svg = render_graph_svg(&graph, &GraphDrawOptions::default()).unwrap();
    let doc = parse(&svg);
    let mut fill_of_device: HashMap<String, String> = HashMap::new();
    for node in with_class(&doc, "node") {
        if has_class(&node, "collapsed-scope") {
            continue;
        }
        let device = node.attribute("data-device").unwrap().to_string();
        let fill = child_with_class(&node, "node-box")
            .and_then(|r| r.attribute("fill"))
            .unwrap()
            .to_string();
        let previous = fill_of_device.insert(device.clone(), fill.clone());
        assert!(
            previous.is_none() || previous == Some(fill),
            "{device} has two colours"
        );
    }
    assert_eq!(fill_of_device.len(), 3);
    let mut fills: Vec<&String> = fill_of_device.values().collect();
    fills.sort();
    fills.dedup();
    assert_eq!(fills.len(), 3, "devices share a colour");

    let legend: HashMap<String, String> = with_class(&doc, "legend-entry")
        .iter()
        .map(|entry| {
            let label = text_of(&child_with_class(entry, "legend-label").unwrap());
            let fill = child_with_class(entry, "legend-swatch")
                .and_then(|r| r.attribute("fill"))
                .unwrap()
                .to_string();
            (label, fill)
        })
        .collect();
    for (device, fill) in &fill_of_device {
        assert_eq!(legend.get(device), Some(fill), "legend entry for {device}");
    }
    // The collapsed gradients live on one device and take its colour; the collapsed
    // optimizer scope too.
    for collapsed in with_class(&doc, "collapsed-scope") {
        let fill = child_with_class(&collapsed, "node-box")
            .and_then(|r| r.attribute("fill"))
            .unwrap();
        assert!(legend.values().any(|f| f == fill));
    }
}

#[test]
fn edges_are_drawn_with_shape_labels_on_request() {
    let graph = small_graph();
    let plain = render_graph_svg(&graph, &GraphDrawOptions::default()).unwrap();
    assert!(with_class(&parse(&plain), "edge-label").is_empty());
    let options = GraphDrawOptions {
        edge_labels: true,
        collapse: CollapseOptions::expand_all(),
        ..GraphDrawOptions::default()
    };
    let svg = render_graph_svg(&graph, &options).unwrap();
    let doc = parse(&svg);
    let labels: Vec<String> = with_class(&doc, "edge-label").iter().map(text_of).collect();
    assert!(labels.contains(&"f32[?, 784]".to_string()), "{labels:?}");
    assert!(labels.contains(&"f32[784, 10]".to_string()), "{labels:?}");
    let data = with_class(&doc, "edge-data").len();
    let control = with_class(&doc, "edge-control");
    assert_eq!(data, 10);
    assert_eq!(control.len(), 1);
    assert!(control[0].attribute("stroke-dasharray").is_some());
}

#[test]
fn every_edge_has_its_own_arrowhead_and_no_shared_marker() {
    // A notebook shows many drawings in one page: an id one drawing defines and others use
    // breaks their arrows when that drawing is hidden.
    let svg = render_graph_svg(&small_graph(), &GraphDrawOptions::default()).unwrap();
    assert!(
        !svg.contains("<marker") && !svg.contains("url(#"),
        "shared marker in:\n{svg}"
    );
    let doc = parse(&svg);
    let edges = with_class(&doc, "edge").len();
    let heads = with_class(&doc, "arrowhead");
    assert!(edges > 0);
    assert_eq!(heads.len(), edges);
    for head in heads {
        let points = head.attribute("points").unwrap_or_default();
        assert_eq!(points.split(' ').count(), 3, "a triangle: {points}");
    }
}

#[test]
fn names_are_escaped_and_titles_shown() {
    let mut graph = GraphView::new();
    graph.add_node(NodeView::new(0, "a<b>&\"c\"", "Op<T>"));
    graph.add_node(NodeView::new(1, "d", "Identity"));
    graph.add_edge(EdgeView::data(0, 1));
    let options = GraphDrawOptions {
        title: Some("R&D <graph>".into()),
        ..GraphDrawOptions::default()
    };
    let svg = render_graph_svg(&graph, &options).unwrap();
    let doc = parse(&svg);
    let ops: Vec<String> = with_class(&doc, "node-op").iter().map(text_of).collect();
    assert!(ops.contains(&"Op<T>".to_string()));
    assert_eq!(text_of(&with_class(&doc, "graph-title")[0]), "R&D <graph>");
}

#[test]
fn bad_graphs_are_errors_not_panics() {
    let mut graph = GraphView::new();
    graph.add_node(NodeView::new(0, "a", "Const"));
    graph.add_edge(EdgeView::data(0, 3));
    assert!(matches!(
        render_graph_svg(&graph, &GraphDrawOptions::default()),
        Err(VisualizerError::UnknownEdgeEndpoint { .. })
    ));
    let empty = render_graph_svg(&GraphView::new(), &GraphDrawOptions::default()).unwrap();
    parse(&empty);
    // A layout drawn with a graph it was not made for.
    let big = small_graph();
    let layout = layout_graph(&big, &GraphDrawOptions::default()).unwrap();
    assert!(matches!(
        sluice_visualizer::render_layout_svg(
            &GraphView::new(),
            &layout,
            &GraphDrawOptions::default()
        ),
        Err(VisualizerError::InvalidOption(_))
    ));
    // An absurdly long name wraps onto a few lines and then is cut, not measured forever.
    let mut long = GraphView::new();
    long.add_node(NodeView::new(0, "n".repeat(200_000), "Op"));
    let svg = render_graph_svg(&long, &GraphDrawOptions::default()).unwrap();
    assert!(svg.contains("nnn…"));
    let layout = layout_graph(&long, &GraphDrawOptions::default()).unwrap();
    assert!(layout.height < 300.0, "{} px tall", layout.height);
    // A cycle (which the engine would reject) is still drawn.
    let mut cyclic = GraphView::new();
    cyclic.add_node(NodeView::new(0, "a", "Add"));
    cyclic.add_node(NodeView::new(1, "b", "Add"));
    cyclic.add_edge(EdgeView::data(0, 1));
    cyclic.add_edge(EdgeView::data(1, 0));
    parse(&render_graph_svg(&cyclic, &GraphDrawOptions::default()).unwrap());
}

#[test]
fn a_thousand_node_graph_is_readable() {
    let graph = scoped_model_graph(55);
    assert_eq!(graph.nodes.len(), 1000);
    let options = GraphDrawOptions::default();
    let layout = layout_graph(&graph, &options).unwrap();
    // Collapsed to a readable size, the training scopes as single boxes.
    assert!(layout.boxes.len() <= 120, "{} boxes", layout.boxes.len());
    let collapsed: Vec<&str> = layout
        .boxes
        .iter()
        .filter_map(|b| match &b.kind {
            BoxKind::CollapsedScope { path, .. } => Some(path.as_str()),
            BoxKind::Node(_) => None,
        })
        .collect();
    assert!(collapsed.contains(&"gradients") && collapsed.contains(&"Adam"));
    let rects: Vec<Rect> = layout.boxes.iter().map(|b| b.rect).collect();
    assert_no_overlaps(&rects);

    // The same holds for the drawn SVG, read back.
    let svg = render_graph_svg(&graph, &options).unwrap();
    let doc = parse(&svg);
    let drawn: Vec<Rect> = with_class(&doc, "node-box").iter().map(rect_of).collect();
    assert_eq!(drawn.len(), layout.boxes.len());
    assert_no_overlaps(&drawn);
    assert_eq!(with_class(&doc, "node").len(), drawn.len());
    assert!(with_class(&doc, "node")
        .iter()
        .all(|n| !tooltip(n).is_empty()));
}

#[test]
fn a_thousand_nodes_fully_expanded_do_not_overlap_either() {
    let graph = scoped_model_graph(55);
    let options = GraphDrawOptions {
        collapse: CollapseOptions::expand_all(),
        ..GraphDrawOptions::default()
    };
    let layout = layout_graph(&graph, &options).unwrap();
    assert_eq!(layout.boxes.len(), 1000);
    let rects: Vec<Rect> = layout.boxes.iter().map(|b| b.rect).collect();
    assert_no_overlaps(&rects);
    // Scope boxes nest: two scope boxes either are disjoint or one holds the other.
    for (i, a) in layout.scopes.iter().enumerate() {
        for b in &layout.scopes[i + 1..] {
            let nested = a.rect.contains(&b.rect) || b.rect.contains(&a.rect);
            assert!(
                nested || !a.rect.intersects(&b.rect),
                "{} and {} cross",
                a.path,
                b.path
            );
        }
    }
}

#[test]
fn graph_png_decodes_to_the_drawing_size() {
    let graph = small_graph();
    let bytes = render_graph_png(&graph, &GraphDrawOptions::default()).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    let layout = layout_graph(&graph, &GraphDrawOptions::default()).unwrap();
    assert!(f64::from(info.width) >= layout.width);
    assert!(f64::from(info.height) >= layout.height);
}
