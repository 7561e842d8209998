//! The binary's command line: `install` writes a kernelspec Jupyter can use (with its logos),
//! `--help` and `--version` answer, and what it does not take is a usage error (exit 2).

use std::process::{Command, Output};

fn kernel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice-kernel"))
        .args(args)
        .output()
        .expect("runs sluice-kernel")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn install_writes_a_kernelspec_with_logos_under_a_prefix() {
    let prefix = std::env::temp_dir().join(format!("sluice-kernel-cli-{}", std::process::id()));
    let prefix_arg = format!("--prefix={}", prefix.display());
    let out = kernel(&["install", &prefix_arg, "--no-prewarm"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let dir = prefix.join("share/jupyter/kernels/sluice");
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("kernel.json")).expect("kernel.json"),
    )
    .expect("kernel.json is JSON");
    assert_eq!(spec["language"], "rust");
    assert_eq!(spec["interrupt_mode"], "message");
    assert_eq!(spec["argv"][1], "--connection-file");
    for logo in ["logo-32x32.png", "logo-64x64.png"] {
        let bytes = std::fs::read(dir.join(logo)).unwrap_or_default();
        assert_eq!(bytes.get(1..4), Some(&b"PNG"[..]), "{logo}");
    }
    let _ = std::fs::remove_dir_all(&prefix);
}

#[test]
fn help_and_version_answer_everywhere() {
    let (stdout, _) = text(&kernel(&["--version"]));
    assert!(stdout.contains(env!("CARGO_PKG_VERSION")), "{stdout}");
    let out = kernel(&["--help"]);
    let (stdout, _) = text(&out);
    assert!(
        out.status.success() && stdout.contains("--connection-file"),
        "{stdout}"
    );
    let out = kernel(&["install", "--help"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "install --help is not an error");
    for option in ["--user", "--sys-prefix", "--prefix", "--no-prewarm"] {
        assert!(stdout.contains(option), "{option} missing from:\n{stdout}");
    }
}

#[test]
fn usage_errors_exit_2_on_stderr() {
    for args in [
        &["--bogus"][..],
        &[][..],
        &["install", "--user", "--sys-prefix"][..],
        &["install", "--connection-file"][..],
    ] {
        let out = kernel(args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}\n{stderr}");
        assert!(stdout.is_empty(), "{args:?}: usage on stdout: {stdout}");
        assert!(stderr.contains("Usage"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_missing_connection_file_is_a_clear_error() {
    let out = kernel(&["--connection-file", "/nonexistent/kernel.json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/kernel.json"));
}
