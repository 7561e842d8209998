#![cfg(feature = "engine")]

mod common;
use common::*;
use sluice::prelude::*;

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for axis in (0..shape.len()).rev() {
        index[axis] = flat % shape[axis];
        flat /= shape[axis];
    }
    index
}

fn ravel(index: &[usize], shape: &[usize]) -> usize {
    index
        .iter()
        .zip(shape)
        .fold(0, |flat, (&i, &d)| flat * d + i)
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Sum,
    Mean,
    Max,
}

/// A reduction by plain loops: every input element is added to (or compared with) the output
/// element whose index is its own with the reduced axes dropped.
fn reduce_ref(t: &Tensor, axes: &[i64], keep_dims: bool, kind: Kind) -> Tensor {
    let shape = t.shape();
    let rank = shape.len() as i64;
    let reduced: Vec<usize> = if axes.is_empty() {
        (0..shape.len()).collect()
    } else {
        axes.iter()
            .map(|&a| if a < 0 { a + rank } else { a } as usize)
            .collect()
    };
    let kept: Vec<usize> = (0..shape.len())
        .map(|i| if reduced.contains(&i) { 1 } else { shape[i] })
        .collect();
    let n: usize = kept.iter().product();
    let init = match kind {
        Kind::Max => f64::NEG_INFINITY,
        _ => 0.0,
    };
    let mut acc = vec![init; n];
    let mut count = vec![0usize; n];
    for i in 0..t.len() {
        let mut index = unravel(i, shape);
        for &a in &reduced {
            index[a] = 0;
        }
        let o = ravel(&index, &kept);
        let v = t.get_f64(i);
        acc[o] = match kind {
            Kind::Max => acc[o].max(v),
            _ => acc[o] + v,
        };
        count[o] += 1;
    }
    if let Kind::Mean = kind {
        for (a, &c) in acc.iter_mut().zip(&count) {
            *a /= c as f64;
        }
    }
    let out_shape: Vec<usize> = if keep_dims {
        kept
    } else {
        (0..shape.len())
            .filter(|i| !reduced.contains(i))
            .map(|i| shape[i])
            .collect()
    };
    Tensor::new(&out_shape, acc).unwrap()
}

type ReduceAxes = fn(Output, &[i64], bool) -> Output;

type ReduceAll = fn(Output) -> Output;

fn reductions() -> [(Kind, ReduceAll, ReduceAxes); 3] {
    [
        (Kind::Sum, reduce_sum, reduce_sum_axes),
        (Kind::Mean, reduce_mean, reduce_mean_axes),
        (Kind::Max, reduce_max, reduce_max_axes),
    ]
}

const AXES: &[&[i64]] = &[
    &[0],
    &[1],
    &[2],
    &[-1],
    &[-3],
    &[0, 2],
    &[-1, 0],
    &[1, -1],
    &[0, 1, 2],
    &[],
];

#[test]
fn reductions_over_all_axes() {
    for shape in [&[7][..], &[3, 4][..], &[2, 3, 4][..]] {
        let v = sample(shape, 1);
        for (kind, all, _) in reductions() {
            let g = Graph::new();
            let got = eval(all(g.constant(v.clone())), &[]);
            assert_eq!(got.shape(), &[] as &[usize], "{kind:?} gives a scalar");
            assert_close(&got, &reduce_ref(&v, &[], false, kind), 1e-13);
            let got32 = eval(all(g.constant(v.cast(DType::F32))), &[]);
            assert_eq!(got32.dtype(), DType::F32);
            assert_close(
                &got32.cast(DType::F64),
                &reduce_ref(&v.cast(DType::F32), &[], false, kind),
                1e-5,
            );
        }
    }
}

#[test]
fn reductions_over_chosen_axes_with_and_without_keep_dims() {
    let v = sample(&[2, 3, 4], 2);
    for (kind, _, by_axes) in reductions() {
        for &axes in AXES {
            for keep_dims in [false, true] {
                let g = Graph::new();
                let got = eval(by_axes(g.constant(v.clone()), axes, keep_dims), &[]);
                let want = reduce_ref(&v, axes, keep_dims, kind);
                assert_eq!(
                    got.shape(),
                    want.shape(),
                    "{kind:?} axes {axes:?} keep_dims {keep_dims}"
                );
                assert_close(&got, &want, 1e-13);
            }
        }
    }
}

#[test]
fn reduction_shapes_are_inferred_at_build_time() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 3, 4]);
    let shape = |o: Output| o.type_shape().unwrap().shape.to_string();
    assert_eq!(shape(reduce_sum_axes(x, &[1], false)), "[?, 4]");
    assert_eq!(shape(reduce_sum_axes(x, &[-1], true)), "[?, 3, 1]");
    assert_eq!(shape(reduce_mean_axes(x, &[0], false)), "[3, 4]");
    assert_eq!(shape(reduce_max(x)), "[]");
    assert_eq!(shape(argmax(x, -2)), "[?, 4]");
    assert_eq!(argmax(x, 0).dtype(), DType::I64);
}

#[test]
fn reduction_gradients() {
    let v = sample(&[2, 3, 4], 3);
    for (_, all, by_axes) in reductions() {
        check_gradient(std::slice::from_ref(&v), |x| all(x[0]));
        for &axes in AXES {
            for keep_dims in [false, true] {
                check_gradient(std::slice::from_ref(&v), |x| by_axes(x[0], axes, keep_dims));
            }
        }
    }
}

#[test]
fn reduce_max_splits_the_gradient_between_ties() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[2, 3]);
    let y = reduce_max_axes(x, &[1], false);
    let dx = gradient(reduce_sum(y * 2.0), x).unwrap();
    let v = Tensor::new(&[2, 3], vec![1.0f64, 3.0, 3.0, 5.0, 4.0, -1.0]).unwrap();
    let out = eval(dx, &[(x, v)]);
    assert_close(
        &out,
        &Tensor::new(&[2, 3], vec![0.0, 1.0, 1.0, 2.0, 0.0, 0.0]).unwrap(),
        1e-15,
    );
}

#[test]
fn integer_reductions() {
    let v: Vec<i32> = (0..12).map(|i| i * 3 - 10).collect();
    let g = Graph::new();
    let x = g.constant(Tensor::new(&[3, 4], v.clone()).unwrap());
    let sum = eval(reduce_sum_axes(x, &[0], false), &[]);
    assert_eq!(sum.dtype(), DType::I32);
    let want: Vec<i32> = (0..4).map(|j| v[j] + v[4 + j] + v[8 + j]).collect();
    assert_eq!(sum.to_vec::<i32>().unwrap(), want);
    let max = eval(reduce_max_axes(x, &[1], false), &[]);
    assert_eq!(max.to_vec::<i32>().unwrap(), vec![v[3], v[7], v[11]]);
    assert_eq!(
        eval(reduce_sum(x), &[]).to_vec::<i32>().unwrap(),
        vec![v.iter().sum::<i32>()]
    );
    // An integer mean truncates toward zero, like TensorFlow's.
    let mean = eval(reduce_mean_axes(x, &[1], false), &[]);
    assert_eq!(mean.to_vec::<i32>().unwrap(), vec![-5, 6, 18]);
}

#[test]
fn mean_of_many_small_integers_is_exact() {
    // 300 elements: more than a u8 can count.
    let g = Graph::new();
    let x = g.constant(Tensor::from_vec(vec![200u8; 300]));
    let mean = eval(reduce_mean(x), &[]);
    assert_eq!(mean.dtype(), DType::U8);
    assert_eq!(mean.to_vec::<u8>().unwrap(), vec![200]);
    let y = g.constant(Tensor::from_vec(vec![7i64; 256]));
    assert_eq!(eval(reduce_mean(y), &[]).to_vec::<i64>().unwrap(), vec![7]);
}

#[test]
fn reductions_of_empty_tensors() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 3]);
    let empty = Tensor::new(&[0, 3], Vec::<f32>::new()).unwrap();
    let mut sess = Session::new(&g);
    let sum = sess
        .run(&[reduce_sum_axes(x, &[0], false)], &[(x, empty.clone())])
        .unwrap();
    assert_eq!(sum[0].to_vec::<f32>().unwrap(), vec![0.0; 3]);
    // Max over a non-empty axis of an empty tensor is an empty tensor.
    let max = sess
        .run(&[reduce_max_axes(x, &[1], false)], &[(x, empty.clone())])
        .unwrap();
    assert_eq!(max[0].shape(), &[0]);
    // Max over an empty axis has no answer: an error, not a crash.
    let err = sess
        .run(&[reduce_max_axes(x, &[0], false)], &[(x, empty)])
        .unwrap_err();
    assert!(err.to_string().contains("max of an empty axis"), "{err}");
}

#[test]
fn reduction_errors_name_the_axis() {
    let g = Graph::new();
    let x = g.constant(Tensor::new(&[2, 3, 4], vec![0.0f32; 24]).unwrap());
    let err = reduce_sum_axes(x, &[3], false).type_shape().unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'Sum' (Sum): axis 3 is out of range for rank 3"
    );
    let err = reduce_mean_axes(x, &[-4], true).type_shape().unwrap_err();
    assert!(err
        .to_string()
        .contains("axis -4 is out of range for rank 3"));
    let err = argmax(x, 5).type_shape().unwrap_err();
    assert!(err
        .to_string()
        .contains("axis 5 is out of range for rank 3"));
    let b = g.constant(Tensor::from_vec(vec![true]));
    let err = reduce_sum(b).type_shape().unwrap_err();
    assert!(err.to_string().contains("cannot reduce bool"));
}

fn argmax_ref(t: &Tensor, axis: usize) -> Vec<i64> {
    let shape = t.shape();
    let mut out_shape = shape.to_vec();
    out_shape.remove(axis);
    let n: usize = out_shape.iter().product();
    (0..n)
        .map(|o| {
            let rest = unravel(o, &out_shape);
            let mut best = 0;
            let mut best_value = f64::NEG_INFINITY;
            for k in 0..shape[axis] {
                let mut index = rest.clone();
                index.insert(axis, k);
                let v = t.get_f64(ravel(&index, shape));
                if v > best_value {
                    best_value = v;
                    best = k as i64;
                }
            }
            best
        })
        .collect()
}

#[test]
fn argmax_along_each_axis() {
    let v = sample(&[2, 3, 4], 4);
    for axis in -3i64..3 {
        let g = Graph::new();
        for dtype in [DType::F64, DType::F32, DType::I64] {
            let t = if dtype == DType::I64 {
                Tensor::new(
                    v.shape(),
                    (0..24).map(|i| (v.get_f64(i) * 1000.0) as i64).collect(),
                )
                .unwrap()
            } else {
                v.cast(dtype)
            };
            let got = eval(argmax(g.constant(t.clone()), axis), &[]);
            assert_eq!(got.dtype(), DType::I64);
            let a = (if axis < 0 { axis + 3 } else { axis }) as usize;
            assert_eq!(
                got.to_vec::<i64>().unwrap(),
                argmax_ref(&t, a),
                "axis {axis}"
            );
        }
    }
    // Ties give the first index.
    let g = Graph::new();
    let t = g.constant(Tensor::new(&[2, 3], vec![1.0f32, 5.0, 5.0, 2.0, 2.0, 2.0]).unwrap());
    assert_eq!(eval(argmax(t, 1), &[]).to_vec::<i64>().unwrap(), vec![1, 0]);
}

// ---------------------------------------------------------------------------------------------
// cast, reshape, select, clip_by_value
// ---------------------------------------------------------------------------------------------

#[test]
fn cast_between_dtypes() {
    let g = Graph::new();
    let f = g.constant(Tensor::from_vec(vec![2.7f64, -2.7, 0.0, 300.5]));
    let get = |o: Output| eval(o, &[]);
    assert_eq!(
        get(cast(f, DType::I32)).to_vec::<i32>().unwrap(),
        vec![2, -2, 0, 300]
    );
    assert_eq!(
        get(cast(f, DType::I64)).to_vec::<i64>().unwrap(),
        vec![2, -2, 0, 300]
    );
    assert_eq!(
        get(cast(f, DType::Bool)).to_vec::<bool>().unwrap(),
        vec![true, true, false, true]
    );
    assert_eq!(
        get(cast(f, DType::F32)).to_vec::<f32>().unwrap(),
        vec![2.7f32, -2.7, 0.0, 300.5]
    );
    let b = g.constant(Tensor::from_vec(vec![true, false]));
    assert_eq!(
        get(cast(b, DType::F32)).to_vec::<f32>().unwrap(),
        vec![1.0, 0.0]
    );
    let i = g.constant(Tensor::from_vec(vec![-3i64, 7]));
    assert_eq!(
        get(cast(i, DType::F64)).to_vec::<f64>().unwrap(),
        vec![-3.0, 7.0]
    );
    let same = cast(i, DType::I64);
    assert_eq!(same.dtype(), DType::I64);
    assert_eq!(get(same).to_vec::<i64>().unwrap(), vec![-3, 7]);
    // Shapes carry over.
    let m = g.constant(Tensor::zeros(DType::F32, &[2, 3]));
    assert_eq!(get(cast(m, DType::U8)).shape(), &[2, 3]);
}

#[test]
fn cast_gradients_flow_between_floats_only() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[3]);
    let w = g.constant(Tensor::from_vec(vec![0.5f32, -1.0, 2.0]));
    let y = reduce_sum(cast(x, DType::F32) * w);
    let dx = gradient(y, x).unwrap();
    assert_eq!(dx.dtype(), DType::F64);
    let out = eval(dx, &[(x, sample(&[3], 13))]);
    assert_eq!(out.to_vec::<f64>().unwrap(), vec![0.5, -1.0, 2.0]);
    // Through f64 -> f64 the finite-difference check is exact enough.
    check_gradient(&[sample(&[2, 3], 14)], |x| cast(x[0], DType::F64) * 3.0);
    // Through an integer there is no gradient.
    let z = reduce_sum(cast(cast(x, DType::I32), DType::F64));
    let err = gradient(z, x).unwrap_err();
    assert!(err.to_string().contains("'x' does not influence"), "{err}");
}

#[test]
fn reshape_keeps_order_and_infers_minus_one() {
    let v = sample(&[2, 3, 4], 15);
    let g = Graph::new();
    let x = g.constant(v.clone());
    for (target, want) in [
        (&[4, 6][..], &[4, 6][..]),
        (&[-1, 4][..], &[6, 4][..]),
        (&[2, -1][..], &[2, 12][..]),
        (&[-1][..], &[24][..]),
        (&[3, 2, -1, 2][..], &[3, 2, 2, 2][..]),
        (&[24, 1][..], &[24, 1][..]),
    ] {
        let y = reshape(x, target);
        assert_eq!(y.type_shape().unwrap().shape.to_known().unwrap(), want);
        let got = eval(y, &[]);
        assert_eq!(got.shape(), want);
        assert_eq!(got.to_vec::<f64>().unwrap(), v.to_vec::<f64>().unwrap());
    }
    // To and from a scalar.
    let s = g.constant(Tensor::from_vec(vec![5.0f32]));
    assert_eq!(eval(reshape(s, &[]), &[]).shape(), &[] as &[usize]);
    // With an unknown batch dimension.
    let p = g.placeholder("p", DType::F64, &[-1, 4]);
    let flat = reshape(p, &[-1]);
    assert_eq!(flat.type_shape().unwrap().shape.to_string(), "[?]");
    let got = eval(flat, &[(p, sample(&[3, 4], 16))]);
    assert_eq!(got.shape(), &[12]);
}

#[test]
fn reshape_gradients() {
    check_gradient(&[sample(&[2, 3, 4], 17)], |x| reshape(x[0], &[4, -1]));
    check_gradient(&[sample(&[6], 18)], |x| {
        reshape(x[0], &[2, 3]) * reshape(x[0], &[2, 3])
    });
}

#[test]
fn reshape_errors_name_the_sizes() {
    let g = Graph::new();
    let x = g.constant(Tensor::zeros(DType::F32, &[3, 4]));
    let err = reshape(x, &[5, -1]).type_shape().unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'Reshape' (Reshape): cannot reshape 12 elements to [5, -1] (input is f32[3, 4])"
    );
    let err = reshape(x, &[5, 2]).type_shape().unwrap_err();
    assert!(err
        .to_string()
        .contains("cannot reshape 12 elements to [5, 2]"));
    let err = reshape(x, &[-1, -1]).type_shape().unwrap_err();
    assert!(err.to_string().contains("at most one -1"), "{err}");
    // Found at run time when the size is unknown until fed.
    let p = g.placeholder("p", DType::F32, &[-1, 4]);
    let y = reshape(p, &[-1, 5]);
    let err = Session::new(&g)
        .run(&[y], &[(p, Tensor::zeros(DType::F32, &[3, 4]))])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot reshape 12 elements to [-1, 5]"),
        "{err}"
    );
}

fn broadcast3(shapes: [&[usize]; 3]) -> Vec<usize> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap();
    (0..rank)
        .map(|i| {
            shapes
                .iter()
                .map(|s| {
                    if i + s.len() >= rank {
                        s[i + s.len() - rank]
                    } else {
                        1
                    }
                })
                .fold(1, |acc, d| if d == 1 { acc } else { d })
        })
        .collect()
}

fn source(shape: &[usize], out: &[usize], index: &[usize]) -> usize {
    let offset = out.len() - shape.len();
    shape.iter().enumerate().fold(0, |flat, (k, &d)| {
        flat * d + if d == 1 { 0 } else { index[k + offset] }
    })
}

#[test]
fn select_picks_elementwise_with_broadcasting() {
    let cases: [[&[usize]; 3]; 5] = [
        [&[3, 4], &[3, 4], &[3, 4]],
        [&[3, 1], &[3, 4], &[]],
        [&[4], &[3, 4], &[3, 1]],
        [&[], &[2, 3], &[2, 3]],
        [&[2, 1, 4], &[3, 4], &[2, 3, 1]],
    ];
    for [sc, sa, sb] in cases {
        let nc: usize = sc.iter().product();
        let cond: Vec<bool> = (0..nc).map(|i| (i * 7 + 3) % 3 != 0).collect();
        let c = Tensor::new(sc, cond.clone()).unwrap();
        let (a, b) = (sample(sa, 19), sample(sb, 20));
        let g = Graph::new();
        let got = eval(
            select(g.constant(c), g.constant(a.clone()), g.constant(b.clone())),
            &[],
        );
        let out = broadcast3([sc, sa, sb]);
        assert_eq!(got.shape(), out.as_slice());
        for i in 0..got.len() {
            let index = {
                let mut flat = i;
                let mut index = vec![0; out.len()];
                for axis in (0..out.len()).rev() {
                    index[axis] = flat % out[axis];
                    flat /= out[axis];
                }
                index
            };
            let want = if cond[source(sc, &out, &index)] {
                a.get_f64(source(sa, &out, &index))
            } else {
                b.get_f64(source(sb, &out, &index))
            };
            assert_eq!(got.get_f64(i), want, "{sc:?} {sa:?} {sb:?} [{i}]");
        }
    }
}

#[test]
fn select_gradients_reach_both_branches() {
    let cond = Tensor::new(&[3, 1], vec![true, false, true]).unwrap();
    check_gradient(
        &[cond.clone(), sample(&[3, 4], 21), sample(&[4], 22)],
        |x| select(x[0], x[1], x[2]),
    );
    check_gradient(&[cond, sample(&[3, 4], 23), sample(&[3, 4], 24)], |x| {
        select(x[0], x[1] * x[2], x[2])
    });
}

#[test]
fn select_errors() {
    let g = Graph::new();
    let a = g.constant(Tensor::zeros(DType::F32, &[2]));
    let err = select(a, a, a).type_shape().unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'Select' (Select): condition must be bool, got f32[2]"
    );
    let c = g.constant(Tensor::from_vec(vec![true, false]));
    let d = g.constant(Tensor::zeros(DType::F64, &[2]));
    let err = select(c, a, d).type_shape().unwrap_err();
    assert!(err
        .to_string()
        .contains("branches have different dtypes: f32[2] and f64[2]"));
    let e = g.constant(Tensor::zeros(DType::F32, &[3]));
    let err = select(c, a, e).type_shape().unwrap_err();
    assert!(err.to_string().contains("cannot be broadcast"), "{err}");
}

#[test]
fn clip_by_value_limits_and_passes_gradient_inside() {
    let v = sample(&[3, 4], 25);
    let g = Graph::new();
    let got = eval(clip_by_value(g.constant(v.clone()), -0.3, 0.4), &[]);
    let want: Vec<f64> = (0..12).map(|i| v.get_f64(i).clamp(-0.3, 0.4)).collect();
    assert_eq!(got.to_vec::<f64>().unwrap(), want);
    // Some elements are clipped and some are not, so both cases are exercised.
    assert!(want.contains(&0.4) && want.contains(&-0.3));
    assert!(want.iter().any(|&w| w > -0.3 && w < 0.4));
    // f32 with f32 bounds; tensor bounds broadcast.
    let got = eval(
        clip_by_value(g.constant(v.cast(DType::F32)), 0.0f32, 0.5f32),
        &[],
    );
    assert_eq!(got.dtype(), DType::F32);
    let lows = g.constant(Tensor::from_vec(vec![-1.0f64, 0.0, 0.1, 0.2]));
    let got = eval(clip_by_value(g.constant(v.clone()), lows, 0.5), &[]);
    for i in 0..12 {
        let want = v.get_f64(i).max([-1.0, 0.0, 0.1, 0.2][i % 4]).min(0.5);
        assert_eq!(got.get_f64(i), want);
    }

    check_gradient(std::slice::from_ref(&v), |x| clip_by_value(x[0], -0.3, 0.4));
    let gx = g.placeholder("x", DType::F64, &[12]);
    let dx = gradient(reduce_sum(clip_by_value(gx, -0.3, 0.4)), gx).unwrap();
    let flat = v.reshape(&[12]).unwrap();
    let d = eval(dx, &[(gx, flat)]);
    for i in 0..12 {
        let inside = v.get_f64(i) > -0.3 && v.get_f64(i) < 0.4;
        assert_eq!(d.get_f64(i), if inside { 1.0 } else { 0.0 }, "[{i}]");
    }
    // Gradients with respect to tensor bounds.
    check_gradient(&[v, sample(&[4], 26)], |x| clip_by_value(x[0], x[1], 0.5));
}
