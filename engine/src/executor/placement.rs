//! Where each node of a plan runs. A node whose device constraint names a GPU
//! (`/device:GPU:0`, `/job:worker/task:0/device:GPU:1`) runs there when the GPU has a kernel
//! for its op and input types; otherwise it runs on the CPU under soft placement, or is an
//! error that names it. Variables live where their node runs and their updates run there
//! too; feeds, constants and transfers start on the host. `RUST_LOG=sluice::placement=debug` logs every choice, as TensorFlow's
//! `log_device_placement` does.

use super::fusion::FusedMap;
use crate::devices::gpu::GpuDevice;
use crate::devices::{Device, DeviceKind, DeviceSet};
use crate::distributed::cluster::DeviceSpec;
use crate::error::SessionError;
use crate::graph::{Node, TypeShape};
use crate::kernels::gpu::expr::Expr;
use crate::kernels::{GpuKernelFn, KernelFn, KernelTable};
use crate::ops::Effect;
use std::sync::Arc;

/// The kernel a step runs, and where.
pub(crate) enum StepKernel {
    Cpu(KernelFn),
    Gpu {
        kernel: GpuKernelFn,
        device: Arc<GpuDevice>,
        /// The kernel as one elementwise expression, where it is one (fusable).
        elementwise: Option<Expr>,
        /// The inputs it reads on the host ([`crate::kernels::GpuKernel::host_inputs`]).
        host_inputs: &'static [usize],
    },
    /// A chain of elementwise GPU kernels run as one (see [`super::fusion`]).
    Fused(Box<FusedMap>),
}

impl StepKernel {
    /// The GPU the kernel runs on, if it runs on one.
    pub(crate) fn gpu(&self) -> Option<&Arc<GpuDevice>> {
        match self {
            StepKernel::Cpu(_) => None,
            StepKernel::Gpu { device, .. } => Some(device),
            StepKernel::Fused(fused) => Some(fused.device()),
        }
    }
}

/// What placement may use.
pub(crate) struct Placement<'a> {
    pub devices: &'a DeviceSet,
    /// Run a node on the CPU where its GPU has no kernel for it, instead of failing.
    pub soft: bool,
    /// Fuse chains of elementwise GPU kernels into one (see [`super::fusion`]).
    pub fuse: bool,
}

impl Placement<'_> {
    /// The kernel of `node` (whose inputs are among `nodes`).
    pub(crate) fn kernel(&self, node: &Node, nodes: &[Node]) -> Result<StepKernel, SessionError> {
        let table = KernelTable::builtin();
        let cpu = || {
            table
                .find(&*node.op, DeviceKind::Cpu)
                .map(StepKernel::Cpu)
                .ok_or_else(|| no_kernel(node, DeviceKind::Cpu))
        };
        // Updates run where their variable lives (TensorFlow colocates them).
        let constraint = match node.op.effect() {
            Effect::WriteVariable { var } => nodes.get(var).map_or(&node.device, |v| &v.device),
            _ => &node.device,
        };
        let Some(index) = gpu_index(constraint) else {
            return cpu();
        };
        let gpus = self.devices.gpus();
        let Some(device) = gpus.get(index) else {
            return Err(SessionError::NoDevice {
                node: node.name.clone(),
                device: constraint.clone(),
                found: match gpus.len() {
                    0 => format!(
                        "this machine has no GPU that the engine can use (an NVIDIA driver \
                         with cuBLAS and NVRTC, or a Vulkan driver, is needed; {}=1 admits \
                         Mesa's software one)",
                        crate::devices::gpu::GpuOptions::ALLOW_SOFTWARE_ENV
                    ),
                    n => format!("there are {n} GPU(s), numbered from 0"),
                },
            });
        };
        if matches!(
            node.op.effect(),
            Effect::Feed | Effect::Constant | Effect::Send | Effect::Recv | Effect::ReadInput
        ) {
            tracing::debug!(target: "sluice::placement", "{} ({}): CPU, feeds, constants, transfers and input readers start on the host", node.name, node.op_name());
            return cpu();
        }
        let types: Vec<TypeShape> = (node.inputs.iter())
            .filter_map(|i| nodes.get(i.node())?.outputs.get(i.index()).cloned())
            .collect();
        match table.find_gpu(&*node.op, &types) {
            Some(kernel) if types.len() == node.inputs.len() => {
                tracing::debug!(target: "sluice::placement", "{} ({}): {}", node.name, node.op_name(), device.info().name);
                Ok(StepKernel::Gpu {
                    kernel,
                    device: device.clone(),
                    elementwise: table.gpu_elementwise(&*node.op),
                    host_inputs: table.gpu_host_inputs(&*node.op),
                })
            }
            _ if self.soft => {
                tracing::debug!(target: "sluice::placement", "{} ({}): CPU, no GPU kernel for inputs {:?}", node.name, node.op_name(), types.iter().map(|t| t.to_string()).collect::<Vec<_>>());
                cpu()
            }
            _ => Err(no_kernel(node, DeviceKind::Gpu)),
        }
    }
}

fn no_kernel(node: &Node, device: DeviceKind) -> SessionError {
    SessionError::NoKernel {
        node: node.name.clone(),
        op: node.op_name().into(),
        device: device.to_string(),
    }
}

/// The GPU a device constraint names, if it names one.
fn gpu_index(device: &str) -> Option<usize> {
    let spec = DeviceSpec::parse(device).ok()?;
    (spec.device_type.as_deref() == Some("GPU")).then(|| spec.device_index.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::gpu_index;

    #[test]
    fn gpus_are_named_as_in_tensorflow() {
        assert_eq!(gpu_index("/device:GPU:1"), Some(1));
        assert_eq!(gpu_index("/job:worker/task:0/device:GPU:0"), Some(0));
        assert_eq!(gpu_index("/gpu:2"), Some(2));
        assert_eq!(gpu_index("/device:CPU:0"), None);
        assert_eq!(gpu_index("/job:ps/task:0"), None);
        assert_eq!(gpu_index(""), None);
    }
}
