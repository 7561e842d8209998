//! Building expressions: arithmetic, conditions, and the index arithmetic of kernels that
//! read by computed index ([`Expr::Load`]: windows, padding, pieces of a concatenation), where
//! coordinates and indices are i32 expressions.

use super::expr::{BinaryOp, Expr, Scalar};

/// `a + b`, `a - b`, `a * b`.
pub fn add(a: Expr, b: Expr) -> Expr {
    Expr::binary(BinaryOp::Add, a, b)
}

pub fn sub(a: Expr, b: Expr) -> Expr {
    Expr::binary(BinaryOp::Sub, a, b)
}

pub fn mul(a: Expr, b: Expr) -> Expr {
    Expr::binary(BinaryOp::Mul, a, b)
}

/// An i32 constant from a size; sizes that do not fit are rejected when the kernel's
/// parameters are built, so the cast here only matters for sizes a kernel never runs on.
pub fn int(v: usize) -> Expr {
    Expr::i32(i32::try_from(v).unwrap_or(i32::MAX))
}

pub fn truth(v: bool) -> Expr {
    Expr::Literal(Scalar::Bool, f64::from(u8::from(v)))
}

/// Both conditions.
pub fn and(a: Expr, b: Expr) -> Expr {
    Expr::select(a, b, truth(false))
}

/// `lo <= x < hi`.
pub fn within(x: Expr, lo: Expr, hi: Expr) -> Expr {
    and(
        Expr::binary(BinaryOp::Ge, x.clone(), lo),
        Expr::binary(BinaryOp::Lt, x, hi),
    )
}

/// `sum(coords[a] * strides[a])`.
pub fn linear(coords: &[Expr], strides: &[usize]) -> Expr {
    let mut terms = coords
        .iter()
        .zip(strides)
        .map(|(c, &s)| mul(c.clone(), int(s)));
    let first = terms.next().unwrap_or_else(|| Expr::i32(0));
    terms.fold(first, add)
}

/// The output coordinates `0..rank`.
pub fn coords(rank: usize) -> Vec<Expr> {
    (0..rank).map(Expr::Coord).collect()
}

/// `Load(input, index)` where `valid`, else `otherwise`.
pub fn load_or(input: usize, index: Expr, valid: Expr, otherwise: Expr) -> Expr {
    Expr::select(valid, Expr::load(input, index), otherwise)
}
