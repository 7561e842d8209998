//! NVRTC, NVIDIA's runtime compiler, loaded at run time: compiles the CUDA C that the GPU
//! kernels' description emits (`crate::kernels::gpu::program`) to PTX. It runs without a
//! GPU: CI compiles every kernel the op suite generates this way and checks the PTX with
//! `ptxas` for sm_90 (engine/tests/gpu_ops.rs).

use crate::devices::DeviceError;
use std::path::Path;

/// NVIDIA's runtime compiler.
#[derive(Debug)]
pub struct Nvrtc {
    version: (i32, i32),
}

/// The GPU architecture kernels are compiled for unless asked otherwise: Hopper (H100, H200).
pub const DEFAULT_ARCH: &str = "compute_90";

fn failed(message: impl std::fmt::Display) -> DeviceError {
    DeviceError::failed("NVRTC", message)
}

impl Nvrtc {
    /// The variable naming the NVRTC library to load (`.../libnvrtc.so.13`, as PyPI's
    /// `nvidia-cuda-nvrtc` installs it); without it the system's library path is searched.
    pub const LIBRARY_ENV: &'static str = "SLUICE_NVRTC";

    /// NVRTC from [`Self::LIBRARY_ENV`], or from the system's library path.
    pub fn load() -> Result<Nvrtc, DeviceError> {
        match std::env::var_os(Self::LIBRARY_ENV) {
            Some(path) => Nvrtc::load_from(Some(Path::new(&path))),
            None => Nvrtc::load_from(None),
        }
    }

    /// NVRTC from the library at `path` (its builtins beside it), or from the system's
    /// library path.
    pub fn load_from(path: Option<&Path>) -> Result<Nvrtc, DeviceError> {
        if let Some(path) = path {
            // Loaded once by path, a library is found again by its soname: cudarc's own load
            // by name then gets this one. NVRTC opens its builtins by name too.
            let dir = path.parent().unwrap_or(Path::new("."));
            let builtins = std::fs::read_dir(dir)
                .map_err(|e| failed(format!("cannot read {}: {e}", dir.display())))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    name.starts_with("libnvrtc-builtins.so")
                });
            for library in builtins.chain([path.to_path_buf()]) {
                // SAFETY: NVIDIA's libraries run no initialisers with preconditions on load.
                let lib = unsafe { libloading::Library::new(&library) }
                    .map_err(|e| failed(format!("cannot load {}: {e}", library.display())))?;
                // Kept for the process's life, as cudarc keeps its own handle.
                std::mem::forget(lib);
            }
        }
        // SAFETY: only tries to open the library.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(failed(format!(
                "no NVRTC library found (set {} to the path of libnvrtc.so)",
                Self::LIBRARY_ENV
            )));
        }
        let (mut major, mut minor) = (0, 0);
        // SAFETY: the library is present (checked above); both pointers are valid.
        unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) }
            .result()
            .map_err(|e| failed(format!("nvrtcVersion: {e:?}")))?;
        Ok(Nvrtc {
            version: (major, minor),
        })
    }

    /// NVRTC's version (major, minor): PTX from a newer NVRTC than the driver's CUDA does
    /// not load.
    pub fn version(&self) -> (i32, i32) {
        self.version
    }

    /// PTX for `source` on `arch` (`compute_90`), or the compiler's log.
    pub fn compile(&self, source: &str, arch: &str) -> Result<String, DeviceError> {
        if source.contains('\0') {
            return Err(failed("a kernel's source holds a NUL byte"));
        }
        let options = cudarc::nvrtc::CompileOptions {
            options: vec![format!("--gpu-architecture={arch}")],
            ..Default::default()
        };
        cudarc::nvrtc::compile_ptx_with_opts(source, options)
            .map(|ptx| ptx.to_src())
            .map_err(|e| match e {
                cudarc::nvrtc::CompileError::CompileError { log, .. } => {
                    failed(format!("{}\n{source}", log.to_string_lossy()))
                }
                other => failed(format!("{other:?}")),
            })
    }
}
