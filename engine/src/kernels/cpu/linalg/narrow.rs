//! Products whose result has few columns (logits: `[batch, 10]`), in f32 on AVX2 + FMA.
//!
//! gemm's microkernel spans 16 result rows by 6 columns and packs both operands; with ten
//! columns it leaves lanes idle and copies more than it multiplies. Here each result row is
//! built in registers instead: one accumulator vector per result column, so one load of the
//! long operand feeds `N` fused multiply-adds. `N` is a const parameter so the accumulators
//! live in registers.

use super::Mat;

/// Widest result (in columns) these kernels handle.
pub(crate) const MAX_COLUMNS: usize = 16;
/// The narrowest vector the kernels use: shorter operands go to gemm.
const LANES: usize = 8;

/// `dst (+)= lhs @ rhs` for f32 when the result has at most [`MAX_COLUMNS`] columns and the
/// CPU has AVX2 and FMA; returns false (doing nothing) otherwise.
pub(crate) fn narrow_matmul(
    dst: &mut [f32],
    lhs: Mat<f32>,
    rhs: Mat<f32>,
    accumulate: bool,
) -> bool {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    if n == 0 || n > MAX_COLUMNS || m < LANES || k < LANES || !cpu_has_avx2_fma() {
        return false;
    }
    if lhs.cs == 1 {
        // Rows of lhs are contiguous: dot each with the columns of rhs, packed as rows.
        let mut bt = vec![0.0f32; n * k];
        for j in 0..n {
            for c in 0..k {
                bt[j * k + c] = rhs.data[c * rhs.rs + j * rhs.cs];
            }
        }
        let a = Strided {
            data: lhs.data,
            stride: lhs.rs,
        };
        dispatch!(n, rows_dot, dst, a, m, k, &bt, accumulate)
    } else if lhs.rs == 1 {
        // Columns of lhs are contiguous (lhs is a transposed row-major matrix): accumulate
        // scaled columns, with rhs packed row-major.
        let mut b = vec![0.0f32; k * n];
        for c in 0..k {
            for j in 0..n {
                b[c * n + j] = rhs.data[c * rhs.rs + j * rhs.cs];
            }
        }
        let a = Strided {
            data: lhs.data,
            stride: lhs.cs,
        };
        dispatch!(n, columns_axpy, dst, a, m, k, &b, accumulate)
    } else {
        false
    }
}

/// A matrix whose rows (or columns) are contiguous runs `stride` apart.
#[derive(Clone, Copy)]
struct Strided<'a> {
    data: &'a [f32],
    stride: usize,
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// AVX-512 doubles the lanes and the registers, so wide accumulators stop spilling.
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_avx2_fma() -> bool {
    // Elsewhere gemm serves all shapes.
    false
}

/// Calls `$kernel::<N>` with `N` = the runtime column count, so each width gets its own
/// fully unrolled code.
macro_rules! dispatch {
    ($n:expr, $kernel:ident, $($arg:expr),*) => {
        match $n {
            1 => $kernel::<1>($($arg),*),
            2 => $kernel::<2>($($arg),*),
            3 => $kernel::<3>($($arg),*),
            4 => $kernel::<4>($($arg),*),
            5 => $kernel::<5>($($arg),*),
            6 => $kernel::<6>($($arg),*),
            7 => $kernel::<7>($($arg),*),
            8 => $kernel::<8>($($arg),*),
            9 => $kernel::<9>($($arg),*),
            10 => $kernel::<10>($($arg),*),
            11 => $kernel::<11>($($arg),*),
            12 => $kernel::<12>($($arg),*),
            13 => $kernel::<13>($($arg),*),
            14 => $kernel::<14>($($arg),*),
            15 => $kernel::<15>($($arg),*),
            _ => $kernel::<16>($($arg),*),
        }
    };
}
use dispatch;

fn store<const N: usize>(dst: &mut [f32], values: &[f32; N], accumulate: bool) {
    for (d, &v) in dst.iter_mut().zip(values) {
        *d = if accumulate { *d + v } else { v };
    }
}

/// The elements `lines` lines of `width`, `stride` apart, reach: checked, since a wrapped
/// count would let the unsafe kernels read past the slice.
fn span(lines: usize, stride: usize, width: usize) -> Option<usize> {
    lines
        .checked_sub(1)?
        .checked_mul(stride)?
        .checked_add(width)
}

/// Whether a slice of `len` elements holds the `need` ones (`None`: an overflowed count).
fn holds(len: usize, need: Option<usize>) -> bool {
    need.is_some_and(|need| need <= len)
}

/// `dst[i, j] (+)= dot(a row i, bt row j)`; `bt` is rhs transposed, `N x k`.
fn rows_dot<const N: usize>(
    dst: &mut [f32],
    a: Strided,
    m: usize,
    k: usize,
    bt: &[f32],
    accumulate: bool,
) -> bool {
    if !holds(a.data.len(), span(m, a.stride, k))
        || !holds(bt.len(), N.checked_mul(k))
        || !holds(dst.len(), m.checked_mul(N))
    {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: narrow_matmul only gets here after checking that the CPU has AVX2 and FMA,
    // and the check above keeps every read inside the slices.
    unsafe {
        if has_avx512() {
            avx512::rows_dot::<N>(dst, a, m, k, bt, accumulate)
        } else {
            avx2::rows_dot::<N>(dst, a, m, k, bt, accumulate)
        }
    }
    cfg!(target_arch = "x86_64")
}

/// `dst[r, j] (+)= sum_c a[c, r] * b[c, j]`: `a` is stored with its columns contiguous
/// (`a.stride` apart per c), `b` is `k x N` row-major.
fn columns_axpy<const N: usize>(
    dst: &mut [f32],
    a: Strided,
    m: usize,
    k: usize,
    b: &[f32],
    accumulate: bool,
) -> bool {
    if !holds(a.data.len(), span(k, a.stride, m))
        || !holds(b.len(), k.checked_mul(N))
        || !holds(dst.len(), m.checked_mul(N))
    {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as for rows_dot.
    unsafe {
        if has_avx512() {
            avx512::columns_axpy::<N>(dst, a, m, k, b, accumulate)
        } else {
            avx2::columns_axpy::<N>(dst, a, m, k, b, accumulate)
        }
    }
    cfg!(target_arch = "x86_64")
}

/// Writes the two kernels for one x86 vector width: `$feature` names the instruction set;
/// the rest are its vector type and intrinsics.
#[cfg(target_arch = "x86_64")]
macro_rules! x86_kernels {
    ($module:ident, $feature:literal, $lanes:literal, $vector:ty, $zero:ident, $load:ident,
     $store:ident, $fmadd:ident, $splat:ident) => {
        mod $module {
            use super::{store, Strided};
            use std::arch::x86_64::*;

            const LANES: usize = $lanes;

            /// See `rows_dot` in the parent module; the caller checked bounds and the CPU.
            #[target_feature(enable = $feature)]
            pub(crate) unsafe fn rows_dot<const N: usize>(
                dst: &mut [f32],
                a: Strided,
                m: usize,
                k: usize,
                bt: &[f32],
                accumulate: bool,
            ) {
                let full = k / LANES * LANES;
                let (a_ptr, b_ptr) = (a.data.as_ptr(), bt.as_ptr());
                for i in 0..m {
                    // SAFETY: offsets stay below (m-1)*stride + k in a and N*k in bt.
                    unsafe {
                        let row = a_ptr.add(i * a.stride);
                        let mut acc: [$vector; N] = [$zero(); N];
                        let mut c = 0;
                        while c < full {
                            let x = $load(row.add(c));
                            for (j, acc_j) in acc.iter_mut().enumerate() {
                                *acc_j = $fmadd(x, $load(b_ptr.add(j * k + c)), *acc_j);
                            }
                            c += LANES;
                        }
                        let mut sums = [0.0f32; N];
                        let mut lanes = [0.0f32; LANES];
                        for (j, s) in sums.iter_mut().enumerate() {
                            $store(lanes.as_mut_ptr(), acc[j]);
                            let tail: f32 =
                                (full..k).map(|c| *row.add(c) * *b_ptr.add(j * k + c)).sum();
                            *s = lanes.iter().sum::<f32>() + tail;
                        }
                        store::<N>(&mut dst[i * N..i * N + N], &sums, accumulate);
                    }
                }
            }

            /// See `columns_axpy` in the parent module; the caller checked bounds and the CPU.
            #[target_feature(enable = $feature)]
            pub(crate) unsafe fn columns_axpy<const N: usize>(
                dst: &mut [f32],
                a: Strided,
                m: usize,
                k: usize,
                b: &[f32],
                accumulate: bool,
            ) {
                let full = m / LANES * LANES;
                let (a_ptr, b_ptr) = (a.data.as_ptr(), b.as_ptr());
                let mut r0 = 0;
                while r0 < full {
                    // SAFETY: offsets stay below (k-1)*stride + m in a and k*N in b.
                    unsafe {
                        let mut acc: [$vector; N] = [$zero(); N];
                        for c in 0..k {
                            let x = $load(a_ptr.add(c * a.stride + r0));
                            for (j, acc_j) in acc.iter_mut().enumerate() {
                                *acc_j = $fmadd(x, $splat(*b_ptr.add(c * N + j)), *acc_j);
                            }
                        }
                        let mut lanes = [[0.0f32; LANES]; N];
                        for (j, lane) in lanes.iter_mut().enumerate() {
                            $store(lane.as_mut_ptr(), acc[j]);
                        }
                        for l in 0..LANES {
                            let row: [f32; N] = std::array::from_fn(|j| lanes[j][l]);
                            let r = r0 + l;
                            store::<N>(&mut dst[r * N..r * N + N], &row, accumulate);
                        }
                    }
                    r0 += LANES;
                }
                for r in full..m {
                    let row: [f32; N] = std::array::from_fn(|j| {
                        (0..k)
                            .map(|c| a.data[c * a.stride + r] * b[c * N + j])
                            .sum()
                    });
                    store::<N>(&mut dst[r * N..r * N + N], &row, accumulate);
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
x86_kernels!(
    avx2,
    "avx2,fma",
    8,
    __m256,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps,
    _mm256_set1_ps
);
#[cfg(target_arch = "x86_64")]
x86_kernels!(
    avx512,
    "avx512f",
    16,
    __m512,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_fmadd_ps,
    _mm512_set1_ps
);
