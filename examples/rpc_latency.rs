//! The round trip of one RunStep over loopback, for a tiny graph (a scalar add of two
//! constants): what every remote `run` pays on top of the work itself.
//!
//! Then the seed program's Fit (softmax regression on the MNIST digits, 1000 steps of 100),
//! in-process and through the engine, per step, and the remote/in-process ratio.
//!
//!     cargo run --release --example rpc_latency [-- --calls N] [--fit-steps N]
//!
//! Uses the engine that SLUICE_ENGINE names; else starts the built `sluice-engine serve`
//! (target/<profile>/sluice-engine, built by `cargo build --release`); else serves an engine
//! from this process, on its own threads, still over TCP loopback.

use anyhow::{bail, Context};
use clap::Parser;
use sluice::prelude::*;
use sluice::service::{EmbeddedEngine, EngineConfig};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// The round trip of one RunStep to a standalone engine over loopback, for a tiny graph;
/// then the seed program's Fit in-process and through the engine, per step.
#[derive(Parser)]
#[command(
    name = "rpc_latency",
    version,
    after_help = "Uses the engine that SLUICE_ENGINE=HOST:PORT names; else starts the \
        built `sluice-engine serve` beside this program; else serves an engine from this \
        process. RUST_LOG filters diagnostics (default warn)."
)]
struct Args {
    /// Timed RunStep calls (after 200 warm-up calls)
    #[arg(long, value_name = "N", default_value_t = 2000)]
    calls: usize,

    /// Steps of each timed Fit of the seed program; 0 skips the Fit comparison
    #[arg(long, value_name = "N", default_value_t = 1000)]
    fit_steps: usize,
}

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

/// Fits timed per mode, in turn.
const FIT_ROUNDS: usize = 5;

/// The seed program: its graph and the fit that trains it.
fn seed_program(steps: usize) -> (Graph, FitConfig) {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let b = g.variable("b", &[10], Initializer::Zeros);
    let y = softmax(matmul(x, w) + b);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let xent = -reduce_sum(y_ * log(y));
    let train = GradientDescent::new(0.01)
        .minimize(xent)
        .expect("the seed program differentiates");
    let config = FitConfig {
        steps,
        report_every: 100,
        ..FitConfig::new(x, y_, xent, train)
    };
    (g, config)
}

/// Microseconds per step of the seed program's fit, in-process and through the engine at
/// `addr`: the median of `rounds` fits each, the two taken in turn so that other load on the
/// machine weighs on both alike, after a short warm-up fit (which also has the engine load
/// the data set).
fn fit_per_step(addr: &str, steps: usize, rounds: usize) -> anyhow::Result<(f64, f64, f64)> {
    let warm_up = |c: &FitConfig| FitConfig {
        steps: 20,
        ..c.clone()
    };
    let digits = sluice::data::mnist_digits()?;
    let (g, local_config) = seed_program(steps);
    let mut local = Session::new(&g);
    local.init_variables()?;
    local.fit(&digits.train, &warm_up(&local_config), &mut |_| {})?;
    let (g, remote_config) = seed_program(steps);
    let mut remote = RemoteSession::create(addr, &g)?;
    remote.init_variables()?;
    remote.fit("mnist-digits", &warm_up(&remote_config), &mut |_| {})?;

    let per_step = |start: Instant| start.elapsed().as_secs_f64() * 1e6 / steps.max(1) as f64;
    let (mut in_process, mut through_engine, mut engine_side) =
        (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        let start = Instant::now();
        local.fit(&digits.train, &local_config, &mut |_| {})?;
        in_process.push(per_step(start));
        let start = Instant::now();
        let last = remote.fit("mnist-digits", &remote_config, &mut |_| {})?;
        through_engine.push(per_step(start));
        if let Some(p) = last {
            engine_side.push(p.elapsed.as_secs_f64() * 1e6 / steps.max(1) as f64);
        }
    }
    remote.close()?;
    Ok((
        median_micros(in_process),
        median_micros(through_engine),
        median_micros(engine_side),
    ))
}

fn main() -> anyhow::Result<()> {
    let Args { calls, fit_steps } = Args::parse();
    sluice::logging::init("warn");
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
    if fit_steps > 0 {
        let (local, remote, engine_side) = fit_per_step(&addr, fit_steps, FIT_ROUNDS)?;
        println!("fit steps: {fit_steps} (seed program, batches of 100), median of {FIT_ROUNDS} fits each");
        println!("in-process fit: {local:.1} us/step");
        println!("remote fit: {remote:.1} us/step");
        println!("remote fit, engine's own clock: {engine_side:.1} us/step");
        println!("remote/in-process fit: {:.3}", remote / local);
    }
    Ok(())
}
