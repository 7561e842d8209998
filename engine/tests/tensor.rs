//! Tensors: conversions and printing.

#![cfg(feature = "engine")]
mod common;
use common::*;
use sluice::prelude::*;
use sluice::TensorError;

fn f32s(shape: &[usize], v: Vec<f32>) -> Tensor {
    Tensor::new(shape, v).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tensors: conversions and printing.
// ---------------------------------------------------------------------------------------------

#[test]
fn tensor_from_and_to_vec() {
    let t = Tensor::from(vec![1.0f32, 2.0, 3.0]);
    assert_eq!(t.dtype(), DType::F32);
    assert_eq!(t.shape(), &[3]);
    assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0]);
    let err = t.to_vec::<f64>().unwrap_err();
    assert_eq!(
        err,
        TensorError::WrongDType {
            actual: DType::F32,
            requested: DType::F64
        }
    );
    assert_eq!(
        err.to_string(),
        "tensor has dtype f32, not the requested f64"
    );

    let m = Tensor::new(&[2, 3], vec![1i64, 2, 3, 4, 5, 6]).unwrap();
    assert_eq!((m.rank(), m.len()), (2, 6));
    let err = Tensor::new(&[2, 3], vec![1i64, 2, 3, 4, 5]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "shape [2, 3] holds 6 elements but 5 were given"
    );
    let err = m.reshape(&[4, 2]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot reshape a tensor of shape [2, 3] to [4, 2]"
    );
    assert_eq!(m.reshape(&[3, 2]).unwrap().shape(), &[3, 2]);

    let s = Tensor::from(2.5f64);
    assert_eq!(s.shape(), &[] as &[usize]);
    assert_eq!(s.scalar_f64(), Some(2.5));
    assert_eq!(Tensor::from(1.5f32).dtype(), DType::F32);
    assert_eq!(m.scalar_f64(), None);
    assert_eq!(Tensor::scalar(7u8).get_f64(0), 7.0);
    assert_eq!(
        Tensor::full(&[2], true).to_vec::<bool>().unwrap(),
        vec![true, true]
    );
    assert_eq!(
        Tensor::zeros(DType::I32, &[2, 2]).to_vec::<i32>().unwrap(),
        vec![0; 4]
    );

    // Writing to a clone leaves the original alone.
    let mut c = t.clone();
    c.as_mut_slice::<f32>().unwrap()[0] = 9.0;
    assert_eq!(t.to_vec::<f32>().unwrap()[0], 1.0);
    assert_eq!(c.to_vec::<f32>().unwrap()[0], 9.0);
}

#[test]
fn tensor_from_and_to_ndarray() {
    let a = ndarray::arr2(&[[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let t = Tensor::from(a.clone());
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(
        t.to_vec::<f64>().unwrap(),
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    let back = t.to_ndarray::<f64>().unwrap();
    assert_eq!(back, a.into_dyn());
    assert!(t.to_ndarray::<f32>().is_err());

    // A transposed (column-major) array converts in its logical order.
    let transposed = ndarray::arr2(&[[1i32, 2], [3, 4], [5, 6]]).reversed_axes();
    let t = Tensor::from(transposed);
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(t.to_vec::<i32>().unwrap(), vec![1, 3, 5, 2, 4, 6]);

    let three =
        ndarray::Array3::<f32>::from_shape_fn((2, 3, 4), |(i, j, k)| (i * 100 + j * 10 + k) as f32);
    let t = Tensor::from(three.clone());
    assert_eq!(t.shape(), &[2, 3, 4]);
    assert_eq!(t.to_vec::<f32>().unwrap()[23], 123.0);
    assert_eq!(t.to_ndarray::<f32>().unwrap(), three.into_dyn());

    // Through a session and back.
    let g = Graph::new();
    let out = eval(g.constant(t) * 2.0, &[]);
    assert_eq!(out.to_ndarray::<f32>().unwrap()[[1, 2, 3]], 246.0);
}

#[test]
fn tensor_casts() {
    let t = Tensor::from_vec(vec![1.9f64, -1.9, 0.0]);
    assert_eq!(t.cast(DType::I32).to_vec::<i32>().unwrap(), vec![1, -1, 0]);
    assert_eq!(
        t.cast(DType::Bool).to_vec::<bool>().unwrap(),
        vec![true, true, false]
    );
    assert_eq!(t.cast(DType::F32).dtype(), DType::F32);
    assert_eq!(
        Tensor::from_vec(vec![true, false])
            .cast(DType::F64)
            .to_vec::<f64>()
            .unwrap(),
        vec![1.0, 0.0]
    );
}

#[test]
fn small_tensors_print_like_numpy() {
    let t = f32s(&[2, 3], vec![1.0, 2.5, -3.0, 4.0, 5.0, 6.0]);
    assert_eq!(t.to_string(), "[[ 1.   2.5 -3. ]\n [ 4.   5.   6. ]]");
    assert_eq!(format!("{t}"), t.to_string());
    let i = Tensor::new(&[2, 2], vec![1i32, -20, 3, 4]).unwrap();
    assert_eq!(i.to_string(), "[[  1 -20]\n [  3   4]]");
    assert_eq!(
        Tensor::from_vec(vec![0.5f64, 0.25]).to_string(),
        "[0.5  0.25]"
    );
    assert_eq!(
        Tensor::from_vec(vec![true, false, true]).to_string(),
        "[ True False  True]"
    );
    assert_eq!(Tensor::scalar(3.0f32).to_string(), "3.0");
    let r3 = Tensor::new(&[2, 1, 2], vec![1.0f64, 2.0, 3.0, 4.0]).unwrap();
    assert_eq!(r3.to_string(), "[[[1. 2.]]\n\n [[3. 4.]]]");
    // Debug adds the dtype and shape.
    let debug = format!("{t:?}");
    assert!(
        debug.starts_with("Tensor(dtype=f32, shape=[2, 3],"),
        "{debug}"
    );
}

#[test]
fn large_tensors_are_summarised() {
    let t = Tensor::new(
        &[100, 100],
        (0..10_000).map(|i| i as f32 / 8.0 + 200.0).collect(),
    )
    .unwrap();
    let s = t.to_string();
    // What NumPy prints for the same array.
    assert_eq!(
        s,
        "[[ 200.     200.125  200.25  ...  212.125  212.25   212.375]\n \
         [ 212.5    212.625  212.75  ...  224.625  224.75   224.875]\n \
         [ 225.     225.125  225.25  ...  237.125  237.25   237.375]\n \
         ...\n \
         [1412.5   1412.625 1412.75  ... 1424.625 1424.75  1424.875]\n \
         [1425.    1425.125 1425.25  ... 1437.125 1437.25  1437.375]\n \
         [1437.5   1437.625 1437.75  ... 1449.625 1449.75  1449.875]]"
    );
    assert_eq!(s.lines().count(), 7);
    assert!(s.len() < 600, "summary stays short: {} chars", s.len());
    // At the threshold nothing is left out.
    let t = Tensor::new(&[1000], vec![1i64; 1000]).unwrap();
    assert!(!t.to_string().contains("..."));
    let t = Tensor::new(&[1001], vec![1i64; 1001]).unwrap();
    assert!(t.to_string().contains("..."));
}

#[test]
fn a_shape_whose_element_count_overflows_is_refused() {
    // (2^62 + 1) x 4 wraps to 4: such a shape must not pass for four elements.
    let huge = [(1usize << 62) + 1, 4];
    let err = Tensor::new(&huge, vec![0.0f32; 4]).expect_err("2^64 + 4 elements");
    assert!(
        err.to_string()
            .contains("more elements than a tensor can hold"),
        "{err}"
    );
    let four = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0]);
    assert!(four.reshape(&huge).is_err());
    assert_eq!(sluice::tensor::element_count(&huge), None);
    assert_eq!(sluice::tensor::element_count(&[2, 3]), Some(6));
}
