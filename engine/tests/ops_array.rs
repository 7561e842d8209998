#![cfg(feature = "engine")]

mod common;
use common::*;
use sluice::prelude::*;
use sluice::{GraphError, SessionError};

/// Row-major strides of a shape.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        s[a] = s[a + 1] * shape[a + 1];
    }
    s
}

/// The multi-index of flat position `flat` in `shape`.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for a in (0..shape.len()).rev() {
        index[a] = flat % shape[a];
        flat /= shape[a];
    }
    index
}

fn ravel(index: &[usize], shape: &[usize]) -> usize {
    index.iter().zip(strides(shape)).map(|(i, s)| i * s).sum()
}

fn values(t: &Tensor) -> Vec<f64> {
    (0..t.len()).map(|i| t.get_f64(i)).collect()
}

/// Runs `f` on constants and returns the result (the graph must be valid).
fn run1(inputs: &[Tensor], f: impl Fn(&[Output]) -> Output) -> Tensor {
    let g = Graph::new();
    let xs: Vec<Output> = inputs.iter().map(|t| g.constant(t.clone())).collect();
    let y = f(&xs);
    assert!(g.errors().is_empty(), "graph errors: {:?}", g.errors());
    eval(y, &[])
}

/// The message of the first graph error after building `f` over placeholders of these shapes.
fn graph_error(shapes: &[(DType, &[i64])], f: impl Fn(&[Output]) -> Output) -> String {
    let g = Graph::new();
    let xs: Vec<Output> = shapes
        .iter()
        .enumerate()
        .map(|(i, (dt, s))| g.placeholder(&format!("x{i}"), *dt, s))
        .collect();
    f(&xs);
    match g.errors().first() {
        Some(GraphError::InvalidNode { message, .. }) => message.clone(),
        other => panic!("expected an InvalidNode error, got {other:?}"),
    }
}

fn kernel_error(y: Output, feeds: &[(Output, Tensor)]) -> String {
    let g = y.graph().expect("graph");
    let mut sess = Session::new(&g);
    match sess.run(&[y], feeds) {
        Err(SessionError::Kernel { message, .. }) => message,
        other => panic!("expected a kernel error, got {other:?}"),
    }
}

// ---------------------------------------------------------------- transpose

fn transpose_reference(x: &Tensor, perm: &[usize]) -> Tensor {
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape()[p]).collect();
    let out: Vec<f64> = (0..x.len())
        .map(|flat| {
            let o = unravel(flat, &shape);
            let mut i = vec![0; perm.len()];
            for (a, &p) in perm.iter().enumerate() {
                i[p] = o[a];
            }
            x.get_f64(ravel(&i, x.shape()))
        })
        .collect();
    Tensor::new(&shape, out).unwrap()
}

#[test]
fn transpose_matches_reference() {
    let cases: &[(&[usize], &[usize])] = &[
        (&[2, 3], &[1, 0]),
        (&[2, 3, 4], &[2, 0, 1]),
        (&[2, 3, 4], &[0, 2, 1]),
        (&[2, 3, 4, 5], &[3, 1, 0, 2]),
        (&[4], &[0]),
        (&[], &[]),
        (&[3, 0, 2], &[2, 1, 0]),
    ];
    for (k, &(shape, perm)) in cases.iter().enumerate() {
        let x = sample(shape, k as u64);
        let got = run1(std::slice::from_ref(&x), |v| transpose(v[0], perm));
        assert_close(&got, &transpose_reference(&x, perm), 0.0);
        // Other dtypes move the same way.
        let xi = x.cast(DType::I32);
        let got = run1(std::slice::from_ref(&xi), |v| transpose(v[0], perm));
        assert_eq!(got.dtype(), DType::I32);
        assert_close(&got, &transpose_reference(&xi, perm), 0.0);
    }
}

#[test]
fn transpose_gradient() {
    check_gradient(&[sample(&[2, 3, 4], 1)], |x| transpose(x[0], &[2, 0, 1]));
    check_gradient(&[sample(&[3, 2], 2)], |x| transpose(x[0], &[1, 0]));
}

#[test]
fn transpose_rejects_a_bad_permutation() {
    let msg = graph_error(&[(DType::F32, &[2, 3, 4])], |x| transpose(x[0], &[0, 0, 1]));
    assert!(
        msg.contains("[0, 0, 1]") && msg.contains("[2, 3, 4]"),
        "{msg}"
    );
    let msg = graph_error(&[(DType::F32, &[2, 3])], |x| transpose(x[0], &[1, 0, 2]));
    assert!(msg.contains("[1, 0, 2]") && msg.contains("[2, 3]"), "{msg}");
}

// ---------------------------------------------------------------- concat

fn concat_reference(xs: &[Tensor], axis: usize) -> Tensor {
    let mut shape = xs[0].shape().to_vec();
    shape[axis] = xs.iter().map(|x| x.shape()[axis]).sum();
    let out: Vec<f64> = (0..shape.iter().product())
        .map(|flat| {
            let mut i = unravel(flat, &shape);
            for x in xs {
                if i[axis] < x.shape()[axis] {
                    return x.get_f64(ravel(&i, x.shape()));
                }
                i[axis] -= x.shape()[axis];
            }
            unreachable!()
        })
        .collect();
    Tensor::new(&shape, out).unwrap()
}

#[test]
fn concat_matches_reference() {
    let cases: &[(&[&[usize]], i64)] = &[
        (&[&[2, 3], &[4, 3]], 0),
        (&[&[2, 3], &[2, 1], &[2, 2]], 1),
        (&[&[2, 3], &[2, 1], &[2, 2]], -1),
        (&[&[2, 1, 4], &[2, 3, 4]], 1),
        (&[&[3], &[0], &[2]], 0),
        (&[&[2, 2, 2]], 2),
    ];
    for (k, &(shapes, axis)) in cases.iter().enumerate() {
        let xs: Vec<Tensor> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| sample(s, (k * 10 + i) as u64))
            .collect();
        let got = run1(&xs, |v| concat(v, axis));
        let rank = shapes[0].len() as i64;
        let want = concat_reference(&xs, axis.rem_euclid(rank) as usize);
        assert_close(&got, &want, 0.0);
    }
}

#[test]
fn concat_gradient() {
    check_gradient(
        &[sample(&[2, 3], 1), sample(&[2, 1], 2), sample(&[2, 2], 3)],
        |x| concat(x, 1),
    );
    check_gradient(&[sample(&[1, 2, 2], 4), sample(&[3, 2, 2], 5)], |x| {
        concat(x, 0)
    });
}

#[test]
fn concat_with_unknown_dimensions() {
    let g = Graph::new();
    let a = g.placeholder("a", DType::F32, &[-1, 2]);
    let b = g.placeholder("b", DType::F32, &[3, 2]);
    let y = concat(&[a, b], 0);
    let ts = y.type_shape().unwrap();
    assert_eq!(ts.shape.to_string(), "[?, 2]");
    let z = concat(&[a, b], 1);
    assert_eq!(z.type_shape().unwrap().shape.to_string(), "[3, 4]");
    let av = Tensor::new(&[1, 2], vec![1.0f32, 2.0]).unwrap();
    let bv = Tensor::new(&[3, 2], vec![3.0f32, 4.0, 5.0, 6.0, 7.0, 8.0]).unwrap();
    let got = eval(y, &[(a, av.clone()), (b, bv.clone())]);
    assert_eq!(got.shape(), &[4, 2]);
    assert_eq!(
        got.to_vec::<f32>().unwrap(),
        vec![1., 2., 3., 4., 5., 6., 7., 8.]
    );
    // A run-time mismatch is a kernel error, not a panic.
    let msg = kernel_error(z, &[(a, av), (b, bv)]);
    assert!(msg.contains("[1, 2]") && msg.contains("[3, 2]"), "{msg}");
}

#[test]
fn concat_rejects_mismatched_inputs() {
    let msg = graph_error(&[(DType::F32, &[2, 3]), (DType::F32, &[3, 3])], |x| {
        concat(x, 1)
    });
    assert!(msg.contains("[2, 3]") && msg.contains("[3, 3]"), "{msg}");
    let msg = graph_error(&[(DType::F32, &[2, 3]), (DType::F64, &[2, 3])], |x| {
        concat(x, 0)
    });
    assert!(
        msg.contains("f32[2, 3]") && msg.contains("f64[2, 3]"),
        "{msg}"
    );
    let msg = graph_error(&[(DType::F32, &[2, 3])], |x| concat(x, 2));
    assert!(msg.contains("axis 2"), "{msg}");
    // No inputs at all: an invalid node in a graph of its own, not a panic.
    let y = concat(&[], 0);
    let errors = y.graph().unwrap().errors();
    assert!(
        matches!(&errors[..], [GraphError::InvalidNode { message, .. }] if message.contains("at least one input")),
        "{errors:?}"
    );
}

// ---------------------------------------------------------------- stack, expand_dims, squeeze

#[test]
fn stack_expand_dims_and_squeeze() {
    let (a, b) = (sample(&[2, 3], 1), sample(&[2, 3], 2));
    let got = run1(&[a.clone(), b.clone()], |v| stack(v, 0));
    assert_eq!(got.shape(), &[2, 2, 3]);
    assert_eq!(values(&got), [values(&a), values(&b)].concat());
    let got = run1(&[a.clone(), b.clone()], |v| stack(v, -1));
    assert_eq!(got.shape(), &[2, 3, 2]);
    for i in 0..6 {
        assert_eq!(got.get_f64(2 * i), a.get_f64(i));
        assert_eq!(got.get_f64(2 * i + 1), b.get_f64(i));
    }
    let got = run1(std::slice::from_ref(&a), |v| expand_dims(v[0], 1));
    assert_eq!(got.shape(), &[2, 1, 3]);
    let got = run1(std::slice::from_ref(&a), |v| expand_dims(v[0], -1));
    assert_eq!(got.shape(), &[2, 3, 1]);
    let x = sample(&[1, 2, 1, 3], 3);
    assert_eq!(
        run1(std::slice::from_ref(&x), |v| squeeze(v[0], &[])).shape(),
        &[2, 3]
    );
    assert_eq!(
        run1(std::slice::from_ref(&x), |v| squeeze(v[0], &[-2])).shape(),
        &[1, 2, 3]
    );
    let msg = graph_error(&[(DType::F32, &[1, 2, 1])], |v| squeeze(v[0], &[1]));
    assert!(msg.contains("axis 1") && msg.contains("[1, 2, 1]"), "{msg}");
    let msg = graph_error(&[(DType::F32, &[2, 3])], |v| expand_dims(v[0], 3));
    assert!(msg.contains("axis 3"), "{msg}");
    check_gradient(&[sample(&[2, 3], 4), sample(&[2, 3], 5)], |x| stack(x, 1));
    check_gradient(&[sample(&[1, 3, 1], 6)], |x| squeeze(x[0], &[]) * 2.0);
}

// ---------------------------------------------------------------- slice

fn slice_reference(x: &Tensor, begin: &[usize], size: &[usize]) -> Tensor {
    let out: Vec<f64> = (0..size.iter().product())
        .map(|flat| {
            let i: Vec<usize> = unravel(flat, size)
                .iter()
                .zip(begin)
                .map(|(a, b)| a + b)
                .collect();
            x.get_f64(ravel(&i, x.shape()))
        })
        .collect();
    Tensor::new(size, out).unwrap()
}

/// (input shape, begin, size, resulting shape).
type SliceCase = (
    &'static [usize],
    &'static [usize],
    &'static [i64],
    &'static [usize],
);

#[test]
fn slice_matches_reference() {
    let cases: &[SliceCase] = &[
        (&[5], &[1], &[3], &[3]),
        (&[5], &[2], &[-1], &[3]),
        (&[4, 5], &[1, 2], &[2, -1], &[2, 3]),
        (&[4, 5], &[0, 0], &[4, 5], &[4, 5]),
        (&[3, 4, 5], &[1, 0, 2], &[2, 3, 2], &[2, 3, 2]),
        (&[3, 4, 5], &[2, 4, 0], &[-1, -1, 1], &[1, 0, 1]),
        (&[], &[], &[], &[]),
    ];
    for (k, &(shape, begin, size, want_shape)) in cases.iter().enumerate() {
        let x = sample(shape, k as u64);
        let got = run1(std::slice::from_ref(&x), |v| slice(v[0], begin, size));
        assert_close(&got, &slice_reference(&x, begin, want_shape), 0.0);
    }
}

#[test]
fn slice_gradient() {
    check_gradient(&[sample(&[4, 5], 1)], |x| slice(x[0], &[1, 2], &[2, -1]));
    check_gradient(&[sample(&[3, 4, 2], 2)], |x| {
        slice(x[0], &[0, 1, 1], &[3, 2, 1])
    });
}

#[test]
fn slice_rejects_what_does_not_fit() {
    let msg = graph_error(&[(DType::F32, &[4, 5])], |x| slice(x[0], &[3, 0], &[2, 5]));
    assert!(
        msg.contains("[4, 5]") && msg.contains("[3, 0]") && msg.contains("[2, 5]"),
        "{msg}"
    );
    let msg = graph_error(&[(DType::F32, &[4, 5])], |x| slice(x[0], &[0], &[1]));
    assert!(msg.contains("[4, 5]"), "{msg}");
    // Unknown at graph time, caught at run time.
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[-1]);
    let y = slice(x, &[2], &[3]);
    let msg = kernel_error(y, &[(x, sample(&[4], 0))]);
    assert!(msg.contains("[4]"), "{msg}");
}

// ---------------------------------------------------------------- gather

fn gather_reference(params: &Tensor, indices: &[i64], index_shape: &[usize]) -> Tensor {
    let inner: usize = params.shape()[1..].iter().product();
    let mut out = Vec::new();
    for &i in indices {
        for k in 0..inner {
            out.push(params.get_f64(i as usize * inner + k));
        }
    }
    let mut shape = index_shape.to_vec();
    shape.extend_from_slice(&params.shape()[1..]);
    Tensor::new(&shape, out).unwrap()
}

#[test]
fn gather_matches_reference() {
    let cases: &[(&[usize], &[i64], &[usize])] = &[
        (&[5], &[4, 0, 2], &[3]),
        (&[5, 3], &[1, 1, 4, 0], &[4]),
        (&[5, 3], &[1, 2, 0, 4, 3, 3], &[2, 3]),
        (&[4, 2, 3], &[3], &[]),
        (&[4, 2, 3], &[], &[0]),
    ];
    for (k, &(shape, idx, idx_shape)) in cases.iter().enumerate() {
        let params = sample(shape, k as u64);
        let want = gather_reference(&params, idx, idx_shape);
        let i64s = Tensor::new(idx_shape, idx.to_vec()).unwrap();
        let i32s = i64s.cast(DType::I32);
        for indices in [i64s, i32s] {
            let got = run1(&[params.clone(), indices], |v| gather(v[0], v[1]));
            assert_close(&got, &want, 0.0);
        }
        let got = run1(
            &[
                params.cast(DType::F32),
                Tensor::new(idx_shape, idx.to_vec()).unwrap(),
            ],
            |v| gather(v[0], v[1]),
        );
        assert_eq!(got.dtype(), DType::F32);
        assert_close(&got, &want, 1e-6);
    }
}

#[test]
fn gather_gradient_sums_repeated_rows() {
    let idx = Tensor::new(&[2, 3], vec![1i64, 3, 1, 0, 3, 3]).unwrap();
    check_gradient(&[sample(&[4, 2], 1), idx.clone()], |x| gather(x[0], x[1]));
    check_gradient(&[sample(&[5], 2), idx.cast(DType::I32)], |x| {
        gather(x[0], x[1])
    });
    // d/dparams of sum(gather) counts how often each row was picked.
    let g = Graph::new();
    let p = g.constant(Tensor::new(&[4, 2], vec![0.0f64; 8]).unwrap());
    let i = g.constant(idx);
    let grad = gradient(reduce_sum(gather(p, i)), p).unwrap();
    assert_eq!(
        eval(grad, &[]).to_vec::<f64>().unwrap(),
        vec![1., 1., 2., 2., 0., 0., 3., 3.]
    );
}

#[test]
fn gather_reports_out_of_range_indices() {
    let g = Graph::new();
    let p = g.constant(sample(&[4, 2], 1));
    let i = g.placeholder("i", DType::I64, &[-1]);
    let y = gather(p, i);
    let msg = kernel_error(y, &[(i, Tensor::from_vec(vec![0i64, 4, 1]))]);
    assert!(msg.contains("index 4") && msg.contains("size 4"), "{msg}");
    let msg = kernel_error(y, &[(i, Tensor::from_vec(vec![-1i64]))]);
    assert!(msg.contains("index -1") && msg.contains("size 4"), "{msg}");
    let msg = graph_error(&[(DType::F32, &[4, 2]), (DType::F32, &[3])], |x| {
        gather(x[0], x[1])
    });
    assert!(msg.contains("f32[3]"), "{msg}");
    let msg = graph_error(&[(DType::F32, &[]), (DType::I32, &[3])], |x| {
        gather(x[0], x[1])
    });
    assert!(msg.contains("f32[]"), "{msg}");
}

// ---------------------------------------------------------------- one_hot

#[test]
fn one_hot_matches_reference() {
    for (k, shape) in [vec![5usize], vec![2, 3], vec![]].into_iter().enumerate() {
        let n: usize = shape.iter().product();
        let idx: Vec<i64> = (0..n as i64).map(|i| (i * 7 + k as i64) % 6 - 1).collect();
        let depth = 4;
        let mut want = vec![0f32; n * depth];
        for (j, &i) in idx.iter().enumerate() {
            if (0..depth as i64).contains(&i) {
                want[j * depth + i as usize] = 1.0;
            }
        }
        let mut want_shape = shape.clone();
        want_shape.push(depth);
        let want = Tensor::new(&want_shape, want).unwrap();
        let i64s = Tensor::new(&shape, idx).unwrap();
        for indices in [i64s.clone(), i64s.cast(DType::I32)] {
            let got = run1(&[indices], |v| one_hot(v[0], depth));
            assert_eq!(got.dtype(), DType::F32);
            assert_close(&got, &want, 0.0);
        }
    }
    let msg = graph_error(&[(DType::F32, &[3])], |x| one_hot(x[0], 3));
    assert!(msg.contains("f32[3]"), "{msg}");
}

#[test]
fn one_hot_has_no_gradient_but_does_not_block_others() {
    // The labels path carries no gradient; the logits path does.
    let idx = Tensor::new(&[3], vec![2i64, 0, 1]).unwrap();
    check_gradient(&[sample(&[3, 3], 1), idx], |x| {
        x[0] * cast(one_hot(x[1], 3), DType::F64)
    });
}
