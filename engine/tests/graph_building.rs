//! Building graphs: initialisers, name scopes, device constraints.

#![cfg(feature = "engine")]
mod common;
use common::*;
use sluice::prelude::*;

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
    // CPU-constrained nodes run here; GPU ones run on a GPU (engine/tests/gpu_session.rs).
    assert_eq!(eval(back, &[]).to_vec::<f32>().unwrap(), vec![1.0]);
}

#[test]
fn a_default_device_applies_outside_every_scope() {
    let g = Graph::new();
    let before = g.constant(Tensor::from_vec(vec![1.0f32]));
    g.set_default_device("gpu");
    assert_eq!(g.default_device(), "/device:GPU:0");
    let after = before * 2.0;
    let on_cpu = {
        let _cpu = g.device("cpu");
        after + 1.0
    };
    let on_gpu1 = {
        let _gpu = g.device("/device:GPU:1");
        after + 1.0
    };
    let device = |o: Output| g.node(o.node()).unwrap().device;
    assert_eq!(device(before), "");
    assert_eq!(device(after), "/device:GPU:0");
    assert_eq!(device(on_cpu), "/device:CPU:0");
    assert_eq!(device(on_gpu1), "/device:GPU:1");
    // An optimizer re-enters its variable's scope for slots and updates: still the CPU.
    let w = {
        let _cpu = g.device("cpu");
        g.variable("w", &[2], Initializer::Zeros)
    };
    GradientDescent::new(0.1)
        .minimize(reduce_sum(w * 2.0f32))
        .expect("minimize");
    let update = (g.nodes().into_iter())
        .find(|n| n.name.contains("ApplyGradientDescent"))
        .expect("an update");
    assert_eq!(update.device, "/device:CPU:0");
    g.set_default_device("cpu");
    assert_eq!(device(after + 3.0), "");
}
