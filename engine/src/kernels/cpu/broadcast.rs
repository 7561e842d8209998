//! NumPy broadcasting for kernels: concrete shapes, strides and element loops.

use crate::kernels::{BufferPool, KernelError};
use crate::tensor::{Element, Tensor};

/// The broadcast of two concrete shapes.
pub fn broadcast_concrete(a: &[usize], b: &[usize]) -> Result<Vec<usize>, KernelError> {
    let rank = a.len().max(b.len());
    let get = |s: &[usize], i: usize| {
        let offset = rank - s.len();
        if i < offset {
            1
        } else {
            s[i - offset]
        }
    };
    (0..rank)
        .map(|i| match (get(a, i), get(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(KernelError::Message(format!(
                "shapes {a:?} and {b:?} cannot be broadcast together"
            ))),
        })
        .collect()
}

/// Row-major strides of `shape` seen from a broadcast `out` shape (0 where broadcast).
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let offset = out.len() - shape.len();
    let mut strides = vec![0; out.len()];
    let mut stride = 1;
    for i in (0..shape.len()).rev() {
        if shape[i] != 1 {
            strides[i + offset] = stride;
        }
        stride *= shape[i];
    }
    strides
}

/// Applies `f` element by element over the broadcast of `a` and `b`.
pub fn binary_map<T: Element, U: Element>(
    pool: &mut BufferPool,
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(T, T) -> U,
) -> Result<Tensor, KernelError> {
    let (xs, ys) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
    if a.shape() == b.shape() {
        let mut out = pool.alloc::<U>(xs.len());
        for ((o, &x), &y) in out.iter_mut().zip(xs).zip(ys) {
            *o = f(x, y);
        }
        return Ok(Tensor::new(a.shape(), out)?);
    }
    let shape = broadcast_concrete(a.shape(), b.shape())?;
    let len: usize = shape.iter().product();
    let mut out = pool.alloc::<U>(len);
    if ys.len() == 1 && xs.len() == len {
        let y = ys[0];
        for (o, &x) in out.iter_mut().zip(xs) {
            *o = f(x, y);
        }
    } else if xs.len() == 1 && ys.len() == len {
        let x = xs[0];
        for (o, &y) in out.iter_mut().zip(ys) {
            *o = f(x, y);
        }
    } else {
        let (sa, sb) = (
            broadcast_strides(a.shape(), &shape),
            broadcast_strides(b.shape(), &shape),
        );
        for_each_row(&shape, &sa, &sb, |row, base_a, base_b, inner_a, inner_b| {
            let dst = &mut out[row..row + shape[shape.len() - 1]];
            for (k, o) in dst.iter_mut().enumerate() {
                *o = f(xs[base_a + k * inner_a], ys[base_b + k * inner_b]);
            }
        });
    }
    Ok(Tensor::new(&shape, out)?)
}

/// Walks the rows (all but the last axis) of `shape`, giving each row's output offset, the two
/// operands' base offsets and their strides along the last axis.
pub fn for_each_row(
    shape: &[usize],
    sa: &[usize],
    sb: &[usize],
    mut row_fn: impl FnMut(usize, usize, usize, usize, usize),
) {
    let rank = shape.len();
    if rank == 0 {
        row_fn(0, 0, 0, 0, 0);
        return;
    }
    let inner = shape[rank - 1];
    let rows: usize = shape[..rank - 1].iter().product();
    let mut index = vec![0usize; rank - 1];
    let (mut base_a, mut base_b) = (0usize, 0usize);
    for row in 0..rows {
        row_fn(row * inner, base_a, base_b, sa[rank - 1], sb[rank - 1]);
        // Advance the odometer over the outer axes.
        for axis in (0..rank - 1).rev() {
            index[axis] += 1;
            base_a += sa[axis];
            base_b += sb[axis];
            if index[axis] < shape[axis] {
                break;
            }
            base_a -= sa[axis] * shape[axis];
            base_b -= sb[axis] * shape[axis];
            index[axis] = 0;
        }
    }
}

/// Reduces `x` to `target` (a shape `x` broadcasts from) by folding with `combine`, starting
/// every output element at `init`.
pub fn reduce_to_shape<T: Element>(
    pool: &mut BufferPool,
    x: &Tensor,
    target: &[usize],
    init: T,
    combine: impl Fn(T, T) -> T,
) -> Result<Tensor, KernelError> {
    let shape = x.shape();
    if target.len() != shape.len() || broadcast_concrete(target, shape)? != shape {
        return Err(KernelError::Message(format!(
            "cannot reduce shape {shape:?} to {target:?}"
        )));
    }
    let xs = x.as_slice::<T>()?;
    let mut out = pool.alloc::<T>(target.iter().product());
    out.fill(init);
    if shape.is_empty() {
        out[0] = combine(init, xs[0]);
        return Ok(Tensor::new(target, out)?);
    }
    let st = broadcast_strides(target, shape);
    let zeros = vec![0; shape.len()];
    let n = shape[shape.len() - 1];
    for_each_row(shape, &st, &zeros, |row, base, _, inner, _| {
        let src = &xs[row..row + n];
        if inner == 0 {
            let mut acc = out[base];
            for &v in src {
                acc = combine(acc, v);
            }
            out[base] = acc;
        } else {
            for (o, &v) in out[base..base + n].iter_mut().zip(src) {
                *o = combine(*o, v);
            }
        }
    });
    Ok(Tensor::new(target, out)?)
}

/// Copies `x` out to the larger shape `target` that it broadcasts to.
pub fn broadcast_to<T: Element>(
    pool: &mut BufferPool,
    x: &Tensor,
    target: &[usize],
) -> Result<Tensor, KernelError> {
    let xs = x.as_slice::<T>()?;
    if x.shape().len() != target.len() || broadcast_concrete(x.shape(), target)? != target {
        return Err(KernelError::Message(format!(
            "cannot broadcast shape {:?} to {target:?}",
            x.shape()
        )));
    }
    let mut out = pool.alloc::<T>(target.iter().product());
    if target.is_empty() {
        out[0] = xs[0];
        return Ok(Tensor::new(target, out)?);
    }
    let sx = broadcast_strides(x.shape(), target);
    let zeros = vec![0; target.len()];
    let n = target[target.len() - 1];
    for_each_row(target, &sx, &zeros, |row, base, _, inner, _| {
        for (k, o) in out[row..row + n].iter_mut().enumerate() {
            *o = xs[base + k * inner];
        }
    });
    Ok(Tensor::new(target, out)?)
}
