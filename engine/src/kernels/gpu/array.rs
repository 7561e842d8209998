//! GPU kernels of [`crate::ops::array`] and of [`crate::ops::indexing`] (shape ops, slices,
//! one-hot rows; gathers are in [`super::gather`]): shape
//! changes share their input's buffer (a row-major tensor keeps its bytes whatever its
//! shape); casts, selects, fills, transposes and slices are maps ([`super::program`]).

use super::elementwise::{map, map_views};
use super::expr::{BinaryOp, Expr, Scalar};
use super::index;
use super::program::View;
use crate::devices::gpu::GpuDevice;
use crate::devices::DeviceTensor;
use crate::graph::TypeShape;
use crate::kernels::cpu::array::concat_runtime;
use crate::kernels::cpu::indexing::row_major_strides;
use crate::kernels::{GpuContext, GpuKernel, KernelError};
use crate::ops::reduce::normalize_axes;
use crate::ops::{Cast, ExpandDims, FillLike, Identity, Reshape, ReshapeLike, Select, Slice};
use crate::ops::{Concat, ConcatGrad, SliceGrad, Squeeze, Transpose};

/// Whether every input is of a dtype GPUs hold.
pub(super) fn held(inputs: &[TypeShape]) -> bool {
    inputs.iter().all(|t| Scalar::of(t.dtype).is_some())
}

/// The same bytes under another shape of as many elements.
pub(super) fn reshaped(x: &DeviceTensor, shape: Vec<usize>) -> Result<DeviceTensor, KernelError> {
    let len: Option<usize> = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if len != Some(x.len()) {
        return Err(KernelError::Message(format!(
            "cannot reshape {:?} ({} elements) to {shape:?}",
            x.shape,
            x.len()
        )));
    }
    Ok(DeviceTensor {
        dtype: x.dtype,
        shape,
        storage: x.storage.clone(),
    })
}

/// Declares the GPU kernel of a shape op: any held dtype, the output a view of input 0.
macro_rules! shape_kernel {
    ($op:ty, |$this:ident, $inputs:ident| $shape:expr) => {
        impl GpuKernel for $op {
            fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
                held(inputs)
            }

            fn compute_gpu(
                &self,
                _: &mut GpuContext,
                $inputs: &[&DeviceTensor],
            ) -> Result<Vec<DeviceTensor>, KernelError> {
                let $this = self;
                let shape: Vec<usize> = $shape;
                Ok(vec![reshaped($inputs[0], shape)?])
            }
        }
    };
}

shape_kernel!(Identity, |_op, inputs| inputs[0].shape.clone());
shape_kernel!(Reshape, |op, inputs| op.resolve(inputs[0].len())?);
shape_kernel!(ReshapeLike, |_op, inputs| inputs[1].shape.clone());
shape_kernel!(ExpandDims, |op, inputs| {
    let axis = normalize_axes(&[op.axis], inputs[0].shape.len() + 1)?[0];
    let mut shape = inputs[0].shape.clone();
    shape.insert(axis, 1);
    shape
});
shape_kernel!(Squeeze, |op, inputs| {
    let x = inputs[0];
    let dims: Vec<Option<usize>> = x.shape.iter().map(|&d| Some(d)).collect();
    let dropped = op.dropped(&dims)?;
    (0..x.shape.len())
        .filter(|a| !dropped.contains(a))
        .map(|a| x.shape[a])
        .collect()
});

impl GpuKernel for Cast {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        held(inputs) && Scalar::of(self.to).is_some()
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let to = Scalar::of(self.to)
            .ok_or_else(|| KernelError::Message(format!("GPUs do not hold {}", self.to)))?;
        Ok(vec![map(gpu, &Expr::cast(to, Expr::input(0)), inputs)?])
    }

    fn elementwise(&self) -> Option<Expr> {
        Some(Expr::cast(Scalar::of(self.to)?, Expr::input(0)))
    }
}

fn select_expr() -> Expr {
    Expr::select(Expr::input(0), Expr::input(1), Expr::input(2))
}

impl GpuKernel for Select {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        let scalars: Option<Vec<Scalar>> = inputs.iter().map(|t| Scalar::of(t.dtype)).collect();
        scalars.is_some_and(|s| select_expr().scalar(&s).is_ok())
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        Ok(vec![map(gpu, &select_expr(), inputs)?])
    }

    fn elementwise(&self) -> Option<Expr> {
        Some(select_expr())
    }
}

impl GpuKernel for FillLike {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        held(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let x = inputs[0];
        let scalar = Scalar::of(x.dtype)
            .ok_or_else(|| KernelError::Message(format!("GPUs do not hold {}", x.dtype)))?;
        // As the CPU converts: `from_f64` of the value.
        let value = match scalar {
            Scalar::F32 => f64::from(self.0 as f32),
            Scalar::I32 => f64::from(self.0 as i32),
            Scalar::Bool => f64::from(u8::from(self.0 != 0.0)),
        };
        let fill = Expr::Literal(scalar, value);
        Ok(vec![map_views(gpu, &fill, &[], &x.shape)?])
    }
}

impl GpuKernel for Transpose {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        held(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let x = inputs[0];
        if !self.check(x.shape.len()) {
            return Err(KernelError::Message(format!(
                "perm {:?} does not fit shape {:?}",
                self.perm, x.shape
            )));
        }
        let in_strides = row_major_strides(&x.shape);
        let shape: Vec<usize> = self.perm.iter().map(|&p| x.shape[p]).collect();
        let view = View {
            offset: 0,
            strides: self.perm.iter().map(|&p| in_strides[p]).collect(),
        };
        Ok(vec![map_views(gpu, &Expr::input(0), &[(x, view)], &shape)?])
    }
}

impl GpuKernel for Slice {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        held(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let x = inputs[0];
        let size = self.resolve(&x.shape)?;
        let strides = row_major_strides(&x.shape);
        let view = View {
            offset: self
                .begin
                .iter()
                .zip(&strides)
                .map(|(b, s)| (b * s) as i64)
                .sum(),
            strides,
        };
        Ok(vec![map_views(gpu, &Expr::input(0), &[(x, view)], &size)?])
    }
}

impl GpuKernel for crate::ops::OneHot {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        inputs.len() == 1 && Scalar::of(inputs[0].dtype) == Some(Scalar::I32)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let indices = inputs[0];
        let rank = indices.shape.len();
        let mut shape = indices.shape.clone();
        shape.push(self.depth);
        // Each index is read along its row; an index outside [0, depth) matches no column
        // and gives a row of zeros, as on the CPU.
        let mut strides = row_major_strides(&indices.shape);
        strides.push(0);
        let view = View { offset: 0, strides };
        let hot = Expr::select(
            Expr::binary(super::expr::BinaryOp::Eq, Expr::input(0), Expr::Coord(rank)),
            Expr::f32(1.0),
            Expr::f32(0.0),
        );
        Ok(vec![map_views(gpu, &hot, &[(indices, view)], &shape)?])
    }
}

fn scalar_of(t: &DeviceTensor) -> Result<Scalar, KernelError> {
    Scalar::of(t.dtype).ok_or_else(|| KernelError::Message(format!("GPUs do not hold {}", t.dtype)))
}

/// The slice's gradient: `dy` where the slice was taken, zeros around it.
impl GpuKernel for SliceGrad {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        held(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let (dy, x) = (inputs[0], inputs[1]);
        let size = self.slice().resolve(&x.shape)?;
        if size != dy.shape {
            return Err(KernelError::Message(format!(
                "dy has shape {:?}, but the slice of {:?} has shape {size:?}",
                dy.shape, x.shape
            )));
        }
        let rank = x.shape.len();
        let c = index::coords(rank);
        let mut valid = index::truth(true);
        let mut inner = Vec::with_capacity(rank);
        for (a, (&b, &n)) in self.begin.iter().zip(&size).enumerate() {
            let begin = index::int(b);
            valid = index::and(
                valid,
                index::within(c[a].clone(), begin.clone(), index::int(b + n)),
            );
            inner.push(index::sub(c[a].clone(), begin));
        }
        let at = index::linear(&inner, &row_major_strides(&dy.shape));
        let zero = Expr::Literal(scalar_of(dy)?, 0.0);
        let expr = index::load_or(0, at, valid, zero);
        Ok(vec![map_views(
            gpu,
            &expr,
            &[(dy, View::unread(rank))],
            &x.shape,
        )?])
    }
}

impl GpuKernel for Concat {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        !inputs.is_empty() && held(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let first = inputs
            .first()
            .ok_or_else(|| KernelError::Message("needs at least one input".into()))?;
        let axis = normalize_axes(&[self.axis], first.shape.len())?[0];
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
        let (joined, _) = concat_runtime(&shapes, axis)?;
        let rank = joined.len();
        let c = index::coords(rank);
        // The last input is read where no earlier one is: a chain of selects from the end.
        let mut expr = Expr::Literal(scalar_of(first)?, 0.0);
        let mut starts = Vec::with_capacity(inputs.len());
        let mut start = 0;
        for t in inputs {
            starts.push(start);
            start += t.shape[axis];
        }
        for (k, t) in inputs.iter().enumerate().rev() {
            let mut local = c.clone();
            local[axis] = index::sub(c[axis].clone(), index::int(starts[k]));
            let at = index::linear(&local, &row_major_strides(&t.shape));
            let end = index::int(starts[k] + t.shape[axis]);
            expr = index::load_or(
                k,
                at,
                Expr::binary(BinaryOp::Lt, c[axis].clone(), end),
                expr,
            );
        }
        let viewed: Vec<(&DeviceTensor, View)> =
            inputs.iter().map(|&t| (t, View::unread(rank))).collect();
        Ok(vec![map_views(gpu, &expr, &viewed, &joined)?])
    }
}

/// The concatenation's gradient: the slice of `dy` that each input became.
impl GpuKernel for ConcatGrad {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        inputs.len() >= 2 && held(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let (dy, xs) = inputs
            .split_first()
            .ok_or_else(|| KernelError::Message("takes dy and the inputs".into()))?;
        let axis = normalize_axes(&[self.axis], dy.shape.len())?[0];
        let shapes: Vec<&[usize]> = xs.iter().map(|t| t.shape.as_slice()).collect();
        let (joined, _) = concat_runtime(&shapes, axis)?;
        if joined != dy.shape {
            return Err(KernelError::Message(format!(
                "dy has shape {:?}, but the inputs join to {joined:?}",
                dy.shape
            )));
        }
        let strides = row_major_strides(&dy.shape);
        let mut start = 0;
        let mut parts = Vec::with_capacity(xs.len());
        for x in xs {
            let view = View {
                offset: (start * strides[axis]) as i64,
                strides: strides.clone(),
            };
            parts.push(map_views(gpu, &Expr::input(0), &[(dy, view)], &x.shape)?);
            start += x.shape[axis];
        }
        Ok(parts)
    }
}
