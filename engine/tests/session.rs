mod common;
use common::*;
use sluice::prelude::*;
use sluice::{GraphError, SessionError, TensorError};

fn f32s(shape: &[usize], v: Vec<f32>) -> Tensor {
    Tensor::new(shape, v).unwrap()
}

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

// ---------------------------------------------------------------------------------------------
// Initialisers.
// ---------------------------------------------------------------------------------------------

fn initial_values(seed: u64, init: Initializer, shape: &[usize]) -> Vec<f32> {
    let g = Graph::new();
    g.set_seed(seed);
    let _other = g.variable("other", &[4], Initializer::random_normal(1.0));
    let w = g.variable("w", shape, init);
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    sess.variable(w).unwrap().to_vec::<f32>().unwrap()
}

#[test]
fn initialisers_are_reproducible_under_a_graph_seed() {
    for init in [
        Initializer::random_normal(1.0),
        Initializer::truncated_normal(0.1),
        Initializer::RandomUniform {
            low: -1.0,
            high: 1.0,
        },
        Initializer::GlorotUniform,
        Initializer::GlorotNormal,
    ] {
        let a = initial_values(42, init.clone(), &[5, 6]);
        let b = initial_values(42, init.clone(), &[5, 6]);
        let c = initial_values(43, init.clone(), &[5, 6]);
        assert_eq!(a, b, "{init:?}: same seed, same values");
        assert_ne!(a, c, "{init:?}: another seed, other values");
        // The values are not all the same.
        assert!(a.iter().any(|&v| v != a[0]), "{init:?}");
    }
    // Two variables of one graph draw different values.
    let g = Graph::new();
    g.set_seed(1);
    let p = g.variable("p", &[8], Initializer::random_normal(1.0));
    let q = g.variable("q", &[8], Initializer::random_normal(1.0));
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    assert_ne!(sess.variable(p), sess.variable(q));
    // And a second session of the same graph gets the same values again.
    let mut again = Session::new(&g);
    again.init_variables().unwrap();
    assert_eq!(sess.variable(p), again.variable(p));
}

fn mean_std(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[test]
fn initialisers_have_the_right_statistics() {
    // Truncated normal: within two standard deviations; its spread is 0.88 of the stddev.
    let v = initial_values(3, Initializer::truncated_normal(0.5), &[100, 100]);
    assert!(v.iter().all(|x| x.abs() <= 1.0), "beyond 2 stddev");
    let (mean, std) = mean_std(&v);
    assert!(mean.abs() < 0.02, "mean {mean}");
    assert!((std - 0.5 * 0.8796).abs() < 0.015, "std {std}");
    assert!(v.iter().any(|x| x.abs() > 0.9), "the tails are used");

    let v = initial_values(
        4,
        Initializer::TruncatedNormal {
            mean: 2.0,
            stddev: 0.1,
        },
        &[50, 50],
    );
    assert!(v.iter().all(|x| (x - 2.0).abs() <= 0.2 + 1e-6));

    // Glorot uniform: within ±sqrt(6 / (fan_in + fan_out)), spread evenly.
    let v = initial_values(5, Initializer::GlorotUniform, &[200, 300]);
    let limit = (6.0f64 / 500.0).sqrt();
    assert!(v.iter().all(|&x| (x as f64).abs() <= limit));
    let max = v.iter().fold(0.0f64, |m, &x| m.max((x as f64).abs()));
    assert!(max > 0.99 * limit, "max {max} vs limit {limit}");
    let (mean, std) = mean_std(&v);
    assert!(mean.abs() < 0.002, "mean {mean}");
    assert!((std - limit / 3f64.sqrt()).abs() < 0.002, "std {std}");

    // Glorot normal: stddev sqrt(2 / (fan_in + fan_out)) after truncation.
    let v = initial_values(6, Initializer::GlorotNormal, &[200, 300]);
    let (_, std) = mean_std(&v);
    assert!((std - (2.0f64 / 500.0).sqrt()).abs() < 0.002, "std {std}");

    // Normal and uniform.
    let v = initial_values(
        7,
        Initializer::RandomNormal {
            mean: 1.0,
            stddev: 2.0,
        },
        &[100, 100],
    );
    let (mean, std) = mean_std(&v);
    assert!(
        (mean - 1.0).abs() < 0.06 && (std - 2.0).abs() < 0.06,
        "{mean} {std}"
    );
    let v = initial_values(
        8,
        Initializer::RandomUniform {
            low: -1.0,
            high: 3.0,
        },
        &[100, 100],
    );
    assert!(v.iter().all(|&x| (-1.0..3.0).contains(&x)));
    let (mean, _) = mean_std(&v);
    assert!((mean - 1.0).abs() < 0.05, "{mean}");
}

#[test]
fn constant_initialisers() {
    let g = Graph::new();
    let z = g.variable("z", &[2], Initializer::Zeros);
    let o = g.variable("o", &[2], Initializer::Ones);
    let f = g.variable("f", &[2], Initializer::Fill(-1.5));
    let c = g.variable(
        "c",
        &[2],
        Initializer::Constant(Tensor::from_vec(vec![3.0f64, 4.0])),
    );
    let d = g.variable_with("d", DType::F64, &[3], Initializer::random_normal(1.0), true);
    let mut sess = Session::new(&g);
    assert_eq!(sess.init_variables().unwrap(), 5);
    let get = |v| sess.variable(v).unwrap();
    assert_eq!(get(z).to_vec::<f32>().unwrap(), vec![0.0, 0.0]);
    assert_eq!(get(o).to_vec::<f32>().unwrap(), vec![1.0, 1.0]);
    assert_eq!(get(f).to_vec::<f32>().unwrap(), vec![-1.5, -1.5]);
    // A constant is cast to the variable's dtype.
    assert_eq!(get(c).to_vec::<f32>().unwrap(), vec![3.0, 4.0]);
    assert_eq!(get(d).dtype(), DType::F64);
    assert_eq!(g.trainable_variables().len(), 5);

    // A constant of the wrong shape is an error naming the variable.
    let g = Graph::new();
    g.variable(
        "bad",
        &[3],
        Initializer::Constant(Tensor::from_vec(vec![1.0f32])),
    );
    let err = Session::new(&g).init_variables().unwrap_err();
    assert!(
        err.to_string().contains("'bad'") && err.to_string().contains("[3]"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Names and devices.
// ---------------------------------------------------------------------------------------------

#[test]
fn name_scopes_and_unique_names() {
    let g = Graph::new();
    let a = g.constant(Tensor::zeros(DType::F32, &[2, 2]));
    let m0 = matmul(a, a);
    let m1 = matmul(a, a);
    assert_eq!(m0.name(), "MatMul");
    assert_eq!(m1.name(), "MatMul_1");
    let (scoped, inner, again) = {
        let _layer = g.name_scope("layer");
        let scoped = matmul(a, a);
        let inner = {
            let _inner = g.name_scope("inner");
            scoped + a
        };
        let again = matmul(a, a);
        (scoped, inner, again)
    };
    assert_eq!(scoped.name(), "layer/MatMul");
    assert_eq!(inner.name(), "layer/inner/Add");
    assert_eq!(again.name(), "layer/MatMul_1");
    assert_eq!(g.node(inner.node()).unwrap().scope(), "layer/inner");
    // After the scope closes, names are top-level again.
    assert_eq!(matmul(a, a).name(), "MatMul_2");
    // Placeholders and variables with taken names get a suffix.
    assert_eq!(g.placeholder("x", DType::F32, &[1]).name(), "x");
    assert_eq!(g.placeholder("x", DType::F32, &[1]).name(), "x_1");
    // Renaming, and finding a node by name.
    let r = relu(m0).named("activation");
    assert_eq!(r.name(), "activation");
    assert_eq!(g.get("activation").unwrap(), r);
    assert_eq!(g.get("layer/MatMul").unwrap(), scoped);
    let err = g.get("nope").unwrap_err();
    assert_eq!(err.to_string(), "no node named 'nope' in the graph");
    // Gradients live in their own scope.
    let x = g.placeholder("gx", DType::F32, &[2]);
    let dx = gradient(reduce_sum(x * x), x).unwrap();
    assert!(dx.name().starts_with("gradients/"), "{}", dx.name());
}

#[test]
fn device_constraints_are_kept_on_nodes() {
    let g = Graph::new();
    let a = g.constant(Tensor::from_vec(vec![1.0f32]));
    let (on_cpu, on_gpu, back) = {
        let _cpu = g.device("/cpu:0");
        let on_cpu = a * 2.0;
        let on_gpu = {
            let _gpu = g.device("/job:worker/task:1/device:GPU:0");
            on_cpu + 1.0
        };
        (on_cpu, on_gpu, on_cpu - 1.0)
    };
    let free = a + 3.0;
    let device = |o: Output| g.node(o.node()).unwrap().device;
    assert_eq!(device(a), "");
    assert_eq!(device(on_cpu), "/cpu:0");
    assert_eq!(device(on_gpu), "/job:worker/task:1/device:GPU:0");
    assert_eq!(device(back), "/cpu:0");
    assert_eq!(device(free), "");
    // Constrained nodes still run here.
    assert_eq!(eval(on_gpu, &[]).to_vec::<f32>().unwrap(), vec![3.0]);
}

// ---------------------------------------------------------------------------------------------
// Optimizers.
// ---------------------------------------------------------------------------------------------

/// Trains `w` (starting at 0) on sum((w - 3)^2) for `steps` steps; returns w after the first
/// step and at the end, and the loss before and after.
fn train(optimizer: &dyn Optimizer, steps: usize) -> (Vec<f32>, Vec<f32>, f32, f32) {
    let g = Graph::new();
    let w = g.variable("w", &[3], Initializer::Zeros);
    let loss = reduce_sum(square(w - 3.0));
    let train = optimizer.minimize(loss).unwrap();
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    let initial = sess.run(&[loss], &[]).unwrap()[0].get_f64(0) as f32;
    let mut first = Vec::new();
    for step in 1..=steps {
        let out = sess.run(&[train], &[]).unwrap();
        // The train op's value is the global step after the update.
        assert_eq!(out[0].dtype(), DType::I64);
        assert_eq!(out[0].to_vec::<i64>().unwrap(), vec![step as i64]);
        if step == 1 {
            first = sess.variable(w).unwrap().to_vec::<f32>().unwrap();
        }
    }
    let last = sess.variable(w).unwrap().to_vec::<f32>().unwrap();
    let final_loss = sess.run(&[loss], &[]).unwrap()[0].get_f64(0) as f32;
    (first, last, initial, final_loss)
}

fn close_to(v: &[f32], want: f32, tol: f32) -> bool {
    v.iter().all(|x| (x - want).abs() <= tol)
}

#[test]
fn gradient_descent_reduces_a_quadratic() {
    let (first, last, initial, loss) = train(&GradientDescent::new(0.1), 60);
    assert_eq!(initial, 27.0);
    // w -= 0.1 * 2 (w - 3) from 0.
    assert!(close_to(&first, 0.6, 1e-6), "{first:?}");
    assert!(close_to(&last, 3.0, 1e-3), "{last:?}");
    assert!(loss < 1e-5, "{loss}");
}

#[test]
fn momentum_reduces_a_quadratic() {
    let (first, last, _, loss) = train(&Momentum::new(0.05, 0.9), 200);
    // a = g = -6; w -= 0.05 * a.
    assert!(close_to(&first, 0.3, 1e-6), "{first:?}");
    assert!(close_to(&last, 3.0, 1e-2), "{last:?}");
    assert!(loss < 1e-3, "{loss}");
    let nesterov = Momentum {
        nesterov: true,
        ..Momentum::new(0.05, 0.9)
    };
    let (first, last, _, _) = train(&nesterov, 200);
    // w -= 0.05 * (g + 0.9 a) with a = g = -6.
    assert!(close_to(&first, 0.57, 1e-6), "{first:?}");
    assert!(close_to(&last, 3.0, 1e-2), "{last:?}");
}

#[test]
fn adam_reduces_a_quadratic() {
    let (first, last, _, loss) = train(&Adam::new(0.1), 300);
    // Adam's first step moves each weight by about the learning rate.
    assert!(close_to(&first, 0.1, 1e-4), "{first:?}");
    assert!(close_to(&last, 3.0, 2e-2), "{last:?}");
    assert!(loss < 1e-3, "{loss}");
}

#[test]
fn minimize_without_trainable_variables_is_an_error() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2]);
    let err = GradientDescent::new(0.1)
        .minimize(reduce_sum(x * x))
        .unwrap_err();
    assert!(err.to_string().contains("does not influence"), "{err}");
}

#[test]
fn training_with_fed_data_fits_a_line() {
    // y = 2x - 1, learnt from fed batches.
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 1]);
    let y = g.placeholder("y", DType::F32, &[-1, 1]);
    let w = g.variable("w", &[1, 1], Initializer::Zeros);
    let b = g.variable("b", &[1], Initializer::Zeros);
    let loss = reduce_mean(square(matmul(x, w) + b - y));
    let train = GradientDescent::new(0.3).minimize(loss).unwrap();
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    let xs: Vec<f32> = (0..8).map(|i| i as f32 / 4.0 - 1.0).collect();
    let ys: Vec<f32> = xs.iter().map(|v| 2.0 * v - 1.0).collect();
    let feeds = [(x, f32s(&[8, 1], xs)), (y, f32s(&[8, 1], ys))];
    for _ in 0..300 {
        sess.run(&[train], &feeds).unwrap();
    }
    let w = sess.variable(w).unwrap().get_f64(0);
    let b = sess.variable(b).unwrap().get_f64(0);
    assert!(
        (w - 2.0).abs() < 1e-3 && (b + 1.0).abs() < 1e-3,
        "w {w} b {b}"
    );
}

// ---------------------------------------------------------------------------------------------
// Tensors: conversions and printing.
// ---------------------------------------------------------------------------------------------

#[test]
fn tensor_from_and_to_vec() {
    let t = Tensor::from(vec![1.0f32, 2.0, 3.0]);
    assert_eq!(t.dtype(), DType::F32);
    assert_eq!(t.shape(), &[3]);
    assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0]);
    let err = t.to_vec::<f64>().unwrap_err();
    assert_eq!(
        err,
        TensorError::WrongDType {
            actual: DType::F32,
            requested: DType::F64
        }
    );
    assert_eq!(
        err.to_string(),
        "tensor has dtype f32, not the requested f64"
    );

    let m = Tensor::new(&[2, 3], vec![1i64, 2, 3, 4, 5, 6]).unwrap();
    assert_eq!((m.rank(), m.len()), (2, 6));
    let err = Tensor::new(&[2, 3], vec![1i64, 2, 3, 4, 5]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "shape [2, 3] holds 6 elements but 5 were given"
    );
    let err = m.reshape(&[4, 2]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot reshape a tensor of shape [2, 3] to [4, 2]"
    );
    assert_eq!(m.reshape(&[3, 2]).unwrap().shape(), &[3, 2]);

    let s = Tensor::from(2.5f64);
    assert_eq!(s.shape(), &[] as &[usize]);
    assert_eq!(s.scalar_f64(), Some(2.5));
    assert_eq!(Tensor::from(1.5f32).dtype(), DType::F32);
    assert_eq!(m.scalar_f64(), None);
    assert_eq!(Tensor::scalar(7u8).get_f64(0), 7.0);
    assert_eq!(
        Tensor::full(&[2], true).to_vec::<bool>().unwrap(),
        vec![true, true]
    );
    assert_eq!(
        Tensor::zeros(DType::I32, &[2, 2]).to_vec::<i32>().unwrap(),
        vec![0; 4]
    );

    // Writing to a clone leaves the original alone.
    let mut c = t.clone();
    c.as_mut_slice::<f32>().unwrap()[0] = 9.0;
    assert_eq!(t.to_vec::<f32>().unwrap()[0], 1.0);
    assert_eq!(c.to_vec::<f32>().unwrap()[0], 9.0);
}

#[test]
fn tensor_from_and_to_ndarray() {
    let a = ndarray::arr2(&[[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let t = Tensor::from(a.clone());
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(
        t.to_vec::<f64>().unwrap(),
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    let back = t.to_ndarray::<f64>().unwrap();
    assert_eq!(back, a.into_dyn());
    assert!(t.to_ndarray::<f32>().is_err());

    // A transposed (column-major) array converts in its logical order.
    let transposed = ndarray::arr2(&[[1i32, 2], [3, 4], [5, 6]]).reversed_axes();
    let t = Tensor::from(transposed);
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(t.to_vec::<i32>().unwrap(), vec![1, 3, 5, 2, 4, 6]);

    let three =
        ndarray::Array3::<f32>::from_shape_fn((2, 3, 4), |(i, j, k)| (i * 100 + j * 10 + k) as f32);
    let t = Tensor::from(three.clone());
    assert_eq!(t.shape(), &[2, 3, 4]);
    assert_eq!(t.to_vec::<f32>().unwrap()[23], 123.0);
    assert_eq!(t.to_ndarray::<f32>().unwrap(), three.into_dyn());

    // Through a session and back.
    let g = Graph::new();
    let out = eval(g.constant(t) * 2.0, &[]);
    assert_eq!(out.to_ndarray::<f32>().unwrap()[[1, 2, 3]], 246.0);
}

#[test]
fn tensor_casts() {
    let t = Tensor::from_vec(vec![1.9f64, -1.9, 0.0]);
    assert_eq!(t.cast(DType::I32).to_vec::<i32>().unwrap(), vec![1, -1, 0]);
    assert_eq!(
        t.cast(DType::Bool).to_vec::<bool>().unwrap(),
        vec![true, true, false]
    );
    assert_eq!(t.cast(DType::F32).dtype(), DType::F32);
    assert_eq!(
        Tensor::from_vec(vec![true, false])
            .cast(DType::F64)
            .to_vec::<f64>()
            .unwrap(),
        vec![1.0, 0.0]
    );
}

#[test]
fn small_tensors_print_like_numpy() {
    let t = f32s(&[2, 3], vec![1.0, 2.5, -3.0, 4.0, 5.0, 6.0]);
    assert_eq!(t.to_string(), "[[ 1.   2.5 -3. ]\n [ 4.   5.   6. ]]");
    assert_eq!(format!("{t}"), t.to_string());
    let i = Tensor::new(&[2, 2], vec![1i32, -20, 3, 4]).unwrap();
    assert_eq!(i.to_string(), "[[  1 -20]\n [  3   4]]");
    assert_eq!(
        Tensor::from_vec(vec![0.5f64, 0.25]).to_string(),
        "[0.5  0.25]"
    );
    assert_eq!(
        Tensor::from_vec(vec![true, false, true]).to_string(),
        "[ True False  True]"
    );
    assert_eq!(Tensor::scalar(3.0f32).to_string(), "3.0");
    let r3 = Tensor::new(&[2, 1, 2], vec![1.0f64, 2.0, 3.0, 4.0]).unwrap();
    assert_eq!(r3.to_string(), "[[[1. 2.]]\n\n [[3. 4.]]]");
    // Debug adds the dtype and shape.
    let debug = format!("{t:?}");
    assert!(
        debug.starts_with("Tensor(dtype=f32, shape=[2, 3],"),
        "{debug}"
    );
}

#[test]
fn large_tensors_are_summarised() {
    let t = Tensor::new(
        &[100, 100],
        (0..10_000).map(|i| i as f32 / 8.0 + 200.0).collect(),
    )
    .unwrap();
    let s = t.to_string();
    // What NumPy prints for the same array.
    assert_eq!(
        s,
        "[[ 200.     200.125  200.25  ...  212.125  212.25   212.375]\n \
         [ 212.5    212.625  212.75  ...  224.625  224.75   224.875]\n \
         [ 225.     225.125  225.25  ...  237.125  237.25   237.375]\n \
         ...\n \
         [1412.5   1412.625 1412.75  ... 1424.625 1424.75  1424.875]\n \
         [1425.    1425.125 1425.25  ... 1437.125 1437.25  1437.375]\n \
         [1437.5   1437.625 1437.75  ... 1449.625 1449.75  1449.875]]"
    );
    assert_eq!(s.lines().count(), 7);
    assert!(s.len() < 600, "summary stays short: {} chars", s.len());
    // At the threshold nothing is left out.
    let t = Tensor::new(&[1000], vec![1i64; 1000]).unwrap();
    assert!(!t.to_string().contains("..."));
    let t = Tensor::new(&[1001], vec![1i64; 1001]).unwrap();
    assert!(t.to_string().contains("..."));
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
