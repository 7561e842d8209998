//! CPU kernels of [`crate::ops::conv`].

use super::linalg::{gemm_into, Mat};
use super::window::{check_dy, col2im, im2col, Geometry};
use crate::kernels::{Context, CpuKernel, KernelError};
use crate::ops::conv::*;
use crate::ops::window::Padding;
use crate::tensor::{Float, Tensor};

/// Upper bound on the elements of one chunk's patch matrix.
const CHUNK_ELEMENTS: usize = 1 << 21;

/// Geometry and output channels of a convolution; the message names both shapes.
fn conv_geometry(
    x: &[usize],
    filter: &[usize],
    strides: [usize; 2],
    padding: Padding,
) -> Result<(Geometry, usize), KernelError> {
    let &[kh, kw, ci, co] = filter else {
        return Err(KernelError::Message(format!(
            "filter must be rank 4 [height, width, in_channels, out_channels], got shape {filter:?}"
        )));
    };
    let g = Geometry::new(x, [kh, kw], strides, padding)
        .map_err(|e| format!("{e} (input {x:?}, filter {filter:?})"))?;
    if ci != g.c {
        return Err(KernelError::Message(format!(
            "input shape {x:?} has {} channels but filter shape {filter:?} expects {ci}",
            g.c
        )));
    }
    Ok((g, co))
}

/// `conv_geometry` for the gradient ops, which also check that `dy` fits the output.
fn conv_grad_geometry(
    x: &[usize],
    filter: &[usize],
    dy: &Tensor,
    strides: [usize; 2],
    padding: Padding,
) -> Result<(Geometry, usize), KernelError> {
    let (g, co) = conv_geometry(x, filter, strides, padding)?;
    check_dy(dy, &g, co)?;
    Ok((g, co))
}

/// Runs `each(first, count)` over chunks of images, with a patch buffer of the right size.
fn conv_chunks<T: Float>(
    ctx: &mut Context,
    g: &Geometry,
    mut each: impl FnMut(usize, usize, &mut [T]) -> Result<(), KernelError>,
) -> Result<(), KernelError> {
    let per_image = g.pixels().saturating_mul(g.patch());
    let per = (CHUNK_ELEMENTS / per_image.max(1)).clamp(1, g.n.max(1));
    // One image's patches can be far larger than the image (a huge window): the patch
    // matrix is held to the memory budget like any tensor.
    let step = ctx.step;
    step.budget.check(T::DTYPE, &[per, g.pixels(), g.patch()])?;
    let len = per * per_image;
    let mut col = ctx.pool.alloc::<T>(len);
    for first in (0..g.n).step_by(per) {
        step.check()?;
        let count = per.min(g.n - first);
        each(first, count, &mut col[..count * g.pixels() * g.patch()])?;
    }
    let len = col.len();
    ctx.pool.recycle(Tensor::new(&[len], col)?);
    Ok(())
}

fn conv2d_forward<T: Float>(
    ctx: &mut Context,
    x: &Tensor,
    f: &Tensor,
    strides: [usize; 2],
    padding: Padding,
) -> Result<Tensor, KernelError> {
    let (g, co) = conv_geometry(x.shape(), f.shape(), strides, padding)?;
    let (xs, fs) = (x.as_slice::<T>()?, f.as_slice::<T>()?);
    let (kk, pix) = (g.patch(), g.pixels());
    let wmat = Mat::new(fs, kk, co);
    let mut out = ctx.pool.alloc::<T>(g.n * pix * co);
    if g.pointwise() {
        gemm_into(&mut out, Mat::new(xs, g.n * pix, kk), wmat, false)?;
    } else {
        conv_chunks::<T>(ctx, &g, |first, count, col| {
            im2col(&g, xs, first, count, col);
            let dst = &mut out[first * pix * co..(first + count) * pix * co];
            gemm_into(dst, Mat::new(col, count * pix, kk), wmat, false)
        })?;
    }
    Ok(Tensor::new(&g.out_shape(co), out)?)
}

fn conv2d_filter_grad<T: Float>(
    ctx: &mut Context,
    x: &Tensor,
    filter_shape: &[usize],
    dy: &Tensor,
    strides: [usize; 2],
    padding: Padding,
) -> Result<Tensor, KernelError> {
    let (g, co) = conv_grad_geometry(x.shape(), filter_shape, dy, strides, padding)?;
    let (xs, dys) = (x.as_slice::<T>()?, dy.as_slice::<T>()?);
    let (kk, pix) = (g.patch(), g.pixels());
    let mut df = ctx.pool.zeros::<T>(kk * co);
    if g.pointwise() {
        let rows = g.n * pix;
        gemm_into(
            &mut df,
            Mat::new(xs, rows, kk).t(),
            Mat::new(dys, rows, co),
            false,
        )?;
    } else {
        conv_chunks::<T>(ctx, &g, |first, count, col| {
            im2col(&g, xs, first, count, col);
            let rows = count * pix;
            let d = &dys[first * pix * co..(first + count) * pix * co];
            gemm_into(
                &mut df,
                Mat::new(col, rows, kk).t(),
                Mat::new(d, rows, co),
                first > 0,
            )
        })?;
    }
    Ok(Tensor::new(filter_shape, df)?)
}

fn conv2d_input_grad<T: Float>(
    ctx: &mut Context,
    x_shape: &[usize],
    f: &Tensor,
    dy: &Tensor,
    strides: [usize; 2],
    padding: Padding,
) -> Result<Tensor, KernelError> {
    let (g, co) = conv_grad_geometry(x_shape, f.shape(), dy, strides, padding)?;
    let (fs, dys) = (f.as_slice::<T>()?, dy.as_slice::<T>()?);
    let (kk, pix) = (g.patch(), g.pixels());
    let wt = Mat::new(fs, kk, co).t();
    let mut dx = ctx.pool.zeros::<T>(x_shape.iter().product());
    if g.pointwise() {
        gemm_into(&mut dx, Mat::new(dys, g.n * pix, co), wt, false)?;
    } else {
        conv_chunks::<T>(ctx, &g, |first, count, col| {
            let d = &dys[first * pix * co..(first + count) * pix * co];
            gemm_into(col, Mat::new(d, count * pix, co), wt, false)?;
            col2im(&g, col, first, count, &mut dx);
            Ok(())
        })?;
    }
    Ok(Tensor::new(x_shape, dx)?)
}

/// The kernel of a convolution's gradient ops, on inputs `(input, filter, dy)`.
fn compute_conv_grad(
    ctx: &mut Context,
    inputs: &[&Tensor],
    strides: [usize; 2],
    padding: Padding,
    wrt: Wrt,
) -> Result<Vec<Tensor>, KernelError> {
    let (x, f, dy) = (inputs[0], inputs[1], inputs[2]);
    let out = match wrt {
        Wrt::Input => {
            float_kernel!(f.dtype(), T => conv2d_input_grad::<T>(ctx, x.shape(), f, dy, strides, padding))
        }
        Wrt::Filter => {
            float_kernel!(x.dtype(), T => conv2d_filter_grad::<T>(ctx, x, f.shape(), dy, strides, padding))
        }
    }?;
    Ok(vec![out])
}

impl CpuKernel for Conv2D {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (x, f) = (inputs[0], inputs[1]);
        let out = float_kernel!(x.dtype(), T => conv2d_forward::<T>(ctx, x, f, self.strides, self.padding))?;
        Ok(vec![out])
    }
}

impl CpuKernel for Conv2DBackpropInput {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        compute_conv_grad(ctx, inputs, self.strides, self.padding, Wrt::Input)
    }
}

impl CpuKernel for Conv2DBackpropFilter {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        compute_conv_grad(ctx, inputs, self.strides, self.padding, Wrt::Filter)
    }
}
