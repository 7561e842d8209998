//! GPU kernels, generated from one small description ([`expr`]) and run on the portable GPU
//! device (`crate::devices::gpu`). Not yet registered with the executor: steps still run on
//! the CPU (see DESIGN.md, Devices).

pub mod elementwise;
pub mod expr;
pub mod matmul;
pub mod reduce;
