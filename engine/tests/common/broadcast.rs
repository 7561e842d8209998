//! A naive NumPy-broadcasting reference, written independently of the library's kernels.

use sluice::prelude::*;

/// A binary op as the graph builds it (`add`, `maximum`, ...).
pub type BinaryFn = fn(Output, Output) -> Output;

/// The broadcast of two shapes by NumPy's rule (right-aligned; 1 stretches).
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() >= rank {
            s[i + s.len() - rank]
        } else {
            1
        }
    };
    (0..rank)
        .map(|i| {
            let (x, y) = (dim(a, i), dim(b, i));
            assert!(x == y || x == 1 || y == 1, "test bug: {a:?} vs {b:?}");
            if x == 1 {
                y
            } else {
                x
            }
        })
        .collect()
}

/// The multi-index of flat position `flat` in a row-major `shape`.
pub fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for axis in (0..shape.len()).rev() {
        index[axis] = flat % shape[axis];
        flat /= shape[axis];
    }
    index
}

/// The flat position in `shape` that broadcasts to multi-index `index` of `out`.
pub fn source(shape: &[usize], out: &[usize], index: &[usize]) -> usize {
    let offset = out.len() - shape.len();
    shape.iter().enumerate().fold(0, |flat, (k, &d)| {
        flat * d + if d == 1 { 0 } else { index[k + offset] }
    })
}

/// `f` applied over the broadcast of `a` and `b`, as f64.
pub fn reference(a: &Tensor, b: &Tensor, f: impl Fn(f64, f64) -> f64) -> Tensor {
    let out = broadcast_shape(a.shape(), b.shape());
    let n: usize = out.iter().product();
    let values: Vec<f64> = (0..n)
        .map(|i| {
            let index = unravel(i, &out);
            f(
                a.get_f64(source(a.shape(), &out, &index)),
                b.get_f64(source(b.shape(), &out, &index)),
            )
        })
        .collect();
    Tensor::new(&out, values).unwrap()
}
