//! A traced step's kernel times measured on the GPU: which GPUs the step may time, and the
//! times read back into the trace.

use super::{NodeTiming, Plan};
use crate::devices::gpu::GpuDevice;
use crate::devices::Device;
use crate::error::SessionError;
use std::collections::HashMap;
use std::sync::Arc;

/// Timing of a traced step's GPU kernels on the GPUs it could take (another session's traced
/// step may hold one), stopped however the step ends.
pub(super) struct GpuTiming<'a> {
    held: Vec<&'a Arc<GpuDevice>>,
}

impl<'a> GpuTiming<'a> {
    pub(super) fn begin(gpus: &'a [Arc<GpuDevice>]) -> GpuTiming<'a> {
        GpuTiming {
            held: gpus.iter().filter(|g| g.trace_begin()).collect(),
        }
    }

    pub(super) fn holds(&self, gpu: &Arc<GpuDevice>) -> bool {
        self.held.iter().any(|g| Arc::ptr_eq(g, gpu))
    }
}

impl Drop for GpuTiming<'_> {
    fn drop(&mut self) {
        // A step that failed before reading its times leaves no device timing the next.
        for gpu in &self.held {
            let _ = gpu.trace_end();
        }
    }
}

impl Plan {
    /// Puts each GPU step's time on the GPU (the sum of its kernels') into its trace entry.
    pub(super) fn gpu_times(
        &self,
        trace: &mut [NodeTiming],
        entries: &[(usize, usize, Arc<GpuDevice>)],
    ) -> Result<(), SessionError> {
        for gpu in &self.gpus {
            let times = gpu.trace_end().map_err(|e| SessionError::Kernel {
                node: gpu.info().name.clone(),
                op: "GPU timestamps".into(),
                message: e.to_string(),
            })?;
            let mut by_node: HashMap<usize, f64> = HashMap::new();
            for (node, micros) in times {
                *by_node.entry(node).or_default() += micros;
            }
            for (index, node, device) in entries {
                if Arc::ptr_eq(device, gpu) {
                    if let Some(entry) = trace.get_mut(*index) {
                        // A step that launched nothing (a reshape) took no GPU time.
                        entry.micros = by_node.get(node).copied().unwrap_or(0.0);
                    }
                }
            }
        }
        Ok(())
    }
}
