//! The standalone engine: serves the master service over gRPC so that frontends (programs,
//! notebooks, REPLs) share sessions that outlive them.
//!
//!     sluice-engine serve [--listen 127.0.0.1:7070] [--token-file F] [--max-message-mib 256]
//!     sluice-engine worker --task JOB:INDEX [--listen ADDR] [...]   (a task of a cluster)
//!     sluice-engine cluster --workers N [--ps M]                    (local tasks, until Ctrl-C)
//!
//! A listen address beyond loopback needs a token (`--token-file`, or the environment's
//! `SLUICE_ENGINE_TOKEN` / `SLUICE_ENGINE_TOKEN_FILE`), which every call must then carry.
//!
//! Prints `listening on ADDR` once bound (with the actual port when asked for port 0), and
//! exits cleanly on SIGTERM or Ctrl-C.

use anyhow::{bail, Context};
use sluice::distributed::{ClusterError, ClusterSpec, LocalCluster, TaskName};
use sluice::service::auth::{read_token_file, token_from_env, TOKEN_ENV, TOKEN_FILE_ENV};
use sluice::service::{serve, EngineConfig, DEFAULT_ADDR};
use std::net::{SocketAddr, ToSocketAddrs};

const USAGE: &str =
    "usage: sluice-engine serve [--listen HOST:PORT] [--token-file F] [--max-message-mib N]
       sluice-engine worker --task JOB:INDEX [--listen HOST:PORT] [--token-file F]
       sluice-engine cluster --workers N [--ps M]

  serve                  a standalone engine (the master service)
  worker                 a task of a cluster: the master service for its parts of graphs, and
                         the worker service (RecvTensor, GetStatus). Without --listen, it
                         listens at its task's address in the cluster of TF_CONFIG (or
                         torchrun's or Slurm's variables), which also names the task
  cluster                starts N worker tasks (and M ps tasks) on 127.0.0.1, prints the
                         cluster as TF_CONFIG JSON, and stops them all on Ctrl-C

  --listen HOST:PORT     where to listen (default 127.0.0.1:7070; port 0 picks a free one).
                         An address beyond loopback requires a token.
  --token-file F         the token every call must carry (the file's first line); also
                         taken from SLUICE_ENGINE_TOKEN or SLUICE_ENGINE_TOKEN_FILE. Clients
                         send it from the same variables.
  --max-message-mib N    the largest graph message accepted (default 256); tensors are
                         streamed in chunks and have no such cap";

struct Args {
    command: String,
    listen: Option<String>,
    config: EngineConfig,
    workers: usize,
    ps: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    match it.next().as_deref() {
        Some("serve" | "worker" | "cluster") => {}
        Some("--help" | "-h" | "help") => {
            println!("{USAGE}");
            std::process::exit(0);
        }
        Some(other) => bail!("unknown command {other:?}\n{USAGE}"),
        None => bail!("no command given\n{USAGE}"),
    }
    let mut args = Args {
        command: std::env::args().nth(1).unwrap_or_default(),
        listen: None,
        config: EngineConfig::default(),
        workers: 2,
        ps: 0,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => args.listen = Some(value()?),
            "--task" => {
                let task = TaskName::parse(&value()?)?;
                args.config.task = Some(task.to_string());
            }
            "--workers" => args.workers = value()?.parse().context("--workers takes a number")?,
            "--ps" => args.ps = value()?.parse().context("--ps takes a number")?,
            "--token-file" => {
                let path = value()?;
                args.config.token = Some(read_token_file(std::path::Path::new(&path))?);
            }
            "--max-message-mib" => {
                let mib: usize = value()?
                    .parse()
                    .context("--max-message-mib takes a number")?;
                args.config.max_message_bytes = mib.saturating_mul(1 << 20);
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    Ok(args)
}

/// The address to bind: it must resolve, and to a loopback address unless a token guards it.
fn listen_addr(listen: &str, token: bool) -> anyhow::Result<SocketAddr> {
    let addr = listen
        .to_socket_addrs()
        .with_context(|| format!("--listen {listen}: not a HOST:PORT address"))?
        .next()
        .with_context(|| format!("--listen {listen}: resolves to no address"))?;
    if !addr.ip().is_loopback() && !token {
        bail!(
            "refusing to listen on {addr} without a token: other machines can reach it. Pass \
             --token-file FILE (or set {TOKEN_ENV} or {TOKEN_FILE_ENV}), or listen on \
             127.0.0.1:PORT"
        );
    }
    Ok(addr)
}

/// A worker's address and task from the cluster in the environment.
fn worker_addr(config: &mut EngineConfig) -> anyhow::Result<String> {
    let (spec, env_task) = ClusterSpec::from_env()?;
    let task = match (&config.task, env_task) {
        (Some(given), _) => {
            let (job, index) = given
                .trim_start_matches("/job:")
                .split_once("/task:")
                .context("bad --task")?;
            TaskName::new(job, index.parse()?)
        }
        (None, Some(task)) => task,
        (None, None) => bail!("which task is this? pass --task JOB:INDEX or set TF_CONFIG's task"),
    };
    let addr = spec
        .addr(&task)
        .with_context(|| format!("task {task} is not in the cluster"))?
        .to_string();
    config.task = Some(task.to_string());
    Ok(addr)
}

/// `sluice-engine cluster`: local tasks until Ctrl-C.
fn run_cluster(workers: usize, ps: usize) -> anyhow::Result<()> {
    let mut jobs = vec![("worker", workers)];
    if ps > 0 {
        jobs.push(("ps", ps));
    }
    let cluster = LocalCluster::start(&jobs).map_err(anyhow::Error::msg)?;
    println!("{}", cluster.spec().to_tf_config(None));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(shutdown_signal());
    eprintln!("sluice-engine: stopping the cluster");
    drop(cluster);
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// A launcher's worker: when standard input (the launcher's pipe) ends, the launcher is
/// gone, and so is the reason to serve.
fn exit_when_parent_goes() {
    use std::io::Write;
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        // Not eprintln: the launcher's stderr may be gone with it, and a failed print panics.
        let _ = writeln!(
            std::io::stderr(),
            "sluice-engine: the launcher is gone; exiting"
        );
        std::process::exit(0);
    });
}

fn main() -> anyhow::Result<()> {
    let mut args = parse_args()?;
    if args.command == "cluster" {
        return run_cluster(args.workers, args.ps);
    }
    if args.config.token.is_none() {
        args.config.token = token_from_env()?;
    }
    let listen = match (&args.listen, args.command.as_str()) {
        (Some(listen), "worker") => {
            // Listening elsewhere (0.0.0.0 in a pod) than the cluster's name for the task,
            // which still says which task this is.
            let in_env = !matches!(ClusterSpec::from_env(), Err(ClusterError::NoCluster));
            if args.config.task.is_none() && in_env {
                worker_addr(&mut args.config)?;
            }
            listen.clone()
        }
        (Some(listen), _) => listen.clone(),
        (None, "worker") => worker_addr(&mut args.config)?,
        (None, _) => DEFAULT_ADDR.to_string(),
    };
    let addr = listen_addr(&listen, args.config.token.is_some())?;
    if std::env::var_os(sluice::distributed::launcher::EXIT_WITH_PARENT_ENV).is_some() {
        exit_when_parent_goes();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        println!("listening on {}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, args.config, async {
            let _ = stopped.await;
        }));
        shutdown_signal().await;
        eprintln!("sluice-engine: shutting down");
        let _ = stop.send(());
        // Give open requests a moment; connections left idle do not hold the exit.
        match tokio::time::timeout(std::time::Duration::from_secs(3), server).await {
            Ok(Ok(result)) => result.context("the server failed")?,
            Ok(Err(e)) => bail!("the server task failed: {e}"),
            Err(_) => eprintln!("sluice-engine: requests still open after 3 s; exiting anyway"),
        }
        Ok(())
    })?;
    // Blocking threads still running a step are not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(())
}
