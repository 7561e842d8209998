//! The round trip of one RunStep over loopback, for a tiny graph (a scalar add of two
//! constants): what every remote `run` pays on top of the work itself.
//!
//!     cargo run --release --example rpc_latency [-- --calls N]
//!
//! Uses the engine that SLUICE_ENGINE names; else starts the built `sluice-engine serve`
//! (target/<profile>/sluice-engine, built by `cargo build --release`); else serves an engine
//! from this process, on its own threads, still over TCP loopback.

use anyhow::{bail, Context};
use sluice::prelude::*;
use sluice::service::{EmbeddedEngine, EngineConfig};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// Whatever serves the engine for the benchmark, stopped when dropped.
enum Engine {
    External,
    Process(Child),
    /// Held only to keep it serving.
    Embedded(#[allow(dead_code)] EmbeddedEngine),
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Engine::Process(child) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_engine() -> anyhow::Result<(String, Engine, String)> {
    if let Ok(addr) = std::env::var("SLUICE_ENGINE") {
        return Ok((
            addr.clone(),
            Engine::External,
            format!("SLUICE_ENGINE={addr}"),
        ));
    }
    // target/<profile>/examples/rpc_latency -> target/<profile>/sluice-engine
    let exe = std::env::current_exe()?;
    let binary = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|profile| profile.join("sluice-engine"));
    if let Some(binary) = binary.filter(|b| b.is_file()) {
        let mut child = Command::new(&binary)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            bail!(
                "{} did not say where it listens: {line:?}",
                binary.display()
            );
        };
        let how = format!("{} serve (a separate process)", binary.display());
        return Ok((addr.to_string(), Engine::Process(child), how));
    }
    let engine = EmbeddedEngine::start("127.0.0.1:0", EngineConfig::default())?;
    let addr = engine.addr().to_string();
    Ok((
        addr,
        Engine::Embedded(engine),
        "an engine in this process".into(),
    ))
}

fn median_micros(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() -> anyhow::Result<()> {
    let calls: usize = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 2000,
        [flag, n] if flag == "--calls" => n.parse().context("--calls takes a number")?,
        other => bail!("unknown arguments {other:?} (use --calls N)"),
    };
    let (addr, _engine, how) = start_engine()?;
    let g = Graph::new();
    let sum = g.scalar(1.0) + g.scalar(2.0);
    let mut sess = RemoteSession::create(&addr, &g)?;
    let mut local = Session::new(&g);

    let time = |run: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<Vec<f64>> {
        for _ in 0..200 {
            run()?;
        }
        let mut samples = Vec::with_capacity(calls);
        for _ in 0..calls {
            let start = Instant::now();
            run()?;
            samples.push(start.elapsed().as_secs_f64() * 1e6);
        }
        Ok(samples)
    };
    let remote = time(&mut || {
        let v = sess.run(&[sum], &[])?;
        anyhow::ensure!(v[0].scalar_f64() == Some(3.0), "wrong sum {:?}", v[0]);
        Ok(())
    })?;
    let in_process = time(&mut || {
        local.run(&[sum], &[])?;
        Ok(())
    })?;
    println!("engine: {how} at {addr}");
    println!("calls: {calls} after 200 warm-up calls");
    println!("median round trip: {:.1} us", median_micros(remote));
    println!("in-process run: {:.1} us", median_micros(in_process));
    Ok(())
}
