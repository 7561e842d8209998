//! CPU kernels of [`crate::ops::linalg`].

use crate::kernels::{Context, CpuKernel, KernelError};
use crate::ops::linalg::*;
use crate::tensor::Tensor;
use gemm::matmul_kernel;
pub(crate) use gemm::{gemm_into, matmul_dims, Mat, MatmulDims};

mod gemm;
mod narrow;

impl CpuKernel for MatMul {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (a, b) = (inputs[0], inputs[1]);
        let out = float_kernel!(a.dtype(), T => matmul_kernel::<T>(ctx, a, b, self.transpose_a, self.transpose_b))?;
        Ok(vec![out])
    }
}
