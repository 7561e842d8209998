//! The Jupyter kernel as real Jupyter clients use it: jupyter_kernel_test's protocol suite,
//! a jupyter_client script for interrupt and forged signatures, and `jupyter execute` of the
//! example notebooks. The Python side lives in tests/jupyter/.
//!
//! Needs a Python with jupyter_kernel_test, jupyter_client and nbclient: `SLUICE_JUPYTER_PY`
//! names it (.ci/run makes one under ~/.cache). Without it these tests say so in one line and
//! pass, except under `CI=true`, where they fail.

use sluice_tests::require;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Kernels run one at a time: they share evcxr's build folder and two cores.
static ONE_KERNEL: Mutex<()> = Mutex::new(());

fn one_kernel() -> MutexGuard<'static, ()> {
    ONE_KERNEL.lock().unwrap_or_else(|e| e.into_inner())
}

struct Jupyter {
    python: PathBuf,
    /// Where the `sluice` kernelspec is installed: JUPYTER_PATH for the clients.
    data_dir: PathBuf,
}

fn kernel_binary() -> PathBuf {
    profile_dir().join("sluice-kernel")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .and_then(Path::parent)
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The Python to drive Jupyter with, the kernelspec installed (and pre-warmed) once.
fn jupyter() -> Option<&'static Jupyter> {
    static SETUP: OnceLock<Option<Jupyter>> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            let python = std::env::var_os("SLUICE_JUPYTER_PY").filter(|p| !p.is_empty());
            let found = require(
                python.is_some(),
                "the Jupyter kernel tests need SLUICE_JUPYTER_PY, a Python with jupyter_kernel_test, jupyter_client and nbclient",
                "python3 -m venv ~/.cache/sluice-jupyter-venv && ~/.cache/sluice-jupyter-venv/bin/pip install jupyter_kernel_test==0.7.0 jupyter_client nbclient nbformat pyzmq && export SLUICE_JUPYTER_PY=~/.cache/sluice-jupyter-venv/bin/python (.ci/run does this)",
            );
            let python = PathBuf::from(python.filter(|_| found)?);
            let kernel = kernel_binary();
            assert!(
                kernel.is_file(),
                "{} is not built: run `cargo test --workspace --release`",
                kernel.display()
            );
            let prefix = profile_dir().join("jupyter-prefix");
            let status = Command::new(&kernel)
                .args(["install", "--prefix"])
                .arg(&prefix)
                .status()
                .expect("runs sluice-kernel install");
            assert!(status.success(), "sluice-kernel install failed");
            Some(Jupyter {
                python,
                data_dir: prefix.join("share").join("jupyter"),
            })
        })
        .as_ref()
}

/// Runs a Python script of tests/jupyter with `args`; returns its output, failing the test
/// (with the output) if it fails or runs past `limit`.
fn run_script(j: &Jupyter, script: &str, args: &[&str], limit: Duration) -> String {
    let log = std::env::temp_dir().join(format!("sluice-{script}-{}.log", std::process::id()));
    let log_file = std::fs::File::create(&log).expect("log file");
    let mut child = Command::new(&j.python)
        .arg(repo_root().join("tests").join("jupyter").join(script))
        .args(args)
        .env("JUPYTER_PATH", &j.data_dir)
        .env("PYTHONUNBUFFERED", "1")
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file)
        .spawn()
        .expect("starts python");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits for python") {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    match status {
        Some(s) if s.success() => output,
        Some(s) => panic!("{script} failed ({s}):\n{output}"),
        None => panic!("{script} ran past {limit:?}:\n{output}"),
    }
}

#[test]
fn jupyter_kernel_test_suite_passes() {
    let Some(j) = jupyter() else { return };
    let _one = one_kernel();
    let out = run_script(j, "kernel_suite.py", &[], Duration::from_secs(1200));
    println!("{out}");
}

#[test]
fn interrupt_returns_control_and_forged_messages_are_not_run() {
    let Some(j) = jupyter() else { return };
    let _one = one_kernel();
    let out = run_script(
        j,
        "interrupt_and_signature.py",
        &[],
        Duration::from_secs(1200),
    );
    println!("{out}");
    assert!(out.contains("interrupt_and_signature: all"), "{out}");
}

#[test]
fn example_notebooks_run_top_to_bottom() {
    let Some(j) = jupyter() else { return };
    let _one = one_kernel();
    let out_dir = profile_dir().join("executed-notebooks");
    let out = run_script(
        j,
        "run_notebooks.py",
        &[
            &repo_root().join("examples").to_string_lossy(),
            &out_dir.to_string_lossy(),
        ],
        Duration::from_secs(2400),
    );
    println!("{out}");
    assert!(out.contains("notebooks: all passed"), "{out}");
}

#[test]
fn cells_show_errors_rich_output_completions_and_curves_as_notebooks_expect() {
    let Some(j) = jupyter() else { return };
    let _one = one_kernel();
    let out = run_script(j, "frontend_checks.py", &[], Duration::from_secs(1800));
    println!("{out}");
    assert!(out.contains("frontend_checks: all passed"), "{out}");
}

#[test]
fn empty_caches_a_second_notebook_and_an_installed_binary_work() {
    let Some(j) = jupyter() else { return };
    let _one = one_kernel();
    // Outside any Cargo workspace: a cell's build folder inside one (the default target
    // folder is in the checkout) would be taken for a member of it.
    let work = std::env::temp_dir().join("sluice-cold-cache");
    let out = run_script(
        j,
        "cold_cache.py",
        &[&kernel_binary().to_string_lossy(), &work.to_string_lossy()],
        Duration::from_secs(3600),
    );
    println!("{out}");
    assert!(out.contains("cold_cache: all passed"), "{out}");
}
