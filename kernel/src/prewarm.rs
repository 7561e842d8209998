//! A first build of what cells need (the client crate and its dependencies), run by
//! `sluice-kernel install` so that the first notebook starts in seconds. It builds in a
//! build folder as a kernel would and leaves it, and a template of it, warm.

use crate::error::Result;
use sluice::Graph;
use sluice_frontend::build_dir::BuildDir;
use sluice_frontend::cell::Cells;
use sluice_frontend::engine_link::EngineLink;
use sluice_frontend::evaluator::Setup;
use sluice_frontend::live::LiveEvent;
use sluice_frontend::output::Sink;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Builds, printing a progress line; returns the seconds it took.
pub fn prewarm() -> Result<f64> {
    let (sources, build_dir) = BuildDir::prepare()?;
    println!(
        "building what cells compile against in {} (the first time takes minutes)",
        build_dir.path().display()
    );
    let engine = Arc::new(EngineLink::start(None)?);
    let setup = Setup::new(engine.addr(), sources, &build_dir)?;
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let ticker = progress_line(started, done.clone());
    let mut cells = Cells::start(setup, engine, QuietSink)?;
    let warmed = cells.prelude();
    done.store(true, Ordering::SeqCst);
    if let Some(ticker) = ticker {
        let _ = ticker.join();
    }
    warmed.map_err(sluice_frontend::FrontendError::Evcxr)?;
    build_dir.keep_as_template();
    Ok(started.elapsed().as_secs_f64())
}

/// On a terminal, a line that counts the seconds until `done`.
fn progress_line(started: Instant, done: Arc<AtomicBool>) -> Option<std::thread::JoinHandle<()>> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    std::thread::Builder::new()
        .name("sluice-progress".into())
        .spawn(move || {
            while !done.load(Ordering::SeqCst) {
                print!("\r  building... {:.0} s", started.elapsed().as_secs_f64());
                let _ = std::io::stdout().flush();
                std::thread::sleep(Duration::from_millis(500));
            }
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
        })
        .ok()
}

/// The prelude's outputs go to the log.
struct QuietSink;

impl Sink for QuietSink {
    type Command = ();
    fn stdout(&mut self, line: &str) {
        tracing::debug!("prelude: {line}");
    }
    fn stderr(&mut self, line: &str) {
        tracing::debug!("prelude: {line}");
    }
    fn display(&mut self, _forms: Vec<(String, String)>) {}
    fn graph(&mut self, _graph: sluice_frontend::Result<Graph>) {}
    fn live(&mut self, _event: LiveEvent, _now: Instant) {}
    fn tick(&mut self, _now: Instant) {}
    fn note(&mut self, text: &str) {
        tracing::info!("prelude: {text}");
    }
    fn flush(&mut self) {}
    fn awaits_events(&self) -> bool {
        false
    }
    fn cell_done(&mut self) {}
    fn command(&mut self, _command: ()) {}
}
