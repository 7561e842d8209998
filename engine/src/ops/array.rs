//! Shape and selection ops: cast, identity, reshape, where, clip, transpose, concat.

use super::indexing::compatible;

use super::{build, expect_inputs, Attrs, GradContext, GradientError, Op};

use crate::graph::{AttrValue, Output, Shape, TypeShape};
use crate::ops::math::{maximum, minimum, IntoOperand};
use crate::ops::reduce::normalize_axes;
use crate::tensor::DType;

/// Converts elements to another dtype.
#[derive(Debug, Clone)]
pub struct Cast {
    pub to: DType,
}

impl Op for Cast {
    fn type_name(&self) -> &'static str {
        "Cast"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![("to", AttrValue::DType(self.to))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        Ok(vec![TypeShape::new(self.to, inputs[0].shape.clone())])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let from = g.input_types[0].dtype;
        Ok(vec![
            (from.is_float() && self.to.is_float()).then(|| cast(g.dy(), from))
        ])
    }
}

pub fn cast(x: Output, to: DType) -> Output {
    build(Cast { to }, &[x])
}

/// Passes its input through (useful to name a value).
#[derive(Debug, Clone)]
pub struct Identity;

impl Op for Identity {
    fn type_name(&self) -> &'static str {
        "Identity"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        Ok(vec![inputs[0].clone()])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![Some(g.dy())])
    }
}

pub fn identity(x: Output) -> Output {
    build(Identity, &[x])
}

/// Gives the elements a new shape; one dimension may be -1 (inferred from the size).
#[derive(Debug, Clone)]
pub struct Reshape {
    pub shape: Vec<i64>,
}

impl Reshape {
    pub(crate) fn resolve(&self, len: usize) -> Result<Vec<usize>, String> {
        let known: usize = self
            .shape
            .iter()
            .filter(|&&d| d >= 0)
            .map(|&d| d as usize)
            .product();
        let unknown = self.shape.iter().filter(|&&d| d < 0).count();
        match unknown {
            0 if known == len => Ok(self.shape.iter().map(|&d| d as usize).collect()),
            1 if len.checked_rem(known) == Some(0) => Ok(self
                .shape
                .iter()
                .map(|&d| if d < 0 { len / known } else { d as usize })
                .collect()),
            _ => Err(format!("cannot reshape {len} elements to {:?}", self.shape)),
        }
    }
}

impl Op for Reshape {
    fn type_name(&self) -> &'static str {
        "Reshape"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![("shape", AttrValue::Ints(self.shape.clone()))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        let x = &inputs[0];
        if self.shape.iter().filter(|&&d| d < 0).count() > 1 {
            return Err(format!(
                "at most one -1 in the target shape {:?}",
                self.shape
            ));
        }
        let shape = match x.shape.num_elements() {
            Some(len) => Shape::known(
                &self
                    .resolve(len)
                    .map_err(|e| format!("{e} (input is {x})"))?,
            ),
            None => Shape::from_dims(&self.shape),
        };
        Ok(vec![TypeShape::new(x.dtype, shape)])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![Some(build(ReshapeLike, &[g.dy(), g.x(0)]))])
    }
}

/// Reshapes the first input to the second's (run-time) shape.
#[derive(Debug, Clone)]
pub struct ReshapeLike;

impl Op for ReshapeLike {
    fn type_name(&self) -> &'static str {
        "ReshapeLike"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        Ok(vec![TypeShape::new(
            inputs[0].dtype,
            inputs[1].shape.clone(),
        )])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![Some(build(ReshapeLike, &[g.dy(), g.x(0)])), None])
    }
}

pub fn reshape(x: Output, shape: &[i64]) -> Output {
    build(
        Reshape {
            shape: shape.to_vec(),
        },
        &[x],
    )
}

/// `where(condition, a, b)`: elements of `a` where the condition holds, else of `b`.
/// The three broadcast together.
#[derive(Debug, Clone)]
pub struct Select;

impl Op for Select {
    fn type_name(&self) -> &'static str {
        "Select"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 3)?;
        let (c, a, b) = (&inputs[0], &inputs[1], &inputs[2]);
        if c.dtype != DType::Bool {
            return Err(format!("condition must be bool, got {c}"));
        }
        if a.dtype != b.dtype {
            return Err(format!("branches have different dtypes: {a} and {b}"));
        }
        let ab = super::broadcast::broadcast_shapes(&a.shape, &b.shape)?;
        let shape = super::broadcast::broadcast_shapes(&c.shape, &ab)?;
        Ok(vec![TypeShape::new(a.dtype, shape)])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        use crate::ops::math::zeros_like;
        use crate::ops::reduce::sum_to_like;
        let (c, a, b, dy) = (g.x(0), g.x(1), g.x(2), g.dy());
        let zero = zeros_like(dy);
        Ok(vec![
            None,
            Some(sum_to_like(select(c, dy, zero), a)),
            Some(sum_to_like(select(c, zero, dy), b)),
        ])
    }
}

/// Elements of `a` where `condition` holds, else of `b` (TensorFlow's `where`).
pub fn select(condition: Output, a: Output, b: Output) -> Output {
    build(Select, &[condition, a, b])
}

/// `x` limited to `[low, high]`; the gradient flows only where `x` is inside.
pub fn clip_by_value(x: Output, low: impl IntoOperand, high: impl IntoOperand) -> Output {
    minimum(maximum(x, low), high)
}

/// Permutes the axes: output axis `i` is input axis `perm[i]`.
#[derive(Debug, Clone)]
pub struct Transpose {
    pub perm: Vec<usize>,
}

impl Transpose {
    pub(crate) fn check(&self, rank: usize) -> bool {
        let mut seen = vec![false; rank];
        self.perm.len() == rank
            && self
                .perm
                .iter()
                .all(|&p| p < rank && !std::mem::replace(&mut seen[p], true))
    }
}

impl Op for Transpose {
    fn type_name(&self) -> &'static str {
        "Transpose"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![("perm", AttrValue::ints(&self.perm))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        let x = &inputs[0];
        if !self.check(x.shape.rank()) {
            return Err(format!(
                "perm {:?} is not a permutation of the {} axes of {x}",
                self.perm,
                x.shape.rank()
            ));
        }
        let dims = self.perm.iter().map(|&p| x.shape.dims()[p]).collect();
        Ok(vec![TypeShape::new(x.dtype, Shape(dims))])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let mut inverse = vec![0; self.perm.len()];
        for (i, &p) in self.perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(vec![Some(transpose(g.dy(), &inverse))])
    }
}

/// Permutes the axes of `x`: output axis `i` is input axis `perm[i]`.
pub fn transpose(x: Output, perm: &[usize]) -> Output {
    build(
        Transpose {
            perm: perm.to_vec(),
        },
        &[x],
    )
}

/// Joins tensors along an existing axis; the other dimensions must agree.
#[derive(Debug, Clone)]
pub struct Concat {
    pub axis: i64,
}

/// The concatenation axis, and the inputs' common shape with that axis summed.
fn concat_shape(inputs: &[TypeShape], axis: i64) -> Result<(usize, Shape), String> {
    let Some(first) = inputs.first() else {
        return Err("needs at least one input".into());
    };
    let rank = first.shape.rank();
    if rank == 0 {
        return Err(format!("cannot concatenate scalars ({first})"));
    }
    let axis = normalize_axes(&[axis], rank)?[0];
    let mut dims = first.shape.dims().to_vec();
    for (i, t) in inputs.iter().enumerate().skip(1) {
        let mismatch = || {
            format!(
                "input {i} is {t} but input 0 is {first}: dtypes, ranks and all dimensions but axis {axis} must agree"
            )
        };
        if t.dtype != first.dtype || t.shape.rank() != rank {
            return Err(mismatch());
        }
        for (a, (d, &e)) in dims.iter_mut().zip(t.shape.dims()).enumerate() {
            if a == axis {
                *d = d.zip(e).map(|(d, e)| d + e);
            } else {
                match (*d, e) {
                    (Some(d), Some(e)) if d != e => return Err(mismatch()),
                    (None, e) => *d = e,
                    _ => {}
                }
            }
        }
    }
    Ok((axis, Shape(dims)))
}

impl Op for Concat {
    fn type_name(&self) -> &'static str {
        "Concat"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![("axis", AttrValue::Int(self.axis))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        let (_, shape) = concat_shape(inputs, self.axis)?;
        Ok(vec![TypeShape::new(inputs[0].dtype, shape)])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let mut inputs = vec![g.dy()];
        inputs.extend_from_slice(g.inputs);
        let split = build(ConcatGrad { axis: self.axis }, &inputs);
        Ok((0..g.inputs.len()).map(|i| Some(split.output(i))).collect())
    }
}

/// Joins `xs` along `axis` (negative counts from the end).
pub fn concat(xs: &[Output], axis: i64) -> Output {
    build(Concat { axis }, xs)
}

/// Splits the first input (a concatenation's gradient) into pieces shaped like the others.
#[derive(Debug, Clone)]
pub struct ConcatGrad {
    pub axis: i64,
}

impl Op for ConcatGrad {
    fn type_name(&self) -> &'static str {
        "ConcatGrad"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![("axis", AttrValue::Int(self.axis))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        if inputs.len() < 2 {
            return Err(format!("takes dy and the inputs, got {}", inputs.len()));
        }
        let (_, shape) = concat_shape(&inputs[1..], self.axis)?;
        let dy = &inputs[0];
        if !compatible(&dy.shape, &shape) || dy.dtype != inputs[1].dtype {
            return Err(format!("dy is {dy}, but the inputs join to {shape}"));
        }
        Ok(inputs[1..]
            .iter()
            .map(|t| TypeShape::new(dy.dtype, t.shape.clone()))
            .collect())
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let dys: Vec<Output> = (0..g.outputs.len()).map(|i| g.dy_of(i)).collect();
        let mut grads = vec![Some(concat(&dys, self.axis))];
        grads.extend(std::iter::repeat_n(None, g.outputs.len()));
        Ok(grads)
    }
}
