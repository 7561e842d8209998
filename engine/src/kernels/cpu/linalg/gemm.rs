//! The CPU kernels of the matrix products, on the `gemm` crate; `gemm_into` is the one place
//! that calls it. Narrow products (logits) take the hand-written kernels of [`super::narrow`].

use super::narrow;
use crate::kernels::{Context, KernelError, StepControl};
use crate::tensor::{Float, Tensor};
use std::any::TypeId;

/// Products smaller than this many multiply-adds run on one thread: below it, waking a thread
/// pool costs more than it saves.
const PARALLEL_MIN_FLOPS: usize = 4 << 20;

/// Multiply-adds between two checks of the step's cancel and deadline (about 0.2 s on the
/// project's two-core machines, at 95 billion a second): a huge product stops soon after a
/// cancel, and products of ordinary size, below this, still run as one call. Smaller blocks
/// cost products of 4096^3 and more a few percent of their speed; these cost none measurable.
const BLOCK_FLOPS: usize = 1 << 34;

/// The sizes of `op(a) @ op(b)` for operands of shapes `sa` and `sb`, where `op` transposes
/// the last two axes when its flag is set; the CPU and GPU kernels share the checks.
pub(crate) struct MatmulDims {
    /// Matrices in the batch (the product of the leading dimensions).
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

pub(crate) fn matmul_dims(
    sa: &[usize],
    sb: &[usize],
    ta: bool,
    tb: bool,
) -> Result<MatmulDims, KernelError> {
    let r = sa.len();
    if r < 2 || sb.len() != r || sa[..r - 2] != sb[..r - 2] {
        return Err(KernelError::Message(format!(
            "cannot multiply shapes {sa:?} and {sb:?}"
        )));
    }
    let (m, k) = if ta {
        (sa[r - 1], sa[r - 2])
    } else {
        (sa[r - 2], sa[r - 1])
    };
    let (kb, n) = if tb {
        (sb[r - 1], sb[r - 2])
    } else {
        (sb[r - 2], sb[r - 1])
    };
    if k != kb {
        return Err(KernelError::Message(format!(
            "inner dimensions do not match: a is {sa:?} (transpose_a={ta}), b is {sb:?} (transpose_b={tb})"
        )));
    }
    let batch = sa[..r - 2].iter().product();
    Ok(MatmulDims { batch, m, k, n })
}

pub(super) fn matmul_kernel<T: Float>(
    ctx: &mut Context,
    a: &Tensor,
    b: &Tensor,
    ta: bool,
    tb: bool,
) -> Result<Tensor, KernelError> {
    let MatmulDims { batch, m, k, n } = matmul_dims(a.shape(), b.shape(), ta, tb)?;
    let (xs, ys) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
    let mut out = ctx.pool.alloc::<T>(batch * m * n);
    let mut since_check = 0usize;
    for i in 0..batch {
        // Many small products: the step is checked once per block of work as well.
        since_check = since_check.saturating_add(m.saturating_mul(k).saturating_mul(n));
        if since_check >= BLOCK_FLOPS {
            since_check = 0;
            ctx.step.check()?;
        }
        let dst = &mut out[i * m * n..(i + 1) * m * n];
        let lhs = &xs[i * m * k..(i + 1) * m * k];
        let rhs = &ys[i * k * n..(i + 1) * k * n];
        // Each operand as stored, row-major, then seen transposed where asked.
        let lhs = if ta {
            Mat::new(lhs, k, m).t()
        } else {
            Mat::new(lhs, m, k)
        };
        let rhs = if tb {
            Mat::new(rhs, n, k).t()
        } else {
            Mat::new(rhs, k, n)
        };
        gemm_in_blocks(ctx.step, dst, lhs, rhs)?;
    }
    let mut shape = a.shape()[..a.rank() - 2].to_vec();
    shape.extend([m, n]);
    Ok(Tensor::new(&shape, out)?)
}

/// `dst = lhs @ rhs` in blocks of at most about [`BLOCK_FLOPS`] multiply-adds, checking the
/// step between them; a product below one block is a single call. Blocks slice the inner
/// dimension, in multiples of the depth the `gemm` crate packs at a time, so that each call
/// stays as wide as the whole product (slicing rows into small blocks cost large products a
/// tenth to a half of their speed on two cores); only an output too large for that is also
/// sliced into blocks of many rows.
fn gemm_in_blocks<T: Float>(
    step: &StepControl,
    dst: &mut [T],
    lhs: Mat<T>,
    rhs: Mat<T>,
) -> Result<(), KernelError> {
    const DEPTH_STEP: usize = 256;
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    if m.saturating_mul(k).saturating_mul(n) <= BLOCK_FLOPS {
        return gemm_into(dst, lhs, rhs, false);
    }
    let rows = (BLOCK_FLOPS / n.saturating_mul(DEPTH_STEP).max(1)).clamp(1, m.max(1));
    let depth = (BLOCK_FLOPS / rows.saturating_mul(n).max(1))
        .max(1)
        .next_multiple_of(DEPTH_STEP);
    let len = dst.len();
    for top in (0..m).step_by(rows) {
        let count = rows.min(m - top);
        let block = dst.get_mut(top * n..(top + count) * n).ok_or_else(|| {
            KernelError::Message(format!("internal: a {m}x{n} product into {len} elements"))
        })?;
        let a = lhs.rows_from(top, count)?;
        for first in (0..k).step_by(depth) {
            step.check()?;
            let inner = depth.min(k - first);
            let (a, b) = (
                a.t().rows_from(first, inner)?.t(),
                rhs.rows_from(first, inner)?,
            );
            gemm_into(block, a, b, first > 0)?;
        }
    }
    Ok(())
}

/// A matrix view of a slice: `rows x cols` with a column stride and a row stride.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    pub(super) data: &'a [T],
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) cs: usize,
    pub(super) rs: usize,
}

impl<'a, T: 'static> Mat<'a, T> {
    /// A row-major matrix over the first `rows * cols` elements.
    pub(crate) fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            cs: 1,
            rs: cols,
        }
    }

    /// The transpose, over the same elements.
    pub(crate) fn t(self) -> Self {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            cs: self.rs,
            rs: self.cs,
        }
    }

    /// The `count` rows from row `first`, over the same elements.
    fn rows_from(self, first: usize, count: usize) -> Result<Self, KernelError> {
        let data = first
            .checked_mul(self.rs)
            .and_then(|start| self.data.get(start..))
            .filter(|_| first.saturating_add(count) <= self.rows)
            .ok_or_else(|| {
                KernelError::Message(format!(
                    "internal: rows {first}..{} of a {}x{} matrix",
                    first.saturating_add(count),
                    self.rows,
                    self.cols
                ))
            })?;
        Ok(Mat {
            data,
            rows: count,
            ..self
        })
    }

    /// The same view with f32 elements, if `T` is f32.
    fn into_f32(self) -> Option<Mat<'a, f32>> {
        (TypeId::of::<T>() == TypeId::of::<f32>()).then(|| Mat {
            // SAFETY: T is f32 (same TypeId), so the slice's layout is that of [f32].
            data: unsafe {
                std::slice::from_raw_parts(self.data.as_ptr().cast::<f32>(), self.data.len())
            },
            rows: self.rows,
            cols: self.cols,
            cs: self.cs,
            rs: self.rs,
        })
    }

    /// Whether every element the strides address lies inside the slice.
    fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        // Checked: a wrapped offset would pass and send the unsafe product out of bounds.
        let last = (self.rows - 1)
            .checked_mul(self.rs)
            .zip((self.cols - 1).checked_mul(self.cs))
            .and_then(|(r, c)| r.checked_add(c));
        last.is_some_and(|last| last < self.data.len())
    }
}

fn as_f32_mut<T: 'static>(data: &mut [T]) -> Option<&mut [f32]> {
    (TypeId::of::<T>() == TypeId::of::<f32>()).then(|| {
        // SAFETY: T is f32 (same TypeId), so the slice's layout is that of [f32].
        unsafe { std::slice::from_raw_parts_mut(data.as_mut_ptr().cast::<f32>(), data.len()) }
    })
}

/// `dst = lhs @ rhs` (row-major `dst`), or `dst += lhs @ rhs` when `accumulate`.
pub(crate) fn gemm_into<T: Float>(
    dst: &mut [T],
    lhs: Mat<T>,
    rhs: Mat<T>,
    accumulate: bool,
) -> Result<(), KernelError> {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    let fits = m.checked_mul(n).is_some_and(|mn| mn <= dst.len());
    if rhs.rows != k || !fits || !lhs.in_bounds() || !rhs.in_bounds() {
        return Err(KernelError::Message(format!(
            "internal: cannot multiply {m}x{k} by {}x{n} into {} elements",
            rhs.rows,
            dst.len()
        )));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(T::zero());
        }
        return Ok(());
    }
    let parallel = m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MIN_FLOPS;
    if !parallel && n <= narrow::MAX_COLUMNS {
        if let (Some(dst), Some(lhs), Some(rhs)) = (as_f32_mut(dst), lhs.into_f32(), rhs.into_f32())
        {
            if narrow::narrow_matmul(dst, lhs, rhs, accumulate) {
                return Ok(());
            }
        }
    }
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the checks above keep every address the strides reach inside the slices; dst
    // is a distinct mutable slice, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}
