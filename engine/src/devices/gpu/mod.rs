//! GPUs, found at run time behind one interface over two backends: NVIDIA's CUDA
//! ([`cuda`]: the driver, NVRTC, cuBLAS) and wgpu over Vulkan ([`vulkan`]: any GPU with a
//! Vulkan driver, and Mesa's software device for tests on machines without one). Kernels are
//! generated programs ([`GpuProgram`]) written in the backend's language, compiled once per
//! device and cached by their source.
//!
//! GPUs hold 32-bit types only: f32 and i32 tensors as they are, bools as one u32 each; f64,
//! i64 and u8 stay on the CPU.

pub mod cuda;
pub mod vulkan;

use super::{Device, DeviceError, DeviceInfo, DeviceTensor, Dialect, GpuProgram, Storage};
use crate::tensor::{Buffer, DType, Tensor};
use std::sync::{Arc, Mutex};

/// Which GPUs [`discover`] accepts, and through which backend.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuOptions {
    /// Accept software adapters (lavapipe). Never chosen for a user by accident: tests set it.
    pub allow_software: bool,
    /// The backend to drive GPUs with.
    pub backend: BackendChoice,
    /// Matrix products on NVIDIA's tensor cores in TF32 (10-bit mantissas): several times
    /// faster on large products, about 3 decimal digits instead of 7.
    pub tf32: bool,
    /// Run chains of elementwise kernels one kernel per op instead of fused (for comparing).
    pub no_fusion: bool,
}

/// The backend [`discover`] uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BackendChoice {
    /// CUDA where the NVIDIA driver finds a GPU, Vulkan otherwise.
    #[default]
    Auto,
    Cuda,
    Vulkan,
}

impl GpuOptions {
    /// The variable that allows software adapters when set to `1`.
    pub const ALLOW_SOFTWARE_ENV: &'static str = "SLUICE_GPU_ALLOW_SOFTWARE";
    /// The variable that picks the backend: `cuda`, `vulkan` or `auto`.
    pub const BACKEND_ENV: &'static str = "SLUICE_GPU_BACKEND";
    /// The variable that turns TF32 matrix products on when set to `1`.
    pub const TF32_ENV: &'static str = "SLUICE_GPU_TF32";
    /// The variable that turns the fusion of elementwise chains off when set to `0`.
    pub const FUSION_ENV: &'static str = "SLUICE_GPU_FUSION";

    /// Options from the environment ([`Self::ALLOW_SOFTWARE_ENV`], [`Self::BACKEND_ENV`],
    /// [`Self::TF32_ENV`], [`Self::FUSION_ENV`]); an unknown backend name is logged and `auto`
    /// used.
    pub fn from_env() -> GpuOptions {
        let on = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
        let backend = match std::env::var(Self::BACKEND_ENV).as_deref() {
            Ok("cuda") => BackendChoice::Cuda,
            Ok("vulkan") => BackendChoice::Vulkan,
            Ok("auto") | Ok("") | Err(_) => BackendChoice::Auto,
            Ok(other) => {
                tracing::warn!(
                    "{}={other:?} is not a GPU backend (cuda, vulkan, auto): using auto",
                    Self::BACKEND_ENV
                );
                BackendChoice::Auto
            }
        };
        GpuOptions {
            allow_software: on(Self::ALLOW_SOFTWARE_ENV),
            backend,
            tf32: on(Self::TF32_ENV),
            no_fusion: std::env::var(Self::FUSION_ENV).is_ok_and(|v| v == "0"),
        }
    }

    /// Whether these options open the same GPUs in the same way as `other` (fusion, a choice
    /// made per plan, aside).
    pub fn same_devices(&self, other: &GpuOptions) -> bool {
        (self.allow_software, self.backend, self.tf32)
            == (other.allow_software, other.backend, other.tf32)
    }

    /// These options, accepting software adapters too (what tests use).
    pub fn with_software(self) -> GpuOptions {
        GpuOptions {
            allow_software: true,
            ..self
        }
    }
}

/// The GPUs of this machine that `options` accept, numbered `/device:GPU:0`, `1`, ... Empty
/// where there is no driver. With [`BackendChoice::Auto`], NVIDIA GPUs are driven through
/// CUDA when its driver is present (each GPU is listed once, not once per backend).
pub fn discover(options: &GpuOptions) -> Vec<GpuDevice> {
    let mut devices = Vec::new();
    if options.backend != BackendChoice::Vulkan {
        for (info, gpu) in cuda::discover(options) {
            devices.push(GpuDevice::new(info, Backend::Cuda(Box::new(gpu))));
        }
    }
    let vulkan = match options.backend {
        BackendChoice::Auto => devices.is_empty(),
        BackendChoice::Cuda => false,
        BackendChoice::Vulkan => true,
    };
    if vulkan {
        for (info, gpu) in vulkan::discover(options, devices.len()) {
            devices.push(GpuDevice::new(info, Backend::Vulkan(Box::new(gpu))));
        }
    }
    devices
}

/// Bytes on a GPU, shared by the tensors that hold them.
#[derive(Debug, Clone)]
pub enum GpuBuffer {
    Vulkan(vulkan::VulkanBuffer),
    Cuda(cuda::CudaBuffer),
}

impl GpuBuffer {
    /// Size in bytes (at least 4: empty tensors get a word so that they can be bound).
    pub fn size(&self) -> u64 {
        match self {
            GpuBuffer::Vulkan(b) => b.size(),
            GpuBuffer::Cuda(b) => b.size(),
        }
    }
}

/// The backend driving one GPU.
enum Backend {
    Vulkan(Box<vulkan::VulkanGpu>),
    Cuda(Box<cuda::CudaGpu>),
}

/// One GPU, whichever backend drives it: the interface kernels use.
pub struct GpuDevice {
    info: DeviceInfo,
    backend: Backend,
    /// The generated programs compiled here, in order: what the CUDA check compiles again.
    programs: Mutex<Vec<Arc<dyn GpuProgram>>>,
    /// The thread whose traced step is timing this GPU's kernels: sessions share the GPU, and
    /// only that thread's kernels are timed.
    tracer: Mutex<Option<std::thread::ThreadId>>,
}

impl std::fmt::Debug for GpuDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuDevice")
            .field("info", &self.info)
            .finish()
    }
}

/// Threads per workgroup (CUDA block) of every generated kernel.
pub const WORKGROUP_SIZE: u32 = 256;

/// The shape of one matrix product `c = op(a) @ op(b)` over `batch` row-major matrices (op
/// transposes when asked): `op(a)` is m x k, `op(b)` k x n, `c` m x n.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gemm {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub transpose_a: bool,
    pub transpose_b: bool,
}

impl GpuDevice {
    fn new(info: DeviceInfo, backend: Backend) -> GpuDevice {
        GpuDevice {
            info,
            backend,
            programs: Mutex::default(),
            tracer: Mutex::default(),
        }
    }

    fn failed(&self, message: impl std::fmt::Display) -> DeviceError {
        DeviceError::failed(&self.info.name, message)
    }

    /// The language this GPU's kernels are written in.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Vulkan(_) => Dialect::Wgsl,
            Backend::Cuda(_) => Dialect::Cuda,
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
        let limit = self.info.max_buffer_bytes;
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
        let buffer = match &self.backend {
            Backend::Vulkan(gpu) => GpuBuffer::Vulkan(gpu.alloc(bytes)?),
            Backend::Cuda(gpu) => GpuBuffer::Cuda(gpu.alloc(bytes)?),
        };
        Ok(DeviceTensor {
            dtype,
            shape: shape.to_vec(),
            storage: Storage::Gpu(buffer),
        })
    }

    /// Runs a generated program over `threads` threads of [`WORKGROUP_SIZE`] per workgroup,
    /// with `buffers` bound in order and the parameter words `params` last; the program is
    /// compiled on first use. Programs find their element as `(group.y * groups.x + group.x)
    /// * WORKGROUP_SIZE + thread`.
    pub fn launch<P: GpuProgram + Clone + 'static>(
        &self,
        program: &P,
        buffers: &[&GpuBuffer],
        params: &[u32],
        threads: usize,
    ) -> Result<(), DeviceError> {
        let source = program.source(self.dialect()).map_err(|e| self.failed(e))?;
        let compiled = match &self.backend {
            Backend::Vulkan(gpu) => gpu.launch(&source, buffers, params, threads)?,
            Backend::Cuda(gpu) => gpu.launch(&source, buffers, params, threads)?,
        };
        if compiled {
            if let Ok(mut programs) = self.programs.lock() {
                programs.push(Arc::new(program.clone()));
            }
        }
        Ok(())
    }

    /// `c = op(a) @ op(b)` in the vendor's library (cuBLAS), or `None` on a backend without
    /// one: the kernel then runs its own program.
    pub fn vendor_gemm(
        &self,
        a: &GpuBuffer,
        b: &GpuBuffer,
        c: &GpuBuffer,
        shape: &Gemm,
    ) -> Option<Result<(), DeviceError>> {
        match &self.backend {
            Backend::Vulkan(_) => None,
            Backend::Cuda(gpu) => Some(gpu.gemm(a, b, c, shape)),
        }
    }

    /// Runs a hand-written WGSL program whose entry point is `main` over a grid of `groups`
    /// workgroups (its own workgroup size); bindings as for [`Self::launch`]. Only on Vulkan.
    pub fn launch_wgsl(
        &self,
        source: &str,
        buffers: &[&GpuBuffer],
        params: &[u32],
        groups: [u32; 3],
    ) -> Result<(), DeviceError> {
        match &self.backend {
            Backend::Vulkan(gpu) => gpu.launch_groups(source, buffers, params, groups),
            Backend::Cuda(_) => Err(self.failed("a WGSL program cannot run on CUDA")),
        }
    }

    /// The generated programs compiled on this device so far.
    pub fn programs(&self) -> Vec<Arc<dyn GpuProgram>> {
        self.programs.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Ends a step: submits its kernels, then waits for the previous step's, so one step
    /// runs on the GPU while the host prepares the next and no more pile up.
    pub fn end_step(&self) -> Result<(), DeviceError> {
        match &self.backend {
            Backend::Vulkan(gpu) => gpu.end_step(),
            Backend::Cuda(gpu) => gpu.end_step(),
        }
    }

    /// Submits the recorded kernels (on backends that record them).
    pub fn flush(&self) -> Result<(), DeviceError> {
        match &self.backend {
            Backend::Vulkan(gpu) => gpu.flush(),
            Backend::Cuda(_) => Ok(()),
        }
    }

    /// Whether traced steps get each kernel's time from the GPU itself (Vulkan timestamp
    /// queries where the adapter has them, CUDA events); where not, a traced step waits for
    /// each kernel so that host times include it.
    pub fn times_kernels(&self) -> bool {
        match &self.backend {
            Backend::Vulkan(gpu) => gpu.times_kernels(),
            Backend::Cuda(_) => true,
        }
    }

    /// Whether the calling thread times this GPU's kernels.
    fn traces_here(&self) -> bool {
        let me = std::thread::current().id();
        self.tracer.lock().is_ok_and(|t| *t == Some(me))
    }

    /// Starts timing the kernels this thread launches, for a traced step; false where another
    /// thread's traced step is timing this GPU already.
    pub fn trace_begin(&self) -> bool {
        let me = std::thread::current().id();
        let Ok(mut tracer) = self.tracer.lock() else {
            return false;
        };
        if tracer.is_some_and(|t| t != me) {
            return false;
        }
        *tracer = Some(me);
        match &self.backend {
            Backend::Vulkan(gpu) => gpu.trace_begin(me),
            Backend::Cuda(gpu) => gpu.trace_begin(me),
        }
        true
    }

    /// Says which node the kernels this thread launches from now on belong to.
    pub fn trace_node(&self, node: usize) {
        if !self.traces_here() {
            return;
        }
        match &self.backend {
            Backend::Vulkan(gpu) => gpu.trace_node(node),
            Backend::Cuda(gpu) => gpu.trace_node(node),
        }
    }

    /// Stops this thread's timing and waits for its kernels: each timed kernel's node and its
    /// time on the GPU in microseconds.
    pub fn trace_end(&self) -> Result<Vec<(usize, f64)>, DeviceError> {
        if !self.traces_here() {
            return Ok(Vec::new());
        }
        let times = match &self.backend {
            Backend::Vulkan(gpu) => gpu.trace_end(),
            Backend::Cuda(gpu) => gpu.trace_end(),
        };
        if let Ok(mut tracer) = self.tracer.lock() {
            *tracer = None;
        }
        times
    }

    /// Takes back a tensor's buffer for later allocations, if nothing else holds it.
    pub fn recycle(&self, tensor: DeviceTensor) {
        // CUDA's stream-ordered allocator keeps freed memory for the next allocation.
        if let (Backend::Vulkan(gpu), Storage::Gpu(GpuBuffer::Vulkan(buffer))) =
            (&self.backend, tensor.storage)
        {
            gpu.recycle(buffer)
        }
    }
}

/// A host tensor's bytes as a GPU holds them (bools widened to words).
fn device_bytes(device: &str, tensor: &Tensor) -> Result<Vec<u8>, DeviceError> {
    Ok(match tensor.buffer() {
        Buffer::F32(v) => bytemuck::cast_slice(v.as_slice()).to_vec(),
        Buffer::I32(v) => bytemuck::cast_slice(v.as_slice()).to_vec(),
        Buffer::Bool(v) => v.iter().flat_map(|&b| u32::from(b).to_le_bytes()).collect(),
        _ => {
            return Err(DeviceError::UnsupportedDType {
                device: device.to_string(),
                dtype: tensor.dtype(),
            })
        }
    })
}

/// A host tensor from the bytes a GPU held.
fn host_tensor(
    device: &str,
    dtype: DType,
    shape: &[usize],
    data: &[u8],
) -> Result<Tensor, DeviceError> {
    let words = || data.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
    let result = match dtype {
        DType::F32 => Tensor::new(shape, words().map(f32::from_le_bytes).collect()),
        DType::I32 => Tensor::new(shape, words().map(i32::from_le_bytes).collect()),
        DType::Bool => Tensor::new(shape, words().map(|w| u32::from_le_bytes(w) != 0).collect()),
        dtype => {
            return Err(DeviceError::UnsupportedDType {
                device: device.to_string(),
                dtype,
            })
        }
    };
    result.map_err(|e| DeviceError::Failed {
        device: device.to_string(),
        message: e.to_string(),
    })
}

/// Workgroups in x and y for `threads` threads: x at most `max_x`, y spanning the rest.
/// Kernels compute their element as `(group.y * groups.x + group.x) * WORKGROUP_SIZE +
/// thread`.
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
        self.bytes_for(
            tensor.dtype(),
            tensor.len(),
            &format!("a {} tensor of shape {:?}", tensor.dtype(), tensor.shape()),
        )?;
        let bytes = device_bytes(&self.info.name, tensor)?;
        let buffer = match &self.backend {
            Backend::Vulkan(gpu) => GpuBuffer::Vulkan(gpu.upload(&bytes)?),
            Backend::Cuda(gpu) => GpuBuffer::Cuda(gpu.upload(&bytes)?),
        };
        Ok(DeviceTensor {
            dtype: tensor.dtype(),
            shape: tensor.shape().to_vec(),
            storage: Storage::Gpu(buffer),
        })
    }

    fn download(&self, tensor: &DeviceTensor) -> Result<Tensor, DeviceError> {
        let Storage::Gpu(buffer) = &tensor.storage else {
            return Err(self.failed("the tensor is not on a GPU"));
        };
        let bytes = self.bytes_for(tensor.dtype, tensor.len(), "a download")?;
        let data = match &self.backend {
            Backend::Vulkan(gpu) => gpu.download(buffer, bytes)?,
            Backend::Cuda(gpu) => gpu.download(buffer, bytes)?,
        };
        host_tensor(&self.info.name, tensor.dtype, &tensor.shape, &data)
    }

    fn synchronize(&self) -> Result<(), DeviceError> {
        match &self.backend {
            Backend::Vulkan(gpu) => gpu.synchronize(),
            Backend::Cuda(gpu) => gpu.synchronize(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workgroups_cover_every_thread_within_the_limits() {
        assert_eq!(workgroups(1, 65535), Some((1, 1)));
        assert_eq!(workgroups(256 * 65535 + 1, 65535), Some((65535, 2)));
        assert_eq!(workgroups(0, 65535), Some((1, 1)));
        assert_eq!(workgroups(usize::MAX, 65535), None);
    }

    #[test]
    fn bools_travel_as_words_and_back() {
        let t = Tensor::new(&[3], vec![true, false, true]).expect("tensor");
        let bytes = device_bytes("gpu", &t).expect("bytes");
        assert_eq!(bytes.len(), 12);
        let back = host_tensor("gpu", DType::Bool, &[3], &bytes).expect("tensor");
        assert_eq!(back, t);
        let err = device_bytes("/device:GPU:0", &Tensor::from_vec(vec![1.0f64]));
        assert!(err.is_err_and(|e| e.to_string().contains("f64")));
    }
}
