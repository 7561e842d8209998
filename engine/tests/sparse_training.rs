//! Sparse updates against the dense path: the same weights for gradient descent and Adagrad
//! (bit for bit), TensorFlow's lazy semantics for Momentum and Adam (rows a step does not touch
//! keep their values and slots), FTRL's exact zeros; and a large table whose train step holds
//! no tensor of the table's size.
#![cfg(feature = "engine")]

use sluice::prelude::*;

const ROWS: usize = 12;
const DIM: usize = 3;

/// Batches of ids with repeats, and a target per looked-up row.
fn batches() -> Vec<(Vec<i64>, Vec<f32>)> {
    (0..6)
        .map(|step| {
            let ids: Vec<i64> = (0..5).map(|j| ((step * 7 + j * 5) % 9) as i64).collect();
            let ids = [ids, vec![((step * 3) % 9) as i64]].concat();
            let targets = (0..ids.len() * DIM)
                .map(|k| ((k * 13 + step) % 7) as f32 * 0.25 - 0.5)
                .collect();
            (ids, targets)
        })
        .collect()
}

/// The table after training on `batches` with `optimizer`, sparse (`minimize`) or dense
/// (gradients densified, then applied); also each step's loss.
fn train(optimizer: &dyn Optimizer, sparse: bool) -> (Vec<f32>, Vec<f32>) {
    let g = Graph::new();
    let init: Vec<f32> = (0..ROWS * DIM).map(|k| (k as f32 * 0.37).sin()).collect();
    let table = g.variable(
        "table",
        &[ROWS, DIM],
        Initializer::Constant(Tensor::new(&[ROWS, DIM], init).unwrap()),
    );
    let ids = g.placeholder("ids", DType::I64, &[-1]);
    let targets = g.placeholder("targets", DType::F32, &[-1, DIM as i64]);
    let rows = embedding_lookup(table, ids);
    let loss = reduce_sum(square(rows - targets));
    let train = if sparse {
        optimizer.minimize(loss).unwrap()
    } else {
        let grad = gradients(&[loss], &[table]).unwrap()[0].unwrap();
        optimizer.apply_gradients(&[(grad, table)]).unwrap()
    };
    let kinds: Vec<String> = g.nodes().iter().map(|n| n.op_name().to_string()).collect();
    let sparse_updates = kinds
        .iter()
        .filter(|k| k.starts_with("SparseApply"))
        .count();
    assert_eq!(sparse_updates, usize::from(sparse), "{kinds:?}");
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    let mut losses = Vec::new();
    for (batch, target) in batches() {
        let n = batch.len();
        let feeds = [
            (ids, Tensor::from_vec(batch)),
            (targets, Tensor::new(&[n, DIM], target).unwrap()),
        ];
        let out = sess.run(&[loss, train], &feeds).unwrap();
        losses.push(out[0].get_f64(0) as f32);
    }
    (sess.variable(table).unwrap().to_vec().unwrap(), losses)
}

#[test]
fn sparse_gradient_descent_and_adagrad_give_the_dense_weights_exactly() {
    let rules: [&dyn Optimizer; 2] = [&GradientDescent::new(0.1), &Adagrad::new(0.3)];
    for optimizer in rules {
        let (sparse, losses) = train(optimizer, true);
        let (dense, dense_losses) = train(optimizer, false);
        assert_eq!(sparse, dense, "{}", optimizer.name());
        assert_eq!(losses, dense_losses);
        assert!(losses.last() < losses.first(), "{losses:?}");
    }
}

/// The row width of the lazy-update test's table.
const WIDTH: usize = 2;

/// One step of a rule on rows `touched` (each once, gradient `grads[row]`), as the lazy
/// sparse update makes it: what the test holds the engine to.
fn lazy_reference(
    optimizer: &str,
    w: &mut [f32],
    slots: &mut [Vec<f32>; 2],
    grads: &std::collections::BTreeMap<usize, Vec<f32>>,
    step: usize,
) {
    let (lr, b1, b2, eps, mu) = (0.05f32, 0.9f32, 0.999f32, 1e-7f32, 0.9f32);
    let t = (step + 1) as f64;
    let lr_t = (0.05f64 * (1.0 - 0.999f64.powf(t)).sqrt() / (1.0 - 0.9f64.powf(t))) as f32;
    for (&row, g) in grads {
        for (k, &g) in g.iter().enumerate() {
            let i = row * WIDTH + k;
            if optimizer == "Momentum" {
                slots[0][i] = mu * slots[0][i] + g;
                w[i] -= lr * slots[0][i];
            } else {
                slots[0][i] = b1 * slots[0][i] + (1.0 - b1) * g;
                slots[1][i] = b2 * slots[1][i] + (1.0 - b2) * g * g;
                w[i] -= lr_t * slots[0][i] / (slots[1][i].sqrt() + eps);
            }
        }
    }
}

#[test]
fn sparse_momentum_and_adam_are_lazy_as_tensorflows() {
    let rules: [&dyn Optimizer; 2] = [&Momentum::new(0.05, 0.9), &Adam::new(0.05)];
    for optimizer in rules {
        let g = Graph::new();
        let table = g.variable("table", &[4, 2], Initializer::Ones);
        let ids = g.placeholder("ids", DType::I64, &[-1]);
        let loss = reduce_sum(square(embedding_lookup(table, ids)) * 0.5);
        let train = optimizer.minimize(loss).unwrap();
        let mut sess = Session::new(&g);
        sess.init_variables().unwrap();
        let mut w = vec![1.0f32; 8];
        let mut slots = [vec![0.0f32; 8], vec![0.0f32; 8]];
        // Row 0 is touched in the first step only; row 3 never.
        for (step, batch) in [vec![0i64, 1, 1], vec![1, 2], vec![2, 1]]
            .into_iter()
            .enumerate()
        {
            // d loss / d row = row value, once per appearance.
            let mut grads = std::collections::BTreeMap::<usize, Vec<f32>>::new();
            for &id in &batch {
                let row = id as usize;
                let value = w[row * 2..row * 2 + 2].to_vec();
                let entry = grads.entry(row).or_insert(vec![0.0; 2]);
                entry.iter_mut().zip(&value).for_each(|(e, v)| *e += v);
            }
            lazy_reference(optimizer.name(), &mut w, &mut slots, &grads, step);
            sess.run(&[train], &[(ids, Tensor::from_vec(batch))])
                .unwrap();
            let got: Vec<f32> = sess.variable(table).unwrap().to_vec().unwrap();
            for (a, b) in got.iter().zip(&w) {
                assert!(
                    (a - b).abs() < 1e-6,
                    "{}: {got:?} vs {w:?}",
                    optimizer.name()
                );
            }
        }
        // Untouched rows keep their start, and row 0 stopped when its last step did, whereas
        // a dense update would have kept moving it on its momentum.
        let got: Vec<f32> = sess.variable(table).unwrap().to_vec().unwrap();
        assert_eq!(&got[6..8], &[1.0, 1.0]);
        assert!(got[0] < 1.0);
    }
}

/// Trains a 3 x 2 table towards `target` (through a gather of rows 0, 1, 2, 1) with FTRL,
/// sparse or dense; the table and the losses.
fn ftrl_train(ftrl: &Ftrl, sparse: bool, target: &[f32]) -> (Vec<f32>, Vec<f64>) {
    let g = Graph::new();
    let table = g.variable("table", &[3, 2], Initializer::Zeros);
    let ids = g.constant(Tensor::from_vec(vec![0i64, 1, 2, 1]));
    let target = g.constant(Tensor::new(&[4, 2], target.to_vec()).unwrap());
    let loss = reduce_sum(square(gather(table, ids) - target));
    let train = if sparse {
        ftrl.minimize(loss).unwrap()
    } else {
        let grad = gradients(&[loss], &[table]).unwrap()[0].unwrap();
        ftrl.apply_gradients(&[(grad, table)]).unwrap()
    };
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    let mut losses = Vec::new();
    for _ in 0..30 {
        losses.push(sess.run(&[loss, train], &[]).unwrap()[0].get_f64(0));
    }
    (sess.variable(table).unwrap().to_vec().unwrap(), losses)
}

#[test]
fn ftrl_sparse_rows_match_the_dense_rule_and_l1_makes_exact_zeros() {
    let ftrl = Ftrl {
        l1: 0.05,
        l2: 0.01,
        ..Ftrl::new(0.2)
    };
    // Row 2's second element is pulled towards a tiny 0.0005 (its summed gradient stays
    // under L1 over these steps), the others far.
    let target = [1.0f32, -2., 0.01, 0.5, 3., 0.0005, 0.2, -0.3];
    let (sparse, losses) = ftrl_train(&ftrl, true, &target);
    let (dense, _) = ftrl_train(&ftrl, false, &target);
    // Every row is touched in every step: the sparse and dense rules agree exactly.
    assert_eq!(sparse, dense);
    assert!(losses[29] < losses[0] * 0.5, "{losses:?}");
    // L1 holds the weakly pulled element at exactly zero; without it, it moves.
    assert_eq!(sparse[5], 0.0, "{sparse:?}");
    assert!(sparse[4] > 1.0, "{sparse:?}");
    let plain = Ftrl { l1: 0.0, ..ftrl };
    let (free, _) = ftrl_train(&plain, true, &target);
    assert!(free[5] > 0.0, "{free:?}");
}

/// One FTRL step by hand (TensorFlow's ApplyFtrl), in f64.
fn ftrl_step(w: f64, accum: f64, linear: f64, g: f64, f: &Ftrl) -> (f64, f64, f64) {
    let p = -f.learning_rate_power;
    let new = accum + g * g;
    let linear = linear + g - (new.powf(p) - accum.powf(p)) / f.learning_rate * w;
    let quadratic = new.powf(p) / f.learning_rate + 2.0 * f.l2;
    let w = if linear.abs() > f.l1 {
        (linear.signum() * f.l1 - linear) / quadratic
    } else {
        0.0
    };
    (w, new, linear)
}

#[test]
fn ftrl_follows_tensorflows_rule_for_any_learning_rate_power() {
    for power in [-0.5, -0.7, 0.0] {
        let ftrl = Ftrl {
            learning_rate_power: power,
            l1: 0.01,
            l2: 0.02,
            ..Ftrl::new(0.3)
        };
        let g = Graph::new();
        let w = g.variable_with("w", DType::F64, &[3], Initializer::Zeros, true);
        let x = g.constant(Tensor::from_vec(vec![1.5f64, -0.5, 0.02]));
        // d loss / d w = 2 (w - x).
        let loss = reduce_sum(square(w - x));
        let train = ftrl.minimize(loss).unwrap();
        let mut sess = Session::new(&g);
        sess.init_variables().unwrap();
        let mut want = [(0.0, 0.1, 0.0); 3];
        let targets = [1.5, -0.5, 0.02];
        for _ in 0..5 {
            sess.run(&[train], &[]).unwrap();
            for (k, state) in want.iter_mut().enumerate() {
                let grad = 2.0 * (state.0 - targets[k]);
                *state = ftrl_step(state.0, state.1, state.2, grad, &ftrl);
            }
            let got: Vec<f64> = sess.variable(w).unwrap().to_vec().unwrap();
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (a - b.0).abs() < 1e-12,
                    "power {power}: {got:?} vs {want:?}"
                );
            }
        }
    }
}

#[test]
fn hyper_parameters_that_make_no_update_are_refused() {
    let g = Graph::new();
    let w = g.variable("w", &[2], Initializer::Zeros);
    let loss = reduce_sum(square(w));
    let zero_start = Adagrad {
        initial_accumulator_value: 0.0,
        ..Adagrad::new(0.1)
    };
    let e = zero_start.minimize(loss).unwrap_err().to_string();
    assert!(
        e.contains("initial_accumulator_value must be a positive number"),
        "{e}"
    );
    let negative = Ftrl {
        l1: -1.0,
        ..Ftrl::new(0.1)
    };
    let e = negative.minimize(loss).unwrap_err().to_string();
    assert!(e.contains("l1 must be zero or more"), "{e}");
    let e = GradientDescent::new(f64::NAN)
        .minimize(loss)
        .unwrap_err()
        .to_string();
    assert!(e.contains("learning_rate must be a positive number"), "{e}");
}

#[test]
fn a_large_tables_train_step_holds_no_tensor_of_the_tables_size() {
    let g = Graph::new();
    let rows = 1_000_000usize;
    let table = g.variable("embedding", &[rows, 64], Initializer::Zeros);
    let ids = g.placeholder("ids", DType::I64, &[1000]);
    let loss = reduce_sum(square(embedding_lookup(table, ids) - 1.0));
    let before = g.len();
    Adagrad::new(0.1).minimize(loss).unwrap();
    let nodes = g.nodes();
    let table_sized: Vec<String> = (nodes[before..].iter())
        .filter(|n| n.op.effect() != sluice::ops::Effect::ReadVariable)
        .filter(|n| (n.outputs.iter()).any(|o| o.shape.dims().first() == Some(&Some(rows))))
        .map(|n| format!("{} ({})", n.name, n.op_name()))
        .collect();
    assert!(table_sized.is_empty(), "dense nodes: {table_sized:?}");
}
