//! The standalone engine: serves the master service over gRPC so that frontends (programs,
//! notebooks, REPLs) share sessions that outlive them.
//!
//!     sluice-engine serve [--listen 127.0.0.1:7070] [--token-file F] [--max-message-mib 256]
//!     sluice-engine worker [--task JOB:INDEX] [--listen ADDR] [--token-file F] [...]
//!     sluice-engine cluster [--workers N] [--ps M]   (local tasks, until Ctrl-C)
//!
//! (`sluice-engine --help`, or `sluice-engine SUBCOMMAND --help`, for the rest; the command
//! line itself is in cli.rs.) A listen address beyond loopback needs a token (`--token-file`,
//! or the environment's `SLUICE_ENGINE_TOKEN` / `SLUICE_ENGINE_TOKEN_FILE`), which every call
//! must then carry.
//!
//! Prints `listening on ADDR` on standard output once bound (with the actual port when asked
//! for port 0), and exits cleanly on SIGTERM or Ctrl-C. Diagnostics are tracing events on
//! standard error (`RUST_LOG`, default `info`).

mod cli;

use anyhow::{bail, Context};
use clap::Parser;
use cli::{Cli, Command, ServiceOptions};
use sluice::data::DataRoots;
use sluice::distributed::slurm::SlurmJob;
use sluice::distributed::{ClusterError, ClusterSpec, LocalCluster, TaskName};
use sluice::service::auth::{read_token_list, token_from_env, TOKEN_ENV, TOKEN_FILE_ENV};
use sluice::service::tls::{ServerIdentity, TrustedCa, CERT_ENV, CLIENT_CA_ENV, KEY_ENV};
use sluice::service::{serve, EngineConfig};
use sluice::tensor::MemoryBudget;
use std::net::{SocketAddr, ToSocketAddrs};

/// The engine's settings from the options `serve` and `worker` share; the token from the
/// file given, else from the environment.
fn engine_config(options: &ServiceOptions) -> anyhow::Result<EngineConfig> {
    let tokens = match &options.token_file {
        Some(path) => read_token_list(path)?,
        None => token_from_env()?.into_iter().collect(),
    };
    let tls = match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => Some(ServerIdentity::read(cert, key)?),
        _ => ServerIdentity::from_env()?,
    };
    let peer_ca = match &options.tls_ca {
        Some(path) => Some(TrustedCa::read(path)?),
        None => TrustedCa::from_env()?,
    };
    // The engine's calls to other engines present its own certificate, for those that
    // check their callers.
    let peer_ca = match (peer_ca, &tls) {
        (Some(ca), Some(identity)) => Some(ca.presenting(identity.as_client())),
        (ca, _) => ca,
    };
    let client_ca = match &options.tls_client_ca {
        Some(path) => Some(TrustedCa::read(path)?),
        None => TrustedCa::from_env_var(CLIENT_CA_ENV)?,
    };
    if client_ca.is_some() && tls.is_none() {
        bail!(
            "--tls-client-ca ({CLIENT_CA_ENV}) asks callers for certificates over TLS: give the \
             engine its own with --tls-cert and --tls-key"
        );
    }
    if let Some(logdir) = &options.logdir {
        std::fs::create_dir_all(logdir)
            .with_context(|| format!("--logdir {}: cannot make the folder", logdir.display()))?;
    }
    let defaults = EngineConfig::default();
    Ok(EngineConfig {
        logdir: options.logdir.clone(),
        tls,
        peer_ca,
        client_ca,
        max_message_bytes: options.max_message_bytes(),
        tokens,
        memory_budget: options
            .max_memory
            .map_or(defaults.memory_budget, MemoryBudget::new),
        max_sessions: options.max_sessions,
        max_queued: options.max_queued,
        max_streams: options.max_streams,
        data_roots: match options.data_roots.as_slice() {
            [] => defaults.data_roots.clone(),
            given => DataRoots::new(given.iter().cloned()),
        },
        ..defaults
    })
}

/// The address to bind: it must resolve, and to a loopback address unless a token guards it
/// and TLS hides the traffic (or plain text is asked for).
fn listen_addr(listen: &str, config: &EngineConfig, plaintext: bool) -> anyhow::Result<SocketAddr> {
    let token = !config.tokens.is_empty();
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
    if !addr.ip().is_loopback() && config.tls.is_none() && !plaintext {
        bail!(
            "refusing to listen on {addr} without TLS: the token and every tensor would cross \
             the network in clear text. Pass --tls-cert FILE --tls-key FILE (or set {CERT_ENV} \
             and {KEY_ENV}), or --insecure-plaintext on a network nobody else can read"
        );
    }
    Ok(addr)
}

/// Where a worker listens, and which task it is (what GetStatus reports).
fn worker_listen(args: &cli::Worker) -> anyhow::Result<(String, Option<TaskName>)> {
    let Some(listen) = &args.listen else {
        let (task, addr) = task_in_cluster(args.task.clone(), ClusterSpec::from_env()?)?;
        let Some(host) = &args.listen_host else {
            return Ok((addr, Some(task)));
        };
        let port = (addr.rsplit_once(':').map(|(_, p)| p))
            .with_context(|| format!("task {task}'s address {addr} has no port"))?;
        let host = match host.contains(':') && !host.starts_with('[') {
            true => format!("[{host}]"),
            false => host.clone(),
        };
        return Ok((format!("{host}:{port}"), Some(task)));
    };
    // Listening elsewhere (0.0.0.0 in a pod) than the cluster's name for the task, which
    // still says which task this is.
    let task = match &args.task {
        Some(task) => Some(task.clone()),
        None => match ClusterSpec::from_env() {
            Err(ClusterError::NoCluster) => None,
            env => Some(task_in_cluster(None, env?)?.0),
        },
    };
    Ok((listen.clone(), task))
}

/// The task (`given`, else the environment's) and its address in the cluster of the
/// environment (`env`, as `ClusterSpec::from_env` gave it).
fn task_in_cluster(
    given: Option<TaskName>,
    env: (ClusterSpec, Option<TaskName>),
) -> anyhow::Result<(TaskName, String)> {
    let (spec, env_task) = env;
    // A Slurm task must sit where the cluster the others compute puts it.
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if var("TF_CONFIG").is_none() && var("RANK").is_none() {
        if let Some(job) = SlurmJob::from_vars(&var)? {
            job.check_this_task(&var)?;
        }
    }
    let Some(task) = given.or(env_task) else {
        bail!("which task is this? pass --task JOB:INDEX or set TF_CONFIG's task");
    };
    let addr = spec
        .addr(&task)
        .with_context(|| format!("task {task} is not in the cluster"))?
        .to_string();
    Ok((task, addr))
}

/// `sluice-engine cluster`: local tasks until Ctrl-C.
fn run_cluster(args: &cli::Cluster) -> anyhow::Result<()> {
    let mut jobs = vec![("worker", args.workers)];
    if args.ps > 0 {
        jobs.push(("ps", args.ps));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let shutdown = {
        let _inside = runtime.enter();
        shutdown_signal()
    };
    let cluster = LocalCluster::start(&jobs).map_err(anyhow::Error::msg)?;
    println!("{}", cluster.spec().to_tf_config(None));
    runtime.block_on(shutdown);
    tracing::info!("stopping the cluster");
    drop(cluster);
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed by this call, not when the
/// future is first polled: a SIGTERM sent as soon as the address is printed must find them.
/// Call it inside the runtime.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        let term = async {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
    }
}

/// A launcher's worker: when standard input (the launcher's pipe) ends, the launcher is
/// gone, and so is the reason to serve.
fn exit_when_parent_goes() {
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        // Nothing is logged: the log goes to the launcher's stderr, which went with it, and
        // a write there can end this thread before it ends the process (a test starts
        // workers from a process whose stderr is a pipe, then ends it).
        std::process::exit(0);
    });
}

/// Serves the master service (and, for a worker, the worker service) at `listen` until
/// SIGTERM or Ctrl-C.
fn run_engine(listen: &str, config: EngineConfig, plaintext: bool) -> anyhow::Result<()> {
    let addr = listen_addr(listen, &config, plaintext)?;
    if std::env::var_os(sluice::distributed::launcher::EXIT_WITH_PARENT_ENV).is_some() {
        exit_when_parent_goes();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        // A worker names its task: on a node several jobs share, which one's port is taken.
        let who = config
            .task
            .as_ref()
            .map_or(String::new(), |t| format!("task {t}: "));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("{who}cannot listen on {addr}"))?;
        let shutdown = shutdown_signal();
        // On stdout, exactly this: launchers and tests read the address from it.
        println!("listening on {}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, config, async {
            let _ = stopped.await;
        }));
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop.send(());
        // Give open requests a moment; connections left idle do not hold the exit.
        match tokio::time::timeout(std::time::Duration::from_secs(3), server).await {
            Ok(Ok(result)) => result.context("the server failed")?,
            Ok(Err(e)) => bail!("the server task failed: {e}"),
            Err(_) => tracing::warn!("requests still open after 3 s; exiting anyway"),
        }
        Ok(())
    })?;
    // Blocking threads still running a step are not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // Usage errors and --help end here, before anything is logged.
    let cli = Cli::parse();
    sluice::logging::init("info");
    match &cli.command {
        Command::Serve(args) => run_engine(
            &args.listen,
            engine_config(&args.service)?,
            args.service.insecure_plaintext,
        ),
        Command::Worker(args) => {
            let (listen, task) = worker_listen(args)?;
            let config = EngineConfig {
                task: task.map(|t| t.to_string()),
                ..engine_config(&args.service)?
            };
            run_engine(&listen, config, args.service.insecure_plaintext)
        }
        Command::Cluster(args) => run_cluster(args),
    }
}
