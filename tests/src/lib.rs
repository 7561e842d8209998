//! End-to-end tests of Sluice live in `tests/`; this library only finds the programs they run.

use std::path::PathBuf;
use std::process::Command;

/// Runs a built example of the engine crate with `args` and returns its standard output.
/// `cargo test --release` builds the examples next to the test binaries.
pub fn run_example(name: &str, args: &[&str]) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/<profile>/deps/<test binary> -> target/<profile>/examples/<name>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("cannot locate the target folder")?;
    let example: PathBuf = profile_dir.join("examples").join(name);
    if !example.is_file() {
        return Err(format!(
            "{} is not built: run the tests with `cargo test --workspace --release`, which builds the examples",
            example.display()
        ));
    }
    let out = Command::new(&example)
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", example.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "{name} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

/// The number after `key` on the first line that starts with it (e.g. `test accuracy:`).
pub fn figure(output: &str, key: &str) -> Option<f64> {
    output
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.trim().parse().ok())
}
