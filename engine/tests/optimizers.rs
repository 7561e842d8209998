//! Optimizers and their train ops.

#![cfg(feature = "engine")]
use sluice::prelude::*;

fn f32s(shape: &[usize], v: Vec<f32>) -> Tensor {
    Tensor::new(shape, v).unwrap()
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
