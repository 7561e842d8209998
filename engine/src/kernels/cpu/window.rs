//! CPU kernels of [`crate::ops::window`].

use crate::kernels::KernelError;
use crate::ops::window::*;
use crate::tensor::{Float, Tensor};

/// Sizes of one windowed pass over a batch of NHWC images.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub(crate) n: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) c: usize,
    pub(crate) kh: usize,
    pub(crate) kw: usize,
    pub(crate) sh: usize,
    pub(crate) sw: usize,
    pub(crate) oh: usize,
    pub(crate) ow: usize,
    pub(crate) ph: usize,
    pub(crate) pw: usize,
}

impl Geometry {
    pub(crate) fn new(
        x: &[usize],
        window: [usize; 2],
        strides: [usize; 2],
        padding: Padding,
    ) -> Result<Geometry, String> {
        let &[n, h, w, c] = x else {
            return Err(format!(
                "input must be rank 4 [batch, height, width, channels], got shape {x:?}"
            ));
        };
        check_window(window, strides, "window")?;
        let [kh, kw] = window;
        let [sh, sw] = strides;
        let too_big =
            || format!("a {kh}x{kw} window does not fit in a {h}x{w} image with VALID padding");
        let (oh, ph) = window_dim(h, kh, sh, padding).ok_or_else(too_big)?;
        let (ow, pw) = window_dim(w, kw, sw, padding).ok_or_else(too_big)?;
        Ok(Geometry {
            n,
            h,
            w,
            c,
            kh,
            kw,
            sh,
            sw,
            oh,
            ow,
            ph,
            pw,
        })
    }

    pub(crate) fn out_shape(&self, channels: usize) -> [usize; 4] {
        [self.n, self.oh, self.ow, channels]
    }

    /// Elements of one patch row.
    pub(crate) fn patch(&self) -> usize {
        self.kh * self.kw * self.c
    }

    /// Output pixels per image.
    pub(crate) fn pixels(&self) -> usize {
        self.oh * self.ow
    }

    /// A 1x1 window with stride 1: the image itself is the patch matrix.
    pub(crate) fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1
    }

    /// For the windows of output column `ox`: the range `lo..hi` of window columns `j` that
    /// fall inside the image, and `ix0`, where `ix0 + j` is the input column of `j`.
    pub(crate) fn columns(&self, ox: usize) -> (usize, usize, isize) {
        let ix0 = (ox * self.sw) as isize - self.pw as isize;
        let lo = (-ix0).clamp(0, self.kw as isize) as usize;
        let hi = (self.w as isize - ix0).clamp(lo as isize, self.kw as isize) as usize;
        (lo, hi, ix0)
    }

    /// For the windows of output row `oy`: the range `lo..hi` of window rows `i` that fall
    /// inside the image, and `iy0`, where `iy0 + i` is the input row of `i`. A window far
    /// larger than its image costs only the rows it covers.
    pub(crate) fn rows(&self, oy: usize) -> (usize, usize, isize) {
        let iy0 = (oy * self.sh) as isize - self.ph as isize;
        let lo = (-iy0).clamp(0, self.kh as isize) as usize;
        let hi = (self.h as isize - iy0).clamp(lo as isize, self.kh as isize) as usize;
        (lo, hi, iy0)
    }

    /// The input row under window row `i` of output row `oy`, if inside the image.
    pub(crate) fn row(&self, oy: usize, i: usize) -> Option<usize> {
        let iy = (oy * self.sh + i) as isize - self.ph as isize;
        (0..self.h as isize).contains(&iy).then_some(iy as usize)
    }
}

/// Writes the patches of images `first..first + count` as rows of `col`.
pub(crate) fn im2col<T: Float>(g: &Geometry, xs: &[T], first: usize, count: usize, col: &mut [T]) {
    if g.patch() == 0 {
        return;
    }
    let (c, line) = (g.c, g.kw * g.c);
    let image = g.h * g.w * c;
    let mut rows = col.chunks_exact_mut(g.patch());
    for b in first..first + count {
        let img = &xs[b * image..(b + 1) * image];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let Some(dst) = rows.next() else { return };
                let (lo, hi, ix0) = g.columns(ox);
                for (i, part) in dst.chunks_exact_mut(line).enumerate() {
                    match g.row(oy, i) {
                        Some(iy) if lo < hi => {
                            part[..lo * c].fill(T::zero());
                            let start = (iy * g.w) as isize + ix0 + lo as isize;
                            let start = start as usize * c;
                            part[lo * c..hi * c]
                                .copy_from_slice(&img[start..start + (hi - lo) * c]);
                            part[hi * c..].fill(T::zero());
                        }
                        _ => part.fill(T::zero()),
                    }
                }
            }
        }
    }
}

/// Adds the rows of `col` (patches of images `first..first + count`) back onto `dx`.
pub(crate) fn col2im<T: Float>(g: &Geometry, col: &[T], first: usize, count: usize, dx: &mut [T]) {
    if g.patch() == 0 {
        return;
    }
    let (c, line) = (g.c, g.kw * g.c);
    let image = g.h * g.w * c;
    let mut rows = col.chunks_exact(g.patch());
    for b in first..first + count {
        let img = &mut dx[b * image..(b + 1) * image];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let Some(src) = rows.next() else { return };
                let (lo, hi, ix0) = g.columns(ox);
                if lo >= hi {
                    continue;
                }
                for (i, part) in src.chunks_exact(line).enumerate() {
                    if let Some(iy) = g.row(oy, i) {
                        let start = ((iy * g.w) as isize + ix0 + lo as isize) as usize * c;
                        let dst = &mut img[start..start + (hi - lo) * c];
                        for (d, &s) in dst.iter_mut().zip(&part[lo * c..hi * c]) {
                            *d = *d + s;
                        }
                    }
                }
            }
        }
    }
}

/// Checks that `dy` has the shape of the pass's output with `channels` channels.
pub(crate) fn check_dy(dy: &Tensor, g: &Geometry, channels: usize) -> Result<(), KernelError> {
    let want = g.out_shape(channels);
    if dy.shape() != want {
        return Err(KernelError::Message(format!(
            "dy has shape {:?}, but the output has shape {want:?}",
            dy.shape()
        )));
    }
    Ok(())
}
