//! Graphs as data: export to a GraphDef, import into another graph, and get the same training.

#![cfg(feature = "engine")]

use sluice::data::{mnist_digits, Batch};
use sluice::prelude::*;
use sluice::{AttrValue, GraphDef, GraphError, NodeDef};

const STEPS: usize = 4;

fn batches(n: usize) -> Vec<Batch> {
    mnist_digits()
        .expect("embedded digits")
        .train
        .batches(50, 3)
        .take(n)
        .collect()
}

/// The seed program: softmax regression trained by gradient descent on the cross-entropy.
/// Gives the graph and the name of its train op.
fn softmax_regression() -> (Graph, String) {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let b = g.variable("b", &[10], Initializer::Zeros);
    let y = softmax(matmul(x, w) + b);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let xent = (-reduce_sum(y_ * log(y))).named("loss");
    let train = GradientDescent::new(0.01).minimize(xent).expect("minimize");
    (g, train.name())
}

/// A two-layer perceptron with random initial weights, trained by Adam.
fn mlp_forward(g: &Graph) -> Output {
    g.set_seed(42);
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let _scope = g.name_scope("mlp");
    let w1 = g.variable("w1", &[784, 32], Initializer::GlorotUniform);
    let b1 = g.variable("b1", &[32], Initializer::Fill(0.01));
    let w2 = g.variable("w2", &[32, 10], Initializer::truncated_normal(0.1));
    let b2 = g.variable("b2", &[10], Initializer::Zeros);
    matmul(relu(matmul(x, w1) + b1), w2) + b2
}

fn mlp_train(g: &Graph, logits: Output) -> String {
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let loss = reduce_mean(softmax_cross_entropy_with_logits(logits, y_)).named("loss");
    Adam::new(0.01).minimize(loss).expect("minimize").name()
}

fn mlp() -> (Graph, String) {
    let g = Graph::new();
    let logits = mlp_forward(&g);
    let train = mlp_train(&g, logits);
    (g, train)
}

/// Trains for a few steps in a fresh session; gives the losses and every variable's value.
fn train(g: &Graph, train: &str, data: &[Batch]) -> (Vec<Tensor>, Vec<(String, Tensor)>) {
    let (x, y_) = (g.get("x").unwrap(), g.get("y_").unwrap());
    let (loss, train) = (g.get("loss").unwrap(), g.get(train).unwrap());
    let mut sess = Session::new(g);
    sess.init_variables().expect("init");
    let mut losses = Vec::new();
    for batch in data {
        let feeds = [(x, batch.inputs.clone()), (y_, batch.one_hot.clone())];
        let mut out = sess.run(&[loss, train], &feeds).expect("step");
        losses.push(out.remove(0));
    }
    let mut vars: Vec<(String, Tensor)> = g
        .variables()
        .into_iter()
        .map(|v| (v.name(), sess.variable(v).expect("value")))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    (losses, vars)
}

fn assert_same_training(a: &Graph, b: &Graph, train_op: &str) {
    let data = batches(STEPS);
    let (losses_a, vars_a) = train(a, train_op, &data);
    let (losses_b, vars_b) = train(b, train_op, &data);
    assert_eq!(losses_a, losses_b);
    assert_eq!(vars_a, vars_b);
    // Training did something.
    assert_ne!(losses_a.first(), losses_a.last());
}

#[test]
fn seed_program_round_trips() {
    let (g, train_op) = softmax_regression();
    let def = g.to_graph_def(0);
    assert_eq!(def.nodes.len(), g.len());
    let copy = Graph::new();
    let outputs = copy.import_graph_def(&def).unwrap();
    assert_eq!(outputs.len(), g.len());
    assert_eq!(copy.to_graph_def(0), def);
    assert_same_training(&g, &copy, &train_op);
}

#[test]
fn mlp_with_adam_round_trips() {
    let (g, train_op) = mlp();
    let def = g.to_graph_def(0);
    let copy = Graph::new();
    copy.import_graph_def(&def).unwrap();
    assert_eq!(copy.seed(), 42);
    assert_eq!(copy.to_graph_def(0), def);
    let trainable: Vec<String> = copy
        .trainable_variables()
        .into_iter()
        .map(Output::name)
        .collect();
    assert_eq!(trainable, ["mlp/w1", "mlp/b1", "mlp/w2", "mlp/b2"]);
    assert_eq!(copy.global_step().name(), "global_step");
    assert_eq!(copy.len(), g.len(), "global_step() found the imported step");
    assert_same_training(&g, &copy, &train_op);
}

#[test]
fn deltas_import_one_after_the_other() {
    let g = Graph::new();
    let logits = mlp_forward(&g);
    let first = g.to_graph_def(0);
    let split = g.len();
    let train_op = mlp_train(&g, logits);
    let second = g.to_graph_def(split);
    assert_eq!(first.nodes.len(), split);
    assert_eq!(second.nodes.len(), g.len() - split);
    assert_eq!(second.nodes[0].name, "y_");

    let copy = Graph::new();
    copy.import_graph_def(&first).unwrap();
    let added = copy.import_graph_def(&second).unwrap();
    assert_eq!(added[0].node(), split);
    assert_eq!(copy.to_graph_def(0), g.to_graph_def(0));
    assert_same_training(&g, &copy, &train_op);
}

#[test]
fn nodes_may_come_in_any_order() {
    let (g, train_op) = softmax_regression();
    let mut def = g.to_graph_def(0);
    def.nodes.reverse();
    let copy = Graph::new();
    let outputs = copy.import_graph_def(&def).unwrap();
    // Outputs follow the def's order; every node comes after its inputs.
    for (node, out) in def.nodes.iter().zip(&outputs) {
        assert_eq!(&out.name(), &node.name);
    }
    for node in copy.nodes() {
        let id = copy.get(&node.name).unwrap().node();
        assert!(node.inputs.iter().all(|i| i.node() < id), "{}", node.name);
        assert!(node.control_inputs.iter().all(|&c| c < id), "{}", node.name);
    }
    // Zero initial weights do not depend on node ids: the same training.
    assert_same_training(&g, &copy, &train_op);
}

#[test]
fn invalid_nodes_are_left_out_of_exports() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2]);
    let n = g.constant(Tensor::from_vec(vec![1i64, 2]));
    let bad = x + n;
    let _worse = bad * 2.0f32;
    let _waits = group(&[bad]);
    (x * 3.0f32).named("good");
    assert_eq!(g.errors().len(), 2);
    let def = g.to_graph_def(0);
    let names: Vec<&str> = def.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["x", "Const", "Const_1", "Const_2", "good"]);
    let copy = Graph::new();
    copy.import_graph_def(&def).unwrap();
    let mut sess = Session::new(&copy);
    let out = sess
        .run(
            &[copy.get("good").unwrap()],
            &[(copy.get("x").unwrap(), Tensor::from_vec(vec![1.0f32, 2.0]))],
        )
        .unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), [3.0, 6.0]);
}

#[test]
fn hand_written_graph_def_imports() {
    // Written the way a TensorFlow client would: output indices, a control input, and a
    // variable with no initialiser attributes (zeros, trainable).
    let f32_shape = |dims: &[i64]| AttrValue::Shape(sluice::graph::Shape::from_dims(dims));
    let def = GraphDef {
        seed: 5,
        nodes: vec![
            NodeDef::new("w", "Variable")
                .attr("dtype", AttrValue::DType(DType::F32))
                .attr("shape", f32_shape(&[3])),
            NodeDef::new("logits", "Placeholder")
                .attr("dtype", AttrValue::DType(DType::F32))
                .attr("shape", f32_shape(&[-1, 3])),
            NodeDef::new("labels", "Placeholder")
                .attr("dtype", AttrValue::DType(DType::F32))
                .attr("shape", f32_shape(&[-1, 3])),
            NodeDef::new("shifted", "Add").input("logits").input("w"),
            NodeDef::new("xent", "SoftmaxCrossEntropyWithLogits")
                .input("shifted")
                .input("labels"),
            NodeDef::new("backprop", "Identity")
                .input("xent:1")
                .input("^w"),
        ],
    };
    let g = Graph::new();
    let outs = g.import_graph_def(&def).unwrap();
    assert_eq!(g.seed(), 5);
    assert_eq!(g.trainable_variables(), [outs[0]]);
    let backprop = g.get("backprop").unwrap();
    assert_eq!(g.node(backprop.node()).unwrap().control_inputs, [0]);
    let mut sess = Session::new(&g);
    assert_eq!(sess.init_variables().unwrap(), 1);
    let logits = Tensor::new(&[1, 3], vec![0.0f32, 0.0, 0.0]).unwrap();
    let labels = Tensor::new(&[1, 3], vec![1.0f32, 0.0, 0.0]).unwrap();
    let out = sess
        .run(&[backprop], &[(outs[1], logits), (outs[2], labels)])
        .unwrap();
    let expected = Tensor::new(&[1, 3], vec![1.0f32 / 3.0 - 1.0, 1.0 / 3.0, 1.0 / 3.0]).unwrap();
    assert!(
        out[0].max_abs_diff(&expected).unwrap() < 1e-6,
        "{:?}",
        out[0]
    );
    // Exported, the variable now says how it starts.
    let again = g.to_graph_def(0);
    assert_eq!(again.nodes[0].attrs["init"], AttrValue::Str("zeros".into()));
    assert_eq!(again.nodes[0].attrs["trainable"], AttrValue::Bool(true));
}

// ---------------------------------------------------------------------------------------------
// Rejected deltas: a clear error naming the node, and the graph unchanged.
// ---------------------------------------------------------------------------------------------

/// x: f32 [?, 3]; w: variable [3, 2]; y = x @ w.
fn base() -> Graph {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 3]);
    let w = g.variable("w", &[3, 2], Initializer::Ones);
    matmul(x, w).named("y");
    g
}

fn placeholder(name: &str) -> NodeDef {
    NodeDef::new(name, "Placeholder")
        .attr("dtype", AttrValue::DType(DType::F32))
        .attr("shape", AttrValue::Shape(sluice::graph::Shape::known(&[3])))
}

fn identity(name: &str, input: &str) -> NodeDef {
    NodeDef::new(name, "Identity").input(input)
}

/// Imports `nodes`, expecting `expected`; checks the graph is as it was and still runs.
fn rejected(nodes: Vec<NodeDef>, expected: GraphError, text: &str) {
    let g = base();
    let before = g.to_graph_def(0);
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let err = g
        .import_graph_def(&GraphDef { nodes, seed: 9 })
        .unwrap_err();
    assert_eq!(err, expected);
    assert_eq!(err.to_string(), text);
    assert_eq!(g.len(), 3);
    assert_eq!(g.seed(), 0);
    assert_eq!(g.to_graph_def(0), before);
    for name in names
        .iter()
        .filter(|n| !["x", "w", "y"].contains(&n.as_str()))
    {
        assert!(g.get(name).is_err(), "'{name}' was added");
    }
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    let x = Tensor::new(&[1, 3], vec![1.0f32, 2.0, 3.0]).unwrap();
    let y = sess
        .run(&[g.get("y").unwrap()], &[(g.get("x").unwrap(), x)])
        .unwrap();
    assert_eq!(y[0].to_vec::<f32>().unwrap(), [6.0, 6.0]);
}

#[test]
fn a_name_in_the_graph_is_redefined() {
    rejected(
        vec![placeholder("fresh"), placeholder("x")],
        GraphError::Redefined {
            node: "x".into(),
            in_graph: true,
        },
        "node 'x' is redefined: a node of that name is already in the graph",
    );
}

#[test]
fn a_name_twice_in_the_delta_is_redefined() {
    rejected(
        vec![placeholder("z"), identity("a", "z"), placeholder("z")],
        GraphError::Redefined {
            node: "z".into(),
            in_graph: false,
        },
        "node 'z' is redefined: the delta defines it twice",
    );
}

#[test]
fn an_input_naming_no_node_dangles() {
    rejected(
        vec![placeholder("z"), identity("a", "z"), identity("b", "ghost")],
        GraphError::DanglingInput {
            node: "b".into(),
            input: "ghost".into(),
        },
        "dangling input 'ghost' of node 'b': no node of that name in the graph or the delta",
    );
    rejected(
        vec![identity("a", "^ghost")],
        GraphError::DanglingInput {
            node: "a".into(),
            input: "^ghost".into(),
        },
        "dangling input '^ghost' of node 'a': no node of that name in the graph or the delta",
    );
}

#[test]
fn an_output_index_the_node_lacks_dangles() {
    rejected(
        vec![identity("a", "x:3")],
        GraphError::NoSuchOutput {
            node: "a".into(),
            input: "x:3".into(),
            index: 3,
            outputs: 1,
        },
        "dangling input 'x:3' of node 'a': no output 3, its node has 1 output(s)",
    );
    // Within the delta too, where outputs are known only once the source is built.
    rejected(
        vec![identity("b", "a:1"), identity("a", "x")],
        GraphError::NoSuchOutput {
            node: "b".into(),
            input: "a:1".into(),
            index: 1,
            outputs: 1,
        },
        "dangling input 'a:1' of node 'b': no output 1, its node has 1 output(s)",
    );
}

#[test]
fn a_cycle_is_named_by_a_node_on_it() {
    rejected(
        vec![
            placeholder("z"),
            identity("before", "z"),
            NodeDef::new("a", "Add").input("before").input("c"),
            identity("b", "a"),
            identity("c", "b"),
        ],
        GraphError::Cycle { node: "a".into() },
        "node 'a' is on a cycle: it depends on itself through its inputs",
    );
    rejected(
        vec![identity("self", "^self")],
        GraphError::Cycle {
            node: "self".into(),
        },
        "node 'self' is on a cycle: it depends on itself through its inputs",
    );
}

#[test]
fn an_unknown_op_is_named() {
    rejected(
        vec![placeholder("z"), NodeDef::new("f", "Frobnicate").input("z")],
        GraphError::UnknownOp {
            node: "f".into(),
            op: "Frobnicate".into(),
        },
        "node 'f': unknown op type 'Frobnicate'",
    );
}

#[test]
fn a_missing_or_mistyped_attribute_is_named() {
    let sum = || NodeDef::new("s", "Sum").input("y");
    rejected(
        vec![sum().attr("keep_dims", AttrValue::Bool(false))],
        GraphError::BadAttr {
            node: "s".into(),
            op: "Sum".into(),
            message: "attribute 'axes' is missing".into(),
        },
        "node 's' (Sum): attribute 'axes' is missing",
    );
    rejected(
        vec![sum()
            .attr("axes", AttrValue::Ints(vec![0]))
            .attr("keep_dims", AttrValue::Int(1))],
        GraphError::BadAttr {
            node: "s".into(),
            op: "Sum".into(),
            message: "attribute 'keep_dims' must be a bool, got int 1".into(),
        },
        "node 's' (Sum): attribute 'keep_dims' must be a bool, got int 1",
    );
    rejected(
        vec![NodeDef::new("t", "Transpose")
            .input("y")
            .attr("perm", AttrValue::Ints(vec![1, -1]))],
        GraphError::BadAttr {
            node: "t".into(),
            op: "Transpose".into(),
            message: "attribute 'perm' must not be negative, got -1".into(),
        },
        "node 't' (Transpose): attribute 'perm' must not be negative, got -1",
    );
}

#[test]
fn an_assignment_to_something_else_than_a_variable_is_rejected() {
    rejected(
        vec![NodeDef::new("set", "Assign")
            .input("y")
            .attr("var", AttrValue::Str("y".into()))],
        GraphError::BadAttr {
            node: "set".into(),
            op: "Assign".into(),
            message: "attribute 'var' names no variable: 'y' is a MatMul, not a Variable".into(),
        },
        "node 'set' (Assign): attribute 'var' names no variable: 'y' is a MatMul, not a Variable",
    );
    // An update whose slots do not fit its rule would index past them when it runs.
    rejected(
        vec![NodeDef::new("up", "ApplyMomentum")
            .input("w")
            .attr("var", AttrValue::Str("w".into()))
            .attr("slots", AttrValue::Strs(vec![]))
            .attr("learning_rate", AttrValue::Float(0.1))
            .attr("momentum", AttrValue::Float(0.9))
            .attr("nesterov", AttrValue::Bool(false))],
        GraphError::BadAttr {
            node: "up".into(),
            op: "ApplyMomentum".into(),
            message: "attribute 'slots' must name 1 variable(s) for ApplyMomentum, got 0".into(),
        },
        "node 'up' (ApplyMomentum): attribute 'slots' must name 1 variable(s) for ApplyMomentum, got 0",
    );
}

#[test]
fn wrong_dtypes_fail_inference() {
    let ints = NodeDef::new("ints", "Const").attr(
        "value",
        AttrValue::Tensor(Tensor::from_vec(vec![1i64, 2, 3])),
    );
    rejected(
        vec![ints, NodeDef::new("sum", "Add").input("x").input("ints")],
        GraphError::InvalidNode {
            node: "sum".into(),
            op: "Add".into(),
            message: "operands have different dtypes: f32[?, 3] and i64[3] (cast one of them)"
                .into(),
        },
        "node 'sum' (Add): operands have different dtypes: f32[?, 3] and i64[3] (cast one of them)",
    );
}

#[test]
fn a_rejected_delta_can_be_fixed_and_sent_again() {
    let g = base();
    let mut nodes = vec![
        placeholder("z"),
        NodeDef::new("twice", "Add").input("z").input("z"),
        NodeDef::new("total", "Sum")
            .input("twice")
            .attr("axes", AttrValue::Ints(vec![]))
            .attr("keep_dims", AttrValue::Str("no".into())),
    ];
    let err = g
        .import_graph_def(&GraphDef {
            nodes: nodes.clone(),
            seed: 0,
        })
        .unwrap_err();
    assert!(err.to_string().contains("'total'"), "{err}");
    assert_eq!(g.len(), 3);
    nodes[2]
        .attrs
        .insert("keep_dims".into(), AttrValue::Bool(false));
    let outs = g.import_graph_def(&GraphDef { nodes, seed: 0 }).unwrap();
    let out = Session::new(&g)
        .run(
            &[outs[2]],
            &[(outs[0], Tensor::from_vec(vec![1.0f32, 2.0, 3.0]))],
        )
        .unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), [12.0]);
}
