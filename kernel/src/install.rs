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

/// The kernelspec's name: `sluice`, or `sluice-gpu` for one whose cells run on a device
/// (`--device gpu`), so both can be installed side by side.
pub fn kernel_name(device: Option<&str>) -> String {
    let slug: String = (device.unwrap_or_default().chars())
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    match slug.as_str() {
        "" => KERNEL_NAME.to_string(),
        // `/device:GPU:1` is `devicegpu1`: keep what says which device.
        s => format!("{KERNEL_NAME}-{}", s.trim_start_matches("device")),
    }
}

/// The kernelspec folder for `target`.
pub fn kernel_dir(target: &Target, device: Option<&str>) -> Result<PathBuf> {
    let data = match target {
        Target::User => jupyter_zmq_client::user_data_dir().map_err(|e| JupyterError::Install {
            path: "the user's Jupyter data folder".into(),
            message: e.to_string(),
        })?,
        Target::SysPrefix => sys_prefix()?.join("share").join("jupyter"),
        Target::Prefix(p) => p.join("share").join("jupyter"),
    };
    Ok(data.join("kernels").join(kernel_name(device)))
}

/// The kernel.json for the binary at `exe`; with a device, its cells' nodes run there.
pub fn kernel_json(exe: &Path, device: Option<&str>) -> serde_json::Value {
    let mut argv = vec![
        exe.to_string_lossy().to_string(),
        "--connection-file".into(),
        "{connection_file}".into(),
    ];
    let mut display = "Rust (Sluice)".to_string();
    if let Some(device) = device {
        argv.extend(["--device".into(), device.to_string()]);
        display = format!("Rust (Sluice, {device})");
    }
    json!({
        "argv": argv,
        "display_name": display,
        "language": "rust",
        "interrupt_mode": "message",
        "metadata": { "debugger": false },
    })
}

/// Writes the kernelspec (kernel.json and the logos), for cells on `device` if given;
/// returns its folder.
pub fn write_kernelspec(target: &Target, device: Option<&str>) -> Result<PathBuf> {
    let dir = kernel_dir(target, device)?;
    let failed = |e: std::io::Error| JupyterError::Install {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(failed)?;
    let exe = std::env::current_exe()?;
    // The binary where it is for good (not a symlink that may move).
    let exe = exe.canonicalize().unwrap_or(exe);
    let text = serde_json::to_string_pretty(&kernel_json(&exe, device)).map_err(|e| {
        JupyterError::Install {
            path: dir.display().to_string(),
            message: e.to_string(),
        }
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
        let spec = kernel_json(Path::new("/bin/sluice-kernel"), None);
        assert_eq!(spec["language"], "rust");
        assert_eq!(spec["interrupt_mode"], "message");
        assert_eq!(spec["argv"][2], "{connection_file}");
        assert_eq!(spec["argv"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn a_device_kernelspec_passes_its_device_and_has_its_own_name() {
        let spec = kernel_json(Path::new("/bin/sluice-kernel"), Some("gpu"));
        assert_eq!(spec["argv"][3], "--device");
        assert_eq!(spec["argv"][4], "gpu");
        assert_eq!(spec["display_name"], "Rust (Sluice, gpu)");
        assert_eq!(kernel_name(None), "sluice");
        assert_eq!(kernel_name(Some("gpu")), "sluice-gpu");
        assert_eq!(kernel_name(Some("/device:GPU:1")), "sluice-gpu1");
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
