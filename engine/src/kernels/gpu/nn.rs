//! GPU kernels of [`crate::ops::nn`]: activations are maps; softmax and cross-entropy are
//! chains of reductions and maps over the last axis, each step the CPU kernel's own formula
//! (the row maximum subtracted first, so large logits do not overflow).

use super::all_f32;
use super::elementwise::map;
use super::expr::{BinaryOp, Expr, UnaryOp};
use super::reduce::reduce;
use crate::devices::gpu::GpuDevice;
use crate::devices::DeviceTensor;
use crate::graph::TypeShape;
use crate::kernels::{GpuContext, GpuKernel, KernelError};
use crate::ops::nn::{Activation, ActivationKind, ReluGrad, Softmax, SoftmaxCrossEntropy};
use crate::ops::{Reduce, ReduceKind};

fn activation(kind: ActivationKind) -> Expr {
    match kind {
        // NaN gives 0, as `if v > 0 { v } else { 0 }` on the CPU.
        ActivationKind::Relu => Expr::select(
            Expr::binary(BinaryOp::Gt, Expr::input(0), Expr::f32(0.0)),
            Expr::input(0),
            Expr::f32(0.0),
        ),
        ActivationKind::Sigmoid => Expr::binary(
            BinaryOp::Div,
            Expr::f32(1.0),
            Expr::binary(
                BinaryOp::Add,
                Expr::f32(1.0),
                Expr::unary(UnaryOp::Exp, Expr::unary(UnaryOp::Neg, Expr::input(0))),
            ),
        ),
        ActivationKind::Tanh => Expr::unary(UnaryOp::Tanh, Expr::input(0)),
    }
}

impl GpuKernel for Activation {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        all_f32(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        Ok(vec![map(gpu, &activation(self.0), inputs)?])
    }

    fn elementwise(&self) -> Option<Expr> {
        Some(activation(self.0))
    }
}

impl GpuKernel for ReluGrad {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        all_f32(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let (dy, y) = (inputs[0], inputs[1]);
        if dy.shape != y.shape {
            return Err(KernelError::Message(format!(
                "dy has shape {:?}, y has shape {:?}",
                dy.shape, y.shape
            )));
        }
        Ok(vec![map(gpu, &relu_pass(), inputs)?])
    }

    fn elementwise(&self) -> Option<Expr> {
        Some(relu_pass())
    }
}

/// `dy` where `y > 0`, else 0 (inputs `dy`, `y`).
fn relu_pass() -> Expr {
    Expr::select(
        Expr::binary(BinaryOp::Gt, Expr::input(1), Expr::f32(0.0)),
        Expr::input(0),
        Expr::f32(0.0),
    )
}

/// A reduction of `t` over its last axis, kept as an axis of 1 (or dropped).
fn over_rows(
    gpu: &GpuDevice,
    kind: ReduceKind,
    t: &DeviceTensor,
    keep_dims: bool,
) -> Result<DeviceTensor, KernelError> {
    let op = Reduce {
        kind,
        axes: vec![-1],
        keep_dims,
    };
    reduce(gpu, &op, t).unwrap_or_else(|| {
        Err(KernelError::Message(format!(
            "no GPU reduction of {}",
            t.dtype
        )))
    })
}

/// The rows' maxima and the sums of `exp(x - max)`, both shaped `[..., 1]`.
fn row_stats(
    gpu: &GpuDevice,
    logits: &DeviceTensor,
) -> Result<(DeviceTensor, DeviceTensor), KernelError> {
    match logits.shape.last() {
        Some(&n) if n > 0 => {}
        _ => {
            return Err(KernelError::Message(format!(
                "needs a non-empty last axis, got shape {:?}",
                logits.shape
            )))
        }
    }
    let max = over_rows(gpu, ReduceKind::Max, logits, true)?;
    let shifted = Expr::unary(
        UnaryOp::Exp,
        Expr::binary(BinaryOp::Sub, Expr::input(0), Expr::input(1)),
    );
    let exps = map(gpu, &shifted, &[logits, &max])?;
    let sums = over_rows(gpu, ReduceKind::Sum, &exps, true)?;
    gpu.recycle(exps);
    Ok((max, sums))
}

/// `x - max - log(sum)`: the log-probabilities, from inputs (logits, max, sum).
fn log_probabilities() -> Expr {
    Expr::binary(
        BinaryOp::Sub,
        Expr::binary(BinaryOp::Sub, Expr::input(0), Expr::input(1)),
        Expr::unary(UnaryOp::Log, Expr::input(2)),
    )
}

impl GpuKernel for Softmax {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        all_f32(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let logits = inputs[0];
        let (max, sums) = row_stats(gpu, logits)?;
        let value = if self.log {
            log_probabilities()
        } else {
            // exp(x - max) * (1 / sum), as the CPU scales each row.
            Expr::binary(
                BinaryOp::Mul,
                Expr::unary(
                    UnaryOp::Exp,
                    Expr::binary(BinaryOp::Sub, Expr::input(0), Expr::input(1)),
                ),
                Expr::binary(BinaryOp::Div, Expr::f32(1.0), Expr::input(2)),
            )
        };
        let out = map(gpu, &value, &[logits, &max, &sums])?;
        gpu.recycle(max);
        gpu.recycle(sums);
        Ok(vec![out])
    }
}

/// Dense labels only: sparse ones are checked against the class count on the CPU, which
/// names a label out of range.
impl GpuKernel for SoftmaxCrossEntropy {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        !self.sparse && all_f32(inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let (logits, labels) = (inputs[0], inputs[1]);
        if self.sparse || labels.shape != logits.shape || labels.dtype != logits.dtype {
            return Err(KernelError::Message(format!(
                "labels have shape {:?}, logits have shape {:?}",
                labels.shape, logits.shape
            )));
        }
        let (max, sums) = row_stats(gpu, logits)?;
        let log_p = map(gpu, &log_probabilities(), &[logits, &max, &sums])?;
        gpu.recycle(max);
        gpu.recycle(sums);
        // loss = -sum(labels * log_p) over the labels that are not 0 (so a 0 label times a
        // -inf log-probability adds nothing, as on the CPU).
        let term = Expr::select(
            Expr::binary(BinaryOp::Ne, Expr::input(1), Expr::f32(0.0)),
            Expr::unary(
                UnaryOp::Neg,
                Expr::binary(BinaryOp::Mul, Expr::input(1), Expr::input(0)),
            ),
            Expr::f32(0.0),
        );
        let terms = map(gpu, &term, &[&log_p, labels])?;
        let loss = over_rows(gpu, ReduceKind::Sum, &terms, false)?;
        gpu.recycle(terms);
        // d loss / d logits = softmax * sum(labels) - labels.
        let totals = over_rows(gpu, ReduceKind::Sum, labels, true)?;
        let backprop = Expr::binary(
            BinaryOp::Sub,
            Expr::binary(
                BinaryOp::Mul,
                Expr::unary(UnaryOp::Exp, Expr::input(0)),
                Expr::input(2),
            ),
            Expr::input(1),
        );
        let dlogits = map(gpu, &backprop, &[&log_p, labels, &totals])?;
        gpu.recycle(log_p);
        gpu.recycle(totals);
        Ok(vec![loss, dlogits])
    }
}
