//! Shape and selection ops: cast, identity, reshape, where, clip.

use super::{build, expect_inputs, Context, GradContext, GradientError, KernelError, Op};
use crate::graph::{Output, Shape, TypeShape};
use crate::ops::math::{maximum, minimum, IntoOperand};
use crate::tensor::{DType, Tensor};

/// Converts elements to another dtype.
#[derive(Debug, Clone)]
pub struct Cast {
    pub to: DType,
}

impl Op for Cast {
    fn type_name(&self) -> &'static str {
        "Cast"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        Ok(vec![TypeShape::new(self.to, inputs[0].shape.clone())])
    }

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
            1 if known > 0 && len % known == 0 => Ok(self
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
