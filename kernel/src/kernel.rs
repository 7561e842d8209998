//! A running kernel: reads the connection file, starts the engine link, the cell thread and
//! the sockets, and serves until a shutdown request.

use crate::control::ControlHandler;
use crate::engine_link::EngineLink;
use crate::error::{KernelError, Result};
use crate::evaluator::Setup;
use crate::executor::{self, Shared};
use crate::shared_linking;
use crate::shell::ShellHandler;
use crate::transport::{self, next_request};
use crate::workdir::WorkDir;
use jupyter_protocol::ConnectionInfo;
use std::path::Path;
use std::sync::Arc;

/// Reads a Jupyter connection file.
pub fn read_connection_file(path: &Path) -> Result<ConnectionInfo> {
    let text = std::fs::read_to_string(path).map_err(|source| KernelError::ConnectionFile {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| KernelError::ConnectionJson {
        path: path.display().to_string(),
        source,
    })
}

/// Claims a build folder, points evcxr at it, and prepares shared linking (evcxr's settings
/// and the standard library's metadata for the rustc wrapper; see [`shared_linking`]). The
/// kernel and the REPL build in the same folders. Call before any thread starts: it sets
/// environment variables.
pub fn claim_build_dir() -> Result<WorkDir> {
    crate::workdir::default_to_shared_cache();
    let dir = WorkDir::acquire()?;
    std::env::set_var("EVCXR_TMPDIR", dir.path());
    let root = crate::workdir::cache_root();
    shared_linking::prepare(&root.join("evcxr-config-shared"), &root.join("std-meta"))?;
    Ok(dir)
}

/// Runs the kernel described by `connection_file` until it is asked to shut down.
pub fn run(connection_file: &Path) -> Result<()> {
    let info = read_connection_file(connection_file)?;
    let build_dir = claim_build_dir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("sluice-kernel")
        .build()?;
    let engine = Arc::new(EngineLink::start()?);
    let setup = Setup {
        engine_addr: engine.addr().to_string(),
        engine_dir: crate::prelude::engine_source_dir(),
        build_dir: build_dir.path().to_path_buf(),
    };
    runtime.block_on(async move {
        let session_id = format!("sluice-kernel-{}", std::process::id());
        let (outbox, mut inbound) = transport::bind(&info, &session_id).await?;
        let shared = Arc::new(Shared::default());
        let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded();
        let (live_tx, live_rx) = crossbeam_channel::unbounded();
        if !engine.watch(live_tx) {
            eprintln!("sluice-kernel: the engine offers no event stream: no live curves");
        }
        executor::spawn(
            setup,
            outbox.clone(),
            engine.clone(),
            shared.clone(),
            jobs_rx,
            live_rx,
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
        Ok::<(), KernelError>(())
    })?;
    drop(build_dir);
    // evcxr's child and the engine's threads end with the process.
    std::process::exit(0);
}
