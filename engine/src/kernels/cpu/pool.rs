//! CPU kernels of [`crate::ops::pool`].

use super::window::{check_dy, Geometry};
use crate::kernels::{Context, CpuKernel, KernelError, StepControl};
use crate::ops::pool::*;
use crate::tensor::{Float, Tensor};

impl PoolWindow {
    fn geometry(&self, x: &[usize]) -> Result<Geometry, KernelError> {
        Ok(Geometry::new(x, self.ksize, self.strides, self.padding)?)
    }

    /// Calls `visit(output index, input index of the window's maximum)` for every output
    /// element; ties go to the first element in row-major window order. Checks the step's
    /// cancellation and deadline once per output row.
    fn argmax<T: Float>(
        &self,
        g: &Geometry,
        xs: &[T],
        step: &StepControl,
        mut visit: impl FnMut(usize, usize),
    ) -> Result<(), KernelError> {
        let c = g.c;
        let mut best = vec![0usize; c];
        let mut out = 0;
        for b in 0..g.n {
            let image = b * g.h * g.w * c;
            for oy in 0..g.oh {
                step.check()?;
                let (top, bottom, iy0) = g.rows(oy);
                for ox in 0..g.ow {
                    let (lo, hi, ix0) = g.columns(ox);
                    let mut first = true;
                    for i in top..bottom {
                        let iy = (iy0 + i as isize) as usize;
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
        Ok(())
    }

    /// The pooled tensor of `src` (shaped like `x`): each output element is `src` at its
    /// window's maximum in `x`.
    fn pick(
        &self,
        ctx: &mut Context,
        g: &Geometry,
        x: &Tensor,
        src: &Tensor,
    ) -> Result<Tensor, KernelError> {
        float_kernel!(x.dtype(), T => {
            let (xs, ss) = (x.as_slice::<T>()?, src.as_slice::<T>()?);
            let step = ctx.step;
            let mut out = ctx.pool.zeros::<T>(g.n * g.pixels() * g.c);
            self.argmax(g, xs, step, |o, i| out[o] = ss[i])?;
            Tensor::new(&g.out_shape(g.c), out).map_err(KernelError::from)
        })
    }
}

impl CpuKernel for MaxPool {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let g = self.0.geometry(x.shape())?;
        Ok(vec![self.0.pick(ctx, &g, x, x)?])
    }
}

impl CpuKernel for MaxPoolGrad {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (x, dy) = (inputs[0], inputs[1]);
        let g = self.0.geometry(x.shape())?;
        check_dy(dy, &g, g.c)?;
        let out = float_kernel!(x.dtype(), T => {
            let (xs, ds) = (x.as_slice::<T>()?, dy.as_slice::<T>()?);
            let step = ctx.step;
            let mut dx = ctx.pool.zeros::<T>(x.len());
            self.0.argmax(&g, xs, step, |o, i| dx[i] += ds[o])?;
            Tensor::new(x.shape(), dx).map_err(KernelError::from)
        })?;
        Ok(vec![out])
    }
}

impl CpuKernel for MaxPoolGradGrad {
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
        Ok(vec![self.0.pick(ctx, &g, x, d)?])
    }
}
