//! Update kernels of the optimizers: each changes its variables in place.

#[cfg(feature = "engine")]
use super::Context;
use super::{expect_inputs, Attrs, Op};
#[cfg(feature = "engine")]
use super::{KernelError, VariableStore};
use crate::graph::{AttrValue, TypeShape};
#[cfg(feature = "engine")]
use crate::tensor::{Float, Tensor};

/// The update rule of an optimizer, with its hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    GradientDescent {
        learning_rate: f64,
    },
    Momentum {
        learning_rate: f64,
        momentum: f64,
        nesterov: bool,
    },
    Adam {
        learning_rate: f64,
        beta1: f64,
        beta2: f64,
        epsilon: f64,
    },
}

/// Applies one update to variable `var` (and its slot variables) from the gradient input.
/// Adam's second input is the global step before this update.
#[derive(Debug, Clone)]
pub struct ApplyUpdate {
    pub rule: Rule,
    pub var: usize,
    pub var_type: TypeShape,
    /// Slot variables: Momentum's accumulator; Adam's first and second moments.
    pub slots: Vec<usize>,
}

impl Op for ApplyUpdate {
    fn type_name(&self) -> &'static str {
        match self.rule {
            Rule::GradientDescent { .. } => "ApplyGradientDescent",
            Rule::Momentum { .. } => "ApplyMomentum",
            Rule::Adam { .. } => "ApplyAdam",
        }
    }

    fn attrs(&self, name_of: &dyn Fn(usize) -> String) -> Attrs {
        let mut attrs = vec![
            ("var", AttrValue::Str(name_of(self.var))),
            (
                "slots",
                AttrValue::Strs(self.slots.iter().map(|&s| name_of(s)).collect()),
            ),
        ];
        let float = |key, v: f64| (key, AttrValue::Float(v));
        match self.rule {
            Rule::GradientDescent { learning_rate } => {
                attrs.push(float("learning_rate", learning_rate));
            }
            Rule::Momentum {
                learning_rate,
                momentum,
                nesterov,
            } => attrs.extend([
                float("learning_rate", learning_rate),
                float("momentum", momentum),
                ("nesterov", AttrValue::Bool(nesterov)),
            ]),
            Rule::Adam {
                learning_rate,
                beta1,
                beta2,
                epsilon,
            } => attrs.extend([
                float("learning_rate", learning_rate),
                float("beta1", beta1),
                float("beta2", beta2),
                float("epsilon", epsilon),
            ]),
        }
        attrs
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        let wanted = if matches!(self.rule, Rule::Adam { .. }) {
            2
        } else {
            1
        };
        expect_inputs(inputs, wanted)?;
        if inputs[0] != self.var_type && inputs[0].shape.rank() != self.var_type.shape.rank() {
            return Err(format!(
                "gradient is {}, variable is {}",
                inputs[0], self.var_type
            ));
        }
        Ok(vec![])
    }

    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let grad = inputs[0];
        let step = inputs.get(1).and_then(|s| s.scalar_f64()).unwrap_or(0.0);
        float_kernel!(grad.dtype(), T => self.apply::<T>(ctx.variables, grad, step))?;
        Ok(vec![])
    }

    fn is_stateful(&self) -> bool {
        true
    }
}

#[cfg(feature = "engine")]
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
                let t = step + 1.0;
                let lr_t = learning_rate * (1.0 - beta2.powf(t)).sqrt() / (1.0 - beta1.powf(t));
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
