//! Tests that need data or tools beyond the repository (Fashion-MNIST, a Python venv):
//! where one is missing they skip, saying so in one line, except under `CI=true`, where a
//! skipped test would hide a broken setup and fails instead. engine/tests/common/optional.rs
//! is the same for the engine's own tests.

use std::path::PathBuf;

/// Whether a test's optional requirement is `present`. If not, prints one line,
/// `skipped: WHAT_IS_MISSING: HOW_TO_GET_IT`, to stderr and returns false, and the test
/// returns early; under `CI=true` it panics with that text instead.
///
/// ```no_run
/// # use sluice_tests::require;
/// let python = std::env::var_os("SLUICE_JUPYTER_PY");
/// if !require(python.is_some(), "SLUICE_JUPYTER_PY is unset", "run .ci/run, which makes that venv") {
///     return;
/// }
/// ```
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

/// Whether a Vulkan driver is installed (Mesa's software one stands in for a GPU where there
/// is none).
pub fn require_vulkan() -> bool {
    require(
        std::path::Path::new("/usr/share/vulkan/icd.d").is_dir(),
        "no Vulkan driver (/usr/share/vulkan/icd.d)",
        "install mesa-vulkan-drivers and libvulkan1 (apt-get), as .ci/run does",
    )
}

/// The Python that SLUICE_PY names, if it has TensorBoard (`.ci/run` installs it into that
/// venv from PyPI).
pub fn python_with_tensorboard() -> Option<std::ffi::OsString> {
    python_with("tensorboard")
}

/// The Python that SLUICE_PY names, if it can import `module` (`.ci/run` installs what the
/// tests import into that venv from PyPI).
pub fn python_with(module: &str) -> Option<std::ffi::OsString> {
    let python = std::env::var_os("SLUICE_PY");
    let has_module = python.as_ref().is_some_and(|python| {
        std::process::Command::new(python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|out| out.status.success())
    });
    require(
        has_module,
        &format!("SLUICE_PY (a Python with {module}) is unset or lacks {module}"),
        &format!(
            "run .ci/run, which makes one, or: python3 -m venv ~/.cache/sluice-py-venv && \
             ~/.cache/sluice-py-venv/bin/pip install {module} && \
             export SLUICE_PY=~/.cache/sluice-py-venv/bin/python"
        ),
    )
    .then_some(python)
    .flatten()
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

#[cfg(test)]
mod tests {
    use super::require;

    #[test]
    fn a_missing_requirement_skips_outside_ci_and_fails_under_it() {
        assert!(require(true, "nothing", "nothing to do"));
        let under_ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
        let missing = std::panic::catch_unwind(|| {
            require(false, "a requirement of this test", "nothing to get")
        });
        match missing {
            Ok(present) => assert!(!present && !under_ci),
            Err(_) => assert!(under_ci, "it panicked outside CI"),
        }
    }
}
