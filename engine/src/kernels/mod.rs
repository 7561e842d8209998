//! Kernels: the code that computes an op on a kind of device, kept apart from the op's
//! definition (`crate::ops`: inference, attributes, gradient) and registered per (op type,
//! device kind), as TensorFlow registers kernels. The executor looks a node's kernel up once,
//! when it builds a plan, so a step pays no lookup.
//!
//! An op type is its Rust type: a kernel is found by the op's `TypeId`, never by its name.

// The dtype dispatch macros come first: textual scope makes them visible to `cpu`.
/// Runs `$body` with `$T` bound to the Rust type of a float dtype.
macro_rules! float_kernel {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::tensor::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::tensor::DType::F64 => {
                type $T = f64;
                $body
            }
            other => Err($crate::kernels::KernelError::Message(format!(
                "not defined for dtype {other}"
            ))),
        }
    };
}

/// Runs `$body` with `$T` bound to the Rust type of a numeric (non-bool) dtype.
macro_rules! numeric_kernel {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::tensor::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::tensor::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::tensor::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::tensor::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::tensor::DType::U8 => {
                type $T = u8;
                $body
            }
            other => Err($crate::kernels::KernelError::Message(format!(
                "not defined for dtype {other}"
            ))),
        }
    };
}

/// Runs `$body` with `$T` bound to the Rust type of any dtype.
macro_rules! any_kernel {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::tensor::DType::Bool => {
                type $T = bool;
                $body
            }
            other => numeric_kernel!(other, $T => $body),
        }
    };
}

pub mod cpu;
pub mod gpu;

use crate::devices::gpu::GpuDevice;
use crate::devices::{Device, DeviceTensor};
use crate::graph::TypeShape;
use crate::ops::Op;
use crate::tensor::{Buffer, DType, Element, Tensor};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

pub use crate::devices::DeviceKind;
pub use cpu::input::InputReaders;

/// An op's CPU kernel, implemented on the op's definition type (in [`cpu`]).
pub trait CpuKernel: Op {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError>;
}

/// An op's GPU kernel, on the portable GPU device (in [`gpu`]).
pub trait GpuKernel: Op {
    /// Whether the GPU computes the op on inputs of these types as the CPU does; where it
    /// does not, the node runs on the CPU (soft placement).
    fn runs_on_gpu(&self, inputs: &[TypeShape]) -> bool;

    /// The op's outputs on the GPU. Inputs of dtypes GPUs hold are on the GPU; others (an
    /// i64 step count) stay on the host.
    fn compute_gpu(
        &self,
        ctx: &mut GpuContext,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError>;

    /// The op as one elementwise expression over its inputs (broadcast together, read
    /// through their views), where `compute_gpu` is exactly that map: chains of such ops are
    /// fused into one kernel (`crate::executor`).
    fn elementwise(&self) -> Option<gpu::expr::Expr> {
        None
    }

    /// The inputs the kernel reads on the host whatever their dtype (a gather's indices,
    /// checked there before any row is read): fed values of these stay where they are.
    fn host_inputs(&self) -> &'static [usize] {
        &[]
    }
}

/// What a GPU kernel may use besides its inputs.
pub struct GpuContext<'a> {
    /// Id of the node being computed.
    pub node: usize,
    pub gpu: &'a Arc<GpuDevice>,
    pub variables: &'a mut VariableStore,
}

/// A registered GPU kernel: takes the op (of the type it was registered for), the context
/// and the inputs.
pub type GpuKernelFn =
    fn(&dyn Op, &mut GpuContext, &[&DeviceTensor]) -> Result<Vec<DeviceTensor>, KernelError>;

#[derive(Clone, Copy)]
struct GpuEntry {
    runs: fn(&dyn Op, &[TypeShape]) -> bool,
    kernel: GpuKernelFn,
    elementwise: fn(&dyn Op) -> Option<gpu::expr::Expr>,
    host_inputs: fn(&dyn Op) -> &'static [usize],
}

/// A registered kernel: takes the op (of the type it was registered for), the context and
/// the inputs.
pub type KernelFn = fn(&dyn Op, &mut Context, &[&Tensor]) -> Result<Vec<Tensor>, KernelError>;

/// Kernels by (op type, device kind).
#[derive(Default)]
pub struct KernelTable {
    kernels: HashMap<(TypeId, DeviceKind), KernelFn>,
    gpu: HashMap<TypeId, GpuEntry>,
}

impl KernelTable {
    /// The kernels built into the engine. A table that never changes once built, so one copy
    /// serves every session.
    pub fn builtin() -> &'static KernelTable {
        static BUILTIN: OnceLock<KernelTable> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            let mut table = KernelTable::default();
            cpu::register(&mut table);
            gpu::register(&mut table);
            table
        })
    }

    /// Registers `K`'s CPU kernel.
    pub fn add_cpu<K: CpuKernel>(&mut self) {
        self.kernels
            .insert((TypeId::of::<K>(), DeviceKind::Cpu), run_cpu::<K>);
    }

    /// Registers `K`'s GPU kernel.
    pub fn add_gpu<K: GpuKernel>(&mut self) {
        self.gpu.insert(
            TypeId::of::<K>(),
            GpuEntry {
                runs: runs_on_gpu::<K>,
                kernel: run_gpu::<K>,
                elementwise: elementwise_of::<K>,
                host_inputs: host_inputs_of::<K>,
            },
        );
    }

    /// The GPU kernel of `op` for inputs of these types, if one is registered and computes
    /// them.
    pub fn find_gpu(&self, op: &dyn Op, inputs: &[TypeShape]) -> Option<GpuKernelFn> {
        let any: &dyn Any = op;
        let entry = self.gpu.get(&any.type_id())?;
        (entry.runs)(op, inputs).then_some(entry.kernel)
    }

    /// The elementwise expression of `op`'s GPU kernel, if it is one (see
    /// [`GpuKernel::elementwise`]).
    pub fn gpu_elementwise(&self, op: &dyn Op) -> Option<gpu::expr::Expr> {
        let any: &dyn Any = op;
        (self.gpu.get(&any.type_id())?.elementwise)(op)
    }

    /// The inputs `op`'s GPU kernel reads on the host (see [`GpuKernel::host_inputs`]).
    pub fn gpu_host_inputs(&self, op: &dyn Op) -> &'static [usize] {
        let any: &dyn Any = op;
        self.gpu
            .get(&any.type_id())
            .map_or(&[], |entry| (entry.host_inputs)(op))
    }

    /// The CPU kernel of `op`, if one is registered.
    pub fn find(&self, op: &dyn Op, device: DeviceKind) -> Option<KernelFn> {
        let any: &dyn Any = op;
        self.kernels.get(&(any.type_id(), device)).copied()
    }
}

fn runs_on_gpu<K: GpuKernel>(op: &dyn Op, inputs: &[TypeShape]) -> bool {
    let any: &dyn Any = op;
    any.downcast_ref::<K>()
        .is_some_and(|op| op.runs_on_gpu(inputs))
}

fn elementwise_of<K: GpuKernel>(op: &dyn Op) -> Option<gpu::expr::Expr> {
    let any: &dyn Any = op;
    any.downcast_ref::<K>()?.elementwise()
}

fn host_inputs_of<K: GpuKernel>(op: &dyn Op) -> &'static [usize] {
    let any: &dyn Any = op;
    any.downcast_ref::<K>().map_or(&[], K::host_inputs)
}

fn run_gpu<K: GpuKernel>(
    op: &dyn Op,
    ctx: &mut GpuContext,
    inputs: &[&DeviceTensor],
) -> Result<Vec<DeviceTensor>, KernelError> {
    let any: &dyn Any = op;
    match any.downcast_ref::<K>() {
        Some(op) => op.compute_gpu(ctx, inputs),
        None => Err(KernelError::Message(format!(
            "the GPU kernel of {} was given a {} op",
            std::any::type_name::<K>(),
            op.type_name()
        ))),
    }
}

fn run_cpu<K: CpuKernel>(
    op: &dyn Op,
    ctx: &mut Context,
    inputs: &[&Tensor],
) -> Result<Vec<Tensor>, KernelError> {
    let any: &dyn Any = op;
    match any.downcast_ref::<K>() {
        Some(op) => op.compute(ctx, inputs),
        None => Err(KernelError::Message(format!(
            "the kernel of {} was given a {} op",
            std::any::type_name::<K>(),
            op.type_name()
        ))),
    }
}

/// What a kernel reports when it cannot compute.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelError {
    Message(String),
    /// The variable held by node `0` has no value yet.
    Uninitialized(usize),
    /// A NaN or infinity, found by `check_numerics`.
    NonFinite {
        message: String,
        index: usize,
    },
    /// A tensor the kernel was asked to make would take more than the memory budget.
    OverBudget(crate::tensor::OverBudget),
    /// The step was cancelled while the kernel ran (see [`StepControl::check`]).
    Cancelled,
    /// The step's deadline passed while the kernel ran.
    DeadlineExceeded,
}

impl From<crate::tensor::OverBudget> for KernelError {
    fn from(e: crate::tensor::OverBudget) -> KernelError {
        KernelError::OverBudget(e)
    }
}

impl From<String> for KernelError {
    fn from(message: String) -> KernelError {
        KernelError::Message(message)
    }
}

impl From<crate::devices::DeviceError> for KernelError {
    fn from(e: crate::devices::DeviceError) -> KernelError {
        KernelError::Message(e.to_string())
    }
}

impl From<crate::tensor::TensorError> for KernelError {
    fn from(e: crate::tensor::TensorError) -> KernelError {
        KernelError::Message(e.to_string())
    }
}

/// What a kernel may use besides its inputs.
pub struct Context<'a> {
    /// Id of the node being computed.
    pub node: usize,
    pub pool: &'a mut BufferPool,
    /// Variable values by node id.
    pub variables: &'a mut VariableStore,
    /// The step's cancellation, deadline, memory budget and credentials.
    pub step: &'a StepControl<'a>,
    /// Where a receive says how its value came, for a traced step's timeline.
    pub received: Option<crate::timeline::TransferTiming>,
}

/// What a step tells its kernels: whether to stop, how large a tensor they may make, and
/// the token for calls to other workers. A kernel that loops long calls [`check`] every so
/// often (a row of output, a block of a product), so a cancel or a deadline ends it within
/// a bounded time.
///
/// [`check`]: StepControl::check
#[derive(Debug, Clone)]
pub struct StepControl<'a> {
    /// The session's cancel token, while the step has written no variable yet: a step that
    /// began its updates finishes them, so a variable is never half updated.
    pub cancel: Option<&'a crate::executor::CancelToken>,
    pub deadline: Option<std::time::Instant>,
    pub budget: crate::tensor::MemoryBudget,
    /// What calls to other workers carry (the environment's token and authority where
    /// these have none).
    pub peer: &'a crate::service::auth::PeerCredentials,
    /// The session's input readers (none outside a session).
    pub inputs: Option<&'a cpu::input::InputReaders>,
}

impl StepControl<'_> {
    /// A step with no cancel token, deadline or budget: for kernels run outside a session.
    pub fn unlimited() -> StepControl<'static> {
        StepControl {
            cancel: None,
            deadline: None,
            budget: crate::tensor::MemoryBudget::unlimited(),
            peer: &crate::service::auth::PeerCredentials::FROM_ENV,
            inputs: None,
        }
    }

    /// Whether the step must stop: cancelled, or past its deadline.
    pub fn check(&self) -> Result<(), KernelError> {
        if self.cancel.is_some_and(|c| c.is_cancelled()) {
            return Err(KernelError::Cancelled);
        }
        if self
            .deadline
            .is_some_and(|d| std::time::Instant::now() >= d)
        {
            return Err(KernelError::DeadlineExceeded);
        }
        Ok(())
    }
}

/// Variable values held by a session, indexed by the variable's node id. A variable lives
/// where its node runs: on the host, or on a GPU once a GPU kernel has read or written it.
/// Each form is kept while it is current, so a value crosses to the other side once.
#[derive(Debug, Default, Clone)]
pub struct VariableStore {
    host: Vec<Option<Tensor>>,
    gpu: Vec<Option<(Arc<GpuDevice>, DeviceTensor)>>,
}

impl VariableStore {
    /// The value, copied back from its GPU where only the GPU has it.
    pub fn value(&self, node: usize) -> Result<Tensor, KernelError> {
        if let Some(t) = self.host.get(node).and_then(Option::as_ref) {
            return Ok(t.clone());
        }
        match self.gpu.get(node).and_then(Option::as_ref) {
            Some((device, t)) => Ok(device.download(t)?),
            None => Err(KernelError::Uninitialized(node)),
        }
    }

    /// Brings the host form up to date.
    fn sync_host(&mut self, node: usize) -> Result<(), KernelError> {
        if self.host.get(node).is_some_and(Option::is_some) {
            return Ok(());
        }
        let value = self.value(node)?;
        set_slot(&mut self.host, node, Some(value));
        Ok(())
    }

    /// The host value, copied back from its GPU once where only the GPU has it.
    pub fn host(&mut self, node: usize) -> Result<&Tensor, KernelError> {
        self.sync_host(node)?;
        self.host
            .get(node)
            .and_then(Option::as_ref)
            .ok_or(KernelError::Uninitialized(node))
    }

    /// The host value, to change in place (its GPU form, if any, is dropped).
    pub fn get_mut(&mut self, node: usize) -> Result<&mut Tensor, KernelError> {
        self.sync_host(node)?;
        set_slot(&mut self.gpu, node, None);
        self.host
            .get_mut(node)
            .and_then(Option::as_mut)
            .ok_or(KernelError::Uninitialized(node))
    }

    /// Moves a value out (to update it in place); put it back with `set`.
    pub fn take(&mut self, node: usize) -> Result<Tensor, KernelError> {
        self.sync_host(node)?;
        set_slot(&mut self.gpu, node, None);
        self.host
            .get_mut(node)
            .and_then(Option::take)
            .ok_or(KernelError::Uninitialized(node))
    }

    /// Sets the value on the host.
    pub fn set(&mut self, node: usize, value: Tensor) {
        set_slot(&mut self.host, node, Some(value));
        set_slot(&mut self.gpu, node, None);
    }

    pub fn is_set(&self, node: usize) -> bool {
        self.host.get(node).is_some_and(Option::is_some)
            || self.gpu.get(node).is_some_and(Option::is_some)
    }

    /// The value on `device`, copied there on first need.
    pub fn on_gpu(
        &mut self,
        node: usize,
        device: &Arc<GpuDevice>,
    ) -> Result<DeviceTensor, KernelError> {
        if let Some((d, t)) = self.gpu.get(node).and_then(Option::as_ref) {
            if Arc::ptr_eq(d, device) {
                return Ok(t.clone());
            }
        }
        self.sync_host(node)?;
        let host = self
            .host
            .get(node)
            .and_then(Option::as_ref)
            .ok_or(KernelError::Uninitialized(node))?;
        let t = device.upload(host)?;
        set_slot(&mut self.gpu, node, Some((device.clone(), t.clone())));
        Ok(t)
    }

    /// Sets the value on `device` (its host form, if any, is dropped); the old GPU buffer
    /// goes back to its device when nothing else holds it.
    pub fn set_gpu(&mut self, node: usize, device: &Arc<GpuDevice>, value: DeviceTensor) {
        set_slot(&mut self.host, node, None);
        let old = slot_mut(&mut self.gpu, node).replace((device.clone(), value));
        if let Some((d, t)) = old {
            d.recycle(t);
        }
    }
}

fn slot_mut<T>(slots: &mut Vec<Option<T>>, node: usize) -> &mut Option<T> {
    if slots.len() <= node {
        slots.resize_with(node + 1, || None);
    }
    &mut slots[node]
}

fn set_slot<T>(slots: &mut Vec<Option<T>>, node: usize, value: Option<T>) {
    if value.is_none() && slots.len() <= node {
        return;
    }
    *slot_mut(slots, node) = value;
}

/// Buffers kept from earlier steps, by dtype and length, so a step allocates nothing new.
#[derive(Debug, Default)]
pub struct BufferPool {
    free: HashMap<(DType, usize), Vec<Buffer>>,
}

impl BufferPool {
    /// A vector of `len` elements whose contents are unspecified: the kernel writes them all.
    pub fn alloc<T: Element>(&mut self, len: usize) -> Vec<T> {
        if let Some(buffers) = self.free.get_mut(&(T::DTYPE, len)) {
            while let Some(mut buf) = buffers.pop() {
                if let Some(v) = T::slice_mut(&mut buf) {
                    return std::mem::take(v);
                }
            }
        }
        vec![T::default(); len]
    }

    /// A vector of `len` zeros.
    pub fn zeros<T: Element>(&mut self, len: usize) -> Vec<T> {
        let mut v = self.alloc::<T>(len);
        v.fill(T::default());
        v
    }

    /// Takes back a tensor's buffer if nothing else holds it.
    pub fn recycle(&mut self, tensor: Tensor) {
        if let Some(buf) = tensor.into_buffer() {
            let key = (buf.dtype(), buf.len());
            let list = self.free.entry(key).or_default();
            if list.len() < 4 {
                list.push(buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_type_has_a_cpu_kernel() {
        let graph = crate::ops::registry::tests::every_op_graph();
        let table = KernelTable::builtin();
        let missing: Vec<String> = graph
            .nodes()
            .iter()
            .filter(|n| table.find(&*n.op, DeviceKind::Cpu).is_none())
            .map(|n| format!("{} ({})", n.name, n.op_name()))
            .collect();
        assert!(missing.is_empty(), "no CPU kernel for {missing:?}");
    }

    #[test]
    fn a_kernel_is_found_by_the_op_type_not_its_name() {
        let table = KernelTable::builtin();
        let add = crate::ops::Binary(crate::ops::BinaryKind::Add);
        let kernel = table
            .find(&add, DeviceKind::Cpu)
            .expect("Add has a CPU kernel");
        let mut pool = BufferPool::default();
        let mut variables = VariableStore::default();
        let step = StepControl::unlimited();
        let mut ctx = Context {
            node: 0,
            pool: &mut pool,
            variables: &mut variables,
            step: &step,
            received: None,
        };
        let (a, b) = (Tensor::scalar(2.0f32), Tensor::scalar(3.0f32));
        let out = kernel(&add, &mut ctx, &[&a, &b]).expect("2 + 3");
        assert_eq!(out[0].to_vec::<f32>().expect("f32"), vec![5.0]);
        // The wrong op given to a kernel is an error, not a bad cast.
        let mul = crate::ops::MatMul {
            transpose_a: false,
            transpose_b: false,
        };
        let err = kernel(&mul, &mut ctx, &[&a, &b]).expect_err("MatMul is no Binary");
        assert!(matches!(err, KernelError::Message(m) if m.contains("MatMul")));
    }
}
