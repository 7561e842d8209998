#![cfg(feature = "engine")]

mod common;
use common::*;
use sluice::prelude::*;
use sluice::{GraphError, SessionError};

// ---------------------------------------------------------------------------------------------
// Errors, not panics, naming what is wrong.
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_feed_names_the_placeholder() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 4]);
    let y = x * 2.0;
    let err = Session::new(&g).run(&[y], &[]).unwrap_err();
    assert_eq!(err, SessionError::MissingFeed("x".into()));
    assert_eq!(
        err.to_string(),
        "placeholder 'x' needs a value: feed it in the run call"
    );
}

#[test]
fn fed_shape_that_does_not_fit_names_both() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 4]);
    let y = reduce_sum(x);
    let mut sess = Session::new(&g);
    let err = sess
        .run(&[y], &[(x, Tensor::zeros(DType::F32, &[3, 5]))])
        .unwrap_err();
    assert!(matches!(err, SessionError::FeedShape { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "fed value for 'x' has shape [3, 5], which does not fit the declared shape [?, 4]"
    );
    // A wrong rank too.
    let err = sess
        .run(&[y], &[(x, Tensor::zeros(DType::F32, &[4]))])
        .unwrap_err();
    assert!(err.to_string().contains("shape [4]"), "{err}");
    // And a fitting one works, with any batch size.
    for n in [1, 3, 7] {
        let out = sess
            .run(&[y], &[(x, Tensor::full(&[n, 4], 1.0f32))])
            .unwrap();
        assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![4.0 * n as f32]);
    }
}

#[test]
fn fed_dtype_that_does_not_fit_names_both() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2]);
    let y = x + 1.0;
    let err = Session::new(&g)
        .run(&[y], &[(x, Tensor::from_vec(vec![1.0f64, 2.0]))])
        .unwrap_err();
    assert_eq!(
        err,
        SessionError::FeedDType {
            node: "x".into(),
            fed: DType::F64,
            declared: DType::F32
        }
    );
    assert_eq!(
        err.to_string(),
        "fed value for 'x' has dtype f64, but the node has dtype f32"
    );
}

#[test]
fn uninitialised_variable_is_named() {
    let g = Graph::new();
    let w = g.variable("weights", &[2], Initializer::Ones);
    let y = reduce_sum(w * 3.0);
    let mut sess = Session::new(&g);
    let err = sess.run(&[y], &[]).unwrap_err();
    assert_eq!(err, SessionError::Uninitialized("weights".into()));
    assert_eq!(
        err.to_string(),
        "variable 'weights' is not initialised: call init_variables() on the session first"
    );
    assert_eq!(sess.init_variables().unwrap(), 1);
    assert_eq!(
        sess.run(&[y], &[]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![6.0]
    );
}

#[test]
fn invalid_node_surfaces_at_run_time_with_its_shapes() {
    let g = Graph::new();
    let a = g.constant(Tensor::zeros(DType::F32, &[2, 3]));
    let b = g.constant(Tensor::zeros(DType::F32, &[4, 5]));
    let c = matmul(a, b);
    let expected = "node 'MatMul' (MatMul): inner dimensions do not match: a is [2, 3] \
                    (transpose_a=false), b is [4, 5] (transpose_b=false)";
    // The graph records it ...
    let errors = g.errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].to_string(), expected);
    assert!(matches!(errors[0], GraphError::InvalidNode { .. }));
    assert_eq!(c.type_shape().unwrap_err().to_string(), expected);
    // ... and running it reports the same.
    let mut sess = Session::new(&g);
    let err = sess.run(&[c], &[]).unwrap_err();
    assert_eq!(err.to_string(), expected);
    assert!(matches!(
        err,
        SessionError::Graph(GraphError::InvalidNode { .. })
    ));

    // Nodes built on it report the original error, not one of their own.
    let d = relu(c) + 1.0;
    let e = reduce_sum(d);
    let err = sess.run(&[e], &[]).unwrap_err();
    assert_eq!(err.to_string(), expected);
    assert_eq!(e.type_shape().unwrap_err().to_string(), expected);
    assert!(g.errors().iter().all(|e| e.to_string() == expected));
    // Gradients through it report it too.
    let err = gradient(e, a).unwrap_err();
    assert_eq!(err.to_string(), expected);

    // The rest of the graph still runs.
    let fine = reduce_sum(a) + 1.0;
    assert_eq!(
        sess.run(&[fine], &[]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![1.0]
    );
}

#[test]
fn gradient_of_unconnected_input_is_an_error_naming_both() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[3]);
    let z = g.placeholder("z", DType::F32, &[3]);
    let y = reduce_sum(x * 2.0).named("loss");
    let err = gradient(y, z).unwrap_err();
    assert_eq!(
        err,
        GraphError::Unconnected {
            x: "z".into(),
            y: "loss".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "'z' does not influence 'loss': no gradient path between them"
    );
    // gradients() gives None for it, and the connected one is still computed.
    let grads = gradients(&[y], &[x, z]).unwrap();
    assert!(grads[1].is_none());
    let dx = grads[0].unwrap();
    let out = eval(dx, &[(x, Tensor::from_vec(vec![1.0f32, 2.0, 3.0]))]);
    assert_eq!(out.to_vec::<f32>().unwrap(), vec![2.0; 3]);
}

#[test]
fn handles_from_another_graph_are_an_error() {
    let g1 = Graph::new();
    let g2 = Graph::new();
    let a = g1.constant(Tensor::from_vec(vec![1.0f32]));
    let b = g2.constant(Tensor::from_vec(vec![2.0f32]));
    let c = add(a, b);
    assert!(matches!(
        c.type_shape().unwrap_err(),
        GraphError::MixedGraphs { .. }
    ));
    let err = Session::new(&g2).run(&[a], &[]).unwrap_err();
    assert!(err.to_string().contains("different graphs"), "{err}");
}

#[test]
fn assign_needs_a_variable_and_set_variable_checks_types() {
    let g = Graph::new();
    let c = g.constant(Tensor::from_vec(vec![1.0f32]));
    let err = assign(c, c).unwrap_err();
    assert_eq!(err.to_string(), "'Const' is not a variable (op Const)");

    let w = g.variable("w", &[2], Initializer::Zeros);
    let mut sess = Session::new(&g);
    let err = sess
        .set_variable(w, Tensor::from_vec(vec![1.0f64, 2.0]))
        .unwrap_err();
    assert!(err.to_string().contains("dtype f64") && err.to_string().contains("f32"));
    let err = sess
        .set_variable(w, Tensor::from_vec(vec![1.0f32, 2.0, 3.0]))
        .unwrap_err();
    assert!(
        err.to_string().contains("[3]") && err.to_string().contains("[2]"),
        "{err}"
    );
    let err = sess
        .set_variable(c, Tensor::from_vec(vec![1.0f32]))
        .unwrap_err();
    assert!(err.to_string().contains("not a variable"), "{err}");
    sess.set_variable(w, Tensor::from_vec(vec![1.0f32, 2.0]))
        .unwrap();
    assert_eq!(
        sess.variable(w).unwrap().to_vec::<f32>().unwrap(),
        vec![1.0, 2.0]
    );
}

#[test]
fn assignments_update_variables() {
    let g = Graph::new();
    let w = g.variable("w", &[2], Initializer::Fill(1.0));
    let set = assign(w, g.constant(Tensor::from_vec(vec![5.0f32, 6.0]))).unwrap();
    let inc = assign_add(w, g.constant(Tensor::scalar(1.0f32))).unwrap();
    let dec = assign_sub(w, g.constant(Tensor::from_vec(vec![0.5f32, 1.5]))).unwrap();
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    assert_eq!(
        sess.run(&[set], &[]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![5.0, 6.0]
    );
    assert_eq!(
        sess.run(&[inc], &[]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![6.0, 7.0]
    );
    assert_eq!(
        sess.run(&[dec], &[]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![5.5, 5.5]
    );
    assert_eq!(
        sess.run(&[w], &[]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![5.5, 5.5]
    );
    // group runs several updates as one target.
    let both = group(&[inc, inc]);
    sess.run_with_targets(&[], &[], &[both]).unwrap();
    assert_eq!(
        sess.variable(w).unwrap().to_vec::<f32>().unwrap(),
        vec![6.5, 6.5]
    );
    // A value that does not fit the variable is an error when built.
    let bad = assign(w, g.constant(Tensor::from_vec(vec![1.0f64, 2.0]))).unwrap();
    assert!(bad
        .type_shape()
        .unwrap_err()
        .to_string()
        .contains("do not fit"));
}

// ---------------------------------------------------------------------------------------------
// Running: pruning, plans, feeds.
// ---------------------------------------------------------------------------------------------

#[test]
fn run_computes_only_what_the_fetches_need() {
    let g = Graph::new();
    let unfed = g.placeholder("unfed", DType::F32, &[3]);
    let a = g.constant(Tensor::from_vec(vec![1.0f32, 2.0, 3.0]));
    let needed = a * 2.0;
    let _unrelated = unfed + a;
    let uninitialised = g.variable("never_initialised", &[3], Initializer::Ones);
    let _also_unrelated = uninitialised * a;
    let mut sess = Session::new(&g);
    let out = sess.run(&[needed], &[]).unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![2.0, 4.0, 6.0]);
    // A node whose kernel would fail is not run when nothing needs it.
    let bad_labels = sparse_softmax_cross_entropy_with_logits(
        g.constant(Tensor::zeros(DType::F32, &[1, 2])),
        g.constant(Tensor::from_vec(vec![9i64])),
    );
    let _ = bad_labels;
    assert!(sess.run(&[needed], &[]).is_ok());
    assert!(sess.run(&[bad_labels], &[]).is_err());
}

#[test]
fn feeding_an_intermediate_value_overrides_it() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2]);
    let h = x * 10.0;
    let y = h + 1.0;
    // The placeholder behind `h` need not be fed when `h` is.
    let out = Session::new(&g)
        .run(&[y], &[(h, Tensor::from_vec(vec![1.0f32, 2.0]))])
        .unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![2.0, 3.0]);
}

#[test]
fn plans_are_reused_and_give_the_same_results() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[-1, 3]);
    let w = g.constant(sample(&[3, 2], 1));
    let y = softmax(matmul(x, w) + 0.5);
    let loss = reduce_mean(y * y);
    let mut sess = Session::new(&g);
    let feed = sample(&[4, 3], 2);
    let first = sess.run(&[y, loss], &[(x, feed.clone())]).unwrap();
    for _ in 0..5 {
        let again = sess.run(&[y, loss], &[(x, feed.clone())]).unwrap();
        assert_eq!(again, first);
    }
    // The plan does not keep values: new feeds give new results.
    let other = sess.run(&[y, loss], &[(x, sample(&[4, 3], 3))]).unwrap();
    assert_ne!(other[0], first[0]);
    // Another batch size through the same plan.
    let small = sess.run(&[y], &[(x, sample(&[1, 3], 2))]).unwrap();
    assert_eq!(small[0].shape(), &[1, 2]);
    // Fetching the same value twice, or in another order, is consistent.
    let swapped = sess.run(&[loss, y, loss], &[(x, feed.clone())]).unwrap();
    assert_eq!(swapped[0], first[1]);
    assert_eq!(swapped[1], first[0]);
    assert_eq!(swapped[2], first[1]);
}

#[test]
fn feeds_may_come_in_any_order() {
    let g = Graph::new();
    let a = g.placeholder("a", DType::F32, &[1]);
    let b = g.placeholder("b", DType::F32, &[1]);
    let y = a - b;
    let mut sess = Session::new(&g);
    let av = Tensor::from_vec(vec![5.0f32]);
    let bv = Tensor::from_vec(vec![2.0f32]);
    let one = sess.run(&[y], &[(a, av.clone()), (b, bv.clone())]).unwrap();
    let two = sess.run(&[y], &[(b, bv), (a, av)]).unwrap();
    assert_eq!(one[0].to_vec::<f32>().unwrap(), vec![3.0]);
    assert_eq!(two, one);
}

#[test]
fn sessions_hold_their_own_variables() {
    let g = Graph::new();
    let w = g.variable("w", &[1], Initializer::Zeros);
    let mut s1 = Session::new(&g);
    let mut s2 = Session::new(&g);
    s1.init_variables().unwrap();
    s2.init_variables().unwrap();
    s1.set_variable(w, Tensor::from_vec(vec![4.0f32])).unwrap();
    assert_eq!(
        s1.run(&[w], &[]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![4.0]
    );
    assert_eq!(
        s2.run(&[w], &[]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![0.0]
    );
}

#[test]
fn init_variables_again_initialises_only_new_ones() {
    let g = Graph::new();
    let w = g.variable("w", &[3], Initializer::Zeros);
    let loss = reduce_sum(square(w - 3.0));
    let train = GradientDescent::new(0.1).minimize(loss).unwrap();
    let mut sess = Session::new(&g);
    assert_eq!(sess.init_variables().unwrap(), 2, "w and the global step");
    for _ in 0..3 {
        sess.run(&[train], &[]).unwrap();
    }
    let trained = sess.variable(w).unwrap();
    assert_ne!(trained.to_vec::<f32>().unwrap(), vec![0.0; 3]);

    let v = g.variable("v", &[2], Initializer::Fill(7.0));
    assert_eq!(sess.init_variables().unwrap(), 1);
    assert_eq!(sess.variable(w).unwrap(), trained);
    assert_eq!(
        sess.variable(v).unwrap().to_vec::<f32>().unwrap(),
        vec![7.0, 7.0]
    );
    let step = g.global_step();
    assert_eq!(
        sess.variable(step).unwrap().to_vec::<i64>().unwrap(),
        vec![3]
    );
    assert_eq!(sess.init_variables().unwrap(), 0);
}

#[test]
fn traced_runs_time_each_node_that_ran() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 3]);
    let w = g.constant(Tensor::new(&[3, 2], vec![1.0f32; 6]).unwrap());
    let y = relu(matmul(x, w)).named("out");
    let unused = exp(x);
    let mut sess = Session::new(&g);
    let feed = Tensor::new(&[2, 3], vec![1.0f32; 6]).unwrap();
    let (values, trace) = sess.run_traced(&[y], &[(x, feed)]).unwrap();
    assert_eq!(values[0].to_vec::<f32>().unwrap(), vec![3.0; 4]);
    let names: Vec<&str> = trace.iter().map(|t| t.node.as_str()).collect();
    assert!(
        names.contains(&"MatMul") && names.contains(&"out"),
        "{names:?}"
    );
    assert!(
        !names.contains(&unused.name().as_str()),
        "pruned node ran: {names:?}"
    );
    assert!(trace.iter().all(|t| t.micros >= 0.0));
    assert_eq!(trace.iter().find(|t| t.node == "out").unwrap().op, "Relu");
}

#[test]
fn a_variable_whose_shape_overflows_is_an_error_at_initialisation() {
    let g = Graph::new();
    let v = g.variable("v", &[(1usize << 62) + 1, 4], Initializer::Zeros);
    let mut sess = Session::new(&g);
    let err = sess.init_variables().expect_err("2^64 + 4 elements");
    assert!(
        err.to_string()
            .contains("more elements than a tensor can hold"),
        "{err}"
    );
    assert!(sess.variable(v).is_none());
}
