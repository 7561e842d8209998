//! GPU kernels of [`crate::ops::pool`]: the maximum of each window (padding never wins),
//! then the index of its first occurrence in row-major window order, as the CPU breaks ties;
//! the gradient sends each `dy` element to that index, and the gradient's gradient picks
//! the element there.

use super::all_f32;
use super::elementwise::map_views;
use super::expr::{BinaryOp, Expr};
use super::index::{and, coords, int, linear, load_or};
use super::program::View;
use super::window::{covering, element};
use crate::devices::gpu::GpuDevice;
use crate::devices::DeviceTensor;
use crate::graph::TypeShape;
use crate::kernels::cpu::indexing::row_major_strides;
use crate::kernels::cpu::window::Geometry;
use crate::kernels::{GpuContext, GpuKernel, KernelError};
use crate::ops::pool::{MaxPool, MaxPoolGrad, MaxPoolGradGrad, PoolWindow};

fn geometry(w: &PoolWindow, x: &[usize]) -> Result<Geometry, KernelError> {
    Ok(Geometry::new(x, w.ksize, w.strides, w.padding)?)
}

/// Window element `(i, j)` of the output element at the map's coordinates `[n, oy, ox, c]`.
fn window_element(g: &Geometry, i: usize, j: usize) -> (Expr, Expr) {
    let c = coords(4);
    element(
        g,
        c[0].clone(),
        c[1].clone(),
        c[2].clone(),
        int(i),
        int(j),
        c[3].clone(),
    )
}

/// The windows' maxima, `[n, oh, ow, c]`.
fn maxima(gpu: &GpuDevice, g: &Geometry, x: &DeviceTensor) -> Result<DeviceTensor, KernelError> {
    let mut best = Expr::f32(f32::NEG_INFINITY);
    for i in 0..g.kh {
        for j in 0..g.kw {
            let (at, valid) = window_element(g, i, j);
            let v = load_or(0, at, valid, Expr::f32(f32::NEG_INFINITY));
            best = Expr::binary(BinaryOp::Max, best, v);
        }
    }
    map_views(gpu, &best, &[(x, View::unread(4))], &g.out_shape(g.c))
}

/// For each window, the flat index in `x` of its first maximum (`y` holds the maxima).
fn argmax(
    gpu: &GpuDevice,
    g: &Geometry,
    x: &DeviceTensor,
    y: &DeviceTensor,
) -> Result<DeviceTensor, KernelError> {
    let mut first = Expr::i32(-1);
    for i in (0..g.kh).rev() {
        for j in (0..g.kw).rev() {
            let (at, valid) = window_element(g, i, j);
            let is_max = Expr::binary(BinaryOp::Eq, Expr::load(0, at.clone()), Expr::input(1));
            first = Expr::select(and(valid, is_max), at, first);
        }
    }
    let shape = g.out_shape(g.c);
    let y_view = View {
        offset: 0,
        strides: row_major_strides(&shape),
    };
    map_views(gpu, &first, &[(x, View::unread(4)), (y, y_view)], &shape)
}

impl GpuKernel for MaxPool {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        all_f32(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let g = geometry(&self.0, &inputs[0].shape)?;
        Ok(vec![maxima(gpu, &g, inputs[0])?])
    }
}

impl GpuKernel for MaxPoolGrad {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        all_f32(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let (x, dy) = (inputs[0], inputs[1]);
        let g = geometry(&self.0, &x.shape)?;
        if dy.shape != g.out_shape(g.c) {
            return Err(KernelError::Message(format!(
                "dy has shape {:?}, but pooling gives {:?}",
                dy.shape,
                g.out_shape(g.c)
            )));
        }
        let y = maxima(gpu, &g, x)?;
        let first = argmax(gpu, &g, x, &y)?;
        gpu.recycle(y);
        // Each pixel sums dy over the windows that cover it and chose it.
        let c = coords(4);
        let own = linear(&c, &row_major_strides(&x.shape));
        let mut sum = Expr::f32(0.0);
        for i in 0..g.kh {
            for j in 0..g.kw {
                let (oy, ox, valid) = covering(&g, c[1].clone(), c[2].clone(), i, j);
                let o = linear(
                    &[c[0].clone(), oy, ox, c[3].clone()],
                    &row_major_strides(&dy.shape),
                );
                let chosen = Expr::binary(BinaryOp::Eq, Expr::load(0, o.clone()), own.clone());
                let term = Expr::select(and(valid, chosen), Expr::load(1, o), Expr::f32(0.0));
                sum = Expr::binary(BinaryOp::Add, sum, term);
            }
        }
        let dx = map_views(
            gpu,
            &sum,
            &[(&first, View::unread(4)), (dy, View::unread(4))],
            &x.shape,
        )?;
        gpu.recycle(first);
        Ok(vec![dx])
    }
}

impl GpuKernel for MaxPoolGradGrad {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        all_f32(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let (x, d) = (inputs[0], inputs[1]);
        let g = geometry(&self.0, &x.shape)?;
        if d.shape != x.shape {
            return Err(KernelError::Message(format!(
                "the gradient has shape {:?}, input has shape {:?}",
                d.shape, x.shape
            )));
        }
        let y = maxima(gpu, &g, x)?;
        let first = argmax(gpu, &g, x, &y)?;
        gpu.recycle(y);
        let shape = g.out_shape(g.c);
        let view = View {
            offset: 0,
            strides: row_major_strides(&shape),
        };
        let pick = Expr::load(1, Expr::input(0));
        let out = map_views(gpu, &pick, &[(&first, view), (d, View::unread(4))], &shape)?;
        gpu.recycle(first);
        Ok(vec![out])
    }
}
