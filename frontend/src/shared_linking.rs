//! Cells that share one copy of their dependencies. evcxr compiles each cell to a library of
//! its own; linked statically, every cell would carry its own copy of `sluice` (its own graph
//! registry and Tokio context), so a graph or session made in one entry would not work in the
//! next. evcxr links them as shared libraries when `allow_static_linking = false`, but with
//! rustc 1.9x that fails for `no_std` dependencies: evcxr names the standard library's shared
//! object as `core`, and that file now holds only a metadata stub. rustc accepts the full
//! metadata beside it, so the frontend (kernel or REPL), when it runs as evcxr's rustc wrapper, adds
//! `--extern core=<libstd .rmeta>` (from a folder without the `.so`, which evcxr would
//! otherwise substitute) and runs the wrapper again.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// The standard library's full metadata, for the wrapper (set by the frontend).
const STD_RMETA_ENV: &str = "SLUICE_STD_RMETA";
/// Set on the wrapper once it has added the argument.
const PATCHED_ENV: &str = "SLUICE_RUSTC_PATCHED";

/// evcxr's settings: cells at opt-level 0, dependencies as shared libraries.
const EVCXR_TOML: &str =
    "[evcxr]\nallow_static_linking = false\nopt_level = \"0\"\npreserve_vars_on_panic = true\n";

/// Call first in `main`, before `evcxr::runtime_hook`: in the rustc-wrapper role with shared
/// linking, runs the wrapper again with the standard library's metadata added. Returns when
/// there is nothing to do (or the new run could not start: evcxr's wrapper then runs as is).
pub fn patch_rustc_wrapper() {
    let wrapping = std::env::var_os("EVCXR_RUSTC_WRAPPER").is_some()
        && std::env::var_os("EVCXR_FORCE_DYLIB").is_some()
        && std::env::var_os(PATCHED_ENV).is_none();
    let Some(rmeta) = std::env::var_os(STD_RMETA_ENV).filter(|_| wrapping) else {
        return;
    };
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut core = OsString::from("core=");
    core.push(rmeta);
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .arg("--extern")
        .arg(core)
        .env(PATCHED_ENV, "1")
        .exec();
    eprintln!("sluice: cannot run the rustc wrapper again: {error}");
}

/// Prepares evcxr for shared linking: its settings in `config_dir` (named by
/// `EVCXR_CONFIG_DIR`), and the standard library's metadata linked into `meta_dir` for the
/// wrapper. Call before any thread starts: it sets environment variables.
pub fn prepare(config_dir: &Path, meta_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(config_dir)?;
    std::fs::write(config_dir.join("evcxr.toml"), EVCXR_TOML)?;
    std::env::set_var("EVCXR_CONFIG_DIR", config_dir);
    let rmeta = std_rmeta()?;
    let name = rmeta
        .file_name()
        .ok_or_else(|| std::io::Error::other("the standard library has no file name"))?;
    std::fs::create_dir_all(meta_dir)?;
    let link = meta_dir.join(name);
    if !link.exists() {
        // A copy where links are refused.
        if std::os::unix::fs::symlink(&rmeta, &link).is_err() {
            std::fs::copy(&rmeta, &link)?;
        }
    }
    std::env::set_var(STD_RMETA_ENV, &link);
    Ok(())
}

/// `libstd-*.rmeta` in rustc's target library folder.
fn std_rmeta() -> std::io::Result<PathBuf> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = std::process::Command::new(rustc)
        .args(["--print", "target-libdir"])
        .output()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("libstd-") && name.ends_with(".rmeta") {
            return Ok(path);
        }
    }
    Err(std::io::Error::other(format!(
        "no libstd-*.rmeta in {}",
        dir.display()
    )))
}
