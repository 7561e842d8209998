//! Selecting and placing parts of tensors: slice, gather, one-hot, and the small shape ops
//! around them (expand_dims, squeeze, stack).

use super::array::{concat, ReshapeLike};

use super::sparse::{Gradient, IndexedSlices};
use super::{build, expect_inputs, Attrs, GradContext, GradientError, Op};
use crate::graph::{AttrValue, Output, Shape, TypeShape};
use crate::ops::reduce::normalize_axes;
use crate::tensor::DType;

/// The part of a tensor that starts at `begin` and spans `size` (-1: to the end of the axis).
#[derive(Debug, Clone)]
pub struct Slice {
    pub begin: Vec<usize>,
    pub size: Vec<i64>,
}

impl Slice {
    /// The slice's dimensions within a tensor whose dimensions are `dims` (some unknown).
    pub(crate) fn sizes(&self, dims: &[Option<usize>]) -> Result<Vec<Option<usize>>, String> {
        let bad = || {
            format!(
                "begin {:?} and size {:?} do not fit shape {}",
                self.begin,
                self.size,
                Shape(dims.to_vec())
            )
        };
        if self.begin.len() != dims.len() || self.size.len() != dims.len() {
            return Err(bad());
        }
        let mut out = Vec::with_capacity(dims.len());
        for ((&b, &s), &d) in self.begin.iter().zip(&self.size).zip(dims) {
            let size = match (s, d) {
                (s, _) if s < -1 => return Err(bad()),
                (-1, Some(d)) => Some(d.checked_sub(b).ok_or_else(bad)?),
                (-1, None) => None,
                (s, d) => {
                    let end = b.checked_add(s as usize).ok_or_else(bad)?;
                    if d.is_some_and(|d| end > d) {
                        return Err(bad());
                    }
                    Some(s as usize)
                }
            };
            out.push(size);
        }
        Ok(out)
    }
}

impl Op for Slice {
    fn type_name(&self) -> &'static str {
        "Slice"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![
            ("begin", AttrValue::ints(&self.begin)),
            ("size", AttrValue::Ints(self.size.clone())),
        ]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        let x = &inputs[0];
        let dims = self.sizes(x.shape.dims())?;
        Ok(vec![TypeShape::new(x.dtype, Shape(dims))])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let dx = build(
            SliceGrad {
                begin: self.begin.clone(),
                size: self.size.clone(),
            },
            &[g.dy(), g.x(0)],
        );
        Ok(vec![Some(dx)])
    }
}

/// The part of `x` that starts at `begin` and spans `size` elements on each axis; a size of
/// -1 takes the rest of that axis.
pub fn slice(x: Output, begin: &[usize], size: &[i64]) -> Output {
    build(
        Slice {
            begin: begin.to_vec(),
            size: size.to_vec(),
        },
        &[x],
    )
}

/// A slice's gradient: zeros shaped like the second input, with the first (dy) placed where
/// the slice was taken.
#[derive(Debug, Clone)]
pub struct SliceGrad {
    pub begin: Vec<usize>,
    pub size: Vec<i64>,
}

impl SliceGrad {
    pub(crate) fn slice(&self) -> Slice {
        Slice {
            begin: self.begin.clone(),
            size: self.size.clone(),
        }
    }
}

impl Op for SliceGrad {
    fn type_name(&self) -> &'static str {
        "SliceGrad"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![
            ("begin", AttrValue::ints(&self.begin)),
            ("size", AttrValue::Ints(self.size.clone())),
        ]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        let (dy, x) = (&inputs[0], &inputs[1]);
        let sizes = self.slice().sizes(x.shape.dims())?;
        if !compatible(&Shape(sizes.clone()), &dy.shape) {
            return Err(format!(
                "dy is {dy}, but the slice of {x} has shape {}",
                Shape(sizes)
            ));
        }
        Ok(vec![TypeShape::new(dy.dtype, x.shape.clone())])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![Some(slice(g.dy(), &self.begin, &self.size)), None])
    }
}

/// Whether two inferred shapes can be the same at run time.
pub(crate) fn compatible(a: &Shape, b: &Shape) -> bool {
    a.rank() == b.rank()
        && a.dims()
            .iter()
            .zip(b.dims())
            .all(|(x, y)| x.zip(*y).is_none_or(|(x, y)| x == y))
}

pub(crate) fn expect_indices(t: &TypeShape, what: &str) -> Result<(), String> {
    match t.dtype {
        DType::I32 | DType::I64 => Ok(()),
        _ => Err(format!("{what} must be i32 or i64, got {t}")),
    }
}

/// Rows of `params` (along axis 0) picked by integer `indices` of any rank.
#[derive(Debug, Clone)]
pub struct Gather;

impl Op for Gather {
    fn type_name(&self) -> &'static str {
        "Gather"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        let (params, indices) = (&inputs[0], &inputs[1]);
        if params.shape.rank() == 0 {
            return Err(format!("params must have rank 1 or more, got {params}"));
        }
        expect_indices(indices, "indices")?;
        let mut dims = indices.shape.dims().to_vec();
        dims.extend_from_slice(&params.shape.dims()[1..]);
        Ok(vec![TypeShape::new(params.dtype, Shape(dims))])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let float = g.input_types[0].dtype.is_float();
        let dparams = float.then(|| build(GatherGrad, &[g.dy(), g.x(1), g.x(0)]));
        Ok(vec![dparams, None])
    }

    /// The rows picked and their gradients, not a tensor of the whole table.
    fn gradient_values(&self, g: &GradContext) -> Result<Vec<Option<Gradient>>, GradientError> {
        if !g.input_types[0].dtype.is_float() {
            return Ok(vec![None, None]);
        }
        let dparams = match IndexedSlices::for_rows(g.x(0), g.x(1), g.dy()) {
            Some(rows) => Gradient::Sparse(rows),
            None => Gradient::Dense(build(GatherGrad, &[g.dy(), g.x(1), g.x(0)])),
        };
        Ok(vec![Some(dparams), None])
    }
}

/// Rows of `params` picked by `indices` (i32 or i64, any rank) along axis 0: the result has
/// shape `indices.shape + params.shape[1..]`.
pub fn gather(params: Output, indices: Output) -> Output {
    build(Gather, &[params, indices])
}

/// A gather's gradient: zeros shaped like `params` (third input) into which the rows of `dy`
/// (first input) are added at `indices` (second input); repeated indices sum.
#[derive(Debug, Clone)]
pub struct GatherGrad;

impl Op for GatherGrad {
    fn type_name(&self) -> &'static str {
        "GatherGrad"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 3)?;
        let (dy, indices, params) = (&inputs[0], &inputs[1], &inputs[2]);
        expect_indices(indices, "indices")?;
        super::expect_float(dy, "dy")?;
        if params.shape.rank() == 0 {
            return Err(format!("params must have rank 1 or more, got {params}"));
        }
        let mut want = indices.shape.dims().to_vec();
        want.extend_from_slice(&params.shape.dims()[1..]);
        if !compatible(&Shape(want.clone()), &dy.shape) {
            return Err(format!(
                "dy is {dy}, but gathering {indices} from {params} gives {}",
                Shape(want)
            ));
        }
        Ok(vec![TypeShape::new(dy.dtype, params.shape.clone())])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![Some(gather(g.dy(), g.x(1))), None, None])
    }
}

/// One-hot rows: f32 `indices.shape + [depth]`, 1 at each index and 0 elsewhere; an index
/// outside `[0, depth)` gives a row of zeros.
#[derive(Debug, Clone)]
pub struct OneHot {
    pub depth: usize,
}

impl Op for OneHot {
    fn type_name(&self) -> &'static str {
        "OneHot"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![("depth", AttrValue::int(self.depth))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        let indices = &inputs[0];
        if !matches!(indices.dtype, DType::I32 | DType::I64 | DType::U8) {
            return Err(format!("indices must be i32, i64 or u8, got {indices}"));
        }
        let mut dims = indices.shape.dims().to_vec();
        dims.push(Some(self.depth));
        Ok(vec![TypeShape::new(DType::F32, Shape(dims))])
    }

    fn gradient(&self, _: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![None])
    }
}

/// f32 one-hot rows of length `depth` for integer `indices` (out-of-range gives zeros).
pub fn one_hot(indices: Output, depth: usize) -> Output {
    build(OneHot { depth }, &[indices])
}

/// Inserts an axis of size 1 at `axis` (in `[-rank-1, rank]`).
#[derive(Debug, Clone)]
pub struct ExpandDims {
    pub axis: i64,
}

impl Op for ExpandDims {
    fn type_name(&self) -> &'static str {
        "ExpandDims"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![("axis", AttrValue::Int(self.axis))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        let x = &inputs[0];
        let axis = normalize_axes(&[self.axis], x.shape.rank() + 1)
            .map_err(|e| format!("{e} (input is {x})"))?[0];
        let mut dims = x.shape.dims().to_vec();
        dims.insert(axis, Some(1));
        Ok(vec![TypeShape::new(x.dtype, Shape(dims))])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![Some(build(ReshapeLike, &[g.dy(), g.x(0)]))])
    }
}

/// `x` with a new axis of size 1 at `axis` (negative counts from the end of the result).
pub fn expand_dims(x: Output, axis: i64) -> Output {
    build(ExpandDims { axis }, &[x])
}

/// Removes axes of size 1: the listed ones, or every one when the list is empty.
#[derive(Debug, Clone)]
pub struct Squeeze {
    pub axes: Vec<i64>,
}

impl Squeeze {
    pub(crate) fn dropped(&self, dims: &[Option<usize>]) -> Result<Vec<usize>, String> {
        let shape = Shape(dims.to_vec());
        if self.axes.is_empty() {
            if dims.contains(&None) {
                return Err(format!(
                    "cannot tell which axes of {shape} have size 1: name the axes to squeeze"
                ));
            }
            return Ok((0..dims.len()).filter(|&a| dims[a] == Some(1)).collect());
        }
        let axes = normalize_axes(&self.axes, dims.len())
            .map_err(|e| format!("{e} (input shape is {shape})"))?;
        if let Some(&a) = axes.iter().find(|&&a| dims[a].is_some_and(|d| d != 1)) {
            return Err(format!(
                "cannot squeeze axis {a} of shape {shape}: its size is not 1"
            ));
        }
        Ok(axes)
    }
}

impl Op for Squeeze {
    fn type_name(&self) -> &'static str {
        "Squeeze"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![("axes", AttrValue::Ints(self.axes.clone()))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        let x = &inputs[0];
        let dropped = self.dropped(x.shape.dims())?;
        let dims = (0..x.shape.rank())
            .filter(|a| !dropped.contains(a))
            .map(|a| x.shape.dims()[a])
            .collect();
        Ok(vec![TypeShape::new(x.dtype, Shape(dims))])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![Some(build(ReshapeLike, &[g.dy(), g.x(0)]))])
    }
}

/// `x` without its axes of size 1: those in `axes`, or all of them when `axes` is empty.
pub fn squeeze(x: Output, axes: &[i64]) -> Output {
    build(
        Squeeze {
            axes: axes.to_vec(),
        },
        &[x],
    )
}

/// Stacks tensors of one shape along a new axis `axis` of the result.
pub fn stack(xs: &[Output], axis: i64) -> Output {
    let expanded: Vec<Output> = xs.iter().map(|&x| expand_dims(x, axis)).collect();
    concat(&expanded, axis)
}
