//! Matrix products: every transpose combination, batches, the parallel path, and the narrow
//! f32 kernels (results of at most 16 columns) against a triple loop.

#![cfg(feature = "engine")]

mod common;
use common::*;
use sluice::prelude::*;

/// `op(a) @ op(b)` by the triple loop, over a leading batch of matrices.
fn matmul_ref(a: &Tensor, b: &Tensor, ta: bool, tb: bool) -> Tensor {
    let (sa, sb) = (a.shape(), b.shape());
    let r = sa.len();
    let batch: usize = sa[..r - 2].iter().product();
    let (ar, ac) = (sa[r - 2], sa[r - 1]);
    let (br, bc) = (sb[r - 2], sb[r - 1]);
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let n = if tb { br } else { bc };
    let mut out = Vec::with_capacity(batch * m * n);
    for bi in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for p in 0..k {
                    let x = if ta {
                        a.get_f64(bi * ar * ac + p * ac + i)
                    } else {
                        a.get_f64(bi * ar * ac + i * ac + p)
                    };
                    let y = if tb {
                        b.get_f64(bi * br * bc + j * bc + p)
                    } else {
                        b.get_f64(bi * br * bc + p * bc + j)
                    };
                    s += x * y;
                }
                out.push(s);
            }
        }
    }
    let mut shape = sa[..r - 2].to_vec();
    shape.extend([m, n]);
    Tensor::new(&shape, out).unwrap()
}

/// Operand shapes for `[.., m, k] @ [.., k, n]` under the transpose flags.
fn operand_shapes(
    batch: &[usize],
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
) -> (Vec<usize>, Vec<usize>) {
    let mut a = batch.to_vec();
    a.extend(if ta { [k, m] } else { [m, k] });
    let mut b = batch.to_vec();
    b.extend(if tb { [n, k] } else { [k, n] });
    (a, b)
}

const FLAGS: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

#[test]
fn matmul_with_every_transpose_combination() {
    for (ta, tb) in FLAGS {
        for batch in [&[][..], &[2][..], &[2, 2][..]] {
            let (sa, sb) = operand_shapes(batch, 3, 5, 4, ta, tb);
            let (a, b) = (sample(&sa, 5), sample(&sb, 6));
            let g = Graph::new();
            let y = matmul_t(g.constant(a.clone()), g.constant(b.clone()), ta, tb);
            let mut want_shape = batch.to_vec();
            want_shape.extend([3, 4]);
            assert_eq!(
                y.type_shape().unwrap().shape.to_known().unwrap(),
                want_shape
            );
            let got = eval(y, &[]);
            assert_close(&got, &matmul_ref(&a, &b, ta, tb), 1e-13);
            // f32 too.
            let got32 = eval(
                matmul_t(
                    g.constant(a.cast(DType::F32)),
                    g.constant(b.cast(DType::F32)),
                    ta,
                    tb,
                ),
                &[],
            );
            assert_eq!(got32.dtype(), DType::F32);
            assert_close(&got32.cast(DType::F64), &matmul_ref(&a, &b, ta, tb), 1e-5);
        }
    }
}

#[test]
fn matmul_larger_than_the_parallel_threshold() {
    // 128 x 256 x 160 multiply-adds: big enough to run on the thread pool.
    let (a, b) = (sample(&[128, 256], 7), sample(&[256, 160], 8));
    let g = Graph::new();
    let got = eval(matmul(g.constant(a.clone()), g.constant(b.clone())), &[]);
    let want = matmul_ref(&a, &b, false, false);
    assert_close(&got, &want, 1e-11);
}

#[test]
fn batch_matmul_rank3() {
    let (a, b) = (sample(&[3, 2, 4], 9), sample(&[3, 4, 5], 10));
    let g = Graph::new();
    let got = eval(
        batch_matmul(g.constant(a.clone()), g.constant(b.clone())),
        &[],
    );
    assert_eq!(got.shape(), &[3, 2, 5]);
    assert_close(&got, &matmul_ref(&a, &b, false, false), 1e-13);
}

#[test]
fn matmul_gradients_for_every_transpose_combination() {
    for (ta, tb) in FLAGS {
        for batch in [&[][..], &[2][..]] {
            let (sa, sb) = operand_shapes(batch, 2, 3, 4, ta, tb);
            check_gradient(&[sample(&sa, 11), sample(&sb, 12)], |x| {
                matmul_t(x[0], x[1], ta, tb)
            });
        }
    }
}

#[test]
fn matmul_with_empty_inner_dimension_is_zeros() {
    let g = Graph::new();
    let a = g.placeholder("a", DType::F64, &[2, -1]);
    let b = g.placeholder("b", DType::F64, &[-1, 3]);
    let got = eval(
        matmul(a, b),
        &[
            (a, Tensor::new(&[2, 0], Vec::<f64>::new()).unwrap()),
            (b, Tensor::new(&[0, 3], Vec::<f64>::new()).unwrap()),
        ],
    );
    assert_eq!(got.shape(), &[2, 3]);
    assert_eq!(got.to_vec::<f64>().unwrap(), vec![0.0; 6]);
}

#[test]
fn matmul_shape_errors() {
    let g = Graph::new();
    let c = |shape: &[usize]| g.constant(Tensor::zeros(DType::F32, shape));
    let err = matmul(c(&[2, 3]), c(&[4, 5])).type_shape().unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'MatMul' (MatMul): inner dimensions do not match: a is [2, 3] (transpose_a=false), \
         b is [4, 5] (transpose_b=false)"
    );
    let err = matmul_t(c(&[2, 3]), c(&[2, 3]), false, true).type_shape();
    assert!(err.is_ok(), "[2,3] @ [2,3]^T fits");
    let err = matmul(c(&[3]), c(&[3, 2])).type_shape().unwrap_err();
    assert!(err.to_string().contains("needs two matrices"), "{err}");
    let err = matmul(c(&[2, 2, 3]), c(&[3, 3, 4]))
        .type_shape()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("batch dimensions differ: a is [2, 2, 3], b is [3, 3, 4]"),
        "{err}"
    );
    let ints = g.constant(Tensor::new(&[2, 2], vec![1i32; 4]).unwrap());
    let err = matmul(ints, ints).type_shape().unwrap_err();
    assert!(err.to_string().contains("must be f32 or f64"), "{err}");
    let f64s = g.constant(Tensor::zeros(DType::F64, &[3, 2]));
    let err = matmul(c(&[2, 3]), f64s).type_shape().unwrap_err();
    assert!(err.to_string().contains("different dtypes"), "{err}");

    // Unknown dims are checked when the values arrive.
    let a = g.placeholder("a", DType::F32, &[-1, -1]);
    let y = matmul(a, c(&[4, 5]));
    let err = Session::new(&g)
        .run(&[y], &[(a, Tensor::zeros(DType::F32, &[2, 3]))])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("inner dimensions do not match: a is [2, 3]"),
        "{err}"
    );
}

#[test]
fn matmul_ignores_stale_values_in_reused_buffers() {
    // The first run leaves NaN-filled buffers in the session's pool; the product computed
    // next must not read them.
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[2, 2]);
    let nan_sum = reduce_sum(log(x) * 1.0);
    let product = matmul(x, x) * 1.0;
    let mut sess = Session::new(&g);
    let neg = Tensor::new(&[2, 2], vec![-1.0f64; 4]).unwrap();
    assert!(sess.run(&[nan_sum], &[(x, neg)]).unwrap()[0]
        .get_f64(0)
        .is_nan());
    let v = Tensor::new(&[2, 2], vec![1.0f64, 2.0, 3.0, 4.0]).unwrap();
    let out = sess.run(&[product], &[(x, v)]).unwrap();
    assert_eq!(out[0].to_vec::<f64>().unwrap(), vec![7.0, 10.0, 15.0, 22.0]);
}

/// f32 operands of a product with a narrow result, over the sizes where the narrow kernels'
/// vector loops and their scalar tails meet.
#[test]
fn narrow_f32_products_match_the_triple_loop() {
    for &n in &[1usize, 3, 10, 16, 17] {
        for &(m, k) in &[(8usize, 8usize), (9, 15), (16, 16), (33, 40), (100, 784)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a_shape = if ta { [k, m] } else { [m, k] };
                let b_shape = if tb { [n, k] } else { [k, n] };
                let a = sample(&a_shape, (m * k) as u64).cast(DType::F32);
                let b = sample(&b_shape, (n + k) as u64).cast(DType::F32);
                let g = Graph::new();
                let (x, y) = (g.constant(a.clone()), g.constant(b.clone()));
                let got = eval(matmul_t(x, y, ta, tb), &[]);
                let want = matmul_ref(&a, &b, ta, tb).cast(DType::F32);
                assert_close(&got, &want, 1e-4 * k as f64);
            }
        }
    }
}
