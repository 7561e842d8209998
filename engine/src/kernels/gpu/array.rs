//! GPU kernels of [`crate::ops::array`] and of [`crate::ops::indexing`] (shape ops, slices,
//! one-hot rows; gathers stay on the CPU, which reports an index out of range): shape
//! changes share their input's buffer (a row-major tensor keeps its bytes whatever its
//! shape); casts, selects, fills, transposes and slices are maps ([`super::program`]).

use super::elementwise::{map, map_views};
use super::expr::{Expr, Scalar};
use super::program::View;
use crate::devices::gpu::GpuDevice;
use crate::devices::DeviceTensor;
use crate::graph::TypeShape;
use crate::kernels::cpu::indexing::row_major_strides;
use crate::kernels::{GpuContext, GpuKernel, KernelError};
use crate::ops::reduce::normalize_axes;
use crate::ops::{Cast, ExpandDims, FillLike, Identity, Reshape, ReshapeLike, Select, Slice};
use crate::ops::{Squeeze, Transpose};

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
            offset: self.begin.iter().zip(&strides).map(|(b, s)| b * s).sum(),
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
