//! 2-D convolution over NHWC images and its gradients.
//!
//! `conv2d` lowers to matrix products: the patches under the filter are laid out as rows
//! (im2col) and multiplied by the filter seen as a `[kh*kw*cin, cout]` matrix (`gemm_into`).
//! The filter's gradient is `patches^T @ dy`; the input's is `dy @ filter^T`, whose rows are
//! added back onto the image (col2im). Images are processed in chunks so that the patch matrix
//! stays a few megabytes whatever the batch.

use super::window::{infer_dim, Padding};
use super::{build, expect_float, expect_inputs, Attrs, GradContext, GradientError, Op};

use crate::graph::{AttrValue, Output, Shape, TypeShape};

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
/// The attributes the convolution ops share.
fn conv_attrs(strides: [usize; 2], padding: Padding) -> Attrs {
    vec![
        ("strides", AttrValue::ints(&strides)),
        ("padding", AttrValue::Str(padding.name().into())),
    ]
}

#[derive(Debug, Clone)]
pub struct Conv2D {
    pub strides: [usize; 2],
    pub padding: Padding,
}

impl Op for Conv2D {
    fn type_name(&self) -> &'static str {
        "Conv2D"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        conv_attrs(self.strides, self.padding)
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

/// The operand that a convolution's gradient op differentiates with respect to; that operand
/// only lends its shape.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wrt {
    Input,
    Filter,
}

/// Checks the inputs `(input, filter, dy)` of a convolution's gradient ops; the output has
/// the type of the operand `wrt`.
fn infer_conv_grad(
    inputs: &[TypeShape],
    strides: [usize; 2],
    padding: Padding,
    wrt: Wrt,
) -> Result<Vec<TypeShape>, String> {
    expect_inputs(inputs, 3)?;
    let (x, f, dy) = (&inputs[0], &inputs[1], &inputs[2]);
    let out = infer_conv(x, f, strides, padding)?;
    if dy.dtype != out.dtype || !super::indexing::compatible(&dy.shape, &out.shape) {
        return Err(format!(
            "dy is {dy}, but the convolution of {x} by {f} gives {out}"
        ));
    }
    Ok(vec![match wrt {
        Wrt::Input => x.clone(),
        Wrt::Filter => f.clone(),
    }])
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

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        conv_attrs(self.strides, self.padding)
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        infer_conv_grad(inputs, self.strides, self.padding, Wrt::Input)
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

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        conv_attrs(self.strides, self.padding)
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        infer_conv_grad(inputs, self.strides, self.padding, Wrt::Filter)
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
