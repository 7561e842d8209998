#![cfg(feature = "engine")]

mod common;
use common::*;
use sluice::prelude::*;

/// `t` with every element moved at least 0.5 away from zero (safe divisors, log arguments).
fn away_from_zero(t: &Tensor) -> Tensor {
    let v: Vec<f64> = t
        .to_vec::<f64>()
        .unwrap()
        .into_iter()
        .map(|x| x.signum() * (x.abs() + 0.5))
        .collect();
    Tensor::new(t.shape(), v).unwrap()
}

/// `t` mapped to positive values in [0.5, 1.5].
fn positive(t: &Tensor) -> Tensor {
    let v: Vec<f64> = t
        .to_vec::<f64>()
        .unwrap()
        .into_iter()
        .map(|x| x.abs() + 0.5)
        .collect();
    Tensor::new(t.shape(), v).unwrap()
}

/// Shape pairs covering equal shapes, trailing-axis broadcast, outer-product broadcast,
/// scalar with tensor (both sides), rank 3 against rank 2, and both operands stretching.
const SHAPE_PAIRS: &[(&[usize], &[usize])] = &[
    (&[3, 4], &[3, 4]),
    (&[3, 4], &[4]),
    (&[4], &[3, 4]),
    (&[3, 1], &[1, 4]),
    (&[], &[2, 3]),
    (&[2, 3], &[]),
    (&[2, 3, 4], &[3, 1]),
    (&[2, 1, 4], &[3, 4]),
    (&[2, 3, 4], &[2, 3, 4]),
];

type BinaryCase = (&'static str, BinaryFn, fn(f64, f64) -> f64);

/// The binary ops, each with its reference and what its operands need.
fn binary_ops() -> Vec<BinaryCase> {
    vec![
        ("add", |a, b| add(a, b), |x, y| x + y),
        ("sub", |a, b| sub(a, b), |x, y| x - y),
        ("mul", |a, b| mul(a, b), |x, y| x * y),
        ("div", |a, b| div(a, b), |x, y| x / y),
        ("pow", |a, b| pow(a, b), f64::powf),
        ("maximum", |a, b| maximum(a, b), f64::max),
        ("minimum", |a, b| minimum(a, b), f64::min),
        ("operator +", |a, b| a + b, |x, y| x + y),
        ("operator -", |a, b| a - b, |x, y| x - y),
        ("operator *", |a, b| a * b, |x, y| x * y),
        ("operator /", |a, b| a / b, |x, y| x / y),
    ]
}

/// Operands for `op`: divisors away from zero, positive bases for pow.
fn operands(name: &str, sa: &[usize], sb: &[usize]) -> (Tensor, Tensor) {
    let (a, b) = (sample(sa, 1), sample(sb, 2));
    match name {
        "div" | "operator /" => (a, away_from_zero(&b)),
        "pow" => (positive(&a), b),
        _ => (a, b),
    }
}

#[test]
fn binary_ops_broadcast_like_numpy_f64() {
    for (name, op, f) in binary_ops() {
        for &(sa, sb) in SHAPE_PAIRS {
            let (a, b) = operands(name, sa, sb);
            let g = Graph::new();
            let y = op(g.constant(a.clone()), g.constant(b.clone()));
            let got = eval(y, &[]);
            assert_eq!(got.dtype(), DType::F64, "{name} {sa:?} {sb:?}");
            let want = reference(&a, &b, f);
            assert_eq!(got.shape(), want.shape(), "{name} {sa:?} {sb:?}");
            assert!(
                got.max_abs_diff(&want).unwrap() <= 1e-12,
                "{name} {sa:?} {sb:?}: got {got}, want {want}"
            );
        }
    }
}

#[test]
fn binary_ops_broadcast_like_numpy_f32() {
    for (name, op, f) in binary_ops() {
        for &(sa, sb) in SHAPE_PAIRS {
            let (a, b) = operands(name, sa, sb);
            let (a32, b32) = (a.cast(DType::F32), b.cast(DType::F32));
            let g = Graph::new();
            let y = op(g.constant(a32.clone()), g.constant(b32.clone()));
            let got = eval(y, &[]);
            assert_eq!(got.dtype(), DType::F32, "{name}");
            // The reference sees the same f32-rounded operands.
            let want = reference(&a32, &b32, f);
            assert_close(&got.cast(DType::F64), &want, 1e-5);
        }
    }
}

#[test]
fn binary_ops_broadcast_with_unknown_dimensions() {
    let g = Graph::new();
    let a = g.placeholder("a", DType::F64, &[-1, 4]);
    let b = g.placeholder("b", DType::F64, &[-1, 1]);
    let y = a * b - a;
    let (av, bv) = (sample(&[3, 4], 1), sample(&[3, 1], 2));
    let got = eval(y, &[(a, av.clone()), (b, bv.clone())]);
    let want = reference(&reference(&av, &bv, |x, y| x * y), &av, |x, y| x - y);
    assert_close(&got, &want, 1e-12);
}

#[test]
fn binary_op_gradients_with_broadcasting() {
    for (name, op, _) in binary_ops() {
        for &(sa, sb) in SHAPE_PAIRS {
            let (a, b) = operands(name, sa, sb);
            check_gradient(&[a, b], |x| op(x[0], x[1]));
        }
    }
}

#[test]
fn pow_handles_negative_bases_and_scalar_exponents() {
    let g = Graph::new();
    let x = g.constant(Tensor::from_vec(vec![-2.0f64, 3.0, 0.5]));
    assert_close(
        &eval(pow(x, 3.0), &[]),
        &Tensor::from_vec(vec![-8.0, 27.0, 0.125]),
        1e-12,
    );
    assert_close(
        &eval(pow(x, 2.0f32), &[]),
        &Tensor::from_vec(vec![4.0, 9.0, 0.25]),
        1e-12,
    );
    // d/da a^3 = 3a^2 holds for negative bases too.
    check_gradient(&[sample(&[5], 3)], |x| pow(x[0], 3.0));
}

#[test]
fn maximum_and_minimum_against_a_scalar() {
    let v = sample(&[2, 5], 4);
    let g = Graph::new();
    let x = g.constant(v.clone());
    let zero = Tensor::scalar(0.0f64);
    assert_close(
        &eval(maximum(x, 0.0), &[]),
        &reference(&v, &zero, f64::max),
        0.0,
    );
    assert_close(
        &eval(minimum(x, 0.25f32), &[]),
        &reference(&v, &Tensor::scalar(0.25f64), f64::min),
        0.0,
    );
    check_gradient(std::slice::from_ref(&v), |x| maximum(x[0], 0.1));
    check_gradient(&[v], |x| minimum(x[0], -0.1));
}

#[test]
fn maximum_gradient_goes_to_one_side_on_ties() {
    let g = Graph::new();
    let a = g.placeholder("a", DType::F64, &[3]);
    let b = g.placeholder("b", DType::F64, &[3]);
    let y = reduce_sum(maximum(a, b));
    let da = gradient(y, a).unwrap();
    let db = gradient(y, b).unwrap();
    let mut sess = Session::new(&g);
    let feeds = [
        (a, Tensor::from_vec(vec![1.0f64, 2.0, 3.0])),
        (b, Tensor::from_vec(vec![0.0f64, 2.0, 4.0])),
    ];
    let out = sess.run(&[da, db], &feeds).unwrap();
    // The tie's gradient is not counted twice.
    let sum: Vec<f64> = (0..3)
        .map(|i| out[0].get_f64(i) + out[1].get_f64(i))
        .collect();
    assert_eq!(sum, vec![1.0, 1.0, 1.0]);
    assert_eq!(out[0].to_vec::<f64>().unwrap()[0], 1.0);
    assert_eq!(out[1].to_vec::<f64>().unwrap()[2], 1.0);
}

#[test]
fn operators_with_scalars_on_either_side() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2, 3]);
    let v = sample(&[2, 3], 5).cast(DType::F32);
    type Case = (Output, fn(f64) -> f64);
    let cases: Vec<Case> = vec![
        (x + 2.0, |v| v + 2.0),
        (x + 2.0f32, |v| v + 2.0),
        (2.0 + x, |v| 2.0 + v),
        (2.0f32 + x, |v| 2.0 + v),
        (x - 1.5, |v| v - 1.5),
        (1.5 - x, |v| 1.5 - v),
        (1.5f32 - x, |v| 1.5 - v),
        (x * 3.0, |v| v * 3.0),
        (3.0f32 * x, |v| 3.0 * v),
        (x / 4.0, |v| v / 4.0),
        (4.0 / x, |v| 4.0 / v),
        (4.0f32 / x, |v| 4.0 / v),
        (-x, |v| -v),
        (-(-x), |v| v),
        (x + x * 2.0 - x / 2.0, |v| v + v * 2.0 - v / 2.0),
        (neg(x) * x, |v| -v * v),
    ];
    let mut sess = Session::new(&g);
    let fetches: Vec<Output> = cases.iter().map(|c| c.0).collect();
    let out = sess.run(&fetches, &[(x, v.clone())]).unwrap();
    for (k, ((_, f), got)) in cases.iter().zip(&out).enumerate() {
        assert_eq!(got.dtype(), DType::F32, "case {k} keeps f32");
        assert_eq!(got.shape(), &[2, 3]);
        for i in 0..6 {
            let want = f(v.get_f64(i));
            let tol = 1e-5 * (1.0 + want.abs());
            assert!(
                (got.get_f64(i) - want).abs() <= tol,
                "case {k} element {i}: got {}, want {want}",
                got.get_f64(i)
            );
        }
    }
}

#[test]
fn f32_scalars_with_f64_handles_keep_f64() {
    let g = Graph::new();
    let x = g.constant(Tensor::from_vec(vec![1.0f64, 2.0]));
    let y = x * 0.1f32 + 1.0f32;
    let got = eval(y, &[]);
    assert_eq!(got.dtype(), DType::F64);
    let c = 0.1f32 as f64;
    assert_close(&got, &Tensor::from_vec(vec![c + 1.0, 2.0 * c + 1.0]), 1e-15);
}

#[test]
fn operator_gradients() {
    check_gradient(&[sample(&[2, 3], 1), sample(&[3], 2)], |x| {
        -(x[0] * x[1]) + 2.0 * x[0] - x[1] / 3.0 + 1.0
    });
    check_gradient(&[away_from_zero(&sample(&[4], 3))], |x| 1.0 / x[0] - 2.0);
}

type UnaryFn = fn(Output) -> Output;
/// (name, op, reference, needs a positive input)
type UnaryCase = (&'static str, UnaryFn, fn(f64) -> f64, bool);

fn unary_ops() -> Vec<UnaryCase> {
    vec![
        ("neg", neg, |v| -v, false),
        ("exp", exp, f64::exp, false),
        ("log", log, f64::ln, true),
        ("sqrt", sqrt, f64::sqrt, true),
        ("square", square, |v| v * v, false),
        ("abs", abs, f64::abs, false),
        ("sign", sign, f64::signum, false),
    ]
}

#[test]
fn unary_ops_match_closed_forms() {
    for (name, op, f, needs_positive) in unary_ops() {
        for shape in [&[][..], &[5][..], &[2, 3, 4][..]] {
            let v = sample(shape, 6);
            let v = if needs_positive { positive(&v) } else { v };
            for dtype in [DType::F64, DType::F32] {
                let input = v.cast(dtype);
                let g = Graph::new();
                let got = eval(op(g.constant(input.clone())), &[]);
                assert_eq!(got.dtype(), dtype, "{name}");
                assert_eq!(got.shape(), shape, "{name}");
                let tol = if dtype == DType::F64 { 1e-14 } else { 1e-6 };
                for i in 0..input.len() {
                    let want = f(input.get_f64(i));
                    assert!(
                        (got.get_f64(i) - want).abs() <= tol * (1.0 + want.abs()),
                        "{name} {dtype} [{i}]: got {}, want {want}",
                        got.get_f64(i)
                    );
                }
            }
        }
    }
}

#[test]
fn unary_op_gradients() {
    for (name, op, _, needs_positive) in unary_ops() {
        if name == "sign" {
            continue;
        }
        let v = sample(&[2, 3], 8);
        let v = if needs_positive { positive(&v) } else { v };
        check_gradient(&[v], |x| op(x[0]));
    }
    // Composites.
    check_gradient(&[positive(&sample(&[3, 2], 9))], |x| {
        sqrt(log(x[0] + 1.0)) * exp(-square(x[0]))
    });
}

#[test]
fn sign_has_no_gradient() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[3]);
    let err = gradient(reduce_sum(sign(x)), x).unwrap_err();
    assert!(err.to_string().contains("'x' does not influence"), "{err}");
}

#[test]
fn log_and_sqrt_of_edge_values() {
    let g = Graph::new();
    let x = g.constant(Tensor::from_vec(vec![0.0f64, -1.0, 4.0]));
    let l = eval(log(x), &[]).to_vec::<f64>().unwrap();
    assert_eq!(l[0], f64::NEG_INFINITY);
    assert!(l[1].is_nan());
    assert_eq!(l[2], 4.0f64.ln());
    let s = eval(sqrt(x), &[]).to_vec::<f64>().unwrap();
    assert_eq!(s[0], 0.0);
    assert!(s[1].is_nan());
    assert_eq!(s[2], 2.0);
}

type CompareFn = fn(Output, Output) -> Output;
type CompareCase = (&'static str, CompareFn, fn(f64, f64) -> bool);

fn comparisons() -> Vec<CompareCase> {
    vec![
        ("equal", |a, b| equal(a, b), |x, y| x == y),
        ("not_equal", |a, b| not_equal(a, b), |x, y| x != y),
        ("greater", |a, b| greater(a, b), |x, y| x > y),
        ("greater_equal", |a, b| greater_equal(a, b), |x, y| x >= y),
        ("less", |a, b| less(a, b), |x, y| x < y),
        ("less_equal", |a, b| less_equal(a, b), |x, y| x <= y),
    ]
}

#[test]
fn comparisons_broadcast_and_give_bool() {
    // Values with ties, so that equal and the non-strict comparisons matter.
    let a = Tensor::new(&[3, 1], vec![1.0f64, 2.0, 3.0]).unwrap();
    let b = Tensor::new(&[1, 4], vec![3.0f64, 2.0, 1.0, 2.0]).unwrap();
    let row = Tensor::from_vec(vec![2.0f64, 1.0, 3.0, 2.0]);
    let m = Tensor::new(&[2, 3, 4], (0..24).map(|i| (i % 5) as f64).collect()).unwrap();
    let pairs = [
        (a.clone(), b.clone()),
        (b, a),
        (m.clone(), row.clone()),
        (row, m),
    ];
    for (name, op, f) in comparisons() {
        for (x, y) in &pairs {
            for dtype in [DType::F64, DType::F32, DType::I32, DType::I64] {
                let g = Graph::new();
                let out = eval(
                    op(g.constant(x.cast(dtype)), g.constant(y.cast(dtype))),
                    &[],
                );
                assert_eq!(out.dtype(), DType::Bool, "{name}");
                let want = reference(x, y, |p, q| f(p, q) as u8 as f64);
                assert_eq!(out.shape(), want.shape(), "{name}");
                let got: Vec<bool> = out.to_vec::<bool>().unwrap();
                let want: Vec<bool> = want
                    .to_vec::<f64>()
                    .unwrap()
                    .iter()
                    .map(|&v| v == 1.0)
                    .collect();
                assert_eq!(
                    got,
                    want,
                    "{name} {dtype} {:?} vs {:?}",
                    x.shape(),
                    y.shape()
                );
            }
        }
    }
}

#[test]
fn comparisons_against_scalars() {
    let g = Graph::new();
    let x = g.constant(Tensor::from_vec(vec![1.0f32, 2.0, 3.0]));
    let get = |o: Output| eval(o, &[]).to_vec::<bool>().unwrap();
    assert_eq!(get(greater(x, 2.0)), vec![false, false, true]);
    assert_eq!(get(greater_equal(x, 2.0f32)), vec![false, true, true]);
    assert_eq!(get(less(x, 2.0)), vec![true, false, false]);
    assert_eq!(get(less_equal(x, 2.0)), vec![true, true, false]);
    assert_eq!(get(equal(x, 2.0)), vec![false, true, false]);
    assert_eq!(get(not_equal(x, 2.0)), vec![true, false, true]);
    // Bool tensors compare too.
    let t = g.constant(Tensor::from_vec(vec![true, false]));
    let f = g.constant(Tensor::from_vec(vec![true, true]));
    assert_eq!(get(equal(t, f)), vec![true, false]);
}

#[test]
fn comparisons_stop_gradients() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[3]);
    let mask = cast(greater(x, 0.0), DType::F64);
    let y = reduce_sum(mask * x);
    let dx = gradient(y, x).unwrap();
    let v = Tensor::from_vec(vec![-1.0f64, 0.5, 2.0]);
    assert_close(
        &eval(dx, &[(x, v)]),
        &Tensor::from_vec(vec![0.0, 1.0, 1.0]),
        0.0,
    );
}

#[test]
fn zeros_like_and_ones_like_keep_dtype_and_shape() {
    let g = Graph::new();
    let inputs = [
        Tensor::new(&[2, 3], vec![1.5f32; 6]).unwrap(),
        Tensor::new(&[3], vec![-2.0f64; 3]).unwrap(),
        Tensor::new(&[2, 2], vec![7i32; 4]).unwrap(),
        Tensor::new(&[1, 2, 2], vec![9i64; 4]).unwrap(),
        Tensor::scalar(4.0f64),
    ];
    for t in &inputs {
        let x = g.constant(t.clone());
        for (op, value) in [(zeros_like as fn(Output) -> Output, 0.0), (ones_like, 1.0)] {
            let out = eval(op(x), &[]);
            assert_eq!(out.dtype(), t.dtype());
            assert_eq!(out.shape(), t.shape());
            assert!((0..out.len()).all(|i| out.get_f64(i) == value), "{out}");
        }
        let out = eval(fill_like(x, 3.0), &[]);
        assert!((0..out.len()).all(|i| out.get_f64(i) == 3.0), "{out}");
    }
    let b = g.constant(Tensor::from_vec(vec![true, false]));
    assert_eq!(
        eval(zeros_like(b), &[]).to_vec::<bool>().unwrap(),
        vec![false, false]
    );
    assert_eq!(
        eval(ones_like(b), &[]).to_vec::<bool>().unwrap(),
        vec![true, true]
    );
}

#[test]
fn zeros_like_passes_no_gradient() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[2]);
    assert!(gradient(reduce_sum(zeros_like(x)), x).is_err());
    let dx = gradient(reduce_sum(zeros_like(x) + ones_like(x) * x), x).unwrap();
    let v = Tensor::from_vec(vec![3.0f64, 4.0]);
    assert_close(&eval(dx, &[(x, v)]), &Tensor::from_vec(vec![1.0, 1.0]), 0.0);
}
