//! CPU kernels of [`crate::ops::debug`].

use crate::kernels::{Context, CpuKernel, KernelError};
use crate::ops::debug::*;
use crate::tensor::Tensor;

impl CpuKernel for CheckNumerics {
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let bad = float_kernel!(x.dtype(), T => Ok(x.as_slice::<T>()?.iter().position(|v| !v.is_finite())))?;
        match bad {
            Some(index) => Err(non_finite(self, x, index)),
            None => Ok(vec![x.clone()]),
        }
    }
}

/// The error for the first non-finite element of `x`, at `index`.
pub(crate) fn non_finite(op: &CheckNumerics, x: &Tensor, index: usize) -> KernelError {
    let kind = if x.get_f64(index).is_nan() {
        "NaN"
    } else {
        "Inf"
    };
    let what = if op.message.is_empty() {
        String::new()
    } else {
        format!("{}: ", op.message)
    };
    KernelError::NonFinite {
        message: format!("{what}{kind} in the output of '{}'", op.checked),
        index,
    }
}
