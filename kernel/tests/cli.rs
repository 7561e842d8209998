//! The binary's command line: `install` writes a kernelspec Jupyter can use.

use std::process::Command;

fn kernel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice-kernel"))
}

#[test]
fn install_writes_a_kernelspec_under_a_prefix() {
    let prefix = std::env::temp_dir().join(format!("sluice-kernel-cli-{}", std::process::id()));
    let out = kernel()
        .args(["install", "--prefix"])
        .arg(&prefix)
        .arg("--no-prewarm")
        .output()
        .expect("runs sluice-kernel");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spec_path = prefix.join("share/jupyter/kernels/sluice/kernel.json");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&spec_path).expect("kernel.json written"))
            .expect("kernel.json is JSON");
    assert_eq!(spec["language"], "rust");
    assert_eq!(spec["interrupt_mode"], "message");
    assert_eq!(spec["argv"][1], "--connection-file");
    let _ = std::fs::remove_dir_all(&prefix);
}

#[test]
fn unknown_arguments_fail_with_usage() {
    let out = kernel()
        .arg("--bogus")
        .output()
        .expect("runs sluice-kernel");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
}

#[test]
fn a_missing_connection_file_is_a_clear_error() {
    let out = kernel()
        .args(["--connection-file", "/nonexistent/kernel.json"])
        .output()
        .expect("runs sluice-kernel");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/kernel.json"));
}
