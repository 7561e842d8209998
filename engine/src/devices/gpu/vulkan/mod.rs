//! The portable GPU backend, wgpu over Vulkan: any GPU with a Vulkan driver, and Mesa's
//! software device (lavapipe) for tests on machines without one. Kernels are WGSL programs,
//! compiled once per device and cached by their source. Kernels are recorded into one
//! command buffer (shared by the sessions on the GPU, whose kernels interleave in it) and
//! submitted together when something waits for them or a step ends.

mod buffers;
mod timestamps;

pub use buffers::VulkanBuffer;

use super::{workgroups, GpuBuffer, GpuOptions};
use crate::devices::{DeviceError, DeviceInfo, DeviceKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The Vulkan GPUs that `options` accept, numbered from `first`; none where there is no
/// Vulkan loader or driver.
pub(super) fn discover(options: &GpuOptions, first: usize) -> Vec<(DeviceInfo, VulkanGpu)> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::VULKAN,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::VULKAN));
    let mut devices = Vec::new();
    for adapter in adapters {
        let info = adapter.get_info();
        let software = info.device_type == wgpu::DeviceType::Cpu;
        if software && !options.allow_software {
            tracing::debug!(adapter = %info.name, "software GPU adapter skipped (set {}=1 to use it)", GpuOptions::ALLOW_SOFTWARE_ENV);
            continue;
        }
        match VulkanGpu::open(adapter, first + devices.len(), software) {
            Ok(device) => devices.push(device),
            Err(e) => tracing::warn!(adapter = %info.name, "GPU adapter unusable: {e}"),
        }
    }
    devices
}

/// One Vulkan GPU: its queue, its buffer pool and its compiled kernels.
pub(super) struct VulkanGpu {
    name: String,
    device: wgpu::Device,
    queue: wgpu::Queue,
    limits: wgpu::Limits,
    pool: buffers::Pool,
    pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
    /// Kernels recorded and not yet submitted.
    pending: Mutex<Pending>,
    /// Parameter buffers, apart from tensors' so that one is never written while a recorded
    /// kernel still reads it (see [`VulkanGpu::launch_groups`]).
    params: buffers::Pool,
    /// The last step's submission, which the next step's end waits for.
    last_step: Mutex<Option<wgpu::SubmissionIndex>>,
    /// Kernel timestamps, where the adapter has them, and the traced step under way.
    timestamps: Option<timestamps::Timestamps>,
    trace: Mutex<timestamps::Trace>,
}

/// Commands recorded since the last submission. A step's kernels reach the GPU in one
/// submission, when something waits for their results (a download, a synchronisation) or
/// [`MAX_PENDING`] have piled up: one submission per kernel costs 30 us on a software device
/// and more than the kernel itself on a real one.
#[derive(Default)]
struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    /// Parameter buffers of the recorded kernels, free again once submitted.
    params: Vec<VulkanBuffer>,
    kernels: usize,
}

/// Kernels recorded before a submission is forced.
const MAX_PENDING: usize = 512;

impl VulkanGpu {
    fn open(
        adapter: wgpu::Adapter,
        index: usize,
        software: bool,
    ) -> Result<(DeviceInfo, VulkanGpu), String> {
        let adapter_info = adapter.get_info();
        let limits = adapter.limits();
        // Timestamps for traced steps, where the adapter has them.
        let features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("sluice"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::default(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| e.to_string())?;
        // wgpu panics on errors nobody captures; every call that can fail runs inside an
        // error scope, so anything left is logged rather than allowed to abort the engine.
        device.on_uncaptured_error(Arc::new(|e| tracing::error!("GPU error: {e}")));
        let info = DeviceInfo {
            name: format!("/device:GPU:{index}"),
            kind: DeviceKind::Gpu,
            description: adapter_info.name.clone(),
            backend: format!("{:?}", adapter_info.backend).to_lowercase(),
            max_buffer_bytes: limits.max_storage_buffer_binding_size,
            memory_bytes: device_memory(&adapter),
            software,
        };
        let timestamps = timestamps::Timestamps::new(&device, &queue);
        let gpu = VulkanGpu {
            timestamps,
            trace: Mutex::default(),
            name: info.name.clone(),
            device,
            queue,
            limits,
            pool: buffers::Pool::default(),
            pipelines: Mutex::default(),
            pending: Mutex::default(),
            params: buffers::Pool::default(),
            last_step: Mutex::default(),
        };
        Ok((info, gpu))
    }

    fn failed(&self, message: impl std::fmt::Display) -> DeviceError {
        DeviceError::failed(&self.name, message)
    }

    /// A buffer of `bytes` bytes whose contents the caller writes (pooled).
    pub(super) fn alloc(&self, bytes: u64) -> Result<VulkanBuffer, DeviceError> {
        self.pool
            .take(&self.device, bytes)
            .map_err(|e| self.failed(e))
    }

    /// A new buffer holding `bytes`.
    pub(super) fn upload(&self, bytes: &[u8]) -> Result<VulkanBuffer, DeviceError> {
        // A new buffer, not a pooled one: the bytes are written before the recorded kernels
        // run, and a pooled buffer may still be read by one of them.
        let buffer =
            buffers::create(&self.device, bytes.len() as u64).map_err(|e| self.failed(e))?;
        if !bytes.is_empty() {
            self.queue.write_buffer(buffer.raw(), 0, bytes);
        }
        Ok(buffer)
    }

    /// The first `bytes` bytes of `buffer`, once the work that writes them has run.
    pub(super) fn download(&self, buffer: &GpuBuffer, bytes: u64) -> Result<Vec<u8>, DeviceError> {
        let GpuBuffer::Vulkan(buffer) = buffer else {
            return Err(self.failed("the tensor lives on another backend's GPU"));
        };
        self.flush()?;
        buffer
            .read(&self.device, &self.queue, bytes)
            .map_err(|e| self.failed(e))
    }

    /// The compute pipeline of a WGSL program whose entry point is `main`, compiled on first
    /// use (then `true`); a program the device rejects is an error that quotes the compiler.
    fn pipeline(&self, source: &str) -> Result<(Arc<wgpu::ComputePipeline>, bool), DeviceError> {
        let mut cache = self
            .pipelines
            .lock()
            .map_err(|_| self.failed("kernel cache poisoned"))?;
        if let Some(p) = cache.get(source) {
            return Ok((p.clone(), false));
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: None,
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: None,
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(self.failed(format!("a generated kernel did not compile: {e}\n{source}")));
        }
        let pipeline = Arc::new(pipeline);
        cache.insert(source.to_string(), pipeline.clone());
        Ok((pipeline, true))
    }

    /// Records a generated program over `threads` threads of [`super::WORKGROUP_SIZE`]; whether it
    /// was compiled for this launch.
    pub(super) fn launch(
        &self,
        source: &str,
        buffers: &[&GpuBuffer],
        params: &[u32],
        threads: usize,
    ) -> Result<bool, DeviceError> {
        let (x, y) = workgroups(threads, self.limits.max_compute_workgroups_per_dimension)
            .ok_or_else(|| {
                self.failed(format!(
                    "{threads} threads are more than one dispatch takes"
                ))
            })?;
        let (pipeline, compiled) = self.pipeline(source)?;
        self.record(&pipeline, buffers, params, [x, y, 1])?;
        Ok(compiled)
    }

    /// Records a WGSL program over a grid of `groups` workgroups.
    pub(super) fn launch_groups(
        &self,
        source: &str,
        buffers: &[&GpuBuffer],
        params: &[u32],
        groups: [u32; 3],
    ) -> Result<(), DeviceError> {
        let (pipeline, _) = self.pipeline(source)?;
        self.record(&pipeline, buffers, params, groups)
    }

    /// Records `pipeline` over `groups` workgroups, `buffers` bound in order (binding 0, 1,
    /// ...) and the parameter words last.
    fn record(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&GpuBuffer],
        params: &[u32],
        groups: [u32; 3],
    ) -> Result<(), DeviceError> {
        let max = self.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(self.failed(format!(
                "a grid of {groups:?} workgroups is over the limit of {max} per dimension"
            )));
        }
        let buffers = buffers
            .iter()
            .map(|b| match b {
                GpuBuffer::Vulkan(b) => Ok(b),
                GpuBuffer::Cuda(_) => Err(self.failed("a CUDA buffer bound to a Vulkan kernel")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let params = if params.is_empty() {
            &[0u32][..]
        } else {
            params
        };
        let param_bytes: Vec<u8> = params.iter().flat_map(|p| p.to_le_bytes()).collect();
        // Parameters are written when the recorded kernels are submitted, before them; the
        // buffer is this kernel's alone until then, so no earlier kernel sees these words.
        let param_buffer = self
            .params
            .take(&self.device, param_bytes.len() as u64)
            .map_err(|e| self.failed(e))?;
        self.queue.write_buffer(param_buffer.raw(), 0, &param_bytes);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry> = (buffers.iter().copied())
            .chain([&param_buffer])
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.raw().as_entire_binding(),
            })
            .collect();
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        });
        // In a traced step, the kernel's start and end on the GPU.
        let timed = match (&self.timestamps, self.trace.lock()) {
            (Some(ts), Ok(mut trace)) if trace.thread == Some(std::thread::current().id()) => {
                let index = trace.kernels.len() as u32;
                (index < timestamps::MAX_TRACED).then(|| {
                    let node = trace.node;
                    trace.kernels.push(node);
                    ts.writes(index)
                })
            }
            _ => None,
        };
        let full = {
            let mut pending = self
                .pending
                .lock()
                .map_err(|_| self.failed("command queue poisoned"))?;
            let encoder = pending
                .encoder
                .get_or_insert_with(|| self.device.create_command_encoder(&Default::default()));
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: timed,
                });
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
            }
            pending.params.push(param_buffer);
            pending.kernels += 1;
            pending.kernels >= MAX_PENDING
        };
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(self.failed(format!("dispatch failed: {e}")));
        }
        if full {
            self.flush()?;
        }
        Ok(())
    }

    /// Ends a step: submits its kernels, then waits for the previous step's.
    pub(super) fn end_step(&self) -> Result<(), DeviceError> {
        let submitted = self.submit()?;
        let previous = {
            let mut last = self
                .last_step
                .lock()
                .map_err(|_| self.failed("step queue poisoned"))?;
            match submitted {
                Some(index) => last.replace(index),
                None => None,
            }
        };
        if let Some(index) = previous {
            self.device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(index),
                    timeout: None,
                })
                .map_err(|e| self.failed(e))?;
        }
        Ok(())
    }

    /// Submits the recorded kernels.
    pub(super) fn flush(&self) -> Result<(), DeviceError> {
        self.submit().map(|_| ())
    }

    /// Submits the recorded kernels and waits for everything submitted.
    pub(super) fn synchronize(&self) -> Result<(), DeviceError> {
        self.flush()?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| self.failed(e))
    }

    /// Submits the recorded kernels; the submission's index, if there were any.
    fn submit(&self) -> Result<Option<wgpu::SubmissionIndex>, DeviceError> {
        // The queue lock is held through the submission: once any thread's `submit` returns,
        // every kernel recorded before it is in the GPU's queue, so a download submitted next
        // cannot overtake the kernels that write what it reads.
        let mut pending = self
            .pending
            .lock()
            .map_err(|_| self.failed("command queue poisoned"))?;
        pending.kernels = 0;
        let params = std::mem::take(&mut pending.params);
        let mut index = None;
        if let Some(encoder) = pending.encoder.take() {
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            index = Some(self.queue.submit([encoder.finish()]));
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(self.failed(format!("submission failed: {e}")));
            }
        }
        drop(pending);
        // Later writes to these buffers are queued after this submission.
        for buffer in params {
            self.params.give_back(buffer);
        }
        Ok(index)
    }

    /// Whether traced steps get each kernel's GPU time.
    pub(super) fn times_kernels(&self) -> bool {
        self.timestamps.is_some()
    }

    /// Starts timing the kernels that `thread` records.
    pub(super) fn trace_begin(&self, thread: std::thread::ThreadId) {
        if let Ok(mut trace) = self.trace.lock() {
            *trace = timestamps::Trace {
                thread: Some(thread),
                ..Default::default()
            };
        }
    }

    /// The node whose kernels are recorded next.
    pub(super) fn trace_node(&self, node: usize) {
        if let Ok(mut trace) = self.trace.lock() {
            trace.node = node;
        }
    }

    /// Stops timing; each timed kernel's node and GPU time in microseconds, once all have run.
    pub(super) fn trace_end(&self) -> Result<Vec<(usize, f64)>, DeviceError> {
        let nodes = match self.trace.lock() {
            Ok(mut trace) if trace.thread.is_some() => std::mem::take(&mut *trace).kernels,
            Ok(_) => return Ok(Vec::new()),
            Err(_) => return Err(self.failed("trace poisoned")),
        };
        let Some(ts) = &self.timestamps else {
            return Ok(Vec::new());
        };
        self.flush()?;
        let micros = ts
            .read(&self.device, &self.queue, nodes.len() as u32)
            .map_err(|e| self.failed(e))?;
        Ok(nodes.into_iter().zip(micros).collect())
    }

    /// Takes back a buffer for later allocations, if nothing else holds it.
    pub(super) fn recycle(&self, buffer: VulkanBuffer) {
        self.pool.give_back(buffer);
    }
}

/// The adapter's device-local memory in bytes (Vulkan's memory heaps), 0 where unknown.
fn device_memory(adapter: &wgpu::Adapter) -> u64 {
    // SAFETY: only reads the physical device's memory properties through the adapter's own
    // instance; the guard is dropped before the adapter is used again.
    let Some(hal) = (unsafe { adapter.as_hal::<wgpu::hal::api::Vulkan>() }) else {
        return 0;
    };
    let instance = hal.shared_instance().raw_instance();
    // SAFETY: the physical device belongs to this instance.
    let properties =
        unsafe { instance.get_physical_device_memory_properties(hal.raw_physical_device()) };
    properties
        .memory_heaps_as_slice()
        .iter()
        .filter(|heap| heap.flags.contains(ash::vk::MemoryHeapFlags::DEVICE_LOCAL))
        .map(|heap| heap.size)
        .sum()
}
