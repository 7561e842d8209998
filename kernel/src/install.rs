//! `sluice-kernel install`: the kernelspec Jupyter finds the kernel by (with its logos), and
//! a first build of what cells need, so that the first notebook does not wait for it.

use crate::error::{JupyterError, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The kernelspec's name (`jupyter kernelspec list`, `--kernel_name sluice`).
pub const KERNEL_NAME: &str = "sluice";

/// The logos Jupyter shows for the kernel (launcher, tabs): (file name, PNG bytes).
const LOGOS: [(&str, &[u8]); 2] = [
    ("logo-32x32.png", include_bytes!("../assets/logo-32x32.png")),
    ("logo-64x64.png", include_bytes!("../assets/logo-64x64.png")),
];

/// Where to install.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The user's Jupyter data folder (`jupyter --data-dir`).
    User,
    /// The active Python environment's (`sys.prefix`).
    SysPrefix,
    /// `<prefix>/share/jupyter`.
    Prefix(PathBuf),
}

/// The kernelspec folder for `target`.
pub fn kernel_dir(target: &Target) -> Result<PathBuf> {
    let data = match target {
        Target::User => jupyter_zmq_client::user_data_dir().map_err(|e| JupyterError::Install {
            path: "the user's Jupyter data folder".into(),
            message: e.to_string(),
        })?,
        Target::SysPrefix => sys_prefix()?.join("share").join("jupyter"),
        Target::Prefix(p) => p.join("share").join("jupyter"),
    };
    Ok(data.join("kernels").join(KERNEL_NAME))
}

/// The kernel.json for the binary at `exe`.
pub fn kernel_json(exe: &Path) -> serde_json::Value {
    json!({
        "argv": [exe.to_string_lossy(), "--connection-file", "{connection_file}"],
        "display_name": "Rust (Sluice)",
        "language": "rust",
        "interrupt_mode": "message",
        "metadata": { "debugger": false },
    })
}

/// Writes the kernelspec (kernel.json and the logos); returns its folder.
pub fn write_kernelspec(target: &Target) -> Result<PathBuf> {
    let dir = kernel_dir(target)?;
    let failed = |e: std::io::Error| JupyterError::Install {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(failed)?;
    let exe = std::env::current_exe()?;
    // The binary where it is for good (not a symlink that may move).
    let exe = exe.canonicalize().unwrap_or(exe);
    let text =
        serde_json::to_string_pretty(&kernel_json(&exe)).map_err(|e| JupyterError::Install {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
    std::fs::write(dir.join("kernel.json"), text).map_err(failed)?;
    for (name, bytes) in LOGOS {
        std::fs::write(dir.join(name), bytes).map_err(failed)?;
    }
    Ok(dir)
}

/// The prefix of the Python environment in use: a virtualenv's or conda's if active, else
/// what `python3` says.
fn sys_prefix() -> Result<PathBuf> {
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
    }
    let failed = |message: String| JupyterError::Install {
        path: "--sys-prefix".into(),
        message,
    };
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.prefix)"])
        .output()
        .map_err(|e| failed(format!("needs python3: {e}")))?;
    let prefix = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || prefix.is_empty() {
        return Err(failed("python3 did not tell its sys.prefix".into()));
    }
    Ok(PathBuf::from(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernelspec_says_rust_and_message_interrupts() {
        let spec = kernel_json(Path::new("/bin/sluice-kernel"));
        assert_eq!(spec["language"], "rust");
        assert_eq!(spec["interrupt_mode"], "message");
        assert_eq!(spec["argv"][2], "{connection_file}");
    }

    #[test]
    fn logos_are_pngs_of_their_size() {
        for (name, bytes) in LOGOS {
            assert_eq!(&bytes[1..4], b"PNG", "{name}");
            let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
            assert!(
                name.contains(&format!("{width}x{width}")),
                "{name}: {width}"
            );
        }
    }
}
