//! Shape and selection ops: cast, identity, reshape, where, clip, transpose, concat.

use super::indexing::compatible;
#[cfg(feature = "engine")]
use super::indexing::row_major_strides;
use super::{build, expect_inputs, Attrs, GradContext, GradientError, Op};
#[cfg(feature = "engine")]
use super::{Context, KernelError};
use crate::graph::{AttrValue, Output, Shape, TypeShape};
use crate::ops::math::{maximum, minimum, IntoOperand};
use crate::ops::reduce::normalize_axes;
use crate::tensor::DType;
#[cfg(feature = "engine")]
use crate::tensor::Tensor;

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

    #[cfg(feature = "engine")]
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        Ok(vec![inputs[0].cast(self.to)])
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

    #[cfg(feature = "engine")]
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
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
    fn resolve(&self, len: usize) -> Result<Vec<usize>, String> {
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

    #[cfg(feature = "engine")]
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let shape = self.resolve(x.len())?;
        Ok(vec![x.reshape(&shape)?])
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

    #[cfg(feature = "engine")]
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        Ok(vec![inputs[0].reshape(inputs[1].shape())?])
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

    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        use super::broadcast::{broadcast_concrete, broadcast_to};
        let (c, a, b) = (inputs[0], inputs[1], inputs[2]);
        let shape = broadcast_concrete(c.shape(), &broadcast_concrete(a.shape(), b.shape())?)?;
        let expand = |t: &Tensor, pool: &mut super::BufferPool| -> Result<Tensor, KernelError> {
            if t.shape() == shape.as_slice() {
                return Ok(t.clone());
            }
            let mut dims = vec![1; shape.len() - t.rank()];
            dims.extend_from_slice(t.shape());
            let t = t.reshape(&dims)?;
            any_kernel!(t.dtype(), T => broadcast_to::<T>(pool, &t, &shape))
        };
        let (c, a, b) = (
            expand(c, ctx.pool)?,
            expand(a, ctx.pool)?,
            expand(b, ctx.pool)?,
        );
        let cs = c.as_slice::<bool>()?;
        let out = any_kernel!(a.dtype(), T => {
            let (xs, ys) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
            let mut out = ctx.pool.alloc::<T>(cs.len());
            for (i, o) in out.iter_mut().enumerate() {
                *o = if cs[i] { xs[i] } else { ys[i] };
            }
            Tensor::new(&shape, out).map_err(KernelError::from)
        })?;
        Ok(vec![out])
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
    fn check(&self, rank: usize) -> bool {
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

    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        if !self.check(x.rank()) {
            return Err(KernelError::Message(format!(
                "perm {:?} does not fit shape {:?}",
                self.perm,
                x.shape()
            )));
        }
        let in_strides = row_major_strides(x.shape());
        let shape: Vec<usize> = self.perm.iter().map(|&p| x.shape()[p]).collect();
        let strides: Vec<usize> = self.perm.iter().map(|&p| in_strides[p]).collect();
        let out = any_kernel!(x.dtype(), T => {
            let xs = x.as_slice::<T>()?;
            let mut out = ctx.pool.alloc::<T>(xs.len());
            let mut index = vec![0usize; shape.len()];
            let mut offset = 0usize;
            for o in out.iter_mut() {
                *o = xs[offset];
                // Odometer over the output index, tracking the input offset.
                for axis in (0..shape.len()).rev() {
                    index[axis] += 1;
                    offset += strides[axis];
                    if index[axis] < shape[axis] {
                        break;
                    }
                    offset -= strides[axis] * shape[axis];
                    index[axis] = 0;
                }
            }
            Tensor::new(&shape, out).map_err(KernelError::from)
        })?;
        Ok(vec![out])
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

#[cfg(feature = "engine")]
/// Number of joined rows when each row holds `widths[i]` elements of part `i` side by side.
fn outer_rows(len: usize, widths: &[usize]) -> usize {
    let total: usize = widths.iter().sum();
    len.checked_div(total).unwrap_or(0)
}

#[cfg(feature = "engine")]
/// Copies the parts, row by row, into `whole`.
fn join_chunks<T: Copy>(whole: &mut [T], parts: &[&[T]], widths: &[usize]) {
    let mut at = 0;
    for o in 0..outer_rows(whole.len(), widths) {
        for (part, &w) in parts.iter().zip(widths) {
            whole[at..at + w].copy_from_slice(&part[o * w..(o + 1) * w]);
            at += w;
        }
    }
}

#[cfg(feature = "engine")]
/// Copies the rows of `whole` back out into the parts.
fn split_chunks<T: Copy>(whole: &[T], parts: &mut [Vec<T>], widths: &[usize]) {
    let mut at = 0;
    for o in 0..outer_rows(whole.len(), widths) {
        for (part, &w) in parts.iter_mut().zip(widths) {
            part[o * w..(o + 1) * w].copy_from_slice(&whole[at..at + w]);
            at += w;
        }
    }
}

#[cfg(feature = "engine")]
/// Checks run-time shapes for a concatenation along `axis`; gives the joined shape and the
/// width of each part within one outer row.
fn concat_runtime(shapes: &[&[usize]], axis: usize) -> Result<(Vec<usize>, Vec<usize>), String> {
    let first = shapes.first().ok_or("needs at least one input")?;
    if axis >= first.len() {
        return Err(format!("axis {axis} is out of range for shape {first:?}"));
    }
    let mut joined = first.to_vec();
    joined[axis] = 0;
    let mut widths = Vec::with_capacity(shapes.len());
    for s in shapes {
        let fits = s.len() == first.len()
            && s.iter()
                .zip(first.iter())
                .enumerate()
                .all(|(a, (d, e))| a == axis || d == e);
        if !fits {
            return Err(format!(
                "cannot concatenate shapes {first:?} and {s:?} along axis {axis}"
            ));
        }
        joined[axis] += s[axis];
        widths.push(s[axis..].iter().product());
    }
    Ok((joined, widths))
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

    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let first = inputs
            .first()
            .ok_or("needs at least one input".to_string())?;
        let axis = normalize_axes(&[self.axis], first.rank())?[0];
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
        let (joined, widths) = concat_runtime(&shapes, axis)?;
        let out = any_kernel!(first.dtype(), T => {
            let parts = inputs
                .iter()
                .map(|t| t.as_slice::<T>())
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = ctx.pool.alloc::<T>(joined.iter().product());
            join_chunks(&mut out, &parts, &widths);
            Tensor::new(&joined, out).map_err(KernelError::from)
        })?;
        Ok(vec![out])
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

    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (dy, xs) = inputs
            .split_first()
            .ok_or("takes dy and the inputs".to_string())?;
        let axis = normalize_axes(&[self.axis], dy.rank())?[0];
        let shapes: Vec<&[usize]> = xs.iter().map(|t| t.shape()).collect();
        let (joined, widths) = concat_runtime(&shapes, axis)?;
        if joined != dy.shape() {
            return Err(KernelError::Message(format!(
                "dy has shape {:?}, but the inputs join to {joined:?}",
                dy.shape()
            )));
        }
        any_kernel!(dy.dtype(), T => {
            let mut parts: Vec<Vec<T>> =
                xs.iter().map(|t| ctx.pool.alloc::<T>(t.len())).collect();
            split_chunks(dy.as_slice::<T>()?, &mut parts, &widths);
            parts
                .into_iter()
                .zip(xs)
                .map(|(p, x)| Tensor::new(x.shape(), p).map_err(KernelError::from))
                .collect()
        })
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let dys: Vec<Output> = (0..g.outputs.len()).map(|i| g.dy_of(i)).collect();
        let mut grads = vec![Some(concat(&dys, self.axis))];
        grads.extend(std::iter::repeat_n(None, g.outputs.len()));
        Ok(grads)
    }
}
