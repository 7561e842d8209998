//! Elementwise kernels with NumPy broadcasting: one generated program per expression, input
//! types and layout (same shapes, or broadcast through strides).

use super::expr::{BinaryOp, Expr, Scalar, UnaryOp};
use crate::devices::gpu::{GpuDevice, WORKGROUP_SIZE};
use crate::devices::{DeviceTensor, Storage};
use crate::graph::TypeShape;
use crate::kernels::cpu::broadcast::{broadcast_concrete, broadcast_strides};
use crate::kernels::{GpuKernel, KernelError};
use crate::ops::{Binary, BinaryKind, Compare, CompareKind, Unary, UnaryKind};
use crate::tensor::DType;
use std::fmt::Write;

/// The GPU form of an arithmetic op, where WGSL computes it as the CPU does.
pub fn binary_op(kind: BinaryKind) -> Option<BinaryOp> {
    Some(match kind {
        BinaryKind::Add => BinaryOp::Add,
        BinaryKind::Sub => BinaryOp::Sub,
        BinaryKind::Mul => BinaryOp::Mul,
        BinaryKind::Div => BinaryOp::Div,
        BinaryKind::Maximum => BinaryOp::Max,
        BinaryKind::Minimum => BinaryOp::Min,
        // WGSL's pow is undefined for negative bases; the CPU's is not.
        BinaryKind::Pow => return None,
    })
}

pub fn compare_op(kind: CompareKind) -> BinaryOp {
    match kind {
        CompareKind::Equal => BinaryOp::Eq,
        CompareKind::NotEqual => BinaryOp::Ne,
        CompareKind::Greater => BinaryOp::Gt,
        CompareKind::GreaterEqual => BinaryOp::Ge,
        CompareKind::Less => BinaryOp::Lt,
        CompareKind::LessEqual => BinaryOp::Le,
    }
}

/// The GPU form of a unary op; `Square` is `x * x`.
pub fn unary_expr(kind: UnaryKind, x: Expr) -> Expr {
    let op = match kind {
        UnaryKind::Neg => UnaryOp::Neg,
        UnaryKind::Exp => UnaryOp::Exp,
        UnaryKind::Log => UnaryOp::Log,
        UnaryKind::Sqrt => UnaryOp::Sqrt,
        UnaryKind::Abs => UnaryOp::Abs,
        UnaryKind::Sign => UnaryOp::Sign,
        UnaryKind::Square => return Expr::binary(BinaryOp::Mul, x.clone(), x),
    };
    Expr::unary(op, x)
}

/// `expr` over `inputs`, broadcast together, computed on `gpu`.
pub fn map(
    gpu: &GpuDevice,
    expr: &Expr,
    inputs: &[&DeviceTensor],
) -> Result<DeviceTensor, KernelError> {
    let scalars: Vec<Scalar> = inputs
        .iter()
        .map(|t| {
            Scalar::of(t.dtype)
                .ok_or_else(|| KernelError::Message(format!("GPUs do not hold {}", t.dtype)))
        })
        .collect::<Result<_, _>>()?;
    let out_scalar = expr
        .scalar(&scalars)
        .ok_or_else(|| KernelError::Message("the kernel reads a missing input".into()))?;
    let mut shape: Vec<usize> = Vec::new();
    for t in inputs {
        shape = broadcast_concrete(&shape, &t.shape)?;
    }
    let len = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let len = len.ok_or_else(|| KernelError::Message(format!("shape {shape:?} overflows")))?;
    let out_dtype = match out_scalar {
        Scalar::F32 => DType::F32,
        Scalar::I32 => DType::I32,
        Scalar::Bool => DType::Bool,
    };
    let out = gpu.alloc(out_dtype, &shape)?;
    if len == 0 {
        return Ok(out);
    }
    let contiguous = inputs.iter().all(|t| t.shape == shape);
    let source = program(expr, &scalars, out_scalar, contiguous)?;
    let pipeline = gpu.pipeline(&source)?;
    let to_u32 = |v: usize| {
        u32::try_from(v).map_err(|_| {
            KernelError::Message(format!("{v} elements are too many for one GPU kernel"))
        })
    };
    let mut params = vec![to_u32(len)?, to_u32(shape.len())?];
    if !contiguous {
        for &d in &shape {
            params.push(to_u32(d)?);
        }
        for t in inputs {
            for s in broadcast_strides(&t.shape, &shape) {
                params.push(to_u32(s)?);
            }
        }
    }
    let mut buffers = Vec::with_capacity(inputs.len() + 1);
    for t in inputs.iter().map(|t| &t.storage).chain([&out.storage]) {
        match t {
            Storage::Gpu(b) => buffers.push(b),
            Storage::Host(_) => {
                return Err(KernelError::Message(
                    "an input of a GPU kernel is on the host".into(),
                ))
            }
        }
    }
    gpu.dispatch(&pipeline, &buffers, &params, len)?;
    Ok(out)
}

/// The WGSL program: bindings `in0..inN`, `out`, then `params` = [len, rank, shape...,
/// strides of each input...] (the shape and strides only when broadcasting).
fn program(
    expr: &Expr,
    inputs: &[Scalar],
    out: Scalar,
    contiguous: bool,
) -> Result<String, KernelError> {
    let value = expr
        .wgsl(inputs)
        .map_err(|e| KernelError::Message(format!("no GPU kernel for this expression: {e}")))?;
    let n = inputs.len();
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = (|| -> std::fmt::Result {
        for (i, ty) in inputs.iter().enumerate() {
            writeln!(
                s,
                "@group(0) @binding({i}) var<storage, read> in{i}: array<{}>;",
                ty.wgsl_storage()
            )?;
        }
        writeln!(
            s,
            "@group(0) @binding({n}) var<storage, read_write> out: array<{}>;",
            out.wgsl_storage()
        )?;
        writeln!(
            s,
            "@group(0) @binding({}) var<storage, read> params: array<u32>;",
            n + 1
        )?;
        writeln!(s, "@compute @workgroup_size({WORKGROUP_SIZE})")?;
        writeln!(s, "fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {{")?;
        writeln!(
            s,
            "    let i = gid.y * groups.x * {WORKGROUP_SIZE}u + gid.x;"
        )?;
        writeln!(s, "    if (i >= params[0]) {{ return; }}")?;
        if contiguous {
            for k in 0..n {
                writeln!(s, "    let x{k} = in{k}[i];")?;
            }
        } else {
            writeln!(s, "    let rank = params[1];")?;
            writeln!(s, "    var rest = i;")?;
            for k in 0..n {
                writeln!(s, "    var o{k} = 0u;")?;
            }
            writeln!(s, "    for (var d = 0u; d < rank; d++) {{")?;
            writeln!(s, "        let axis = rank - 1u - d;")?;
            writeln!(s, "        let dim = params[2u + axis];")?;
            writeln!(s, "        let coord = rest % dim;")?;
            writeln!(s, "        rest = rest / dim;")?;
            for k in 0..n {
                writeln!(
                    s,
                    "        o{k} += coord * params[2u + {}u * rank + axis];",
                    k + 1
                )?;
            }
            writeln!(s, "    }}")?;
            for k in 0..n {
                writeln!(s, "    let x{k} = in{k}[o{k}];")?;
            }
        }
        writeln!(s, "    out[i] = {value};")?;
        writeln!(s, "}}")
    })();
    Ok(s)
}

/// Whether every input is of a dtype GPUs hold and the expression computes on them.
fn runs(expr: &Expr, inputs: &[TypeShape]) -> bool {
    let scalars: Option<Vec<Scalar>> = inputs.iter().map(|t| Scalar::of(t.dtype)).collect();
    scalars.is_some_and(|s| expr.wgsl(&s).is_ok())
}

fn binary_expr(kind: BinaryKind) -> Option<Expr> {
    Some(Expr::binary(
        binary_op(kind)?,
        Expr::input(0),
        Expr::input(1),
    ))
}

fn compare_expr(kind: CompareKind) -> Expr {
    Expr::binary(compare_op(kind), Expr::input(0), Expr::input(1))
}

impl GpuKernel for Binary {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        binary_expr(self.0).is_some_and(|e| runs(&e, inputs))
    }

    fn compute_gpu(
        &self,
        gpu: &GpuDevice,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let expr = binary_expr(self.0)
            .ok_or_else(|| KernelError::Message(format!("no GPU kernel for {:?}", self.0)))?;
        Ok(vec![map(gpu, &expr, inputs)?])
    }
}

impl GpuKernel for Unary {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        runs(&unary_expr(self.0, Expr::input(0)), inputs)
    }

    fn compute_gpu(
        &self,
        gpu: &GpuDevice,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        Ok(vec![map(gpu, &unary_expr(self.0, Expr::input(0)), inputs)?])
    }
}

impl GpuKernel for Compare {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        runs(&compare_expr(self.0), inputs)
    }

    fn compute_gpu(
        &self,
        gpu: &GpuDevice,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        Ok(vec![map(gpu, &compare_expr(self.0), inputs)?])
    }
}
