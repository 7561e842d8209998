//! Draws the seed program's graph (softmax regression on MNIST, trained with gradient
//! descent) as SVG and PNG, and prints its text outline.
//!
//! `cargo run --release -p sluice-visualizer --example seed_graph [OUT_DIR]`
//! (default: `visualizer/docs/`).
//!
//! The graph is written by hand as plain data, as a frontend would convert it from the
//! engine: `y = softmax(matmul(x, W) + b)`, `cross_entropy = -sum(y_ * log(y))`, then
//! the gradient nodes and the GradientDescent update nodes.

use sluice_visualizer::graph_png::render_graph_png;
use sluice_visualizer::graph_svg::render_graph_svg;
use sluice_visualizer::graph_view::{EdgeView, GraphView, NodeView};
use sluice_visualizer::layout::GraphDrawOptions;
use sluice_visualizer::outline::render_outline;
use sluice_visualizer::scopes::CollapseOptions;
use std::path::PathBuf;

const WORKER_CPU: &str = "/job:worker/task:0/device:CPU:0";
const WORKER_GPU: &str = "/job:worker/task:0/device:GPU:0";
const PS_CPU: &str = "/job:ps/task:0/device:CPU:0";

/// Adds nodes by name and wires inputs by name, like the graph builder does.
struct Builder {
    graph: GraphView,
}

impl Builder {
    fn node(&mut self, name: &str, op: &str, device: &str, shape: &[Option<u64>], inputs: &[&str]) {
        let id = self.graph.nodes.len();
        self.graph
            .add_node(NodeView::new(id, name, op).on(device).typed("f32", shape));
        for input in inputs {
            let (control, input) = match input.strip_prefix('^') {
                Some(name) => (true, name),
                None => (false, *input),
            };
            let from = self.id(input);
            self.graph.add_edge(EdgeView {
                from,
                to: id,
                control,
            });
        }
    }

    fn id(&self, name: &str) -> usize {
        let found = self.graph.nodes.iter().find(|n| n.name == name);
        found
            .map(|n| n.id)
            .unwrap_or_else(|| panic!("no node {name}"))
    }
}

fn seed_program_graph() -> GraphView {
    let (any, ten) = (None, Some(10));
    let batch_by_ten: &[Option<u64>] = &[any, ten];
    let mut b = Builder {
        graph: GraphView::new(),
    };
    b.node("x", "Placeholder", WORKER_CPU, &[any, Some(784)], &[]);
    b.node("W", "Variable", PS_CPU, &[Some(784), ten], &[]);
    b.node("b", "Variable", PS_CPU, &[ten], &[]);
    b.node("MatMul", "MatMul", WORKER_GPU, batch_by_ten, &["x", "W"]);
    b.node("Add", "Add", WORKER_GPU, batch_by_ten, &["MatMul", "b"]);
    b.node("Softmax", "Softmax", WORKER_GPU, batch_by_ten, &["Add"]);
    b.node("y_", "Placeholder", WORKER_CPU, batch_by_ten, &[]);
    b.node("Log", "Log", WORKER_GPU, batch_by_ten, &["Softmax"]);
    b.node("Mul", "Mul", WORKER_GPU, batch_by_ten, &["y_", "Log"]);
    b.node("Sum", "Sum", WORKER_GPU, &[], &["Mul"]);
    b.node("Neg", "Neg", WORKER_GPU, &[], &["Sum"]);

    let g = |name: &str| format!("gradients/{name}");
    b.node(&g("Fill"), "Fill", WORKER_GPU, &[], &["Neg"]);
    b.node(&g("Neg_grad/Neg"), "Neg", WORKER_GPU, &[], &[&g("Fill")]);
    b.node(
        &g("Sum_grad/Tile"),
        "Tile",
        WORKER_GPU,
        batch_by_ten,
        &[&g("Neg_grad/Neg"), "Mul"],
    );
    b.node(
        &g("Mul_grad/Mul_1"),
        "Mul",
        WORKER_GPU,
        batch_by_ten,
        &[&g("Sum_grad/Tile"), "y_"],
    );
    b.node(
        &g("Log_grad/Reciprocal"),
        "Reciprocal",
        WORKER_GPU,
        batch_by_ten,
        &["Softmax"],
    );
    b.node(
        &g("Log_grad/Mul"),
        "Mul",
        WORKER_GPU,
        batch_by_ten,
        &[&g("Mul_grad/Mul_1"), &g("Log_grad/Reciprocal")],
    );
    b.node(
        &g("Softmax_grad/Mul"),
        "Mul",
        WORKER_GPU,
        batch_by_ten,
        &[&g("Log_grad/Mul"), "Softmax"],
    );
    b.node(
        &g("Softmax_grad/Sum"),
        "Sum",
        WORKER_GPU,
        &[any, Some(1)],
        &[&g("Softmax_grad/Mul")],
    );
    b.node(
        &g("Softmax_grad/Sub"),
        "Sub",
        WORKER_GPU,
        batch_by_ten,
        &[&g("Log_grad/Mul"), &g("Softmax_grad/Sum")],
    );
    b.node(
        &g("Softmax_grad/Mul_1"),
        "Mul",
        WORKER_GPU,
        batch_by_ten,
        &[&g("Softmax_grad/Sub"), "Softmax"],
    );
    b.node(
        &g("Add_grad/Sum_1"),
        "Sum",
        WORKER_GPU,
        &[ten],
        &[&g("Softmax_grad/Mul_1")],
    );
    b.node(
        &g("Add_grad/Identity"),
        "Identity",
        WORKER_GPU,
        batch_by_ten,
        &[&g("Softmax_grad/Mul_1")],
    );
    b.node(
        &g("MatMul_grad/MatMul_1"),
        "MatMul",
        WORKER_GPU,
        &[Some(784), ten],
        &["x", &g("Add_grad/Identity")],
    );

    b.node("GradientDescent/learning_rate", "Const", PS_CPU, &[], &[]);
    b.node(
        "GradientDescent/update_W/ApplyGradientDescent",
        "ApplyGradientDescent",
        PS_CPU,
        &[Some(784), ten],
        &[
            "W",
            "GradientDescent/learning_rate",
            &g("MatMul_grad/MatMul_1"),
        ],
    );
    b.node(
        "GradientDescent/update_b/ApplyGradientDescent",
        "ApplyGradientDescent",
        PS_CPU,
        &[ten],
        &["b", "GradientDescent/learning_rate", &g("Add_grad/Sum_1")],
    );
    b.node(
        "train",
        "NoOp",
        PS_CPU,
        &[],
        &[
            "^GradientDescent/update_W/ApplyGradientDescent",
            "^GradientDescent/update_b/ApplyGradientDescent",
        ],
    );
    // The training op's own node carries no value.
    if let Some(train) = b.graph.nodes.last_mut() {
        train.shape = None;
        train.dtype.clear();
    }
    b.graph
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs"));
    std::fs::create_dir_all(&out_dir)?;
    let graph = seed_program_graph();

    // As a notebook first shows it: gradients and optimizer collapsed.
    let collapsed = GraphDrawOptions {
        title: Some("Seed program: softmax regression".into()),
        ..GraphDrawOptions::default()
    };
    std::fs::write(
        out_dir.join("seed_graph.svg"),
        render_graph_svg(&graph, &collapsed)?,
    )?;
    std::fs::write(
        out_dir.join("seed_graph.png"),
        render_graph_png(&graph, &collapsed)?,
    )?;

    // Everything open, with tensor shapes on the edges.
    let expanded = GraphDrawOptions {
        title: Some("Seed program, every scope expanded".into()),
        collapse: CollapseOptions::expand_all(),
        edge_labels: true,
    };
    std::fs::write(
        out_dir.join("seed_graph_expanded.svg"),
        render_graph_svg(&graph, &expanded)?,
    )?;
    std::fs::write(
        out_dir.join("seed_graph_expanded.png"),
        render_graph_png(&graph, &expanded)?,
    )?;

    print!("{}", render_outline(&graph, &CollapseOptions::default()));
    println!(
        "wrote seed_graph{{,_expanded}}.{{svg,png}} to {}",
        out_dir.display()
    );
    Ok(())
}
