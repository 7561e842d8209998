//! `sluice-kernel`: the Jupyter kernel for Sluice.
//!
//! ```text
//! sluice-kernel install [--user | --sys-prefix | --prefix P] [--no-prewarm] [--device gpu]
//! sluice-kernel --connection-file F     (how Jupyter starts it)
//! ```

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand};

use sluice_kernel::install::{kernel_name, write_kernelspec, Target};
use sluice_kernel::{kernel, prewarm};
use std::path::PathBuf;

/// The Jupyter kernel for Sluice: Rust cells run through evcxr against a persistent engine.
///
/// Jupyter starts it with a connection file; `sluice-kernel install` registers it with
/// Jupyter first. Set RUST_LOG (e.g. RUST_LOG=debug) to see what it does.
#[derive(Parser)]
#[command(name = "sluice-kernel", version, about, long_about)]
struct Cli {
    /// The connection file Jupyter writes (ports and key).
    #[arg(short = 'f', long, value_name = "FILE")]
    connection_file: Option<PathBuf>,
    /// A standalone engine to run cells against (`sluice-engine serve`), instead of one
    /// embedded in the kernel; SLUICE_ENGINE=HOST:PORT does the same.
    #[arg(long, value_name = "HOST:PORT")]
    engine: Option<String>,
    /// Where cells' nodes run unless a cell says otherwise (`graph.device(..)`): `cpu`, `gpu`
    /// (the engine's first GPU), or a device name such as `/device:GPU:1`. Asking for a GPU
    /// the engine lacks is an error. SLUICE_DEVICE does the same.
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Writes the `sluice` kernelspec (with its logos) and builds what cells compile
    /// against, so that the first notebook starts in seconds.
    Install(InstallArgs),
}

#[derive(Args)]
struct InstallArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Only the kernelspec: the first cell builds what cells need (minutes).
    #[arg(long)]
    no_prewarm: bool,
    /// A kernelspec whose cells' nodes run on this device (`gpu`, `/device:GPU:1`), installed
    /// beside the plain one as `sluice-gpu` ("Rust (Sluice, gpu)").
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
}

/// Where the kernelspec goes (one of them).
#[derive(Args)]
#[group(multiple = false)]
struct TargetArgs {
    /// For this user (Jupyter's user data folder; the default).
    #[arg(long)]
    user: bool,
    /// Into the active Python environment (a virtualenv's or conda's prefix).
    #[arg(long)]
    sys_prefix: bool,
    /// Under PREFIX/share/jupyter.
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<PathBuf>,
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
    match (cli.command, cli.connection_file) {
        (Some(Command::Install(args)), _) => install(&args),
        (None, Some(file)) => {
            kernel::run(&file, cli.engine.as_deref())
                .with_context(|| format!("running the kernel for {}", file.display()))?;
            Ok(())
        }
        (None, None) => Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "nothing to do: Jupyter starts the kernel with --connection-file FILE; \
                 `sluice-kernel install` registers it with Jupyter",
            )
            .exit(),
    }
}

fn install(args: &InstallArgs) -> Result<()> {
    let chosen = &args.target;
    let target = match (&chosen.prefix, chosen.sys_prefix, chosen.user) {
        (Some(prefix), _, _) => Target::Prefix(prefix.clone()),
        (None, true, _) => Target::SysPrefix,
        // --user, or nothing said.
        (None, false, _) => Target::User,
    };
    let dir = write_kernelspec(&target, args.device.as_deref())?;
    println!(
        "installed kernelspec {} in {}",
        kernel_name(args.device.as_deref()),
        dir.display()
    );
    if !args.no_prewarm {
        let seconds = prewarm::prewarm().context("building what cells need")?;
        println!("ready: cells build in seconds from now on (this build took {seconds:.1} s)");
    }
    Ok(())
}
