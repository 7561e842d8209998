//! Max pooling over NHWC images, its gradient and its gradient's gradient.

#[cfg(feature = "engine")]
use super::window::{check_dy, Geometry};
use super::window::{check_window, infer_dim, Padding};
use super::{build, expect_float, expect_inputs, Attrs, GradContext, GradientError, Op};
#[cfg(feature = "engine")]
use super::{Context, KernelError};
use crate::graph::{AttrValue, Output, Shape, TypeShape};
#[cfg(feature = "engine")]
use crate::tensor::{Float, Tensor};

/// Window settings shared by the max-pool ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolWindow {
    pub ksize: [usize; 2],
    pub strides: [usize; 2],
    pub padding: Padding,
}

impl PoolWindow {
    /// The attributes of the pooling ops.
    pub fn attrs(&self) -> Attrs {
        vec![
            ("ksize", AttrValue::ints(&self.ksize)),
            ("strides", AttrValue::ints(&self.strides)),
            ("padding", AttrValue::Str(self.padding.name().into())),
        ]
    }

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

    #[cfg(feature = "engine")]
    fn geometry(&self, x: &[usize]) -> Result<Geometry, KernelError> {
        Ok(Geometry::new(x, self.ksize, self.strides, self.padding)?)
    }

    #[cfg(feature = "engine")]
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

    #[cfg(feature = "engine")]
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
            let mut out = ctx.pool.zeros::<T>(g.n * g.pixels() * g.c);
            self.argmax(g, xs, |o, i| out[o] = ss[i]);
            Tensor::new(&g.out_shape(g.c), out).map_err(KernelError::from)
        })
    }
}

/// Largest value in each window of NHWC images, per channel.
#[derive(Debug, Clone)]
pub struct MaxPool(pub PoolWindow);

impl Op for MaxPool {
    fn type_name(&self) -> &'static str {
        "MaxPool"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        self.0.attrs()
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        Ok(vec![self.0.infer(&inputs[0])?])
    }

    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let g = self.0.geometry(x.shape())?;
        Ok(vec![self.0.pick(ctx, &g, x, x)?])
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

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        self.0.attrs()
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        let out = self.0.infer(&inputs[0])?;
        infer_pool_pair(inputs, out, "dy")?;
        Ok(vec![inputs[0].clone()])
    }

    #[cfg(feature = "engine")]
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

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        self.0.attrs()
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        let out = self.0.infer(&inputs[0])?;
        infer_pool_pair(inputs, inputs[0].clone(), "the gradient")?;
        Ok(vec![out])
    }

    #[cfg(feature = "engine")]
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

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![
            None,
            Some(build(MaxPoolGrad(self.0), &[g.x(0), g.dy()])),
        ])
    }
}
