//! CPU kernels, one file per op family (as in `crate::ops`), on the host's memory.

pub mod array;
pub mod broadcast;
pub mod conv;
pub mod debug;
pub mod indexing;
pub mod input;
pub mod linalg;
pub mod math;
pub mod nn;
pub mod optimizer;
pub mod pool;
pub mod reduce;
pub mod sparse;
pub mod state;
pub mod transfer;
pub mod window;

use super::KernelTable;
use crate::ops::*;

/// Registers every CPU kernel.
pub(crate) fn register(table: &mut KernelTable) {
    // Sources, state and transfers.
    table.add_cpu::<Placeholder>();
    table.add_cpu::<Const>();
    table.add_cpu::<Variable>();
    table.add_cpu::<Assign>();
    table.add_cpu::<NoOp>();
    table.add_cpu::<crate::ops::transfer::Send>();
    table.add_cpu::<crate::ops::transfer::Recv>();
    table.add_cpu::<crate::ops::optimizer::ApplyUpdate>();
    // Arrays and indexing.
    table.add_cpu::<Cast>();
    table.add_cpu::<Identity>();
    table.add_cpu::<Reshape>();
    table.add_cpu::<ReshapeLike>();
    table.add_cpu::<Select>();
    table.add_cpu::<Transpose>();
    table.add_cpu::<Concat>();
    table.add_cpu::<ConcatGrad>();
    table.add_cpu::<ExpandDims>();
    table.add_cpu::<Squeeze>();
    table.add_cpu::<FillLike>();
    table.add_cpu::<Slice>();
    table.add_cpu::<SliceGrad>();
    table.add_cpu::<Gather>();
    table.add_cpu::<GatherGrad>();
    table.add_cpu::<OneHot>();
    // Math, reductions, linear algebra.
    table.add_cpu::<Binary>();
    table.add_cpu::<Unary>();
    table.add_cpu::<Compare>();
    table.add_cpu::<Reduce>();
    table.add_cpu::<BroadcastLike>();
    table.add_cpu::<SumToLike>();
    table.add_cpu::<ArgMax>();
    table.add_cpu::<MatMul>();
    // Neural networks.
    table.add_cpu::<Activation>();
    table.add_cpu::<ReluGrad>();
    table.add_cpu::<Softmax>();
    table.add_cpu::<SoftmaxCrossEntropy>();
    table.add_cpu::<Conv2D>();
    table.add_cpu::<Conv2DBackpropInput>();
    table.add_cpu::<Conv2DBackpropFilter>();
    table.add_cpu::<MaxPool>();
    table.add_cpu::<MaxPoolGrad>();
    table.add_cpu::<MaxPoolGradGrad>();
    table.add_cpu::<CheckNumerics>();
    // Sparse models.
    table.add_cpu::<UnsortedSegmentSum>();
    table.add_cpu::<SegmentReduce>();
    table.add_cpu::<SegmentMeanGrad>();
    table.add_cpu::<Unique>();
    table.add_cpu::<HashBucket>();
    table.add_cpu::<Scatter>();
    table.add_cpu::<ShardIds>();
    table.add_cpu::<DynamicStitch>();
    table.add_cpu::<WeightedRows>();
    // Input readers.
    table.add_cpu::<ReadBatches>();
}
