//! CPU kernels of [`crate::ops::optimizer`].

use crate::kernels::VariableStore;
use crate::kernels::{Context, CpuKernel, KernelError};
use crate::ops::optimizer::*;
use crate::tensor::{Float, Tensor};

impl ApplyUpdate {
    fn apply<T: Float>(
        &self,
        vars: &mut VariableStore,
        grad: &Tensor,
        step: f64,
    ) -> Result<(), KernelError> {
        let g = grad.as_slice::<T>()?;
        let mut var = vars.take(self.var)?;
        let mut slots = Vec::with_capacity(self.slots.len());
        for &s in &self.slots {
            match vars.take(s) {
                Ok(t) => slots.push(t),
                Err(e) => {
                    vars.set(self.var, var);
                    for (t, &id) in slots.into_iter().zip(&self.slots) {
                        vars.set(id, t);
                    }
                    return Err(e);
                }
            }
        }
        let result = self.update::<T>(&mut var, &mut slots, g, step);
        vars.set(self.var, var);
        for (t, &id) in slots.into_iter().zip(&self.slots) {
            vars.set(id, t);
        }
        result
    }

    fn update<T: Float>(
        &self,
        var: &mut Tensor,
        slots: &mut [Tensor],
        g: &[T],
        step: f64,
    ) -> Result<(), KernelError> {
        if var.len() != g.len() {
            return Err(KernelError::Message(format!(
                "gradient has {} elements, variable has shape {:?}",
                g.len(),
                var.shape()
            )));
        }
        let c = |v: f64| T::from_f64(v);
        match self.rule {
            Rule::GradientDescent { learning_rate } => {
                let lr = c(learning_rate);
                for (w, &d) in var.as_mut_slice::<T>()?.iter_mut().zip(g) {
                    *w = *w - lr * d;
                }
            }
            Rule::Momentum {
                learning_rate,
                momentum,
                nesterov,
            } => {
                let (lr, mu) = (c(learning_rate), c(momentum));
                let accum = slots[0].as_mut_slice::<T>()?;
                for ((w, a), &d) in var.as_mut_slice::<T>()?.iter_mut().zip(accum).zip(g) {
                    *a = mu * *a + d;
                    *w = *w
                        - if nesterov {
                            lr * (d + mu * *a)
                        } else {
                            lr * *a
                        };
                }
            }
            Rule::Adam {
                learning_rate,
                beta1,
                beta2,
                epsilon,
            } => {
                let lr_t = adam_step_size(learning_rate, beta1, beta2, step);
                let (lr_t, b1, b2, eps) = (c(lr_t), c(beta1), c(beta2), c(epsilon));
                let (m_slot, v_slot) = slots.split_at_mut(1);
                let m = m_slot[0].as_mut_slice::<T>()?;
                let v = v_slot[0].as_mut_slice::<T>()?;
                let w = var.as_mut_slice::<T>()?;
                for i in 0..g.len() {
                    m[i] = b1 * m[i] + (T::one() - b1) * g[i];
                    v[i] = b2 * v[i] + (T::one() - b2) * g[i] * g[i];
                    w[i] = w[i] - lr_t * m[i] / (v[i].sqrt() + eps);
                }
            }
        }
        Ok(())
    }
}

impl CpuKernel for ApplyUpdate {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let grad = inputs[0];
        let step = inputs.get(1).and_then(|s| s.scalar_f64()).unwrap_or(0.0);
        float_kernel!(grad.dtype(), T => self.apply::<T>(ctx.variables, grad, step))?;
        Ok(vec![])
    }
}
