//! Elementwise kernels with NumPy broadcasting: one generated program per expression, input
//! types and layout (same shapes, or broadcast through strides).

use super::expr::{BinaryOp, Dialect, Expr, Scalar, UnaryOp};
use super::program::{MapProgram, View};
use crate::devices::gpu::GpuDevice;
use crate::devices::{DeviceTensor, Storage};
use crate::graph::TypeShape;
use crate::kernels::cpu::broadcast::{broadcast_concrete, broadcast_strides};
use crate::kernels::cpu::indexing::row_major_strides;
use crate::kernels::{GpuContext, GpuKernel, KernelError};
use crate::ops::{Binary, BinaryKind, Compare, CompareKind, Unary, UnaryKind};

/// The GPU form of an arithmetic op.
pub fn binary_op(kind: BinaryKind) -> BinaryOp {
    match kind {
        BinaryKind::Add => BinaryOp::Add,
        BinaryKind::Sub => BinaryOp::Sub,
        BinaryKind::Mul => BinaryOp::Mul,
        BinaryKind::Div => BinaryOp::Div,
        BinaryKind::Maximum => BinaryOp::Max,
        BinaryKind::Minimum => BinaryOp::Min,
        BinaryKind::Pow => BinaryOp::Pow,
    }
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
    let mut shape: Vec<usize> = Vec::new();
    for t in inputs {
        shape = broadcast_concrete(&shape, &t.shape)?;
    }
    let views: Vec<View> = (inputs.iter())
        .map(|t| View {
            offset: 0,
            strides: broadcast_strides(&t.shape, &shape),
        })
        .collect();
    let viewed: Vec<(&DeviceTensor, View)> = inputs.iter().copied().zip(views).collect();
    map_views(gpu, expr, &viewed, &shape)
}

/// `expr` over `inputs`, each read through its view, into a new tensor of `shape`.
pub fn map_views(
    gpu: &GpuDevice,
    expr: &Expr,
    inputs: &[(&DeviceTensor, View)],
    shape: &[usize],
) -> Result<DeviceTensor, KernelError> {
    // A binding the program never reads is dropped from its layout: drop the input too.
    if (0..inputs.len()).any(|k| !expr.uses_input(k)) {
        let used: Vec<usize> = (0..inputs.len()).filter(|&k| expr.uses_input(k)).collect();
        let mut to = vec![0; inputs.len()];
        for (new, &old) in used.iter().enumerate() {
            to[old] = new;
        }
        let kept: Vec<(&DeviceTensor, View)> = used.iter().map(|&k| inputs[k].clone()).collect();
        return map_views(gpu, &expr.renumber(&to), &kept, shape);
    }
    let scalars: Vec<Scalar> = inputs
        .iter()
        .map(|(t, _)| {
            Scalar::of(t.dtype)
                .ok_or_else(|| KernelError::Message(format!("GPUs do not hold {}", t.dtype)))
        })
        .collect::<Result<_, _>>()?;
    let row_major = row_major_strides(shape);
    // Inputs read only by index (a step size in a one-element buffer) need no view.
    let plain = !expr.uses_coords()
        && (inputs.iter().enumerate())
            .filter(|(k, _)| expr.reads_view(*k))
            .all(|(_, (t, v))| t.shape == shape && v.offset == 0 && v.strides == row_major);
    let program = MapProgram {
        expr: expr.clone(),
        inputs: scalars,
        rank: (!plain).then_some(shape.len()),
    };
    let out_scalar = program.output().map_err(no_kernel)?;
    // Loads index their inputs in i32, and coordinates are i32: those inputs and such
    // outputs must count in i32 (others, read at the output's own index, need not).
    let too_long = |len: usize| i32::try_from(len).is_err();
    let loaded_too_long =
        (inputs.iter().enumerate()).any(|(k, (t, _))| expr.loads_from(k) && too_long(t.len()));
    let coords_too_long = (expr.loads() || expr.uses_coords())
        && crate::tensor::element_count(shape).is_none_or(too_long);
    if loaded_too_long || coords_too_long {
        return Err(KernelError::Message(format!(
            "tensors of more than {} elements are too large for this GPU kernel",
            i32::MAX
        )));
    }
    let out = gpu.alloc(out_scalar.dtype(), shape)?;
    let len = out.len();
    if len == 0 {
        return Ok(out);
    }
    let views: Vec<View> = inputs.iter().map(|(_, v)| v.clone()).collect();
    let lens: Vec<usize> = inputs.iter().map(|(t, _)| t.len()).collect();
    let params = program.params(shape, &views, &lens)?;
    let mut buffers = Vec::with_capacity(inputs.len() + 1);
    for t in inputs.iter().map(|(t, _)| &t.storage).chain([&out.storage]) {
        match t {
            Storage::Gpu(b) => buffers.push(b),
            Storage::Host(_) => {
                return Err(KernelError::Message(
                    "an input of a GPU kernel is on the host".into(),
                ))
            }
        }
    }
    gpu.launch(&program, &buffers, &params, len)?;
    Ok(out)
}

fn no_kernel(e: String) -> KernelError {
    KernelError::Message(format!("no GPU kernel for this expression: {e}"))
}

/// Whether every input is of a dtype GPUs hold and the expression computes on them.
fn runs(expr: &Expr, inputs: &[TypeShape]) -> bool {
    let scalars: Option<Vec<Scalar>> = inputs.iter().map(|t| Scalar::of(t.dtype)).collect();
    scalars.is_some_and(|s| expr.emit(Dialect::Wgsl, &s).is_ok())
}

fn binary_expr(kind: BinaryKind) -> Expr {
    Expr::binary(binary_op(kind), Expr::input(0), Expr::input(1))
}

fn compare_expr(kind: CompareKind) -> Expr {
    Expr::binary(compare_op(kind), Expr::input(0), Expr::input(1))
}

impl GpuKernel for Binary {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        runs(&binary_expr(self.0), inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        Ok(vec![map(gpu, &binary_expr(self.0), inputs)?])
    }

    fn elementwise(&self) -> Option<Expr> {
        Some(binary_expr(self.0))
    }
}

impl GpuKernel for Unary {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        runs(&unary_expr(self.0, Expr::input(0)), inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        Ok(vec![map(gpu, &unary_expr(self.0, Expr::input(0)), inputs)?])
    }

    fn elementwise(&self) -> Option<Expr> {
        Some(unary_expr(self.0, Expr::input(0)))
    }
}

impl GpuKernel for Compare {
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool {
        runs(&compare_expr(self.0), inputs)
    }

    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let gpu: &GpuDevice = ctx.gpu;
        Ok(vec![map(gpu, &compare_expr(self.0), inputs)?])
    }

    fn elementwise(&self) -> Option<Expr> {
        Some(compare_expr(self.0))
    }
}
