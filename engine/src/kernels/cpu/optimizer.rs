//! CPU kernels of [`crate::ops::optimizer`].

use super::indexing::{checked_rows, index_values};
use crate::kernels::VariableStore;
use crate::kernels::{Context, CpuKernel, KernelError};
use crate::ops::optimizer::*;
use crate::tensor::{Float, Tensor};
use std::collections::HashMap;

/// The hyper-parameters of one step, in the variable's precision.
struct Coefficients<T> {
    rule: Rule,
    /// Adam's step size with the bias corrections of this step folded in.
    adam_step: T,
}

impl<T: Float> Coefficients<T> {
    fn new(rule: &Rule, step: f64) -> Self {
        let adam_step = match *rule {
            Rule::Adam {
                learning_rate,
                beta1,
                beta2,
                ..
            } => adam_step_size(learning_rate, beta1, beta2, step),
            _ => 0.0,
        };
        Coefficients {
            rule: rule.clone(),
            adam_step: T::from_f64(adam_step),
        }
    }

    /// One update of elements `w` (and the same elements of the slots) by gradient `g`: the
    /// whole variable for a dense update, one row for a sparse one.
    fn update(&self, w: &mut [T], slots: &mut [&mut [T]], g: &[T]) {
        let c = |v: f64| T::from_f64(v);
        match self.rule {
            Rule::GradientDescent { learning_rate } => {
                let lr = c(learning_rate);
                for (w, &d) in w.iter_mut().zip(g) {
                    *w = *w - lr * d;
                }
            }
            Rule::Momentum {
                learning_rate,
                momentum,
                nesterov,
            } => {
                let (lr, mu) = (c(learning_rate), c(momentum));
                for ((w, a), &d) in w.iter_mut().zip(slots[0].iter_mut()).zip(g) {
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
                beta1,
                beta2,
                epsilon,
                ..
            } => {
                let (b1, b2, eps) = (c(beta1), c(beta2), c(epsilon));
                let lr_t = self.adam_step;
                let [m, v] = slots else { return };
                for i in 0..g.len() {
                    m[i] = b1 * m[i] + (T::one() - b1) * g[i];
                    v[i] = b2 * v[i] + (T::one() - b2) * g[i] * g[i];
                    w[i] = w[i] - lr_t * m[i] / (v[i].sqrt() + eps);
                }
            }
            Rule::Adagrad { learning_rate, .. } => {
                let lr = c(learning_rate);
                for ((w, a), &d) in w.iter_mut().zip(slots[0].iter_mut()).zip(g) {
                    *a = *a + d * d;
                    *w = *w - lr * d / a.sqrt();
                }
            }
            Rule::Ftrl {
                learning_rate,
                learning_rate_power,
                l1,
                l2,
                ..
            } => {
                let (lr, l1, l2) = (c(learning_rate), c(l1), c(l2));
                let power = c(-learning_rate_power);
                let [accum, linear] = slots else { return };
                for i in 0..g.len() {
                    let old = accum[i];
                    let new = old + g[i] * g[i];
                    let sigma = (new.powf(power) - old.powf(power)) / lr;
                    linear[i] = linear[i] + g[i] - sigma * w[i];
                    let quadratic = new.powf(power) / lr + c(2.0) * l2;
                    let l = linear[i];
                    w[i] = if l.abs() > l1 {
                        (l.signum() * l1 - l) / quadratic
                    } else {
                        T::zero()
                    };
                    accum[i] = new;
                }
            }
        }
    }
}

impl ApplyUpdate {
    fn apply<T: Float>(
        &self,
        vars: &mut VariableStore,
        grad: &Tensor,
        indices: Option<&Tensor>,
        step: f64,
    ) -> Result<(), KernelError> {
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
        let result = match indices {
            None => self.update_dense::<T>(&mut var, &mut slots, grad, step),
            Some(indices) => self.update_rows::<T>(&mut var, &mut slots, grad, indices, step),
        };
        vars.set(self.var, var);
        for (t, &id) in slots.into_iter().zip(&self.slots) {
            vars.set(id, t);
        }
        result
    }

    fn update_dense<T: Float>(
        &self,
        var: &mut Tensor,
        slots: &mut [Tensor],
        grad: &Tensor,
        step: f64,
    ) -> Result<(), KernelError> {
        let g = grad.as_slice::<T>()?;
        if var.len() != g.len() {
            return Err(KernelError::Message(format!(
                "gradient has {} elements, variable has shape {:?}",
                g.len(),
                var.shape()
            )));
        }
        let mut slot_data = slot_slices::<T>(slots, g.len())?;
        let mut slot_refs: Vec<&mut [T]> = slot_data.iter_mut().map(|s| &mut **s).collect();
        Coefficients::new(&self.rule, step).update(var.as_mut_slice::<T>()?, &mut slot_refs, g);
        Ok(())
    }

    /// A sparse update: the rows named by `indices`, each once, with the gradients of
    /// repeated indices summed in the order given (as the dense gradient adds them).
    fn update_rows<T: Float>(
        &self,
        var: &mut Tensor,
        slots: &mut [Tensor],
        values: &Tensor,
        indices: &Tensor,
        step: f64,
    ) -> Result<(), KernelError> {
        let Some((&rows, rest)) = var.shape().split_first() else {
            return Err(KernelError::Message(
                "a sparse update needs a variable of rank 1 or more".into(),
            ));
        };
        let inner: usize = rest.iter().product();
        let picked = checked_rows(&index_values(indices)?, rows)?;
        let g = values.as_slice::<T>()?;
        let want = picked.len().checked_mul(inner);
        let lead = values.shape().get(..indices.shape().len());
        if lead != Some(indices.shape()) || want != Some(g.len()) {
            return Err(KernelError::Message(format!(
                "sparse gradient has shape {:?} with indices of shape {:?}: rows of the \
                 variable, of shape {:?}, take one row of {inner} elements per index",
                values.shape(),
                indices.shape(),
                var.shape()
            )));
        }
        // Each row once, in order of first appearance, its gradients summed.
        let mut order: Vec<usize> = Vec::new();
        let mut position: HashMap<usize, usize> = HashMap::new();
        let mut summed: Vec<T> = Vec::new();
        for (j, &row) in picked.iter().enumerate() {
            let src = &g[j * inner..(j + 1) * inner];
            match position.get(&row) {
                Some(&p) => {
                    for (s, &d) in summed[p * inner..(p + 1) * inner].iter_mut().zip(src) {
                        *s = *s + d;
                    }
                }
                None => {
                    position.insert(row, order.len());
                    order.push(row);
                    summed.extend_from_slice(src);
                }
            }
        }
        let len = var.len();
        let mut slot_data = slot_slices::<T>(slots, len)?;
        let w = var.as_mut_slice::<T>()?;
        let coefficients = Coefficients::new(&self.rule, step);
        for (p, &row) in order.iter().enumerate() {
            let range = row * inner..(row + 1) * inner;
            let mut row_slots: Vec<&mut [T]> = slot_data
                .iter_mut()
                .map(|s| &mut s[range.clone()])
                .collect();
            let grad = &summed[p * inner..(p + 1) * inner];
            coefficients.update(&mut w[range], &mut row_slots, grad);
        }
        Ok(())
    }
}

/// The slots' elements, each checked to hold as many as the variable.
fn slot_slices<T: Float>(slots: &mut [Tensor], len: usize) -> Result<Vec<&mut [T]>, KernelError> {
    slots
        .iter_mut()
        .map(|s| {
            let shape = s.shape().to_vec();
            let data = s.as_mut_slice::<T>()?;
            if data.len() != len {
                return Err(KernelError::Message(format!(
                    "a slot has shape {shape:?}, not the variable's {len} elements"
                )));
            }
            Ok(data)
        })
        .collect()
}

impl CpuKernel for ApplyUpdate {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let grad = inputs[0];
        let indices = self.sparse.then(|| inputs.get(1).copied()).flatten();
        if self.sparse && indices.is_none() {
            return Err(KernelError::Message(
                "a sparse update takes rows and their indices".into(),
            ));
        }
        let step_input = 1 + usize::from(self.sparse);
        let step = (inputs.get(step_input)).and_then(|s| s.scalar_f64());
        let step = step.unwrap_or(0.0);
        float_kernel!(grad.dtype(), T => self.apply::<T>(ctx.variables, grad, indices, step))?;
        Ok(vec![])
    }
}
