//! GPU kernels of [`crate::ops::state`] and [`crate::ops::optimizer`]: variables read and
//! written where they live, on the GPU of their node. An update writes a new buffer and the
//! variable takes it, so a value read earlier in the step stays as it was read.

use super::array::{held, reshaped};
use super::elementwise::map;
use super::expr::{BinaryOp, Expr, Scalar, UnaryOp};
use super::index::{add, mul, sub};
use crate::devices::gpu::GpuDevice;
use crate::devices::{Device, DeviceTensor};
use crate::graph::TypeShape;
use crate::kernels::{GpuContext, GpuKernel, KernelError};
use crate::ops::optimizer::{adam_step_size, ApplyUpdate, Rule};
use crate::ops::state::{Assign, AssignKind, Variable};
use crate::tensor::{DType, Tensor};

impl GpuKernel for Variable {
    fn runs_on_gpu(&self, _: &[TypeShape]) -> bool {
        Scalar::of(self.dtype).is_some()
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        _: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        Ok(vec![ctx.variables.on_gpu(ctx.node, ctx.gpu)?])
    }
}

impl GpuKernel for Assign {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        held(inputs)
            && Scalar::of(self.var_type.dtype).is_some()
            && inputs
                .first()
                .is_some_and(|v| v.dtype == self.var_type.dtype)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let value = inputs[0];
        if self.kind == AssignKind::Set {
            if !self.var_type.shape.accepts(&value.shape) {
                return Err(KernelError::Message(format!(
                    "variable has shape {}, value has shape {:?}",
                    self.var_type.shape, value.shape
                )));
            }
            // Kernels never write their inputs, so the variable may share the value's buffer.
            ctx.variables.set_gpu(self.var, ctx.gpu, value.clone());
            return Ok(vec![value.clone()]);
        }
        let var = ctx.variables.on_gpu(self.var, ctx.gpu)?;
        let value = match value.len() {
            1 => reshaped(value, Vec::new())?,
            _ if value.shape == var.shape => value.clone(),
            _ => {
                return Err(KernelError::Message(format!(
                    "variable has shape {:?}, value has shape {:?}",
                    var.shape, value.shape
                )))
            }
        };
        let op = match self.kind {
            AssignKind::Sub => BinaryOp::Sub,
            _ => BinaryOp::Add,
        };
        let gpu: &GpuDevice = ctx.gpu;
        let updated = map(
            gpu,
            &Expr::binary(op, Expr::input(0), Expr::input(1)),
            &[&var, &value],
        )?;
        ctx.variables.set_gpu(self.var, ctx.gpu, updated.clone());
        Ok(vec![updated])
    }
}

fn c(v: f32) -> Expr {
    Expr::f32(v)
}

/// The updates in f32, each step in the CPU kernel's order and precision (hyper-parameters
/// rounded to f32 first, as `T::from_f64` does there).
impl GpuKernel for ApplyUpdate {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        // Sparse updates and FTRL run on the host.
        let rule = !matches!(self.rule, Rule::Ftrl { .. });
        !self.sparse
            && rule
            && self.var_type.dtype == DType::F32
            && inputs.first().is_some_and(|g| g.dtype == DType::F32)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let grad = inputs[0];
        let gpu: &GpuDevice = ctx.gpu;
        let var = ctx.variables.on_gpu(self.var, ctx.gpu)?;
        if var.len() != grad.len() {
            return Err(KernelError::Message(format!(
                "gradient has {} elements, variable has shape {:?}",
                grad.len(),
                var.shape
            )));
        }
        let grad = reshaped(grad, var.shape.clone())?;
        let mut slots = Vec::with_capacity(self.slots.len());
        for &s in &self.slots {
            slots.push(ctx.variables.on_gpu(s, ctx.gpu)?);
        }
        let f = |v: f64| v as f32;
        match self.rule {
            Rule::GradientDescent { learning_rate } => {
                let w = map(
                    gpu,
                    &sub(Expr::input(0), mul(c(f(learning_rate)), Expr::input(1))),
                    &[&var, &grad],
                )?;
                ctx.variables.set_gpu(self.var, ctx.gpu, w);
            }
            Rule::Momentum {
                learning_rate,
                momentum,
                nesterov,
            } => {
                let (lr, mu) = (f(learning_rate), f(momentum));
                let accum = map(
                    gpu,
                    &add(mul(c(mu), Expr::input(0)), Expr::input(1)),
                    &[&slots[0], &grad],
                )?;
                // Inputs: w, a (new), g.
                let step = if nesterov {
                    mul(c(lr), add(Expr::input(2), mul(c(mu), Expr::input(1))))
                } else {
                    mul(c(lr), Expr::input(1))
                };
                let w = map(gpu, &sub(Expr::input(0), step), &[&var, &accum, &grad])?;
                ctx.variables.set_gpu(self.slots[0], ctx.gpu, accum);
                ctx.variables.set_gpu(self.var, ctx.gpu, w);
            }
            Rule::Adam {
                learning_rate,
                beta1,
                beta2,
                epsilon,
            } => {
                let step = match inputs.get(1) {
                    Some(t) => match &t.storage {
                        crate::devices::Storage::Host(s) => s.scalar_f64().unwrap_or(0.0),
                        crate::devices::Storage::Gpu(_) => {
                            return Err(KernelError::Message(
                                "Adam's step count must stay on the host".into(),
                            ))
                        }
                    },
                    None => 0.0,
                };
                let lr_t = adam_step_size(learning_rate, beta1, beta2, step);
                let (b1, b2) = (f(beta1), f(beta2));
                let m = map(
                    gpu,
                    &add(mul(c(b1), Expr::input(0)), mul(c(1.0 - b1), Expr::input(1))),
                    &[&slots[0], &grad],
                )?;
                let v = map(
                    gpu,
                    &add(
                        mul(c(b2), Expr::input(0)),
                        mul(mul(c(1.0 - b2), Expr::input(1)), Expr::input(1)),
                    ),
                    &[&slots[1], &grad],
                )?;
                // Inputs: w, m, v, and the step size, which changes every step: read from a
                // buffer, not written into the program, so one program serves every step.
                let step_size = gpu.upload(&Tensor::scalar(f(lr_t)))?;
                let ratio = Expr::binary(
                    BinaryOp::Div,
                    mul(Expr::load(3, Expr::i32(0)), Expr::input(1)),
                    add(Expr::unary(UnaryOp::Sqrt, Expr::input(2)), c(f(epsilon))),
                );
                let w = map(
                    gpu,
                    &sub(Expr::input(0), ratio),
                    &[&var, &m, &v, &step_size],
                )?;
                ctx.variables.set_gpu(self.slots[0], ctx.gpu, m);
                ctx.variables.set_gpu(self.slots[1], ctx.gpu, v);
                ctx.variables.set_gpu(self.var, ctx.gpu, w);
            }
            Rule::Adagrad { learning_rate, .. } => {
                let accum = map(
                    gpu,
                    &add(Expr::input(0), mul(Expr::input(1), Expr::input(1))),
                    &[&slots[0], &grad],
                )?;
                // Inputs: w, a (new), g; the CPU kernel's order: lr * g, then / sqrt(a).
                let step = Expr::binary(
                    BinaryOp::Div,
                    mul(c(f(learning_rate)), Expr::input(2)),
                    Expr::unary(UnaryOp::Sqrt, Expr::input(1)),
                );
                let w = map(gpu, &sub(Expr::input(0), step), &[&var, &accum, &grad])?;
                ctx.variables.set_gpu(self.slots[0], ctx.gpu, accum);
                ctx.variables.set_gpu(self.var, ctx.gpu, w);
            }
            Rule::Ftrl { .. } => {
                return Err(KernelError::Message(
                    "FTRL updates run on the host, not the GPU".into(),
                ))
            }
        }
        Ok(vec![])
    }
}

/// Groups of ops (a train op's `group`) run wherever their node is placed.
impl GpuKernel for crate::ops::state::NoOp {
    fn runs_on_gpu(&self, _: &[TypeShape]) -> bool {
        true
    }

    fn compute_gpu(
        &self,
        _: &mut GpuContext,
        _: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        Ok(vec![])
    }
}
