#![cfg(feature = "engine")]

mod common;
use common::*;
use sluice::prelude::*;
use sluice::SessionError;

/// Rows of the last axis of `t`, as f64.
fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    let n = *t.shape().last().unwrap();
    let v: Vec<f64> = (0..t.len()).map(|i| t.get_f64(i)).collect();
    v.chunks(n).map(<[f64]>::to_vec).collect()
}

/// Softmax of each row, by the textbook formula (shifted by the row's max).
fn softmax_ref(row: &[f64]) -> Vec<f64> {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = row.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

fn log_softmax_ref(row: &[f64]) -> Vec<f64> {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_sum = row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
    row.iter().map(|v| v - max - log_sum).collect()
}

/// Applies `f` to each last-axis row of `t`.
fn per_row(t: &Tensor, f: fn(&[f64]) -> Vec<f64>) -> Tensor {
    let data: Vec<f64> = rows(t).iter().flat_map(|r| f(r)).collect();
    Tensor::new(t.shape(), data).unwrap()
}

/// Each row made into a probability distribution (positive, summing to 1).
fn distributions(shape: &[usize], salt: u64) -> Tensor {
    per_row(&sample(shape, salt), |r| {
        let p: Vec<f64> = r.iter().map(|v| v.abs() + 0.1).collect();
        let s: f64 = p.iter().sum();
        p.iter().map(|v| v / s).collect()
    })
}

fn map(t: &Tensor, f: fn(f64) -> f64) -> Tensor {
    Tensor::new(t.shape(), (0..t.len()).map(|i| f(t.get_f64(i))).collect()).unwrap()
}

#[test]
fn activations_match_closed_forms() {
    type Case = (fn(Output) -> Output, fn(f64) -> f64);
    let cases: [Case; 3] = [
        (relu, |v| v.max(0.0)),
        (sigmoid, |v| 1.0 / (1.0 + (-v).exp())),
        (tanh, f64::tanh),
    ];
    for (op, f) in cases {
        for shape in [&[][..], &[7][..], &[2, 3, 4][..]] {
            let v = map(&sample(shape, 1), |x| 4.0 * x);
            let g = Graph::new();
            let got = eval(op(g.constant(v.clone())), &[]);
            assert_close(&got, &map(&v, f), 1e-14);
            let got32 = eval(op(g.constant(v.cast(DType::F32))), &[]);
            assert_eq!(got32.dtype(), DType::F32);
            assert_close(&got32.cast(DType::F64), &map(&v, f), 1e-6);
        }
    }
}

#[test]
fn relu_zeroes_exactly_the_negatives() {
    let g = Graph::new();
    let x = g.constant(Tensor::from_vec(vec![-2.0f32, -0.0, 0.0, 0.5, 3.0]));
    assert_eq!(
        eval(relu(x), &[]).to_vec::<f32>().unwrap(),
        vec![0.0, 0.0, 0.0, 0.5, 3.0]
    );
}

#[test]
fn activation_gradients() {
    let v = map(&sample(&[3, 4], 2), |x| 3.0 * x);
    check_gradient(std::slice::from_ref(&v), |x| relu(x[0]));
    check_gradient(std::slice::from_ref(&v), |x| sigmoid(x[0]));
    check_gradient(std::slice::from_ref(&v), |x| tanh(x[0]));
    // Stacked, so that the relu gradient's own gradient path is exercised too.
    check_gradient(&[v], |x| relu(tanh(x[0]) * 2.0 - 0.5) + sigmoid(relu(x[0])));
}

#[test]
fn softmax_and_log_softmax_match_reference() {
    for shape in [&[5][..], &[3, 4][..], &[2, 3, 5][..]] {
        let v = map(&sample(shape, 3), |x| 5.0 * x);
        let g = Graph::new();
        let x = g.constant(v.clone());
        let s = eval(softmax(x), &[]);
        assert_close(&s, &per_row(&v, softmax_ref), 1e-14);
        for row in rows(&s) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        let l = eval(log_softmax(x), &[]);
        assert_close(&l, &per_row(&v, log_softmax_ref), 1e-13);
        // f32 as well.
        let s32 = eval(softmax(g.constant(v.cast(DType::F32))), &[]);
        assert_eq!(s32.dtype(), DType::F32);
        assert_close(&s32.cast(DType::F64), &per_row(&v, softmax_ref), 1e-6);
    }
}

#[test]
fn softmax_gradients() {
    for shape in [&[4][..], &[3, 4][..], &[2, 2, 3][..]] {
        let v = map(&sample(shape, 4), |x| 2.0 * x);
        check_gradient(std::slice::from_ref(&v), |x| softmax(x[0]));
        check_gradient(&[v], |x| log_softmax(x[0]));
    }
}

#[test]
fn softmax_is_stable_for_huge_logits() {
    let v = Tensor::new(
        &[3, 3],
        vec![
            1000.0f64, 0.0, -1000.0, -1000.0, -1000.0, -1000.0, 1000.0, 1000.0, 999.0,
        ],
    )
    .unwrap();
    for dtype in [DType::F64, DType::F32] {
        let g = Graph::new();
        let x = g.constant(v.cast(dtype));
        let s = eval(softmax(x), &[]).cast(DType::F64);
        let l = eval(log_softmax(x), &[]).cast(DType::F64);
        assert!((0..9).all(|i| s.get_f64(i).is_finite() && l.get_f64(i).is_finite()));
        assert_close(&s, &per_row(&v, softmax_ref), 1e-6);
        assert_close(&l, &per_row(&v, log_softmax_ref), 1e-3);
        assert_eq!(l.get_f64(2), -2000.0);
        assert!((s.get_f64(0) - 1.0).abs() < 1e-12);
        // And its gradient at those logits.
        let dx = gradient(reduce_sum(log_softmax(x) * 0.5), x).unwrap();
        let d = eval(dx, &[]);
        assert!((0..9).all(|i| d.get_f64(i).is_finite()), "{d}");
    }
    let g = Graph::new();
    let x = g.constant(Tensor::from_vec(vec![1000.0f64, -1000.0]));
    let out = eval(sigmoid(x), &[]);
    assert_eq!(out.to_vec::<f64>().unwrap(), vec![1.0, 0.0]);
    let out = eval(tanh(x), &[]);
    assert_eq!(out.to_vec::<f64>().unwrap(), vec![1.0, -1.0]);
}

/// `-sum(labels * log_softmax(logits))` over the last axis.
fn cross_entropy_ref(logits: &Tensor, labels: &Tensor) -> Vec<f64> {
    rows(logits)
        .iter()
        .zip(rows(labels))
        .map(|(l, y)| {
            -log_softmax_ref(l)
                .iter()
                .zip(&y)
                .map(|(a, b)| a * b)
                .sum::<f64>()
        })
        .collect()
}

#[test]
fn softmax_cross_entropy_matches_reference() {
    for shape in [&[4][..], &[3, 5][..], &[2, 3, 4][..]] {
        let logits = map(&sample(shape, 5), |x| 3.0 * x);
        let labels = distributions(shape, 6);
        let g = Graph::new();
        let loss = softmax_cross_entropy_with_logits(
            g.constant(logits.clone()),
            g.constant(labels.clone()),
        );
        let got = eval(loss, &[]);
        assert_eq!(got.shape(), &shape[..shape.len() - 1]);
        let want = cross_entropy_ref(&logits, &labels);
        assert_close(&got, &Tensor::new(got.shape(), want).unwrap(), 1e-13);
    }
}

#[test]
fn softmax_cross_entropy_gradient_wrt_logits_and_labels() {
    for shape in [&[3, 4][..], &[2, 2, 3][..]] {
        let logits = map(&sample(shape, 7), |x| 2.0 * x);
        let labels = distributions(shape, 8);
        check_gradient(&[logits, labels], |x| {
            softmax_cross_entropy_with_logits(x[0], x[1])
        });
    }
    // Labels that are not distributions still differentiate correctly.
    check_gradient(&[sample(&[2, 3], 9), sample(&[2, 3], 10)], |x| {
        softmax_cross_entropy_with_logits(x[0], x[1])
    });
}

#[test]
fn softmax_cross_entropy_gradient_is_softmax_minus_labels() {
    let logits = sample(&[2, 3], 11);
    let labels = distributions(&[2, 3], 12);
    let g = Graph::new();
    let x = g.placeholder("logits", DType::F64, &[-1, 3]);
    let y = g.constant(labels.clone());
    let loss = reduce_sum(softmax_cross_entropy_with_logits(x, y));
    let dx = eval(gradient(loss, x).unwrap(), &[(x, logits.clone())]);
    let sm = per_row(&logits, softmax_ref);
    let want: Vec<f64> = (0..6).map(|i| sm.get_f64(i) - labels.get_f64(i)).collect();
    assert_close(&dx, &Tensor::new(&[2, 3], want).unwrap(), 1e-14);
}

/// Cross-entropy of each row against a class index.
fn sparse_ref(logits: &Tensor, labels: &[i64]) -> Vec<f64> {
    rows(logits)
        .iter()
        .zip(labels)
        .map(|(l, &c)| -log_softmax_ref(l)[c as usize])
        .collect()
}

#[test]
fn sparse_softmax_cross_entropy_matches_reference() {
    let logits = map(&sample(&[4, 5], 13), |x| 3.0 * x);
    let labels = vec![0i64, 4, 2, 2];
    let g = Graph::new();
    let loss = sparse_softmax_cross_entropy_with_logits(
        g.constant(logits.clone()),
        g.constant(Tensor::from_vec(labels.clone())),
    );
    let got = eval(loss, &[]);
    assert_close(&got, &Tensor::from_vec(sparse_ref(&logits, &labels)), 1e-13);

    // i32 labels and rank-3 logits.
    let logits3 = sample(&[2, 3, 4], 14);
    let labels3 = vec![3i64, 0, 1, 2, 2, 3];
    let labels3_i32: Vec<i32> = labels3.iter().map(|&c| c as i32).collect();
    let loss = sparse_softmax_cross_entropy_with_logits(
        g.constant(logits3.clone()),
        g.constant(Tensor::new(&[2, 3], labels3_i32).unwrap()),
    );
    let got = eval(loss, &[]);
    assert_eq!(got.shape(), &[2, 3]);
    let want = Tensor::new(&[2, 3], sparse_ref(&logits3, &labels3)).unwrap();
    assert_close(&got, &want, 1e-13);

    // It agrees with the dense op on one-hot labels.
    let mut one_hot = vec![0.0f64; 20];
    for (r, &c) in labels.iter().enumerate() {
        one_hot[r * 5 + c as usize] = 1.0;
    }
    let dense = softmax_cross_entropy_with_logits(
        g.constant(logits.clone()),
        g.constant(Tensor::new(&[4, 5], one_hot).unwrap()),
    );
    assert_close(
        &eval(dense, &[]),
        &Tensor::from_vec(sparse_ref(&logits, &labels)),
        1e-13,
    );
}

#[test]
fn sparse_softmax_cross_entropy_gradient() {
    let labels = Tensor::from_vec(vec![1i64, 0, 3]);
    check_gradient(&[sample(&[3, 4], 15), labels], |x| {
        sparse_softmax_cross_entropy_with_logits(x[0], x[1])
    });
    let labels3 = Tensor::new(&[2, 2], vec![2i64, 0, 1, 1]).unwrap();
    check_gradient(&[sample(&[2, 2, 3], 16), labels3], |x| {
        sparse_softmax_cross_entropy_with_logits(x[0], x[1])
    });
}

#[test]
fn cross_entropy_is_stable_for_huge_logits() {
    let logits = Tensor::new(
        &[2, 3],
        vec![1000.0f64, 0.0, -1000.0, -1000.0, -1000.0, -1000.0],
    )
    .unwrap();
    let one_hot = Tensor::new(&[2, 3], vec![0.0f64, 1.0, 0.0, 0.0, 0.0, 1.0]).unwrap();
    for dtype in [DType::F64, DType::F32] {
        let g = Graph::new();
        let x = g.constant(logits.cast(dtype));
        let dense = softmax_cross_entropy_with_logits(x, g.constant(one_hot.cast(dtype)));
        let sparse = sparse_softmax_cross_entropy_with_logits(
            x,
            g.constant(Tensor::from_vec(vec![2i64, 0])),
        );
        let want_dense = [1000.0, 3f64.ln()];
        let want_sparse = [2000.0, 3f64.ln()];
        let d = eval(dense, &[]);
        let s = eval(sparse, &[]);
        for i in 0..2 {
            assert!((d.get_f64(i) - want_dense[i]).abs() < 1e-3, "{d}");
            assert!((s.get_f64(i) - want_sparse[i]).abs() < 1e-3, "{s}");
        }
        let dx = eval(gradient(reduce_sum(dense), x).unwrap(), &[]);
        assert!((0..6).all(|i| dx.get_f64(i).is_finite()), "{dx}");
        // softmax - labels: row 0 is [1, 0, 0] - [0, 1, 0].
        assert!((dx.get_f64(0) - 1.0).abs() < 1e-6 && (dx.get_f64(1) + 1.0).abs() < 1e-6);
    }
}

#[test]
fn cross_entropy_rejects_bad_labels() {
    let g = Graph::new();
    let logits = g.constant(Tensor::new(&[2, 4], vec![0.0f32; 8]).unwrap());
    let run = |y: Output| Session::new(&g).run(&[y], &[]).unwrap_err().to_string();

    let out_of_range = sparse_softmax_cross_entropy_with_logits(
        logits,
        g.constant(Tensor::from_vec(vec![0i64, 4])),
    );
    assert_eq!(
        run(out_of_range),
        "node 'SparseSoftmaxCrossEntropyWithLogits' (SparseSoftmaxCrossEntropyWithLogits) \
         failed: label 4 is out of range for 4 classes"
    );
    let negative = sparse_softmax_cross_entropy_with_logits(
        logits,
        g.constant(Tensor::from_vec(vec![-1i32, 0])),
    );
    assert!(run(negative).contains("label -1 is out of range for 4 classes"));

    let float_labels = sparse_softmax_cross_entropy_with_logits(
        logits,
        g.constant(Tensor::from_vec(vec![0.0f32, 1.0])),
    );
    assert!(
        run(float_labels).contains("sparse labels must be i32 or i64, got f32[2]"),
        "{}",
        run(float_labels)
    );

    let wrong_rank =
        softmax_cross_entropy_with_logits(logits, g.constant(Tensor::from_vec(vec![0.0f32, 1.0])));
    assert!(run(wrong_rank)
        .contains("labels must match the logits: logits are f32[2, 4], labels are f32[2]"));

    // Shapes that are known at build time and differ are reported then, not at run time.
    let wrong_width = softmax_cross_entropy_with_logits(
        logits,
        g.constant(Tensor::new(&[2, 3], vec![0.0f32; 6]).unwrap()),
    );
    let built = wrong_width.type_shape().unwrap_err().to_string();
    assert!(
        built.contains("logits are f32[2, 4], labels are f32[2, 3]"),
        "{built}"
    );
    let wrong_batch = sparse_softmax_cross_entropy_with_logits(
        logits,
        g.constant(Tensor::from_vec(vec![0i64, 1, 2])),
    );
    let built = wrong_batch.type_shape().unwrap_err().to_string();
    assert!(
        built.contains("sparse labels must have shape [2] for logits [2, 4], got [3]"),
        "{built}"
    );
}

#[test]
fn softmax_rejects_scalars_and_integers() {
    let g = Graph::new();
    let err = softmax(g.constant(Tensor::scalar(1.0f32)))
        .type_shape()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'Softmax' (Softmax): needs at least one axis, got a scalar"
    );
    let err = log_softmax(g.constant(Tensor::from_vec(vec![1i32, 2])))
        .type_shape()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'LogSoftmax' (LogSoftmax): logits must be f32 or f64, got i32"
    );
    let err = relu(g.constant(Tensor::from_vec(vec![1i64])))
        .type_shape()
        .unwrap_err();
    assert!(err
        .to_string()
        .contains("the input must be f32 or f64, got i64"));
}

// ---------------------------------------------------------------------------------------------
// check_numerics
// ---------------------------------------------------------------------------------------------

#[test]
fn check_numerics_names_the_node_that_made_an_infinity() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1]);
    let y = check_numerics(log(x), "log of x");
    let mut sess = Session::new(&g);
    let err = sess
        .run(&[y], &[(x, Tensor::from_vec(vec![1.0f32, 0.0, 2.0]))])
        .unwrap_err();
    let dumped = match &err {
        SessionError::NonFinite {
            node,
            message,
            index,
            dump,
        } => {
            assert_eq!(node, "CheckNumerics");
            assert_eq!(message, "log of x: Inf in the output of 'Log'");
            assert_eq!(*index, 1);
            dump.clone().expect("the checked values are dumped")
        }
        other => panic!("expected NonFinite, got {other:?}"),
    };
    // The values the check saw, as NumPy reads them.
    let checked = sluice::dump::npy::read_npy(&dumped.join("input0.npy")).expect("read");
    assert_eq!(
        checked.to_vec::<f32>().unwrap(),
        [0.0, f32::NEG_INFINITY, 2.0f32.ln()]
    );
    let text = err.to_string();
    assert!(text.contains("'Log'"), "{text}");
    assert_eq!(
        text,
        format!(
            "check_numerics: log of x: Inf in the output of 'Log' in 'CheckNumerics' \
             (first bad value at flat index 1); the checked values are in {} (numpy.load)",
            dumped.display()
        )
    );
    std::fs::remove_dir_all(&dumped).ok();

    // NaN is named as such; finite values pass through unchanged.
    let err = sess
        .run(&[y], &[(x, Tensor::from_vec(vec![1.0f32, 2.0, -3.0]))])
        .unwrap_err();
    assert!(
        err.to_string().contains("NaN in the output of 'Log'"),
        "{err}"
    );
    assert!(err.to_string().contains("index 2"), "{err}");
    let ok = sess
        .run(&[y], &[(x, Tensor::from_vec(vec![1.0f32, 2.0]))])
        .unwrap();
    assert_eq!(ok[0].to_vec::<f32>().unwrap(), vec![0.0, 2.0f32.ln()]);
}

#[test]
fn check_numerics_without_message_and_in_a_scope() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[2]);
    let y = {
        let _scope = g.name_scope("layer");
        check_numerics(log(x), "")
    };
    let dir = std::env::temp_dir().join(format!("sluice-check-dumps-{}", std::process::id()));
    let mut sess = Session::new(&g);
    sess.set_dump_dir(&dir);
    let err = sess
        .run(&[y], &[(x, Tensor::from_vec(vec![0.0f64, 1.0]))])
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "check_numerics: Inf in the output of 'layer/Log' in 'layer/CheckNumerics' \
             (first bad value at flat index 0); the checked values are in "
        ),
        "{text}"
    );
    let SessionError::NonFinite {
        dump: Some(dumped), ..
    } = err
    else {
        panic!("no dump: {text}");
    };
    assert!(dumped.starts_with(&dir) && dumped.join("input0.npy").is_file());
    let manifest = std::fs::read_to_string(dumped.join("dump.json")).expect("manifest");
    assert!(manifest.contains("\"dtype\":\"f64\""), "{manifest}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn check_numerics_passes_gradients_and_checks_them() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[2]);
    let checked = check_numerics(x, "input");
    let y = reduce_sum(sqrt(checked));
    let dx = gradient(y, x).unwrap();
    let mut sess = Session::new(&g);
    let ok = sess
        .run(&[dx], &[(x, Tensor::from_vec(vec![4.0f64, 1.0]))])
        .unwrap();
    assert_close(&ok[0], &Tensor::from_vec(vec![0.25, 0.5]), 1e-15);
    // d sqrt(x)/dx is infinite at 0: the gradient flowing into the check is caught.
    let err = sess
        .run(&[dx], &[(x, Tensor::from_vec(vec![0.0f64, 1.0]))])
        .unwrap_err();
    assert!(matches!(err, SessionError::NonFinite { .. }), "{err:?}");
    assert!(err.to_string().contains("gradient of x"), "{err}");
    if let SessionError::NonFinite {
        dump: Some(dir), ..
    } = &err
    {
        std::fs::remove_dir_all(dir).ok();
    }
    check_gradient(&[positive_sample()], |x| {
        check_numerics(x[0] * x[0], "square")
    });
}

fn positive_sample() -> Tensor {
    map(&sample(&[3], 17), |v| v.abs() + 0.5)
}

#[test]
fn check_numerics_rejects_integers() {
    let g = Graph::new();
    let y = check_numerics(g.constant(Tensor::from_vec(vec![1i32])), "ints");
    assert!(y
        .type_shape()
        .unwrap_err()
        .to_string()
        .contains("the checked value must be f32 or f64, got i32"));
}

#[test]
fn softplus_is_stable_at_both_ends_and_differentiates() {
    let g = Graph::new();
    let x = g.constant(Tensor::from_vec(vec![-800.0f64, -3.0, 0.0, 2.5, 800.0]));
    let got = eval(softplus(x), &[]).to_vec::<f64>().unwrap();
    let want = [
        0.0,
        (1.0 + (-3.0f64).exp()).ln(),
        2f64.ln(),
        (1.0 + 2.5f64.exp()).ln(),
        800.0,
    ];
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "{got:?} vs {want:?}");
    }
    check_gradient(&[sample(&[3, 4], 9)], |x| softplus(x[0] * 4.0));
}
