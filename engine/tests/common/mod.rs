//! Shared test helpers: run a graph once, check gradients against finite differences, and
//! skip (or, under CI, fail) where optional data or tools are missing.
#![allow(dead_code)]

mod broadcast;
#[cfg(feature = "engine")]
pub mod cuda;
mod optional;
#[allow(unused_imports)] // not every test file compares against the reference
pub use broadcast::*;
#[allow(unused_imports)] // nor needs optional data
pub use optional::*;

use sluice::prelude::*;

/// Runs `fetch` once in a fresh session (variables initialised) and returns its value.
pub fn eval(fetch: Output, feeds: &[(Output, Tensor)]) -> Tensor {
    let g = fetch.graph().expect("graph");
    let mut sess = Session::new(&g);
    sess.init_variables().expect("init");
    sess.run(&[fetch], feeds).expect("run").remove(0)
}

/// A deterministic f64 tensor of `shape` with values spread over [-1, 1] (no zeros, no ties).
pub fn sample(shape: &[usize], salt: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n)
        .map(|i| {
            let k = (i as u64 + 1)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(salt * 97_531)
                % 10_007;
            (k as f64 / 10_007.0) * 1.8 - 0.9 + 0.013
        })
        .collect();
    Tensor::new(shape, values).expect("shape")
}

/// Builds `f` over f64 placeholders fed with `inputs`, and checks `gradients` of a weighted sum
/// of its output against central finite differences. Integer inputs are fed but not checked.
pub fn check_gradient(inputs: &[Tensor], f: impl Fn(&[Output]) -> Output) {
    let g = Graph::new();
    let xs: Vec<Output> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let dims: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
            g.placeholder(&format!("x{i}"), t.dtype(), &dims)
        })
        .collect();
    let y = f(&xs);
    let y_shape: Vec<usize> = {
        let probe = feeds(&xs, inputs);
        let mut sess = Session::new(&g);
        sess.run(&[y], &probe)
            .expect("forward")
            .remove(0)
            .shape()
            .to_vec()
    };
    // Random weights make every output element matter differently.
    let weights = g.constant(sample(&y_shape, 7));
    let loss = reduce_sum(y * weights);
    let float_xs: Vec<usize> = (0..xs.len())
        .filter(|&i| inputs[i].dtype().is_float())
        .collect();
    let targets: Vec<Output> = float_xs.iter().map(|&i| xs[i]).collect();
    let grads = gradients(&[loss], &targets).expect("gradients");
    let mut sess = Session::new(&g);
    let eps = 1e-6;
    for (k, &i) in float_xs.iter().enumerate() {
        let Some(grad) = grads[k] else {
            panic!("no gradient reached input {i}");
        };
        let analytic = sess
            .run(&[grad], &feeds(&xs, inputs))
            .expect("gradient run")
            .remove(0);
        assert_eq!(
            analytic.shape(),
            inputs[i].shape(),
            "gradient shape of input {i}"
        );
        let base = inputs[i].to_vec::<f64>().expect("f64 input");
        for j in 0..base.len() {
            let mut shifted = inputs.to_vec();
            let mut plus = base.clone();
            plus[j] += eps;
            shifted[i] = Tensor::new(inputs[i].shape(), plus).unwrap();
            let lp = sess.run(&[loss], &feeds(&xs, &shifted)).unwrap()[0].get_f64(0);
            let mut minus = base.clone();
            minus[j] -= eps;
            shifted[i] = Tensor::new(inputs[i].shape(), minus).unwrap();
            let lm = sess.run(&[loss], &feeds(&xs, &shifted)).unwrap()[0].get_f64(0);
            let numeric = (lp - lm) / (2.0 * eps);
            let got = analytic.get_f64(j);
            let tolerance = 1e-5 * (1.0 + numeric.abs().max(got.abs()));
            assert!(
                (numeric - got).abs() <= tolerance,
                "d loss / d x{i}[{j}]: analytic {got}, numeric {numeric}"
            );
        }
    }
}

fn feeds(xs: &[Output], values: &[Tensor]) -> Vec<(Output, Tensor)> {
    xs.iter().copied().zip(values.iter().cloned()).collect()
}

/// Asserts two tensors have the same shape and elements within `tol`.
pub fn assert_close(got: &Tensor, want: &Tensor, tol: f64) {
    assert_eq!(got.shape(), want.shape(), "shape");
    let diff = got.max_abs_diff(want).unwrap();
    assert!(
        diff <= tol,
        "max difference {diff} > {tol}\ngot  {got}\nwant {want}"
    );
}
