//! Max pooling over NHWC images, its gradient and its gradient's gradient.

use super::window::{check_window, infer_dim, Padding};
use super::{build, expect_float, expect_inputs, Attrs, GradContext, GradientError, Op};

use crate::graph::{AttrValue, Output, Shape, TypeShape};

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

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![
            None,
            Some(build(MaxPoolGrad(self.0), &[g.x(0), g.dy()])),
        ])
    }
}
