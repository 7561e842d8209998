//! GPU kernels of [`crate::ops::debug`]. A check finds the first non-finite element on the
//! GPU and reads back one word, so a checked step waits for its GPU there; only a failing
//! check reads the whole tensor, to say NaN or Inf as the CPU does.

use super::array::reshaped;
use super::elementwise::map_views;
use super::expr::{Expr, UnaryOp};
use super::index::sub;
use super::program::View;
use super::reduce::reduce;
use crate::devices::gpu::GpuDevice;
use crate::devices::{Device, DeviceTensor};
use crate::graph::TypeShape;
use crate::kernels::cpu::debug::non_finite;
use crate::kernels::{GpuContext, GpuKernel, KernelError};
use crate::ops::debug::CheckNumerics;
use crate::ops::{Reduce, ReduceKind};
use crate::tensor::DType;

/// The mark of a finite element: below every `-i` of an index (`len <= i32::MAX`).
const NONE: i32 = i32::MIN + 1;

impl GpuKernel for CheckNumerics {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        inputs.len() == 1 && inputs[0].dtype == DType::F32
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        let x = inputs[0];
        let len = x.len();
        if len == 0 {
            return Ok(vec![x.clone()]);
        }
        if i32::try_from(len).is_err() {
            return Err(KernelError::Message(format!(
                "{len} elements are too many for a GPU check"
            )));
        }
        // `-i` at a NaN or an infinity, NONE elsewhere: the largest marks the first. (Not
        // `len - i`: the program would then be compiled again for every length.)
        let bad = Expr::unary(UnaryOp::NotFinite, Expr::input(0));
        let mark = Expr::select(bad, sub(Expr::i32(0), Expr::Coord(0)), Expr::i32(NONE));
        let flat = reshaped(x, vec![len])?;
        let view = View {
            offset: 0,
            strides: vec![1],
        };
        let marks = map_views(gpu, &mark, &[(&flat, view)], &[len])?;
        let first = Reduce {
            kind: ReduceKind::Max,
            axes: vec![0],
            keep_dims: false,
        };
        let first = reduce(gpu, &first, &marks)
            .ok_or_else(|| KernelError::Message("no GPU maximum of i32".into()))??;
        gpu.recycle(marks);
        let found = gpu.download(&first)?.get_f64(0);
        gpu.recycle(first);
        if found == f64::from(NONE) {
            return Ok(vec![x.clone()]);
        }
        let host = gpu.download(x)?;
        Err(non_finite(self, &host, -found as usize))
    }
}
