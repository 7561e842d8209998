#![cfg(feature = "engine")]

mod common;
use common::*;
use sluice::data::mnist_digits;
use sluice::prelude::*;
use sluice::{GraphError, SessionError};
use std::time::Instant;

/// Output size and padding before, by TensorFlow's rules, written out independently.
fn out_and_pad(input: usize, k: usize, stride: usize, padding: Padding) -> (usize, i64) {
    match padding {
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = ((out as i64 - 1) * stride as i64 + k as i64 - input as i64).max(0);
            (out, total / 2)
        }
        Padding::Valid => ((input + 1 - k).div_ceil(stride), 0),
    }
}

fn dims4(t: &Tensor) -> [usize; 4] {
    let s = t.shape();
    [s[0], s[1], s[2], s[3]]
}

/// Naive convolution: y[b, oy, ox, o] = sum x[b, oy*sh + i - ph, ox*sw + j - pw, c] f[i, j, c, o].
fn conv_reference(x: &Tensor, f: &Tensor, strides: [usize; 2], padding: Padding) -> Tensor {
    let [n, h, w, c] = dims4(x);
    let [kh, kw, _, co] = dims4(f);
    let (oh, ph) = out_and_pad(h, kh, strides[0], padding);
    let (ow, pw) = out_and_pad(w, kw, strides[1], padding);
    let mut out = vec![0.0; n * oh * ow * co];
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for o in 0..co {
                    let mut acc = 0.0;
                    for i in 0..kh {
                        for j in 0..kw {
                            let iy = (oy * strides[0] + i) as i64 - ph;
                            let ix = (ox * strides[1] + j) as i64 - pw;
                            if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                continue;
                            }
                            let (iy, ix) = (iy as usize, ix as usize);
                            for ch in 0..c {
                                acc += x.get_f64(((b * h + iy) * w + ix) * c + ch)
                                    * f.get_f64(((i * kw + j) * c + ch) * co + o);
                            }
                        }
                    }
                    out[((b * oh + oy) * ow + ox) * co + o] = acc;
                }
            }
        }
    }
    Tensor::new(&[n, oh, ow, co], out).unwrap()
}

/// Naive gradients of `sum(conv(x, f) * dy)` with respect to x and f.
fn conv_grads_reference(
    x: &Tensor,
    f: &Tensor,
    dy: &Tensor,
    strides: [usize; 2],
    padding: Padding,
) -> (Tensor, Tensor) {
    let [n, h, w, c] = dims4(x);
    let [kh, kw, _, co] = dims4(f);
    let [_, oh, ow, _] = dims4(dy);
    let (_, ph) = out_and_pad(h, kh, strides[0], padding);
    let (_, pw) = out_and_pad(w, kw, strides[1], padding);
    let mut dx = vec![0.0; x.len()];
    let mut df = vec![0.0; f.len()];
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for i in 0..kh {
                    for j in 0..kw {
                        let iy = (oy * strides[0] + i) as i64 - ph;
                        let ix = (ox * strides[1] + j) as i64 - pw;
                        if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                            continue;
                        }
                        let xi = ((b * h + iy as usize) * w + ix as usize) * c;
                        for ch in 0..c {
                            for o in 0..co {
                                let d = dy.get_f64(((b * oh + oy) * ow + ox) * co + o);
                                let fi = ((i * kw + j) * c + ch) * co + o;
                                dx[xi + ch] += d * f.get_f64(fi);
                                df[fi] += d * x.get_f64(xi + ch);
                            }
                        }
                    }
                }
            }
        }
    }
    (
        Tensor::new(x.shape(), dx).unwrap(),
        Tensor::new(f.shape(), df).unwrap(),
    )
}

/// Naive max pooling; also the gradient of `sum(pool(x) * dy)` (ties to the first element).
fn pool_reference(
    x: &Tensor,
    dy: Option<&Tensor>,
    ksize: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
) -> (Tensor, Tensor) {
    let [n, h, w, c] = dims4(x);
    let (oh, ph) = out_and_pad(h, ksize[0], strides[0], padding);
    let (ow, pw) = out_and_pad(w, ksize[1], strides[1], padding);
    let mut out = vec![0.0; n * oh * ow * c];
    let mut dx = vec![0.0; x.len()];
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    let mut best: Option<(f64, usize)> = None;
                    for i in 0..ksize[0] {
                        for j in 0..ksize[1] {
                            let iy = (oy * strides[0] + i) as i64 - ph;
                            let ix = (ox * strides[1] + j) as i64 - pw;
                            if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                continue;
                            }
                            let k = ((b * h + iy as usize) * w + ix as usize) * c + ch;
                            let v = x.get_f64(k);
                            if best.is_none_or(|(m, _)| v > m) {
                                best = Some((v, k));
                            }
                        }
                    }
                    let (v, k) = best.expect("every window holds a pixel");
                    let o = ((b * oh + oy) * ow + ox) * c + ch;
                    out[o] = v;
                    if let Some(dy) = dy {
                        dx[k] += dy.get_f64(o);
                    }
                }
            }
        }
    }
    (
        Tensor::new(&[n, oh, ow, c], out).unwrap(),
        Tensor::new(x.shape(), dx).unwrap(),
    )
}

/// (input shape, filter shape, strides, padding) cases for the convolution tests.
type ConvCase = (&'static [usize], &'static [usize], [usize; 2], Padding);

const CONV_CASES: &[ConvCase] = &[
    (&[2, 5, 5, 2], &[3, 3, 2, 3], [1, 1], Padding::Same),
    (&[2, 5, 5, 2], &[3, 3, 2, 3], [1, 1], Padding::Valid),
    (&[2, 5, 5, 2], &[3, 3, 2, 3], [2, 2], Padding::Same),
    (&[2, 5, 5, 2], &[3, 3, 2, 3], [2, 2], Padding::Valid),
    // Even windows pad more after than before; strides differ per axis.
    (&[1, 6, 5, 3], &[2, 4, 3, 2], [2, 1], Padding::Same),
    (&[1, 6, 5, 3], &[2, 4, 3, 2], [1, 2], Padding::Valid),
    (&[2, 4, 4, 3], &[1, 1, 3, 2], [1, 1], Padding::Same),
    (&[1, 7, 6, 1], &[3, 2, 1, 2], [3, 3], Padding::Same),
    (&[1, 3, 3, 2], &[3, 3, 2, 1], [1, 1], Padding::Valid),
    (&[1, 2, 2, 1], &[3, 3, 1, 1], [2, 2], Padding::Same),
];

#[test]
fn conv2d_matches_reference() {
    for (k, &(xs, fs, strides, padding)) in CONV_CASES.iter().enumerate() {
        let (x, f) = (sample(xs, k as u64), sample(fs, 100 + k as u64));
        let want = conv_reference(&x, &f, strides, padding);
        let g = Graph::new();
        let (xc, fc) = (g.constant(x.clone()), g.constant(f.clone()));
        let y = conv2d(xc, fc, strides, padding);
        let inferred = y.type_shape().unwrap().shape.to_known().unwrap();
        assert_eq!(inferred, want.shape(), "case {k}: inferred shape");
        assert_close(&eval(y, &[]), &want, 1e-12);
        // f32 gives the same within rounding.
        let y32 = conv2d(
            g.constant(x.cast(DType::F32)),
            g.constant(f.cast(DType::F32)),
            strides,
            padding,
        );
        let got = eval(y32, &[]);
        assert_eq!(got.dtype(), DType::F32);
        assert_close(&got, &want, 1e-5);
    }
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    for &(xs, fs, strides, padding) in CONV_CASES {
        check_gradient(&[sample(xs, 1), sample(fs, 2)], |v| {
            conv2d(v[0], v[1], strides, padding)
        });
    }
}

#[test]
fn conv2d_backprop_ops_match_reference_across_chunks() {
    // Big enough that the patch matrix is filled in several chunks; plus a 1x1 case.
    let cases: &[ConvCase] = &[
        (&[9, 40, 40, 8], &[5, 5, 8, 4], [1, 1], Padding::Same),
        (&[5, 33, 31, 3], &[4, 3, 3, 5], [2, 3], Padding::Valid),
        (&[3, 6, 6, 4], &[1, 1, 4, 3], [1, 1], Padding::Valid),
    ];
    for (k, &(xs, fs, strides, padding)) in cases.iter().enumerate() {
        let (x, f) = (sample(xs, k as u64), sample(fs, 50 + k as u64));
        let y = conv_reference(&x, &f, strides, padding);
        let dy = sample(y.shape(), 99);
        let (want_dx, want_df) = conv_grads_reference(&x, &f, &dy, strides, padding);
        let g = Graph::new();
        let (xc, fc, dyc) = (g.constant(x), g.constant(f), g.constant(dy));
        assert_close(&eval(conv2d(xc, fc, strides, padding), &[]), &y, 1e-10);
        let dx = conv2d_backprop_input(xc, fc, dyc, strides, padding);
        assert_close(&eval(dx, &[]), &want_dx, 1e-10);
        let df = conv2d_backprop_filter(xc, fc, dyc, strides, padding);
        assert_close(&eval(df, &[]), &want_df, 1e-9);
    }
}

#[test]
fn conv2d_second_order_gradients() {
    for &(xs, fs, strides, padding) in &CONV_CASES[2..5] {
        let inputs = [sample(xs, 3), sample(fs, 4)];
        // Through Conv2DBackpropFilter and Conv2DBackpropInput's own gradients.
        check_gradient(&inputs, |v| {
            let y = conv2d(v[0], v[1], strides, padding);
            gradient(reduce_sum(square(y)), v[1]).unwrap()
        });
        check_gradient(&inputs, |v| {
            let y = conv2d(v[0], v[1], strides, padding);
            gradient(reduce_sum(square(y)), v[0]).unwrap()
        });
    }
}

#[test]
fn conv2d_with_empty_dimensions() {
    let g = Graph::new();
    // No channels: every output is an empty sum.
    let x = g.constant(Tensor::zeros(DType::F64, &[2, 4, 4, 0]));
    let f = g.constant(Tensor::zeros(DType::F64, &[3, 3, 0, 2]));
    let y = conv2d(x, f, [2, 1], Padding::Same);
    assert_close(
        &eval(y, &[]),
        &Tensor::zeros(DType::F64, &[2, 2, 4, 2]),
        0.0,
    );
    let loss = reduce_sum(y);
    let grads = gradients(&[loss], &[x, f]).unwrap();
    assert_eq!(eval(grads[0].unwrap(), &[]).shape(), &[2, 4, 4, 0]);
    assert_eq!(eval(grads[1].unwrap(), &[]).shape(), &[3, 3, 0, 2]);
    // An empty batch.
    let x = g.constant(Tensor::zeros(DType::F32, &[0, 5, 5, 1]));
    let f = g.constant(Tensor::zeros(DType::F32, &[3, 3, 1, 2]));
    let y = conv2d(x, f, [1, 1], Padding::Valid);
    assert_eq!(eval(y, &[]).shape(), &[0, 3, 3, 2]);
    let p = max_pool(x, [2, 2], [2, 2], Padding::Same);
    assert_eq!(eval(p, &[]).shape(), &[0, 3, 3, 1]);
    let df = gradient(reduce_sum(y), f).unwrap();
    assert_close(
        &eval(df, &[]),
        &Tensor::zeros(DType::F32, &[3, 3, 1, 2]),
        0.0,
    );
}

#[test]
fn conv2d_with_unknown_batch_and_size() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, -1, 7, 2]);
    let f = g.constant(sample(&[3, 3, 2, 4], 1).cast(DType::F32));
    let y = conv2d(x, f, [2, 2], Padding::Same);
    assert_eq!(y.type_shape().unwrap().shape.to_string(), "[?, ?, 4, 4]");
    let v = conv2d(x, f, [1, 1], Padding::Valid);
    assert_eq!(v.type_shape().unwrap().shape.to_string(), "[?, ?, 5, 4]");
    let xv = sample(&[3, 5, 7, 2], 2).cast(DType::F32);
    let got = eval(y, &[(x, xv.clone())]);
    assert_eq!(got.shape(), &[3, 3, 4, 4]);
    // Too small for the VALID window: a kernel error that names the shapes, no panic.
    let mut sess = Session::new(&g);
    let small = sample(&[1, 2, 7, 2], 3).cast(DType::F32);
    match sess.run(&[v], &[(x, small)]) {
        Err(SessionError::Kernel { message, .. }) => {
            assert!(message.contains("[1, 2, 7, 2]"), "{message}")
        }
        other => panic!("expected a kernel error, got {other:?}"),
    }
}

#[test]
fn conv2d_channel_mismatch_is_a_graph_error() {
    let g = Graph::new();
    let x = g.placeholder("images", DType::F32, &[-1, 5, 5, 3]);
    let f = g.variable("filter", &[3, 3, 2, 4], Initializer::Zeros);
    let y = conv2d(x, f, [1, 1], Padding::Same);
    let errors = g.errors();
    let [GraphError::InvalidNode { node, op, message }] = &errors[..] else {
        panic!("expected one InvalidNode error, got {errors:?}");
    };
    assert_eq!((node.as_str(), op.as_str()), ("Conv2D", "Conv2D"));
    assert!(
        message.contains("f32[?, 5, 5, 3]") && message.contains("f32[3, 3, 2, 4]"),
        "{message}"
    );
    let mut sess = Session::new(&g);
    let fed = Tensor::zeros(DType::F32, &[1, 5, 5, 3]);
    match sess.run(&[y], &[(x, fed)]) {
        Err(SessionError::Graph(GraphError::InvalidNode { message: m, .. })) => {
            assert_eq!(&m, message)
        }
        other => panic!("expected the graph error, got {other:?}"),
    }
    // Other shape errors name what does not fit.
    let bad_rank = conv2d(
        g.placeholder("flat", DType::F32, &[5, 5]),
        f,
        [1, 1],
        Padding::Same,
    );
    let e = bad_rank.type_shape().unwrap_err().to_string();
    assert!(e.contains("f32[5, 5]"), "{e}");
    let ints = g.placeholder("ints", DType::I32, &[1, 5, 5, 2]);
    let e = conv2d(ints, f, [1, 1], Padding::Same)
        .type_shape()
        .unwrap_err()
        .to_string();
    assert!(e.contains("i32"), "{e}");
    let x2 = g.placeholder("x2", DType::F32, &[1, 5, 5, 2]);
    let e = conv2d(x2, f, [0, 1], Padding::Same)
        .type_shape()
        .unwrap_err()
        .to_string();
    assert!(e.contains("[0, 1]"), "{e}");
    let big = g.variable("big", &[6, 6, 2, 1], Initializer::Zeros);
    let e = conv2d(x2, big, [1, 1], Padding::Valid)
        .type_shape()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("f32[6, 6, 2, 1]") && e.contains("f32[1, 5, 5, 2]"),
        "{e}"
    );
}

/// (input shape, ksize, strides, padding) cases for the pooling tests.
type PoolCase = (&'static [usize], [usize; 2], [usize; 2], Padding);

const POOL_CASES: &[PoolCase] = &[
    (&[2, 5, 5, 2], [2, 2], [2, 2], Padding::Same),
    (&[2, 5, 5, 2], [2, 2], [2, 2], Padding::Valid),
    (&[1, 5, 6, 3], [3, 3], [1, 1], Padding::Same),
    (&[1, 5, 6, 3], [3, 3], [1, 1], Padding::Valid),
    (&[2, 6, 5, 1], [3, 2], [2, 1], Padding::Same),
    (&[1, 7, 7, 2], [2, 3], [3, 2], Padding::Valid),
];

#[test]
fn max_pool_matches_reference() {
    for (k, &(xs, ksize, strides, padding)) in POOL_CASES.iter().enumerate() {
        let x = sample(xs, k as u64);
        let dy_shape = pool_reference(&x, None, ksize, strides, padding).0;
        let dy = sample(dy_shape.shape(), 77);
        let (want, want_dx) = pool_reference(&x, Some(&dy), ksize, strides, padding);
        let g = Graph::new();
        let xc = g.constant(x.clone());
        let y = max_pool(xc, ksize, strides, padding);
        let inferred = y.type_shape().unwrap().shape.to_known().unwrap();
        assert_eq!(inferred, want.shape(), "case {k}: inferred shape");
        assert_close(&eval(y, &[]), &want, 0.0);
        let loss = reduce_sum(y * g.constant(dy));
        assert_close(&eval(gradient(loss, xc).unwrap(), &[]), &want_dx, 1e-12);
        let y32 = max_pool(g.constant(x.cast(DType::F32)), ksize, strides, padding);
        assert_close(&eval(y32, &[]), &want, 1e-6);
    }
}

#[test]
fn max_pool_gradients_match_finite_differences() {
    for &(xs, ksize, strides, padding) in POOL_CASES {
        check_gradient(&[sample(xs, 5)], |v| {
            max_pool(v[0], ksize, strides, padding)
        });
        // Second order, through MaxPoolGrad's gradient.
        check_gradient(&[sample(xs, 6)], |v| {
            let y = max_pool(v[0], ksize, strides, padding);
            gradient(reduce_sum(square(y)), v[0]).unwrap()
        });
    }
}

#[test]
fn max_pool_ties_go_to_the_first_element() {
    let g = Graph::new();
    let x = g.constant(Tensor::full(&[1, 4, 4, 1], 1.0f64));
    let y = max_pool(x, [2, 2], [1, 1], Padding::Valid);
    let dx = eval(gradient(reduce_sum(y), x).unwrap(), &[]);
    let mut want = vec![0.0; 16];
    for r in 0..3 {
        for c in 0..3 {
            want[r * 4 + c] = 1.0;
        }
    }
    assert_eq!(dx.to_vec::<f64>().unwrap(), want);
    let e = max_pool(
        g.placeholder("v", DType::F32, &[4, 4]),
        [2, 2],
        [1, 1],
        Padding::Same,
    )
    .type_shape()
    .unwrap_err()
    .to_string();
    assert!(e.contains("f32[4, 4]"), "{e}");
}

#[test]
fn small_cnn_learns_mnist_digits() {
    let digits = mnist_digits().expect("embedded digits");
    let g = Graph::new();
    g.set_seed(7);
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let labels = g.placeholder("labels", DType::I64, &[-1]);
    let images = reshape(x, &[-1, 28, 28, 1]);
    let w1 = g.variable("conv/w", &[5, 5, 1, 8], Initializer::truncated_normal(0.1));
    let b1 = g.variable("conv/b", &[8], Initializer::Fill(0.1));
    let h = relu(conv2d(images, w1, [1, 1], Padding::Same) + b1);
    let pooled = max_pool(h, [2, 2], [2, 2], Padding::Same);
    let flat = reshape(pooled, &[-1, 14 * 14 * 8]);
    let w2 = g.variable("dense/w", &[14 * 14 * 8, 10], Initializer::GlorotUniform);
    let b2 = g.variable("dense/b", &[10], Initializer::Zeros);
    let logits = matmul(flat, w2) + b2;
    let loss = reduce_mean(sparse_softmax_cross_entropy_with_logits(logits, labels));
    let train = Adam::new(0.003).minimize(loss).expect("train op");
    let accuracy = reduce_mean(cast(equal(argmax(logits, 1), labels), DType::F32));

    let mut sess = Session::new(&g);
    sess.init_variables().expect("init");
    let start = Instant::now();
    for batch in digits.train.batches(50, 1).take(150) {
        sess.run(&[train], &[(x, batch.inputs), (labels, batch.labels)])
            .expect("train step");
    }
    let trained = start.elapsed();
    let test = &digits.test;
    let n = 500;
    let inputs = Tensor::new(&[n, 784], test.inputs[..n * 784].to_vec()).unwrap();
    let wanted: Vec<i64> = test.labels[..n].iter().map(|&l| l as i64).collect();
    let acc = sess
        .run(
            &[accuracy],
            &[(x, inputs), (labels, Tensor::from_vec(wanted))],
        )
        .expect("accuracy")[0]
        .scalar_f64()
        .unwrap();
    eprintln!("cnn: 150 steps in {trained:.2?}, test accuracy {acc:.3}");
    assert!(acc > 0.80, "test accuracy {acc}");
}
