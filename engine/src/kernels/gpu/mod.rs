//! GPU kernels on the portable GPU device (`crate::devices::gpu`), generated from one small
//! description ([`expr`], [`program`]) that emits WGSL and CUDA C alike: maps with
//! broadcasting, views and indexed loads, reductions, and chains of them (softmax,
//! cross-entropy, convolutions through im2col, pools, gathers); beside them a tiled matrix
//! product. Ops without one here run on the CPU when their node asks for a GPU (soft
//! placement).

pub mod array;
pub mod conv;
pub mod debug;
pub mod elementwise;
pub mod expr;
pub mod gather;
pub mod index;
pub mod matmul;
pub mod nn;
pub mod pool;
pub mod program;
pub mod reduce;
pub mod state;
pub(crate) mod window;

use super::KernelTable;
use crate::graph::TypeShape;
use crate::ops::*;
use crate::tensor::DType;

/// Registers every GPU kernel.
pub(crate) fn register(table: &mut KernelTable) {
    // Variables and their updates.
    table.add_gpu::<Variable>();
    table.add_gpu::<Assign>();
    table.add_gpu::<crate::ops::optimizer::ApplyUpdate>();
    table.add_gpu::<NoOp>();
    // Arrays and indexing.
    table.add_gpu::<Cast>();
    table.add_gpu::<Identity>();
    table.add_gpu::<Reshape>();
    table.add_gpu::<ReshapeLike>();
    table.add_gpu::<Select>();
    table.add_gpu::<Transpose>();
    table.add_gpu::<ExpandDims>();
    table.add_gpu::<Squeeze>();
    table.add_gpu::<FillLike>();
    table.add_gpu::<Slice>();
    table.add_gpu::<SliceGrad>();
    table.add_gpu::<Concat>();
    table.add_gpu::<ConcatGrad>();
    table.add_gpu::<OneHot>();
    table.add_gpu::<Gather>();
    table.add_gpu::<GatherGrad>();
    table.add_gpu::<UnsortedSegmentSum>();
    // Math, reductions, linear algebra.
    table.add_gpu::<Binary>();
    table.add_gpu::<Unary>();
    table.add_gpu::<Compare>();
    table.add_gpu::<Reduce>();
    table.add_gpu::<ArgMax>();
    table.add_gpu::<BroadcastLike>();
    table.add_gpu::<SumToLike>();
    table.add_gpu::<MatMul>();
    // Neural networks.
    table.add_gpu::<Activation>();
    table.add_gpu::<ReluGrad>();
    table.add_gpu::<Softmax>();
    table.add_gpu::<SoftmaxCrossEntropy>();
    table.add_gpu::<Conv2D>();
    table.add_gpu::<Conv2DBackpropInput>();
    table.add_gpu::<Conv2DBackpropFilter>();
    table.add_gpu::<MaxPool>();
    table.add_gpu::<MaxPoolGrad>();
    table.add_gpu::<MaxPoolGradGrad>();
    // Debugging.
    table.add_gpu::<crate::ops::debug::CheckNumerics>();
}

/// The GPU buffer of a tensor a kernel binds; an error for one left on the host.
pub(crate) fn buffer(
    t: &crate::devices::DeviceTensor,
) -> Result<&crate::devices::gpu::GpuBuffer, super::KernelError> {
    match &t.storage {
        crate::devices::Storage::Gpu(b) => Ok(b),
        crate::devices::Storage::Host(_) => Err(super::KernelError::Message(
            "a tensor a GPU kernel binds is on the host".into(),
        )),
    }
}

/// Whether every input is f32 (the kernels of floats only).
fn all_f32(inputs: &[TypeShape]) -> bool {
    inputs.iter().all(|t| t.dtype == DType::F32)
}
