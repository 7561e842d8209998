//! Graphs for tests and the benchmark (included with `#[path]` there).
#![allow(dead_code)]

pub mod drawing;

use sluice_visualizer::graph_view::{EdgeView, GraphView, NodeView};

/// Adds nodes by name and wires them by name.
pub struct Builder {
    pub graph: GraphView,
}

impl Builder {
    pub fn new() -> Builder {
        Builder {
            graph: GraphView::new(),
        }
    }

    pub fn node(&mut self, name: &str, op: &str, device: &str, inputs: &[usize]) -> usize {
        let id = self.graph.nodes.len();
        self.graph.add_node(
            NodeView::new(id, name, op)
                .on(device)
                .typed("f32", &[None, Some(64)]),
        );
        for &from in inputs {
            self.graph.add_edge(EdgeView::data(from, id));
        }
        id
    }
}

/// A deep MLP as the engine would build it: per layer a `layer{i}/` scope with weights,
/// dense and dropout sub-scopes; a loss; the `gradients/` mirror; `Adam/` updates; and a
/// final `train` node. Layers spread over four workers, weights over two parameter
/// servers. 18 nodes a layer plus 10: `layers = 55` gives 1,000 nodes.
pub fn scoped_model_graph(layers: usize) -> GraphView {
    let mut b = Builder::new();
    let ps = |i: usize| format!("/job:ps/task:{}/device:CPU:0", i % 2);
    let worker = |i: usize| format!("/job:worker/task:{}/device:GPU:0", i % 4);
    let x = b.node("x", "Placeholder", "/job:worker/task:0/device:CPU:0", &[]);
    let labels = b.node(
        "labels",
        "Placeholder",
        "/job:worker/task:0/device:CPU:0",
        &[],
    );
    let mut activation = x;
    let mut per_layer = Vec::new();
    for i in 0..layers {
        let s = format!("layer{i}");
        let (p, w) = (ps(i), worker(i));
        let weight = b.node(&format!("{s}/weights/W"), "Variable", &p, &[]);
        let bias = b.node(&format!("{s}/weights/b"), "Variable", &p, &[]);
        let init = b.node(&format!("{s}/weights/Initializer"), "RandomNormal", &p, &[]);
        let assign = b.node(
            &format!("{s}/weights/Assign"),
            "Assign",
            &p,
            &[weight, init],
        );
        let matmul = b.node(
            &format!("{s}/dense/MatMul"),
            "MatMul",
            &w,
            &[activation, weight],
        );
        let add = b.node(
            &format!("{s}/dense/BiasAdd"),
            "BiasAdd",
            &w,
            &[matmul, bias],
        );
        let relu = b.node(&format!("{s}/Relu"), "Relu", &w, &[add]);
        let uniform = b.node(
            &format!("{s}/dropout/RandomUniform"),
            "RandomUniform",
            &w,
            &[],
        );
        let keep = b.node(&format!("{s}/dropout/keep_prob"), "Const", &w, &[]);
        let floor = b.node(&format!("{s}/dropout/Floor"), "Floor", &w, &[uniform, keep]);
        let dropout = b.node(&format!("{s}/dropout/Mul"), "Mul", &w, &[relu, floor]);
        let _ = assign;
        per_layer.push((weight, bias, matmul, relu, floor));
        activation = dropout;
    }
    let logits = b.node("loss/Softmax", "Softmax", &worker(0), &[activation]);
    let log = b.node("loss/Log", "Log", &worker(0), &[logits]);
    let mul = b.node("loss/Mul", "Mul", &worker(0), &[labels, log]);
    let loss = b.node("loss/Neg", "Neg", &worker(0), &[mul]);

    let mut gradient = b.node("gradients/Fill", "Fill", &worker(0), &[loss]);
    gradient = b.node(
        "gradients/loss/Softmax_grad/Sub",
        "Sub",
        &worker(0),
        &[gradient, logits],
    );
    let rate = b.node("Adam/learning_rate", "Const", &ps(0), &[]);
    let mut updates = Vec::new();
    for (i, &(weight, bias, matmul, relu, floor)) in per_layer.iter().enumerate().rev() {
        let s = format!("gradients/layer{i}");
        let w = worker(i);
        let drop = b.node(
            &format!("{s}/dropout/Mul_grad/Mul"),
            "Mul",
            &w,
            &[gradient, floor],
        );
        let relu_grad = b.node(
            &format!("{s}/Relu_grad/ReluGrad"),
            "ReluGrad",
            &w,
            &[drop, relu],
        );
        let bias_grad = b.node(
            &format!("{s}/dense/BiasAdd_grad/BiasAddGrad"),
            "BiasAddGrad",
            &w,
            &[relu_grad],
        );
        let input_grad = b.node(
            &format!("{s}/dense/MatMul_grad/MatMul"),
            "MatMul",
            &w,
            &[relu_grad, weight],
        );
        let weight_grad = b.node(
            &format!("{s}/dense/MatMul_grad/MatMul_1"),
            "MatMul",
            &w,
            &[relu_grad, matmul],
        );
        let a = format!("Adam/update_layer{i}");
        let p = ps(i);
        updates.push(b.node(
            &format!("{a}/W/ApplyAdam"),
            "ApplyAdam",
            &p,
            &[weight, weight_grad, rate],
        ));
        updates.push(b.node(
            &format!("{a}/b/ApplyAdam"),
            "ApplyAdam",
            &p,
            &[bias, bias_grad, rate],
        ));
        gradient = input_grad;
    }
    let train = b.node("train", "NoOp", &ps(0), &[]);
    for update in updates {
        b.graph.add_edge(EdgeView::control(update, train));
    }
    b.graph
}
