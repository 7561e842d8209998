#![cfg(feature = "engine")]

mod common;
use common::*;
use sluice::prelude::*;

#[test]
fn matmul_gradient_matches_finite_differences() {
    check_gradient(&[sample(&[3, 4], 1), sample(&[4, 2], 2)], |x| {
        matmul(x[0], x[1])
    });
}

#[test]
fn softmax_of_broadcast_add_gradient() {
    check_gradient(&[sample(&[3, 4], 1), sample(&[4], 2)], |x| {
        softmax(x[0] + x[1])
    });
}
