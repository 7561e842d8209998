//! CPU kernels of [`crate::ops::debug`].

use crate::kernels::{Context, CpuKernel, KernelError};
use crate::ops::debug::*;
use crate::tensor::Tensor;

impl CpuKernel for CheckNumerics {
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let bad = float_kernel!(x.dtype(), T => Ok(x.as_slice::<T>()?.iter().position(|v| !v.is_finite())))?;
        if let Some(index) = bad {
            let kind = if x.get_f64(index).is_nan() {
                "NaN"
            } else {
                "Inf"
            };
            let what = if self.message.is_empty() {
                String::new()
            } else {
                format!("{}: ", self.message)
            };
            return Err(KernelError::NonFinite {
                message: format!("{what}{kind} in the output of '{}'", self.checked),
                index,
            });
        }
        Ok(vec![x.clone()])
    }
}
