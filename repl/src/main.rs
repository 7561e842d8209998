//! `sluice`: the Sluice terminal REPL.
//!
//! ```text
//! sluice [--engine HOST:PORT]            the prompt
//! sluice [--engine HOST:PORT] FILE.rs    run a script, exit non-zero on error
//! ```

use anyhow::{bail, Context, Result};
use sluice_repl::front::Front;
use sluice_repl::{interactive, script};
use std::path::PathBuf;

const USAGE: &str = "usage: sluice [--engine HOST:PORT] [FILE.rs]
  without FILE: the prompt (:help lists the commands)
  with FILE: runs it as cells, exits non-zero on the first error
  --engine ADDR: use a standalone engine (sluice-engine serve) instead of an embedded one;
                 SLUICE_ENGINE=ADDR does the same";

struct Args {
    engine: Option<String>,
    script: Option<PathBuf>,
}

fn parse_args() -> Result<Option<Args>> {
    let mut args = Args {
        engine: None,
        script: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("sluice {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--engine" => args.engine = Some(it.next().context("--engine needs HOST:PORT")?),
            a if a.starts_with("--engine=") => args.engine = Some(a["--engine=".len()..].into()),
            a if a.starts_with('-') => bail!("unknown option {a}\n{USAGE}"),
            file if args.script.is_none() => args.script = Some(PathBuf::from(file)),
            extra => bail!("one script at a time (also got {extra})\n{USAGE}"),
        }
    }
    Ok(Some(args))
}

fn main() -> Result<()> {
    // evcxr runs its child process and its rustc wrapper as this same binary.
    sluice_kernel::shared_linking::patch_rustc_wrapper();
    evcxr::runtime_hook();
    let Some(args) = parse_args()? else {
        return Ok(());
    };
    let script = match &args.script {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    if script.is_none() {
        eprintln!("sluice: starting (evcxr's first build of the client crate takes minutes)");
    }
    let mut front = Front::start(args.engine.as_deref()).context("starting the REPL")?;
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
                "Sluice {} - engine {} ({kind}). :help for commands, Ctrl-D to leave.",
                env!("CARGO_PKG_VERSION"),
                engine.addr()
            );
            interactive::run(&mut front)?;
        }
    }
    Ok(())
}
