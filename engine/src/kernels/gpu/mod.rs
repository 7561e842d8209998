//! GPU kernels on the portable GPU device (`crate::devices::gpu`): elementwise ones generated
//! from one small description ([`expr`]), reductions and a tiled matrix product. Ops without
//! one here run on the CPU when their node asks for a GPU (soft placement).

pub mod elementwise;
pub mod expr;
pub mod matmul;
pub mod reduce;

use super::KernelTable;
use crate::ops::{Binary, Compare, MatMul, Reduce, Unary};

/// Registers every GPU kernel.
pub(crate) fn register(table: &mut KernelTable) {
    table.add_gpu::<Binary>();
    table.add_gpu::<Unary>();
    table.add_gpu::<Compare>();
    table.add_gpu::<Reduce>();
    table.add_gpu::<MatMul>();
}
