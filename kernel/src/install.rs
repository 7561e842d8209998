//! `sluice-kernel install`: the kernelspec Jupyter finds the kernel by, and a first build of
//! what cells need so that the first notebook does not wait for it.

use crate::error::{KernelError, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The kernelspec's name (`jupyter kernelspec list`, `--kernel_name sluice`).
pub const KERNEL_NAME: &str = "sluice";

/// Where to install.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    User,
    SysPrefix,
    Prefix(PathBuf),
}

/// Parsed `install` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallArgs {
    pub target: Target,
    pub prewarm: bool,
}

impl InstallArgs {
    pub fn parse(args: &[String]) -> Result<InstallArgs> {
        let mut parsed = InstallArgs {
            target: Target::User,
            prewarm: true,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--user" => parsed.target = Target::User,
                "--sys-prefix" => parsed.target = Target::SysPrefix,
                "--prefix" => {
                    let p = it
                        .next()
                        .ok_or_else(|| KernelError::Install("--prefix needs a folder".into()))?;
                    parsed.target = Target::Prefix(PathBuf::from(p));
                }
                "--no-prewarm" => parsed.prewarm = false,
                other => {
                    if let Some(p) = other.strip_prefix("--prefix=") {
                        parsed.target = Target::Prefix(PathBuf::from(p));
                    } else {
                        return Err(KernelError::Install(format!("unknown option {other}")));
                    }
                }
            }
        }
        Ok(parsed)
    }
}

/// The kernelspec folder for `target`.
pub fn kernel_dir(target: &Target) -> Result<PathBuf> {
    let data = match target {
        Target::User => jupyter_zmq_client::user_data_dir()?,
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

/// Writes the kernelspec; returns its folder.
pub fn write_kernelspec(target: &Target) -> Result<PathBuf> {
    let dir = kernel_dir(target)?;
    std::fs::create_dir_all(&dir)?;
    let exe = std::env::current_exe()?;
    let text = serde_json::to_string_pretty(&kernel_json(&exe))
        .map_err(|e| KernelError::Install(e.to_string()))?;
    std::fs::write(dir.join("kernel.json"), text)?;
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
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.prefix)"])
        .output()
        .map_err(|e| KernelError::Install(format!("--sys-prefix needs python3: {e}")))?;
    let prefix = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || prefix.is_empty() {
        return Err(KernelError::Install(
            "python3 did not tell its sys.prefix".into(),
        ));
    }
    Ok(PathBuf::from(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            InstallArgs::parse(&args(&[])).map(|a| a.target).ok(),
            Some(Target::User)
        );
        let parsed = InstallArgs::parse(&args(&["--prefix", "/x", "--no-prewarm"])).ok();
        assert_eq!(
            parsed,
            Some(InstallArgs {
                target: Target::Prefix("/x".into()),
                prewarm: false
            })
        );
        assert!(InstallArgs::parse(&args(&["--bogus"])).is_err());
    }

    #[test]
    fn kernelspec_says_rust_and_message_interrupts() {
        let spec = kernel_json(Path::new("/bin/sluice-kernel"));
        assert_eq!(spec["language"], "rust");
        assert_eq!(spec["interrupt_mode"], "message");
        assert_eq!(spec["argv"][2], "{connection_file}");
    }
}
