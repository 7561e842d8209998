//! GPU kernels of [`crate::ops::conv`], lowered to matrix products as on the CPU: the
//! patches under the filter become rows (im2col, a map that loads each window element, zero
//! in the padding), multiplied by the filter as a `[kh*kw*cin, cout]` matrix. The filter's
//! gradient is `patches^T @ dy`; the input's is `dy @ filter^T` added back onto the image
//! (col2im: a map over image pixels summing the windows that cover each).

use super::all_f32;
use super::array::reshaped;
use super::elementwise::map_views;
use super::expr::Expr;
use super::index::{add, coords, int, linear, load_or, mul};
use super::matmul::matmul;
use super::program::View;
use super::window::{covering, element};
use crate::devices::gpu::GpuDevice;
use crate::devices::DeviceTensor;
use crate::graph::TypeShape;
use crate::kernels::cpu::window::Geometry;
use crate::kernels::{GpuContext, GpuKernel, KernelError};
use crate::ops::conv::{Conv2D, Conv2DBackpropFilter, Conv2DBackpropInput};
use crate::ops::window::Padding;
use crate::ops::MatMul;

/// The geometry of `x` under filter `f`, checking that they fit together.
fn geometry(
    x: &[usize],
    f: &[usize],
    strides: [usize; 2],
    padding: Padding,
) -> Result<Geometry, KernelError> {
    let &[kh, kw, cin, _] = f else {
        return Err(KernelError::Message(format!(
            "filter must be rank 4 [height, width, in_channels, out_channels], got shape {f:?}"
        )));
    };
    let g = Geometry::new(x, [kh, kw], strides, padding)?;
    if g.c != cin {
        return Err(KernelError::Message(format!(
            "input {x:?} has {} channels but filter {f:?} expects {cin}",
            g.c
        )));
    }
    Ok(g)
}

/// The patch matrix `[n*oh*ow, kh*kw*c]` of image `x`.
fn patches(gpu: &GpuDevice, g: &Geometry, x: &DeviceTensor) -> Result<DeviceTensor, KernelError> {
    // Coordinates of the 6-D patch tensor [n, oh, ow, kh, kw, c].
    let c = coords(6);
    let (at, valid) = element(
        g,
        c[0].clone(),
        c[1].clone(),
        c[2].clone(),
        c[3].clone(),
        c[4].clone(),
        c[5].clone(),
    );
    let expr = load_or(0, at, valid, Expr::f32(0.0));
    let shape = [g.n, g.oh, g.ow, g.kh, g.kw, g.c];
    let cols = map_views(gpu, &expr, &[(x, View::unread(6))], &shape)?;
    reshaped(&cols, vec![g.n * g.oh * g.ow, g.patch()])
}

fn product(
    gpu: &GpuDevice,
    a: &DeviceTensor,
    b: &DeviceTensor,
    transpose_a: bool,
    transpose_b: bool,
) -> Result<DeviceTensor, KernelError> {
    let op = MatMul {
        transpose_a,
        transpose_b,
    };
    matmul(gpu, &op, a, b).unwrap_or_else(|| {
        Err(KernelError::Message(
            "no GPU matrix product of these".into(),
        ))
    })
}

impl GpuKernel for Conv2D {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        all_f32(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let (x, f) = (inputs[0], inputs[1]);
        let g = geometry(&x.shape, &f.shape, self.strides, self.padding)?;
        let cout = f.shape[3];
        let cols = patches(gpu, &g, x)?;
        let filter = reshaped(f, vec![g.patch(), cout])?;
        let out = product(gpu, &cols, &filter, false, false)?;
        gpu.recycle(cols);
        Ok(vec![reshaped(&out, g.out_shape(cout).to_vec())?])
    }
}

/// `dy` as a `[n*oh*ow, cout]` matrix, checked against the geometry.
fn dy_matrix(g: &Geometry, dy: &DeviceTensor, cout: usize) -> Result<DeviceTensor, KernelError> {
    if dy.shape != g.out_shape(cout) {
        return Err(KernelError::Message(format!(
            "dy has shape {:?}, but the convolution gives {:?}",
            dy.shape,
            g.out_shape(cout)
        )));
    }
    reshaped(dy, vec![g.n * g.oh * g.ow, cout])
}

impl GpuKernel for Conv2DBackpropFilter {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        all_f32(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let (x, f, dy) = (inputs[0], inputs[1], inputs[2]);
        let g = geometry(&x.shape, &f.shape, self.strides, self.padding)?;
        let dy = dy_matrix(&g, dy, f.shape[3])?;
        let cols = patches(gpu, &g, x)?;
        let df = product(gpu, &cols, &dy, true, false)?;
        gpu.recycle(cols);
        Ok(vec![reshaped(&df, f.shape.clone())?])
    }
}

impl GpuKernel for Conv2DBackpropInput {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        all_f32(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let (x, f, dy) = (inputs[0], inputs[1], inputs[2]);
        let g = geometry(&x.shape, &f.shape, self.strides, self.padding)?;
        let cout = f.shape[3];
        let dy = dy_matrix(&g, dy, cout)?;
        let filter = reshaped(f, vec![g.patch(), cout])?;
        // Row r of dcols is the gradient of patch row r: [n*oh*ow, kh*kw*c].
        let dcols = product(gpu, &dy, &filter, false, true)?;
        // col2im: each image pixel sums its element of every window that covers it.
        let c = coords(4);
        let mut sum = Expr::f32(0.0);
        for i in 0..g.kh {
            for j in 0..g.kw {
                let (oy, ox, valid) = covering(&g, c[1].clone(), c[2].clone(), i, j);
                let row = linear(&[c[0].clone(), oy, ox], &[g.oh * g.ow, g.ow, 1]);
                let column = add(int((i * g.kw + j) * g.c), c[3].clone());
                let at = add(mul(row, int(g.patch())), column);
                let term = load_or(0, at, valid, Expr::f32(0.0));
                sum = Expr::binary(super::expr::BinaryOp::Add, sum, term);
            }
        }
        let dx = map_views(gpu, &sum, &[(&dcols, View::unread(4))], &x.shape)?;
        gpu.recycle(dcols);
        Ok(vec![dx])
    }
}
