//! Integer arithmetic: i32 and i64 elementwise ops against an i64 reference, float scalars
//! with integer handles, and edge cases (division by zero, overflow) that must not panic.
#![cfg(feature = "engine")]

mod common;
use common::*;
use sluice::prelude::*;

fn int_reference(
    a: &[i64],
    sa: &[usize],
    b: &[i64],
    sb: &[usize],
    f: fn(i64, i64) -> i64,
) -> Vec<i64> {
    let out = broadcast_shape(sa, sb);
    let n: usize = out.iter().product();
    (0..n)
        .map(|i| {
            let index = unravel(i, &out);
            f(a[source(sa, &out, &index)], b[source(sb, &out, &index)])
        })
        .collect()
}

#[test]
fn integer_arithmetic_i32_and_i64() {
    let a: Vec<i64> = (0..12).map(|i| i * 7 - 30).collect();
    let b: Vec<i64> = vec![3, -2, 5, 1];
    type IntCase = (&'static str, BinaryFn, fn(i64, i64) -> i64);
    let ops: Vec<IntCase> = vec![
        ("add", |a, b| a + b, |x, y| x + y),
        ("sub", |a, b| a - b, |x, y| x - y),
        ("mul", |a, b| a * b, |x, y| x * y),
        // Integer division truncates toward zero.
        ("div", |a, b| a / b, |x, y| x / y),
        ("maximum", |a, b| maximum(a, b), |x, y| x.max(y)),
        ("minimum", |a, b| minimum(a, b), |x, y| x.min(y)),
    ];
    for (name, op, f) in ops {
        let want = int_reference(&a, &[3, 4], &b, &[4], f);
        let g = Graph::new();
        let y64 = op(
            g.constant(Tensor::new(&[3, 4], a.clone()).unwrap()),
            g.constant(Tensor::from_vec(b.clone())),
        );
        let got = eval(y64, &[]);
        assert_eq!(got.dtype(), DType::I64, "{name}");
        assert_eq!(got.shape(), &[3, 4]);
        assert_eq!(got.to_vec::<i64>().unwrap(), want, "{name} i64");

        let a32: Vec<i32> = a.iter().map(|&v| v as i32).collect();
        let b32: Vec<i32> = b.iter().map(|&v| v as i32).collect();
        let y32 = op(
            g.constant(Tensor::new(&[3, 4], a32).unwrap()),
            g.constant(Tensor::from_vec(b32)),
        );
        let got = eval(y32, &[]);
        assert_eq!(got.dtype(), DType::I32, "{name}");
        let want32: Vec<i32> = want.iter().map(|&v| v as i32).collect();
        assert_eq!(got.to_vec::<i32>().unwrap(), want32, "{name} i32");
    }
}

#[test]
fn integer_handles_with_float_scalars_stay_integer() {
    let g = Graph::new();
    let x = g.constant(Tensor::from_vec(vec![1i32, 2, 3]));
    let y = x * 2.0 + 1.0;
    let out = eval(y, &[]);
    assert_eq!(out.dtype(), DType::I32);
    assert_eq!(out.to_vec::<i32>().unwrap(), vec![3, 5, 7]);
}

#[test]
fn integer_edge_cases_do_not_panic() {
    let g = Graph::new();
    let i32s = |v: Vec<i32>| g.constant(Tensor::from_vec(v));
    // Division by zero gives 0 rather than a crash.
    let out = eval(i32s(vec![7, -7, 0]) / i32s(vec![0, 0, 0]), &[]);
    assert_eq!(out.to_vec::<i32>().unwrap(), vec![0, 0, 0]);
    // Overflow wraps, as NumPy's fixed-width integers do.
    let out = eval(i32s(vec![i32::MAX, i32::MIN]) + i32s(vec![1, -1]), &[]);
    assert_eq!(out.to_vec::<i32>().unwrap(), vec![i32::MIN, i32::MAX]);
    let out = eval(i32s(vec![i32::MIN]) / i32s(vec![-1]), &[]);
    assert_eq!(out.to_vec::<i32>().unwrap(), vec![i32::MIN]);
    let out = eval(i32s(vec![i32::MAX]) * i32s(vec![2]), &[]);
    assert_eq!(out.to_vec::<i32>().unwrap(), vec![-2]);
    let i64s = |v: Vec<i64>| g.constant(Tensor::from_vec(v));
    let out = eval(i64s(vec![i64::MIN]) - i64s(vec![1]), &[]);
    assert_eq!(out.to_vec::<i64>().unwrap(), vec![i64::MAX]);
    let u8s = |v: Vec<u8>| g.constant(Tensor::from_vec(v));
    let out = eval(u8s(vec![250, 3]) + u8s(vec![10, 0]), &[]);
    assert_eq!(out.to_vec::<u8>().unwrap(), vec![4, 3]);
    let out = eval(u8s(vec![0]) - u8s(vec![1]), &[]);
    assert_eq!(out.to_vec::<u8>().unwrap(), vec![255]);
}

#[test]
fn integer_placeholders_run_through_arithmetic() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::I64, &[-1]);
    let y = x * x + x;
    let out = eval(y, &[(x, Tensor::from_vec(vec![1i64, -2, 3]))]);
    assert_eq!(out.to_vec::<i64>().unwrap(), vec![2, 2, 12]);
}
