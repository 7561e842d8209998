//! The CUDA form of generated GPU programs, checked without a GPU: NVRTC compiles it and
//! ptxas assembles it for sm_90 (H100, H200).

use super::require;
use sluice::devices::gpu::cuda::Nvrtc;
use sluice::devices::{Dialect, GpuProgram};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// NVRTC and ptxas, from PyPI's nvidia-cuda-nvrtc and nvidia-cuda-nvcc (CUDA 13.0, as the GPU
/// machines' driver), where `SLUICE_NVRTC` and `SLUICE_PTXAS` name them. `SLUICE_CUDA_CHECK=0`
/// skips the check (bench/gpu.sh, on a machine without them).
fn cuda_tools() -> Option<&'static (Nvrtc, PathBuf)> {
    if std::env::var("SLUICE_CUDA_CHECK").is_ok_and(|v| v == "0") {
        return None;
    }
    static TOOLS: OnceLock<Option<(Nvrtc, PathBuf)>> = OnceLock::new();
    let tools = TOOLS.get_or_init(|| {
        let nvrtc = Nvrtc::load().ok()?;
        let ptxas = PathBuf::from(std::env::var_os("SLUICE_PTXAS")?);
        ptxas.is_file().then_some((nvrtc, ptxas))
    });
    require(
        tools.is_some(),
        "no NVRTC and ptxas to check the generated CUDA kernels",
        "pip install nvidia-cuda-nvrtc==13.0.* nvidia-cuda-nvcc==13.0.* into a venv and set \
         SLUICE_NVRTC (libnvrtc.so.13) and SLUICE_PTXAS, as .ci/run does",
    )
    .then_some(tools.as_ref())
    .flatten()
}

/// Compiles each program's CUDA C with NVRTC for sm_90 and checks the PTX with ptxas: it
/// assembles, and a block of 256 threads neither spills registers nor runs out of them.
pub fn check_cuda(programs: &[Arc<dyn GpuProgram>]) {
    let Some((nvrtc, ptxas)) = cuda_tools() else {
        return;
    };
    assert_eq!(
        nvrtc.version().0,
        13,
        "NVRTC {:?}: the GPU machines run CUDA 13.0",
        nvrtc.version()
    );
    let dir = std::env::temp_dir().join(format!(
        "sluice-ptx-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    for (k, program) in programs.iter().enumerate() {
        let source = program.source(Dialect::Cuda).expect("CUDA source");
        let ptx = nvrtc
            .compile(&source, "compute_90")
            .unwrap_or_else(|e| panic!("{program:?} does not compile: {e}"));
        let file = dir.join(format!("kernel{k}.ptx"));
        std::fs::write(&file, ptx).expect("write PTX");
        let out = std::process::Command::new(ptxas)
            .args(["-arch=sm_90", "-v", "-o"])
            .arg(dir.join(format!("kernel{k}.cubin")))
            .arg(&file)
            .output()
            .expect("run ptxas");
        let report = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "ptxas rejects {program:?}:\n{report}\n{source}"
        );
        let registers: u32 = report
            .split("Used ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no register count from ptxas:\n{report}"));
        assert!(registers <= 255, "{registers} registers in {program:?}");
        assert!(
            report.contains("0 bytes spill stores, 0 bytes spill loads"),
            "spills in {program:?}:\n{report}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
