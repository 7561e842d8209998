//! `sluice-kernel`: the Jupyter kernel for Sluice.
//!
//! ```text
//! sluice-kernel install [--user | --sys-prefix | --prefix P] [--no-prewarm]
//! sluice-kernel --connection-file F
//! ```

use anyhow::{bail, Context, Result};
use sluice_kernel::engine_link::EngineLink;
use sluice_kernel::evaluator::{Evaluator, Setup};
use sluice_kernel::install::{write_kernelspec, InstallArgs};
use sluice_kernel::kernel;
use std::path::PathBuf;

const USAGE: &str = "usage:
  sluice-kernel install [--user | --sys-prefix | --prefix P] [--no-prewarm]
      writes the `sluice` kernelspec (default --user) and builds what the first cell needs
  sluice-kernel --connection-file F
      runs the kernel (Jupyter starts it this way)";

fn main() -> Result<()> {
    // evcxr runs its child process and its rustc wrapper as this same binary.
    sluice_kernel::shared_linking::patch_rustc_wrapper();
    evcxr::runtime_hook();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("install") => install(&args[1..]),
        Some("--connection-file") | Some("-f") => {
            let file = args.get(1).context("--connection-file needs a file")?;
            kernel::run(&PathBuf::from(file))?;
            Ok(())
        }
        Some(arg) if arg.starts_with("--connection-file=") => {
            kernel::run(&PathBuf::from(&arg["--connection-file=".len()..]))?;
            Ok(())
        }
        Some("--version") => {
            println!("sluice-kernel {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some("--help") | Some("-h") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown argument {other}\n{USAGE}"),
    }
}

fn install(args: &[String]) -> Result<()> {
    let parsed = InstallArgs::parse(args)?;
    let dir = write_kernelspec(&parsed.target)?;
    println!("installed kernelspec sluice in {}", dir.display());
    if parsed.prewarm {
        prewarm()?;
    }
    Ok(())
}

/// Builds the engine's client code and a first cell in the build folder the next kernel
/// will use, so the first notebook starts quickly.
fn prewarm() -> Result<()> {
    let build_dir = kernel::claim_build_dir()?;
    println!(
        "building what cells need in {} (the first time takes minutes)",
        build_dir.path().display()
    );
    let engine = EngineLink::start()?;
    let setup = Setup {
        engine_addr: engine.addr().to_string(),
        engine_dir: sluice_kernel::prelude::engine_source_dir(),
        build_dir: build_dir.path().to_path_buf(),
    };
    let started = std::time::Instant::now();
    let (mut evaluator, outputs) = Evaluator::start(&setup)?;
    // evcxr waits until what the cells print has been read.
    std::thread::spawn(move || while outputs.stdout.recv().is_ok() {});
    std::thread::spawn(move || {
        while let Ok(line) = outputs.stderr.recv() {
            eprintln!("{line}");
        }
    });
    evaluator
        .prelude()
        .map_err(|e| anyhow::anyhow!("the prelude failed: {e}"))?;
    evaluator
        .execute("let sluice_prewarm = 1;", &|_, _| String::new())
        .map_err(|e| anyhow::anyhow!("a first cell failed: {e}"))?;
    println!("ready in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
