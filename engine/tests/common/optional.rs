//! Tests that need data or tools beyond the crate (Fashion-MNIST, a Python with pandas):
//! where one is missing they skip, saying so in one line, except under `CI=true`, where a
//! skipped test would hide a broken setup and fails instead. tests/src/optional.rs is the
//! same for the end-to-end tests.

use std::ffi::OsString;
use std::path::PathBuf;

/// Whether a test's optional requirement is `present`. If not, prints one line,
/// `skipped: WHAT_IS_MISSING: HOW_TO_GET_IT`, to stderr and returns false, and the test
/// returns early; under `CI=true` it panics with that text instead.
pub fn require(present: bool, what_is_missing: &str, how_to_get_it: &str) -> bool {
    if present {
        return true;
    }
    let why = format!("{what_is_missing}: {how_to_get_it}");
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{why} (CI=true: a missing requirement fails the test)");
    }
    eprintln!("skipped: {why}");
    false
}

/// Debian's Fashion-MNIST (package `dataset-fashion-mnist`), if installed.
pub fn fashion_mnist_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(sluice::data::DEFAULT_FASHION_MNIST_DIR);
    let present = dir.join("train-images-idx3-ubyte.gz").is_file();
    require(
        present,
        &format!("Fashion-MNIST is not in {}", dir.display()),
        "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist), as .ci/run does",
    )
    .then_some(dir)
}

/// The Python with pandas, polars and pyarrow that `SLUICE_PY` names (.ci/run makes one).
pub fn python_with_pandas() -> Option<OsString> {
    let python = std::env::var_os("SLUICE_PY");
    // When it is unset, `require` says so (or fails the test under CI), and None says skip.
    require(
        python.is_some(),
        "SLUICE_PY (a Python with pandas, polars and pyarrow) is unset",
        "run .ci/run, which makes one, or: python3 -m venv ~/.cache/sluice-py-venv && \
         ~/.cache/sluice-py-venv/bin/pip install polars pandas pyarrow && \
         export SLUICE_PY=~/.cache/sluice-py-venv/bin/python",
    );
    python
}

/// Session options on the first GPU of the chosen backend, Mesa's software Vulkan device
/// allowed; `None` (skip, or fail under CI) where there is none.
#[cfg(feature = "engine")]
pub fn software_gpu_options(
    gpu: sluice::devices::gpu::GpuOptions,
    soft_placement: bool,
) -> Option<sluice::SessionOptions> {
    let gpu = gpu.with_software();
    require(
        !sluice::devices::gpu::discover(&gpu).is_empty(),
        "no GPU of the chosen backend (SLUICE_GPU_BACKEND), not even the software Vulkan device",
        "install mesa-vulkan-drivers and libvulkan1 (apt-get), as .ci/run does",
    )
    .then_some(sluice::SessionOptions {
        gpu,
        soft_placement,
    })
}
