//! Convolution and pooling over NHWC images.
//!
//! `conv2d` lowers to matrix products: the patches under the filter are laid out as rows
//! (im2col) and multiplied by the filter seen as a `[kh*kw*cin, cout]` matrix on the `gemm`
//! crate. The filter's gradient is `patches^T @ dy`; the input's is `dy @ filter^T`, whose
//! rows are added back onto the image (col2im). Images are processed in chunks so that the
//! patch matrix stays a few megabytes whatever the batch.

use super::{
    build, expect_float, expect_inputs, Context, GradContext, GradientError, KernelError, Op,
};
use crate::graph::{Output, Shape, TypeShape};
use crate::tensor::{Float, Tensor};

/// How a window treats the image border (TensorFlow's meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Pad with zeros (ignored values for pooling) so that `out = ceil(in / stride)`; the
    /// extra row or column, if the total is odd, goes after.
    Same,
    /// No padding: windows lie wholly inside the image, `out = ceil((in - k + 1) / stride)`.
    Valid,
}

/// Products smaller than this many multiply-adds run on one thread.
const PARALLEL_MIN_FLOPS: usize = 4 << 20;

/// Upper bound on the elements of one chunk's patch matrix.
const CHUNK_ELEMENTS: usize = 1 << 21;

/// Output size and padding before the first element along one spatial axis; `None` when a
/// VALID window does not fit.
fn window_dim(input: usize, k: usize, stride: usize, padding: Padding) -> Option<(usize, usize)> {
    match padding {
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = (out.saturating_sub(1) * stride + k).saturating_sub(input);
            Some((out, total / 2))
        }
        Padding::Valid => (input >= k).then(|| ((input - k) / stride + 1, 0)),
    }
}

fn check_window(window: [usize; 2], strides: [usize; 2], what: &str) -> Result<(), String> {
    if window.contains(&0) || strides.contains(&0) {
        return Err(format!(
            "{what} {window:?} and strides {strides:?} must all be positive"
        ));
    }
    Ok(())
}

/// Inferred output size along one spatial axis (unknown if the input or window is).
fn infer_dim(
    input: Option<usize>,
    k: Option<usize>,
    stride: usize,
    padding: Padding,
    describe: impl Fn() -> String,
) -> Result<Option<usize>, String> {
    match (input, k) {
        (Some(i), Some(k)) => window_dim(i, k, stride, padding)
            .map(|(o, _)| Some(o))
            .ok_or_else(|| format!("{} with VALID padding", describe())),
        (Some(i), None) if padding == Padding::Same => Ok(Some(i.div_ceil(stride))),
        _ => Ok(None),
    }
}

/// Sizes of one windowed pass over a batch of NHWC images.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    oh: usize,
    ow: usize,
    ph: usize,
    pw: usize,
}

impl Geometry {
    fn new(
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

    fn out_shape(&self, channels: usize) -> [usize; 4] {
        [self.n, self.oh, self.ow, channels]
    }

    /// Elements of one patch row.
    fn patch(&self) -> usize {
        self.kh * self.kw * self.c
    }

    /// Output pixels per image.
    fn pixels(&self) -> usize {
        self.oh * self.ow
    }

    /// A 1x1 window with stride 1: the image itself is the patch matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1
    }

    fn images_per_chunk(&self) -> usize {
        let per_image = self.pixels() * self.patch();
        (CHUNK_ELEMENTS / per_image.max(1)).clamp(1, self.n.max(1))
    }

    /// For the windows of output column `ox`: the range `lo..hi` of window columns `j` that
    /// fall inside the image, and `ix0`, where `ix0 + j` is the input column of `j`.
    fn columns(&self, ox: usize) -> (usize, usize, isize) {
        let ix0 = (ox * self.sw) as isize - self.pw as isize;
        let lo = (-ix0).clamp(0, self.kw as isize) as usize;
        let hi = (self.w as isize - ix0).clamp(lo as isize, self.kw as isize) as usize;
        (lo, hi, ix0)
    }

    /// The input row under window row `i` of output row `oy`, if inside the image.
    fn row(&self, oy: usize, i: usize) -> Option<usize> {
        let iy = (oy * self.sh + i) as isize - self.ph as isize;
        (0..self.h as isize).contains(&iy).then_some(iy as usize)
    }
}

/// Writes the patches of images `first..first + count` as rows of `col`.
fn im2col<T: Float>(g: &Geometry, xs: &[T], first: usize, count: usize, col: &mut [T]) {
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
fn col2im<T: Float>(g: &Geometry, col: &[T], first: usize, count: usize, dx: &mut [T]) {
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

/// A matrix view of a slice: `rows x cols` with a column stride and a row stride.
#[derive(Clone, Copy)]
struct Mat<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    cs: usize,
    rs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// A row-major matrix over the first `rows * cols` elements.
    fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            cs: 1,
            rs: cols,
        }
    }

    fn t(self) -> Self {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            cs: self.rs,
            rs: self.cs,
        }
    }

    /// Whether every element the strides address lies inside the slice.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `dst = lhs @ rhs` (row-major `dst`), or `dst += lhs @ rhs` when `accumulate`.
fn gemm_into<T: Float>(
    dst: &mut [T],
    lhs: Mat<T>,
    rhs: Mat<T>,
    accumulate: bool,
) -> Result<(), KernelError> {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    if rhs.rows != k || dst.len() < m * n || !lhs.in_bounds() || !rhs.in_bounds() {
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
    let parallelism = if m * n * k >= PARALLEL_MIN_FLOPS {
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

fn check_dy(dy: &Tensor, g: &Geometry, channels: usize) -> Result<(), KernelError> {
    let want = g.out_shape(channels);
    if dy.shape() != want {
        return Err(KernelError::Message(format!(
            "dy has shape {:?}, but the output has shape {want:?}",
            dy.shape()
        )));
    }
    Ok(())
}

/// Runs `each(first, count)` over chunks of images, with a patch buffer of the right size.
fn conv_chunks<T: Float>(
    ctx: &mut Context,
    g: &Geometry,
    mut each: impl FnMut(usize, usize, &mut [T]) -> Result<(), KernelError>,
) -> Result<(), KernelError> {
    let per = g.images_per_chunk();
    let mut col = ctx.pool.alloc::<T>(per * g.pixels() * g.patch());
    for first in (0..g.n).step_by(per) {
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
    let (g, co) = conv_geometry(x.shape(), filter_shape, strides, padding)?;
    check_dy(dy, &g, co)?;
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
    let (g, co) = conv_geometry(x_shape, f.shape(), strides, padding)?;
    check_dy(dy, &g, co)?;
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

/// Checks the dtypes and ranks shared by the convolution ops; the text names the shapes.
fn infer_conv(
    x: &TypeShape,
    f: &TypeShape,
    strides: [usize; 2],
    padding: Padding,
) -> Result<TypeShape, String> {
    expect_float(x, "input")?;
    if x.dtype != f.dtype {
        return Err(format!(
            "input and filter have different dtypes: input is {x}, filter is {f}"
        ));
    }
    if x.shape.rank() != 4 {
        return Err(format!(
            "input must be rank 4 [batch, height, width, channels], got {x}"
        ));
    }
    if f.shape.rank() != 4 {
        return Err(format!(
            "filter must be rank 4 [height, width, in_channels, out_channels], got {f}"
        ));
    }
    if strides.contains(&0) {
        return Err(format!("strides {strides:?} must be positive"));
    }
    let (xd, fd) = (x.shape.dims(), f.shape.dims());
    if let (Some(c), Some(fc)) = (xd[3], fd[2]) {
        if c != fc {
            return Err(format!(
                "input {x} has {c} channels but filter {f} expects {fc} (filter is [height, width, in_channels, out_channels])"
            ));
        }
    }
    if fd[..2].contains(&Some(0)) {
        return Err(format!("filter {f} has an empty window"));
    }
    let too_big = || format!("filter {f} does not fit in input {x}");
    let oh = infer_dim(xd[1], fd[0], strides[0], padding, too_big)?;
    let ow = infer_dim(xd[2], fd[1], strides[1], padding, too_big)?;
    Ok(TypeShape::new(x.dtype, Shape(vec![xd[0], oh, ow, fd[3]])))
}

/// 2-D convolution of NHWC `input` with a `[kh, kw, cin, cout]` filter (no flip, like
/// TensorFlow's `conv2d`).
#[derive(Debug, Clone)]
pub struct Conv2D {
    pub strides: [usize; 2],
    pub padding: Padding,
}

impl Op for Conv2D {
    fn type_name(&self) -> &'static str {
        "Conv2D"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        Ok(vec![infer_conv(
            &inputs[0],
            &inputs[1],
            self.strides,
            self.padding,
        )?])
    }

    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (x, f) = (inputs[0], inputs[1]);
        let out = float_kernel!(x.dtype(), T => conv2d_forward::<T>(ctx, x, f, self.strides, self.padding))?;
        Ok(vec![out])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let (x, f, dy) = (g.x(0), g.x(1), g.dy());
        Ok(vec![
            Some(conv2d_backprop_input(x, f, dy, self.strides, self.padding)),
            Some(conv2d_backprop_filter(x, f, dy, self.strides, self.padding)),
        ])
    }
}

/// 2-D convolution of NHWC `input` with a `[kh, kw, in_channels, out_channels]` filter.
pub fn conv2d(input: Output, filter: Output, strides: [usize; 2], padding: Padding) -> Output {
    build(Conv2D { strides, padding }, &[input, filter])
}

/// Checks the inputs `(input, filter, dy)` of a convolution's gradient ops.
fn infer_conv_grad(
    inputs: &[TypeShape],
    strides: [usize; 2],
    padding: Padding,
) -> Result<(), String> {
    expect_inputs(inputs, 3)?;
    let (x, f, dy) = (&inputs[0], &inputs[1], &inputs[2]);
    let out = infer_conv(x, f, strides, padding)?;
    if dy.dtype != out.dtype || !super::indexing::compatible(&dy.shape, &out.shape) {
        return Err(format!(
            "dy is {dy}, but the convolution of {x} by {f} gives {out}"
        ));
    }
    Ok(())
}

/// The gradient of `conv2d` with respect to its input; inputs `(input, filter, dy)`, where
/// `input` only lends its shape.
#[derive(Debug, Clone)]
pub struct Conv2DBackpropInput {
    pub strides: [usize; 2],
    pub padding: Padding,
}

impl Op for Conv2DBackpropInput {
    fn type_name(&self) -> &'static str {
        "Conv2DBackpropInput"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        infer_conv_grad(inputs, self.strides, self.padding)?;
        Ok(vec![inputs[0].clone()])
    }

    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (x, f, dy) = (inputs[0], inputs[1], inputs[2]);
        let out = float_kernel!(f.dtype(), T => conv2d_input_grad::<T>(ctx, x.shape(), f, dy, self.strides, self.padding))?;
        Ok(vec![out])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        // Linear in (filter, dy): dx = J(filter)^T dy.
        let (f, dy, ddx) = (g.x(1), g.x(2), g.dy());
        let (s, p) = (self.strides, self.padding);
        Ok(vec![
            None,
            Some(conv2d_backprop_filter(ddx, f, dy, s, p)),
            Some(conv2d(ddx, f, s, p)),
        ])
    }
}

/// The gradient of `conv2d(input, filter)` with respect to `input`, given `dy`.
pub fn conv2d_backprop_input(
    input: Output,
    filter: Output,
    dy: Output,
    strides: [usize; 2],
    padding: Padding,
) -> Output {
    build(
        Conv2DBackpropInput { strides, padding },
        &[input, filter, dy],
    )
}

/// The gradient of `conv2d` with respect to its filter; inputs `(input, filter, dy)`, where
/// `filter` only lends its shape.
#[derive(Debug, Clone)]
pub struct Conv2DBackpropFilter {
    pub strides: [usize; 2],
    pub padding: Padding,
}

impl Op for Conv2DBackpropFilter {
    fn type_name(&self) -> &'static str {
        "Conv2DBackpropFilter"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        infer_conv_grad(inputs, self.strides, self.padding)?;
        Ok(vec![inputs[1].clone()])
    }

    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (x, f, dy) = (inputs[0], inputs[1], inputs[2]);
        let out = float_kernel!(x.dtype(), T => conv2d_filter_grad::<T>(ctx, x, f.shape(), dy, self.strides, self.padding))?;
        Ok(vec![out])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        // Linear in (input, dy): df = patches(input)^T dy.
        let (x, dy, ddf) = (g.x(0), g.x(2), g.dy());
        let (s, p) = (self.strides, self.padding);
        Ok(vec![
            Some(conv2d_backprop_input(x, ddf, dy, s, p)),
            None,
            Some(conv2d(x, ddf, s, p)),
        ])
    }
}

/// The gradient of `conv2d(input, filter)` with respect to `filter`, given `dy`.
pub fn conv2d_backprop_filter(
    input: Output,
    filter: Output,
    dy: Output,
    strides: [usize; 2],
    padding: Padding,
) -> Output {
    build(
        Conv2DBackpropFilter { strides, padding },
        &[input, filter, dy],
    )
}

/// Window settings shared by the max-pool ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolWindow {
    pub ksize: [usize; 2],
    pub strides: [usize; 2],
    pub padding: Padding,
}

impl PoolWindow {
    fn infer(&self, x: &TypeShape) -> Result<TypeShape, String> {
        expect_float(x, "input")?;
        if x.shape.rank() != 4 {
            return Err(format!(
                "input must be rank 4 [batch, height, width, channels], got {x}"
            ));
        }
        check_window(self.ksize, self.strides, "ksize")?;
        let d = x.shape.dims();
        let [kh, kw] = self.ksize;
        let too_big = || format!("a {kh}x{kw} window does not fit in input {x}");
        let oh = infer_dim(d[1], Some(kh), self.strides[0], self.padding, too_big)?;
        let ow = infer_dim(d[2], Some(kw), self.strides[1], self.padding, too_big)?;
        Ok(TypeShape::new(x.dtype, Shape(vec![d[0], oh, ow, d[3]])))
    }

    fn geometry(&self, x: &[usize]) -> Result<Geometry, KernelError> {
        Ok(Geometry::new(x, self.ksize, self.strides, self.padding)?)
    }

    /// Calls `visit(output index, input index of the window's maximum)` for every output
    /// element; ties go to the first element in row-major window order.
    fn argmax<T: Float>(&self, g: &Geometry, xs: &[T], mut visit: impl FnMut(usize, usize)) {
        let c = g.c;
        let mut best = vec![0usize; c];
        let mut out = 0;
        for b in 0..g.n {
            let image = b * g.h * g.w * c;
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let (lo, hi, ix0) = g.columns(ox);
                    let mut first = true;
                    for i in 0..g.kh {
                        let Some(iy) = g.row(oy, i) else { continue };
                        for j in lo..hi {
                            let base = image + (iy * g.w + (ix0 + j as isize) as usize) * c;
                            if first {
                                best.iter_mut().enumerate().for_each(|(k, v)| *v = base + k);
                                first = false;
                                continue;
                            }
                            for (k, v) in best.iter_mut().enumerate() {
                                if xs[base + k] > xs[*v] {
                                    *v = base + k;
                                }
                            }
                        }
                    }
                    // Every SAME or VALID window holds at least one pixel of the image.
                    if !first {
                        for (k, &v) in best.iter().enumerate() {
                            visit(out + k, v);
                        }
                    }
                    out += c;
                }
            }
        }
    }
}

/// Largest value in each window of NHWC images, per channel.
#[derive(Debug, Clone)]
pub struct MaxPool(pub PoolWindow);

impl Op for MaxPool {
    fn type_name(&self) -> &'static str {
        "MaxPool"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        Ok(vec![self.0.infer(&inputs[0])?])
    }

    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let g = self.0.geometry(x.shape())?;
        let out = float_kernel!(x.dtype(), T => {
            let xs = x.as_slice::<T>()?;
            let mut out = ctx.pool.zeros::<T>(g.n * g.pixels() * g.c);
            self.0.argmax(&g, xs, |o, i| out[o] = xs[i]);
            Tensor::new(&g.out_shape(g.c), out).map_err(KernelError::from)
        })?;
        Ok(vec![out])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![Some(build(MaxPoolGrad(self.0), &[g.x(0), g.dy()]))])
    }
}

/// Max pooling of NHWC `input` over `ksize` windows moved by `strides`.
pub fn max_pool(input: Output, ksize: [usize; 2], strides: [usize; 2], padding: Padding) -> Output {
    let window = PoolWindow {
        ksize,
        strides,
        padding,
    };
    build(MaxPool(window), &[input])
}

/// Checks `(input, second)` where `second` must have `want(input)`'s shape.
fn infer_pool_pair(
    inputs: &[TypeShape],
    want: TypeShape,
    what: &str,
) -> Result<Vec<TypeShape>, String> {
    let (x, other) = (&inputs[0], &inputs[1]);
    if other.dtype != want.dtype || !super::indexing::compatible(&other.shape, &want.shape) {
        return Err(format!(
            "{what} is {other}, but must be {want} for input {x}"
        ));
    }
    Ok(vec![other.clone()])
}

/// Max pooling's gradient: inputs `(input, dy)`; each `dy` element goes to its window's
/// maximum in `input` (the first one on ties).
#[derive(Debug, Clone)]
pub struct MaxPoolGrad(pub PoolWindow);

impl Op for MaxPoolGrad {
    fn type_name(&self) -> &'static str {
        "MaxPoolGrad"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        let out = self.0.infer(&inputs[0])?;
        infer_pool_pair(inputs, out, "dy")?;
        Ok(vec![inputs[0].clone()])
    }

    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (x, dy) = (inputs[0], inputs[1]);
        let g = self.0.geometry(x.shape())?;
        check_dy(dy, &g, g.c)?;
        let out = float_kernel!(x.dtype(), T => {
            let (xs, ds) = (x.as_slice::<T>()?, dy.as_slice::<T>()?);
            let mut dx = ctx.pool.zeros::<T>(x.len());
            self.0.argmax(&g, xs, |o, i| dx[i] += ds[o]);
            Tensor::new(x.shape(), dx).map_err(KernelError::from)
        })?;
        Ok(vec![out])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let ddy = build(MaxPoolGradGrad(self.0), &[g.x(0), g.dy()]);
        Ok(vec![None, Some(ddy)])
    }
}

/// The gradient of `MaxPoolGrad` with respect to its `dy`: inputs `(input, d)` where `d` is
/// shaped like `input`; picks `d` at each window's maximum of `input`.
#[derive(Debug, Clone)]
pub struct MaxPoolGradGrad(pub PoolWindow);

impl Op for MaxPoolGradGrad {
    fn type_name(&self) -> &'static str {
        "MaxPoolGradGrad"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        let out = self.0.infer(&inputs[0])?;
        infer_pool_pair(inputs, inputs[0].clone(), "the gradient")?;
        Ok(vec![out])
    }

    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (x, d) = (inputs[0], inputs[1]);
        let g = self.0.geometry(x.shape())?;
        if d.shape() != x.shape() {
            return Err(KernelError::Message(format!(
                "the gradient has shape {:?}, input has shape {:?}",
                d.shape(),
                x.shape()
            )));
        }
        let out = float_kernel!(x.dtype(), T => {
            let (xs, ds) = (x.as_slice::<T>()?, d.as_slice::<T>()?);
            let mut out = ctx.pool.zeros::<T>(g.n * g.pixels() * g.c);
            self.0.argmax(&g, xs, |o, i| out[o] = ds[i]);
            Tensor::new(&g.out_shape(g.c), out).map_err(KernelError::from)
        })?;
        Ok(vec![out])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![
            None,
            Some(build(MaxPoolGrad(self.0), &[g.x(0), g.dy()])),
        ])
    }
}
