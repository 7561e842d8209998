//! `sluice`: the Sluice terminal REPL.
//!
//! ```text
//! sluice [--engine HOST:PORT] [--device cpu|gpu]            the prompt
//! sluice [--engine HOST:PORT] [--device cpu|gpu] FILE.rs    run a script, exit non-zero on error
//! ```

use anyhow::{Context, Result};
use clap::Parser;
use sluice_repl::front::Front;
use sluice_repl::{interactive, script};
use std::path::PathBuf;

/// The Sluice terminal REPL: type Rust, each entry runs as a cell against the engine
/// (`graph` and `sess` are ready); live progress and text charts while training runs.
///
/// Without FILE: the prompt (:help lists the commands). With FILE: runs it as cells and
/// exits non-zero on the first error. Set RUST_LOG (e.g. RUST_LOG=debug) to see what it does.
#[derive(Parser)]
#[command(name = "sluice", version, about, long_about)]
struct Cli {
    /// A standalone engine to use (`sluice-engine serve`) instead of an embedded one;
    /// SLUICE_ENGINE=HOST:PORT does the same.
    #[arg(long, value_name = "HOST:PORT")]
    engine: Option<String>,
    /// Where cells' nodes run unless a cell says otherwise (`graph.device(..)`): `cpu`, `gpu`
    /// (the engine's first GPU), or a device name such as `/device:GPU:1`. Asking for a GPU
    /// the engine lacks is an error. SLUICE_DEVICE does the same.
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// A script to run instead of the prompt: code between `:` command lines runs as one cell.
    #[arg(value_name = "FILE.rs")]
    script: Option<PathBuf>,
}

fn main() -> Result<()> {
    // evcxr runs its cell process and its rustc wrapper as this same binary.
    sluice_frontend::child::take_child_roles();
    let cli = Cli::parse();
    sluice::logging::init("warn");
    if let Some(device) = &cli.device {
        // Read by the cells' prelude, in evcxr's child process (which inherits it).
        std::env::set_var(sluice_frontend::DEVICE_ENV, device);
    }
    let script = match &cli.script {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    if script.is_none() {
        println!("Sluice {}: starting...", env!("CARGO_PKG_VERSION"));
    }
    let mut front = Front::start(cli.engine.as_deref()).context("starting the REPL")?;
    match script {
        Some(text) => {
            if !script::run(&mut front, &text) {
                drop(front);
                std::process::exit(1);
            }
        }
        None => {
            let engine = front.engine();
            let kind = if engine.is_embedded() {
                "embedded"
            } else {
                "standalone"
            };
            println!(
                "engine {} ({kind}). :help for commands, Ctrl-D to leave.",
                engine.addr()
            );
            interactive::run(&mut front)?;
        }
    }
    Ok(())
}
