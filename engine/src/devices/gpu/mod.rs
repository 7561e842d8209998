//! The portable GPU device, on wgpu over Vulkan: any GPU with a Vulkan driver, and Mesa's
//! software device (lavapipe) for tests on machines without one. Kernels are WGSL programs,
//! compiled once per device and cached by their source.
//!
//! WGSL has 32-bit types only: f32 and i32 tensors live on the device as they are, bools as
//! one u32 each; f64, i64 and u8 stay on the CPU.

mod buffers;

pub use buffers::GpuBuffer;

use super::{
    Device, DeviceError, DeviceInfo, DeviceKind, DeviceTensor, Dialect, GpuProgram, Storage,
};
use crate::tensor::{Buffer, DType, Tensor};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Which adapters [`discover`] accepts.
#[derive(Debug, Clone, Default)]
pub struct GpuOptions {
    /// Accept software adapters (lavapipe). Never chosen for a user by accident: tests set it.
    pub allow_software: bool,
}

impl GpuOptions {
    /// The variable that allows software adapters when set to `1`.
    pub const ALLOW_SOFTWARE_ENV: &'static str = "SLUICE_GPU_ALLOW_SOFTWARE";

    /// Options from the environment (`SLUICE_GPU_ALLOW_SOFTWARE=1`).
    pub fn from_env() -> GpuOptions {
        GpuOptions {
            allow_software: std::env::var(Self::ALLOW_SOFTWARE_ENV).is_ok_and(|v| v == "1"),
        }
    }
}

/// The GPUs of this machine that `options` accept, numbered `/device:GPU:0`, `1`, ... Empty
/// where there is no Vulkan loader or driver.
pub fn discover(options: &GpuOptions) -> Vec<GpuDevice> {
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
        match GpuDevice::open(adapter, devices.len(), software) {
            Ok(device) => devices.push(device),
            Err(e) => tracing::warn!(adapter = %info.name, "GPU adapter unusable: {e}"),
        }
    }
    devices
}

/// One GPU: its queue, its buffer pool and its compiled kernels.
pub struct GpuDevice {
    info: DeviceInfo,
    device: wgpu::Device,
    queue: wgpu::Queue,
    limits: wgpu::Limits,
    pool: buffers::Pool,
    pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
    /// The generated programs compiled here, in order: what the CUDA check compiles again.
    programs: Mutex<Vec<Arc<dyn GpuProgram>>>,
    /// Kernels recorded and not yet submitted.
    pending: Mutex<Pending>,
    /// Parameter buffers, apart from tensors' so that one is never written while a recorded
    /// kernel still reads it (see [`GpuDevice::dispatch_groups`]).
    params: buffers::Pool,
    /// The last step's submission, which the next step's end waits for.
    last_step: Mutex<Option<wgpu::SubmissionIndex>>,
}

/// Commands recorded since the last submission. A step's kernels reach the GPU in one
/// submission, when something waits for their results (a download, a synchronisation) or
/// [`MAX_PENDING`] have piled up: one submission per kernel costs 30 us on a software device
/// and more than the kernel itself on a real one.
#[derive(Default)]
struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    /// Parameter buffers of the recorded kernels, free again once submitted.
    params: Vec<GpuBuffer>,
    kernels: usize,
}

/// Kernels recorded before a submission is forced.
const MAX_PENDING: usize = 512;

impl std::fmt::Debug for GpuDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuDevice")
            .field("info", &self.info)
            .finish()
    }
}

/// Threads per workgroup of every generated kernel.
pub const WORKGROUP_SIZE: u32 = 256;

impl GpuDevice {
    fn open(adapter: wgpu::Adapter, index: usize, software: bool) -> Result<GpuDevice, String> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("sluice"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::default(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| e.to_string())?;
        // wgpu panics on errors nobody captures; every call that can fail runs inside an
        // error scope, so anything left is logged rather than allowed to abort the engine.
        device.on_uncaptured_error(Arc::new(|e| tracing::error!("GPU error: {e}")));
        Ok(GpuDevice {
            info: DeviceInfo {
                name: format!("/device:GPU:{index}"),
                kind: DeviceKind::Gpu,
                description: info.name.clone(),
                backend: format!("{:?}", info.backend).to_lowercase(),
                max_buffer_bytes: limits.max_storage_buffer_binding_size,
                memory_bytes: device_memory(&adapter),
                software,
            },
            device,
            queue,
            limits,
            pool: buffers::Pool::default(),
            pipelines: Mutex::default(),
            programs: Mutex::default(),
            pending: Mutex::default(),
            params: buffers::Pool::default(),
            last_step: Mutex::default(),
        })
    }

    fn failed(&self, message: impl std::fmt::Display) -> DeviceError {
        DeviceError::Failed {
            device: self.info.name.clone(),
            message: message.to_string(),
        }
    }

    /// The bytes a tensor of `dtype` and `len` elements takes here, checked against the
    /// device's limit.
    fn bytes_for(&self, dtype: DType, len: usize, what: &str) -> Result<u64, DeviceError> {
        if !matches!(dtype, DType::F32 | DType::I32 | DType::Bool) {
            return Err(DeviceError::UnsupportedDType {
                device: self.info.name.clone(),
                dtype,
            });
        }
        let bytes = (len as u64).saturating_mul(4);
        let limit = self.limits.max_storage_buffer_binding_size;
        if bytes > limit {
            return Err(DeviceError::TooLarge {
                device: self.info.name.clone(),
                what: what.to_string(),
                bytes,
                limit,
            });
        }
        Ok(bytes)
    }

    /// A device tensor of `dtype` and `shape` whose contents the caller writes.
    pub fn alloc(&self, dtype: DType, shape: &[usize]) -> Result<DeviceTensor, DeviceError> {
        let len = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .unwrap_or(usize::MAX);
        let bytes = self.bytes_for(dtype, len, &format!("a {dtype} tensor of shape {shape:?}"))?;
        let buffer = self
            .pool
            .take(&self.device, bytes)
            .map_err(|e| self.failed(e))?;
        Ok(DeviceTensor {
            dtype,
            shape: shape.to_vec(),
            storage: Storage::Gpu(buffer),
        })
    }

    /// The compute pipeline of a generated program, compiled from its WGSL on first use.
    pub fn program<P: GpuProgram + Clone + 'static>(
        &self,
        program: &P,
    ) -> Result<Arc<wgpu::ComputePipeline>, DeviceError> {
        let source = program.source(Dialect::Wgsl).map_err(|e| self.failed(e))?;
        let known = self
            .pipelines
            .lock()
            .map_err(|_| self.failed("kernel cache poisoned"))?
            .contains_key(&source);
        let pipeline = self.pipeline(&source)?;
        if !known {
            if let Ok(mut programs) = self.programs.lock() {
                programs.push(Arc::new(program.clone()));
            }
        }
        Ok(pipeline)
    }

    /// The generated programs compiled on this device so far.
    pub fn programs(&self) -> Vec<Arc<dyn GpuProgram>> {
        self.programs.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The compute pipeline of a WGSL program whose entry point is `main`, compiled on first
    /// use; a program the device rejects is an error that quotes the compiler.
    pub fn pipeline(&self, source: &str) -> Result<Arc<wgpu::ComputePipeline>, DeviceError> {
        let mut cache = self
            .pipelines
            .lock()
            .map_err(|_| self.failed("kernel cache poisoned"))?;
        if let Some(p) = cache.get(source) {
            return Ok(p.clone());
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
        Ok(pipeline)
    }

    /// Runs `pipeline` over `threads` threads of [`WORKGROUP_SIZE`] per workgroup, with
    /// `buffers` bound in order (binding 0, 1, ...) and the parameter words `params` bound
    /// last. Kernels find their element as `gid.y * (num_workgroups.x * WORKGROUP_SIZE) +
    /// gid.x`.
    pub fn dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&GpuBuffer],
        params: &[u32],
        threads: usize,
    ) -> Result<(), DeviceError> {
        let (x, y) = workgroups(threads, self.limits.max_compute_workgroups_per_dimension)
            .ok_or_else(|| {
                self.failed(format!(
                    "{threads} threads are more than one dispatch takes"
                ))
            })?;
        self.dispatch_groups(pipeline, buffers, params, [x, y, 1])
    }

    /// Runs `pipeline` over a grid of `groups` workgroups; bindings as for [`Self::dispatch`].
    pub fn dispatch_groups(
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
        let full = {
            let mut pending = self
                .pending
                .lock()
                .map_err(|_| self.failed("command queue poisoned"))?;
            let encoder = pending
                .encoder
                .get_or_insert_with(|| self.device.create_command_encoder(&Default::default()));
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
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

    /// Ends a step: submits its kernels, then waits for the previous step's, so one step
    /// runs on the GPU while the host prepares the next and no more pile up.
    pub fn end_step(&self) -> Result<(), DeviceError> {
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
    pub fn flush(&self) -> Result<(), DeviceError> {
        self.submit().map(|_| ())
    }

    /// Submits the recorded kernels; the submission's index, if there were any.
    fn submit(&self) -> Result<Option<wgpu::SubmissionIndex>, DeviceError> {
        let (encoder, params) = {
            let mut pending = self
                .pending
                .lock()
                .map_err(|_| self.failed("command queue poisoned"))?;
            pending.kernels = 0;
            (pending.encoder.take(), std::mem::take(&mut pending.params))
        };
        let mut index = None;
        if let Some(encoder) = encoder {
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            index = Some(self.queue.submit([encoder.finish()]));
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(self.failed(format!("submission failed: {e}")));
            }
        }
        // Later writes to these buffers are queued after this submission.
        for buffer in params {
            self.params.give_back(buffer);
        }
        Ok(index)
    }

    /// Takes back a tensor's buffer for later allocations, if nothing else holds it.
    pub fn recycle(&self, tensor: DeviceTensor) {
        if let Storage::Gpu(buffer) = tensor.storage {
            self.pool.give_back(buffer);
        }
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

/// Workgroups in x and y for `threads` threads: x at most `max_x`, y spanning the rest.
/// Kernels compute their element as `gid.y * (num_workgroups.x * WORKGROUP_SIZE) + gid.x`.
fn workgroups(threads: usize, max_x: u32) -> Option<(u32, u32)> {
    let groups = threads.div_ceil(WORKGROUP_SIZE as usize).max(1);
    let x = groups.min(max_x as usize);
    let y = groups.div_ceil(x);
    Some((
        u32::try_from(x).ok()?,
        u32::try_from(y).ok().filter(|&y| y <= max_x)?,
    ))
}

impl Device for GpuDevice {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn upload(&self, tensor: &Tensor) -> Result<DeviceTensor, DeviceError> {
        // A new buffer, not a pooled one: the bytes are written before the recorded kernels
        // run, and a pooled buffer may still be read by one of them.
        let bytes = self.bytes_for(
            tensor.dtype(),
            tensor.len(),
            &format!("a {} tensor of shape {:?}", tensor.dtype(), tensor.shape()),
        )?;
        let buffer = buffers::create(&self.device, bytes).map_err(|e| self.failed(e))?;
        let out = DeviceTensor {
            dtype: tensor.dtype(),
            shape: tensor.shape().to_vec(),
            storage: Storage::Gpu(buffer.clone()),
        };
        let bytes: Vec<u8> = match tensor.buffer() {
            Buffer::F32(v) => bytemuck::cast_slice(v.as_slice()).to_vec(),
            Buffer::I32(v) => bytemuck::cast_slice(v.as_slice()).to_vec(),
            Buffer::Bool(v) => v.iter().flat_map(|&b| u32::from(b).to_le_bytes()).collect(),
            _ => {
                return Err(DeviceError::UnsupportedDType {
                    device: self.info.name.clone(),
                    dtype: tensor.dtype(),
                })
            }
        };
        if !bytes.is_empty() {
            self.queue.write_buffer(buffer.raw(), 0, &bytes);
        }
        Ok(out)
    }

    fn download(&self, tensor: &DeviceTensor) -> Result<Tensor, DeviceError> {
        let Storage::Gpu(buffer) = &tensor.storage else {
            return Err(self.failed("the tensor is not on a GPU"));
        };
        self.flush()?;
        let len = tensor.len();
        let bytes = self.bytes_for(tensor.dtype, len, "a download")?;
        let data = buffer
            .read(&self.device, &self.queue, bytes)
            .map_err(|e| self.failed(e))?;
        let words = || data.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
        let shape = &tensor.shape;
        let result = match tensor.dtype {
            DType::F32 => Tensor::new(shape, words().map(f32::from_le_bytes).collect()),
            DType::I32 => Tensor::new(shape, words().map(i32::from_le_bytes).collect()),
            DType::Bool => {
                Tensor::new(shape, words().map(|w| u32::from_le_bytes(w) != 0).collect())
            }
            dtype => {
                return Err(DeviceError::UnsupportedDType {
                    device: self.info.name.clone(),
                    dtype,
                })
            }
        };
        result.map_err(|e| self.failed(e))
    }

    fn synchronize(&self) -> Result<(), DeviceError> {
        self.flush()?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| self.failed(e))
    }
}
