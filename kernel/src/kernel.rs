//! A running kernel: reads the connection file, prepares where cells build, starts the
//! engine link, the cell thread and the sockets, and serves until a shutdown request.

use crate::cell_thread::{self, Shared};
use crate::control::ControlHandler;
use crate::error::{JupyterError, Result};
use crate::history::History;
use crate::shell::ShellHandler;
use crate::transport::{self, next_request};
use jupyter_protocol::ConnectionInfo;
use sluice_frontend::build_dir::BuildDir;
use sluice_frontend::engine_link::EngineLink;
use sluice_frontend::evaluator::Setup;
use std::path::Path;
use std::sync::Arc;

/// Reads a Jupyter connection file.
pub fn read_connection_file(path: &Path) -> Result<ConnectionInfo> {
    let text = std::fs::read_to_string(path).map_err(|source| JupyterError::ConnectionFile {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| JupyterError::ConnectionJson {
        path: path.display().to_string(),
        source,
    })
}

/// Runs the kernel described by `connection_file` until it is asked to shut down.
pub fn run(connection_file: &Path, engine: Option<&str>) -> Result<()> {
    let info = read_connection_file(connection_file)?;
    // Before any thread starts: this sets environment variables.
    let (sources, build_dir) = BuildDir::prepare()?;
    let build_dir = Arc::new(build_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("sluice-kernel")
        .build()?;
    let engine = Arc::new(EngineLink::start(engine)?);
    let setup = Setup::new(engine.addr(), sources, &build_dir)?;
    let history = History::open_default();
    let template = build_dir.clone();
    runtime.block_on(async move {
        let session_id = format!("sluice-kernel-{}", std::process::id());
        let (outbox, mut inbound) = transport::bind(&info, &session_id).await?;
        let shared = Arc::new(Shared::new(history));
        let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded();
        // A warm build folder is copied for the next frontend that finds none free.
        let ready = Box::new(move |ok: bool| {
            if ok {
                template.keep_as_template();
            }
        });
        cell_thread::spawn(
            setup,
            outbox.clone(),
            engine.clone(),
            shared.clone(),
            jobs_rx,
            ready,
        )?;
        let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
        let shell = ShellHandler {
            outbox: outbox.clone(),
            jobs: jobs_tx,
            shared: shared.clone(),
        };
        let control = ControlHandler {
            outbox: outbox.clone(),
            shared,
            engine: engine.clone(),
            shutdown: shutdown_tx,
        };
        tokio::spawn(async move {
            loop {
                let message = next_request("shell", &mut inbound.shell).await;
                // Cells queue in arrival order; other requests each get a task, so a slow
                // completion holds up nothing.
                if let Some(message) = shell.queue_execute(message) {
                    let shell = shell.clone();
                    tokio::spawn(async move { shell.handle(message).await });
                }
            }
        });
        tokio::spawn(async move {
            loop {
                let message = next_request("control", &mut inbound.control).await;
                control.handle(message).await;
            }
        });
        while !*shutdown_rx.borrow() {
            if shutdown_rx.changed().await.is_err() {
                break;
            }
        }
        // Let the shutdown reply leave before the sockets close.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        Ok::<(), JupyterError>(())
    })?;
    drop(build_dir);
    // evcxr's child and the engine's threads end with the process.
    std::process::exit(0);
}
