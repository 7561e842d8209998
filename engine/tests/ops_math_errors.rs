//! Arithmetic on inputs that do not fit: what users see (dtypes, broadcasting, float-only ops).

#![cfg(feature = "engine")]

use sluice::prelude::*;

/// The text of the error that running `y` gives.
fn run_error(y: Output) -> String {
    let g = y.graph().unwrap();
    let mut sess = Session::new(&g);
    match sess.run(&[y], &[]) {
        Ok(v) => panic!("expected an error, got {:?}", v),
        Err(e) => e.to_string(),
    }
}

#[test]
fn mixed_dtypes_are_an_error_naming_both() {
    let g = Graph::new();
    let a = g.constant(Tensor::from_vec(vec![1.0f32, 2.0]));
    let b = g.constant(Tensor::from_vec(vec![1.0f64, 2.0]));
    let y = a + b;
    let errors = g.errors();
    assert_eq!(errors.len(), 1);
    let text = errors[0].to_string();
    assert_eq!(
        text,
        "node 'Add' (Add): operands have different dtypes: f32[2] and f64[2] (cast one of them)"
    );
    assert_eq!(run_error(y), text);
    assert!(y.type_shape().is_err());
}

#[test]
fn shapes_that_do_not_broadcast_are_an_error() {
    let g = Graph::new();
    let a = g.constant(Tensor::new(&[3, 4], vec![0.0f32; 12]).unwrap());
    let b = g.constant(Tensor::new(&[3], vec![0.0f32; 3]).unwrap());
    let y = mul(a, b);
    let text = run_error(y);
    assert_eq!(
        text,
        "node 'Mul' (Mul): shapes [3, 4] and [3] cannot be broadcast together (dimension 4 vs 3)"
    );
    // Comparisons and select use the same rule.
    let c = greater(a, b);
    assert!(run_error(c).contains("cannot be broadcast together"));
}

#[test]
fn broadcast_failure_found_at_run_time_names_the_node_and_shapes() {
    let g = Graph::new();
    let a = g.placeholder("a", DType::F32, &[-1, 4]);
    let b = g.placeholder("b", DType::F32, &[-1, 4]);
    let y = sub(a, b);
    assert!(
        g.errors().is_empty(),
        "unknown dims are accepted when built"
    );
    let mut sess = Session::new(&g);
    let err = sess
        .run(
            &[y],
            &[
                (a, Tensor::new(&[2, 4], vec![0.0f32; 8]).unwrap()),
                (b, Tensor::new(&[3, 4], vec![0.0f32; 12]).unwrap()),
            ],
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'Sub' (Sub) failed: shapes [2, 4] and [3, 4] cannot be broadcast together"
    );
}

#[test]
fn float_only_ops_reject_integers_and_bools() {
    let g = Graph::new();
    let i = g.constant(Tensor::from_vec(vec![1i32, 2]));
    assert_eq!(
        run_error(exp(i)),
        "node 'Exp' (Exp): the input must be f32 or f64, got i32"
    );
    assert_eq!(
        run_error(pow(i, i)),
        "node 'Pow' (Pow): pow's operands must be f32 or f64, got i32"
    );
    let b = g.constant(Tensor::from_vec(vec![true, false]));
    assert_eq!(
        run_error(add(b, b)),
        "node 'Add' (Add): arithmetic is not defined for bool (cast to a number first)"
    );
}
