//! CPU kernels of [`crate::ops::nn`].

use super::math::unary_map;
use crate::kernels::{Context, CpuKernel, KernelError};
use crate::ops::nn::*;
use crate::tensor::DType;
use crate::tensor::{Float, Tensor};

/// Writes softmax (or log-softmax) of each row of `xs` (rows of length `n`) into `out`.
fn softmax_rows<T: Float>(xs: &[T], n: usize, out: &mut [T], log: bool) {
    for (row, dst) in xs.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        let max = row.iter().copied().fold(T::neg_infinity(), T::max);
        let mut sum = T::zero();
        for (o, &v) in dst.iter_mut().zip(row) {
            *o = (v - max).exp();
            sum = sum + *o;
        }
        if log {
            let log_sum = sum.ln();
            for (o, &v) in dst.iter_mut().zip(row) {
                *o = v - max - log_sum;
            }
        } else {
            let inv = T::one() / sum;
            dst.iter_mut().for_each(|o| *o = *o * inv);
        }
    }
}

fn last_dim(t: &Tensor) -> Result<usize, KernelError> {
    match t.shape().last() {
        Some(&n) if n > 0 => Ok(n),
        _ => Err(KernelError::Message(format!(
            "needs a non-empty last axis, got shape {:?}",
            t.shape()
        ))),
    }
}

impl CpuKernel for Activation {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let out = float_kernel!(x.dtype(), T => match self.0 {
            ActivationKind::Relu => unary_map::<T>(ctx, x, |v| if v > 0.0 { v } else { 0.0 }),
            ActivationKind::Sigmoid => unary_map::<T>(ctx, x, |v| 1.0 / (1.0 + (-v).exp())),
            ActivationKind::Tanh => unary_map::<T>(ctx, x, |v| v.tanh()),
        })?;
        Ok(vec![out])
    }
}

impl CpuKernel for ReluGrad {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (dy, y) = (inputs[0], inputs[1]);
        if dy.shape() != y.shape() {
            return Err(KernelError::Message(format!(
                "dy has shape {:?}, y has shape {:?}",
                dy.shape(),
                y.shape()
            )));
        }
        let out = float_kernel!(dy.dtype(), T => {
            let (ds, ys) = (dy.as_slice::<T>()?, y.as_slice::<T>()?);
            let mut out = ctx.pool.alloc::<T>(ds.len());
            for ((o, &d), &v) in out.iter_mut().zip(ds).zip(ys) {
                *o = if v > 0.0 { d } else { 0.0 };
            }
            Tensor::new(dy.shape(), out).map_err(KernelError::from)
        })?;
        Ok(vec![out])
    }
}

impl CpuKernel for Softmax {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let n = last_dim(x)?;
        let out = float_kernel!(x.dtype(), T => {
            let mut out = ctx.pool.alloc::<T>(x.len());
            softmax_rows::<T>(x.as_slice::<T>()?, n, &mut out, self.log);
            Tensor::new(x.shape(), out).map_err(KernelError::from)
        })?;
        Ok(vec![out])
    }
}

impl CpuKernel for SoftmaxCrossEntropy {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (logits, labels) = (inputs[0], inputs[1]);
        let n = last_dim(logits)?;
        let rows = logits.len() / n;
        let sparse_labels: Option<Vec<i64>> = if self.sparse {
            let l = labels.cast(DType::I64).to_vec::<i64>()?;
            if l.len() != rows {
                return Err(KernelError::Message(format!(
                    "labels have shape {:?}, logits have shape {:?}",
                    labels.shape(),
                    logits.shape()
                )));
            }
            if let Some(bad) = l.iter().find(|&&c| c < 0 || c >= n as i64) {
                return Err(KernelError::Message(format!(
                    "label {bad} is out of range for {n} classes"
                )));
            }
            Some(l)
        } else {
            if labels.shape() != logits.shape() {
                return Err(KernelError::Message(format!(
                    "labels have shape {:?}, logits have shape {:?}",
                    labels.shape(),
                    logits.shape()
                )));
            }
            None
        };
        let batch_shape = &logits.shape()[..logits.rank() - 1];
        float_kernel!(logits.dtype(), T => {
            let xs = logits.as_slice::<T>()?;
            let mut log_p = ctx.pool.alloc::<T>(xs.len());
            softmax_rows::<T>(xs, n, &mut log_p, true);
            let mut loss = ctx.pool.alloc::<T>(rows);
            let mut backprop = log_p; // becomes softmax - labels, in place
            for r in 0..rows {
                let row = &mut backprop[r * n..(r + 1) * n];
                let mut l = 0.0 as T;
                match &sparse_labels {
                    Some(classes) => {
                        let c = classes[r] as usize;
                        l = -row[c];
                        row.iter_mut().for_each(|v| *v = v.exp());
                        row[c] -= 1.0;
                    }
                    None => {
                        let ys = &labels.as_slice::<T>()?[r * n..(r + 1) * n];
                        // d loss / d logits = softmax * sum(labels) - labels: the usual
                        // softmax - labels when the labels are a distribution, and exact
                        // when they are not.
                        let total: T = ys.iter().copied().sum();
                        for (v, &y) in row.iter_mut().zip(ys) {
                            if y != 0.0 {
                                l -= y * *v;
                            }
                            *v = v.exp() * total - y;
                        }
                    }
                }
                loss[r] = l;
            }
            Ok(vec![
                Tensor::new(batch_shape, loss)?,
                Tensor::new(logits.shape(), backprop)?,
            ])
        })
    }
}
