//! Devices: where tensors live and kernels run. The CPU is always there; GPUs are found at run
//! time (CUDA, or wgpu over Vulkan) and are simply absent without a driver. `Tensor` stays the host
//! value of the public API: feeds, fetches, the wire and checkpoints copy at the boundary
//! ([`Device::upload`], [`Device::download`]).

pub mod gpu;

use crate::tensor::{DType, Tensor};
use gpu::{GpuDevice, GpuOptions};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

/// Kinds of device; kernels are registered per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    Cpu,
    Gpu,
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceKind::Cpu => "CPU",
            DeviceKind::Gpu => "GPU",
        })
    }
}

/// The languages GPU kernels are generated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// WGSL, for wgpu (Vulkan, Metal, DX12).
    Wgsl,
    /// CUDA C, for NVRTC.
    Cuda,
}

/// The entry point of a generated program in CUDA C (in WGSL it is `main`).
pub const CUDA_ENTRY: &str = "sluice_kernel";

/// A GPU program that can be written in every [`Dialect`] (the generated kernels of
/// `crate::kernels::gpu::program`).
pub trait GpuProgram: fmt::Debug + Send + Sync {
    /// The program's source in `dialect`; its entry point is `main` in WGSL and
    /// [`CUDA_ENTRY`] in CUDA C.
    fn source(&self, dialect: Dialect) -> Result<String, String>;
}

/// What a device is, as `ListDevices` and `:devices` show it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    /// `/device:CPU:0`, `/device:GPU:0`, ...
    pub name: String,
    pub kind: DeviceKind,
    /// The adapter's own name (`NVIDIA H100 80GB HBM3`, `llvmpipe (LLVM 15.0.6, 256 bits)`).
    pub description: String,
    /// `host`, `cuda`, `vulkan`.
    pub backend: String,
    /// Largest single buffer the device allows, in bytes.
    pub max_buffer_bytes: u64,
    /// The device's own memory in bytes (a GPU's device-local heaps), 0 where unknown.
    pub memory_bytes: u64,
    /// A software rasteriser (lavapipe): only used when asked for.
    pub software: bool,
}

/// Why a device could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("{device} cannot hold {dtype} tensors")]
    UnsupportedDType { device: String, dtype: DType },
    #[error("{device}: {what} needs {bytes} bytes, over the device's limit of {limit}")]
    TooLarge {
        device: String,
        what: String,
        bytes: u64,
        limit: u64,
    },
    #[error("{device}: {message}")]
    Failed { device: String, message: String },
}

impl DeviceError {
    /// `device` could not do something: `message` says what.
    pub fn failed(device: &str, message: impl fmt::Display) -> DeviceError {
        DeviceError::Failed {
            device: device.to_string(),
            message: message.to_string(),
        }
    }
}

/// Where a tensor's bytes live.
#[derive(Debug, Clone)]
pub enum Storage {
    Host(Tensor),
    Gpu(gpu::GpuBuffer),
}

/// A tensor on some device.
#[derive(Debug, Clone)]
pub struct DeviceTensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub storage: Storage,
}

impl DeviceTensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A place where tensors live: allocation, copies in and out, synchronisation.
pub trait Device: Send + Sync {
    fn info(&self) -> &DeviceInfo;

    /// Copies a host tensor onto the device.
    fn upload(&self, tensor: &Tensor) -> Result<DeviceTensor, DeviceError>;

    /// Copies a device tensor back to the host, waiting for the work that writes it.
    fn download(&self, tensor: &DeviceTensor) -> Result<Tensor, DeviceError>;

    /// Waits until all submitted work has finished.
    fn synchronize(&self) -> Result<(), DeviceError>;
}

/// The host's device name, as a process's own steps name it.
pub const HOST_DEVICE: &str = "/device:CPU:0";

/// The host: tensors stay where they are.
#[derive(Debug)]
pub struct CpuDevice {
    info: DeviceInfo,
}

impl Default for CpuDevice {
    fn default() -> CpuDevice {
        CpuDevice {
            info: DeviceInfo {
                name: HOST_DEVICE.into(),
                kind: DeviceKind::Cpu,
                description: format!(
                    "{} cores",
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                ),
                backend: "host".into(),
                max_buffer_bytes: isize::MAX as u64,
                memory_bytes: host_memory(),
                software: false,
            },
        }
    }
}

impl Device for CpuDevice {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn upload(&self, tensor: &Tensor) -> Result<DeviceTensor, DeviceError> {
        Ok(DeviceTensor {
            dtype: tensor.dtype(),
            shape: tensor.shape().to_vec(),
            storage: Storage::Host(tensor.clone()),
        })
    }

    fn download(&self, tensor: &DeviceTensor) -> Result<Tensor, DeviceError> {
        match &tensor.storage {
            Storage::Host(t) => Ok(t.clone()),
            Storage::Gpu(_) => Err(DeviceError::Failed {
                device: self.info.name.clone(),
                message: "the tensor lives on a GPU; download it from there".into(),
            }),
        }
    }

    fn synchronize(&self) -> Result<(), DeviceError> {
        Ok(())
    }
}

/// The machine's memory in bytes (Linux), or 0 where it cannot be read.
pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        })
        .unwrap_or(0)
}

/// The memory budget sessions get unless told otherwise: three quarters of the machine's
/// memory (read once).
pub fn default_memory_budget() -> crate::tensor::MemoryBudget {
    static BUDGET: OnceLock<crate::tensor::MemoryBudget> = OnceLock::new();
    *BUDGET.get_or_init(|| crate::tensor::MemoryBudget::share_of(host_memory()))
}

/// The devices a session places nodes on: the CPU, and the GPUs, found when a node first asks
/// for one (opening a GPU takes a moment, and most graphs never ask).
#[derive(Debug)]
pub struct DeviceSet {
    options: GpuOptions,
    gpus: OnceLock<Vec<Arc<GpuDevice>>>,
}

impl DeviceSet {
    pub fn new(options: GpuOptions) -> DeviceSet {
        DeviceSet {
            options,
            gpus: OnceLock::new(),
        }
    }

    /// The process's devices for `options`, shared by every session that asks for the same
    /// devices ([`GpuOptions::same_devices`]): a GPU is opened once per process, and its compiled kernels (NVRTC takes tens
    /// of milliseconds per kernel), memory pool and queue serve all its sessions, as a GPU's
    /// context does in TensorFlow. Devices are hardware, not session state: the registry is
    /// the process's.
    pub fn shared(options: GpuOptions) -> Arc<DeviceSet> {
        static SETS: Mutex<Vec<Arc<DeviceSet>>> = Mutex::new(Vec::new());
        let mut sets = SETS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = sets.iter().find(|s| s.options.same_devices(&options)) {
            return set.clone();
        }
        let set = Arc::new(DeviceSet::new(options));
        sets.push(set.clone());
        set
    }

    /// The options the GPUs are found and used with.
    pub fn options(&self) -> &GpuOptions {
        &self.options
    }

    /// The CPU and the GPUs, as `ListDevices` shows them (discovers the GPUs).
    pub fn infos(&self) -> Vec<DeviceInfo> {
        let mut infos = vec![CpuDevice::default().info().clone()];
        infos.extend(self.gpus().iter().map(|g| g.info().clone()));
        infos
    }

    /// The GPUs that the options accept, discovered on the first call.
    pub fn gpus(&self) -> &[Arc<GpuDevice>] {
        self.gpus.get_or_init(|| {
            gpu::discover(&self.options)
                .into_iter()
                .map(Arc::new)
                .collect()
        })
    }
}
