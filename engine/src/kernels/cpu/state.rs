//! CPU kernels of [`crate::ops::state`].

use super::math::Arith;
use crate::kernels::{Context, CpuKernel, KernelError};
use crate::ops::state::*;
use crate::tensor::Tensor;

impl CpuKernel for Placeholder {
    fn compute(&self, _: &mut Context, _: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        // The executor reports a missing feed by name before any kernel runs.
        Err(KernelError::Message("placeholder was not fed".into()))
    }
}

impl CpuKernel for Const {
    fn compute(&self, _: &mut Context, _: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        Ok(vec![self.value.clone()])
    }
}

impl CpuKernel for Variable {
    fn compute(&self, ctx: &mut Context, _: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        Ok(vec![ctx.variables.host(ctx.node)?.clone()])
    }
}

impl CpuKernel for Assign {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let value = inputs[0];
        if self.kind == AssignKind::Set {
            if !self.var_type.shape.accepts(value.shape()) {
                return Err(KernelError::Message(format!(
                    "variable has shape {}, value has shape {:?}",
                    self.var_type.shape,
                    value.shape()
                )));
            }
            ctx.variables.set(self.var, value.clone());
            return Ok(vec![value.clone()]);
        }
        let var = ctx.variables.get_mut(self.var)?;
        if var.shape() != value.shape() && value.len() != 1 {
            return Err(KernelError::Message(format!(
                "variable has shape {:?}, value has shape {:?}",
                var.shape(),
                value.shape()
            )));
        }
        let add = self.kind == AssignKind::Add;
        numeric_kernel!(var.dtype(), T => {
            let src = value.as_slice::<T>()?;
            let dst = var.as_mut_slice::<T>()?;
            let step = |o: &mut T, v: T| {
                *o = if add { o.add_wrapping(v) } else { o.sub_wrapping(v) }
            };
            if src.len() == 1 {
                dst.iter_mut().for_each(|o| step(o, src[0]));
            } else {
                dst.iter_mut().zip(src).for_each(|(o, &v)| step(o, v));
            }
            Ok::<(), KernelError>(())
        })?;
        Ok(vec![var.clone()])
    }
}

impl CpuKernel for NoOp {
    fn compute(&self, _: &mut Context, _: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        Ok(vec![])
    }
}
