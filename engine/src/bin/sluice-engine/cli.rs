//! The command line of `sluice-engine`: one subcommand per role, each taking only its own
//! options (`serve --workers 2` is a usage error, not an option silently ignored).

use clap::{Args, Parser, Subcommand};
use sluice::distributed::TaskName;
use sluice::service::{EngineConfig, DEFAULT_ADDR};
use std::path::PathBuf;

/// The standalone Sluice engine: sessions, graphs and trained variables that outlive the
/// programs, notebooks and REPLs that feed them.
#[derive(Debug, Parser)]
#[command(
    name = "sluice-engine",
    version,
    after_help = "Prints `listening on ADDR` on standard output once bound (the actual \
        port when asked for port 0), and exits cleanly on SIGTERM or Ctrl-C. Diagnostics go \
        to standard error, filtered by RUST_LOG (default `info`; e.g. RUST_LOG=sluice=debug)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// A standalone engine (the master service)
    Serve(Serve),
    /// A task of a cluster: the master service for its parts of graphs, and the worker
    /// service (RecvTensor, GetStatus)
    Worker(Worker),
    /// Start worker (and ps) tasks on 127.0.0.1, print the cluster as TF_CONFIG JSON, and
    /// stop them all on Ctrl-C
    Cluster(Cluster),
}

#[derive(Debug, Args)]
pub struct Serve {
    /// Where to listen (port 0 picks a free one); an address beyond loopback requires a token
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub listen: String,

    #[command(flatten)]
    pub service: ServiceOptions,
}

#[derive(Debug, Args)]
pub struct Worker {
    /// Which task this is (`worker:0`, `ps:1`); by default the task that TF_CONFIG (or
    /// torchrun's or Slurm's variables) names
    #[arg(long, value_name = "JOB:INDEX", value_parser = TaskName::parse)]
    pub task: Option<TaskName>,

    /// Where to listen; by default the task's address in the cluster of TF_CONFIG (or
    /// torchrun's or Slurm's variables). An address beyond loopback requires a token
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,

    /// Listen on HOST (0.0.0.0: every address of the machine) at the port of the task's
    /// address in the cluster, which the other tasks still use to reach it (several tasks of
    /// a Slurm job on one node each take their own port)
    #[arg(long, value_name = "HOST", conflicts_with = "listen")]
    pub listen_host: Option<String>,

    #[command(flatten)]
    pub service: ServiceOptions,
}

/// What an engine serving the master service takes, as `serve` and as `worker`.
#[derive(Debug, Args)]
pub struct ServiceOptions {
    /// The tokens calls must carry, one per line, each a user whose sessions the others
    /// cannot use or watch (the first is also what this engine's own calls to others carry);
    /// else the token in SLUICE_ENGINE_TOKEN or SLUICE_ENGINE_TOKEN_FILE, from which clients
    /// send theirs
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// The largest graph message accepted, in MiB; tensors are streamed in chunks and have
    /// no such cap
    #[arg(
        long,
        value_name = "N",
        default_value_t = default_max_message_mib(),
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_message_mib: u64,

    /// The most memory one tensor may take (a step's value, a variable, a tensor from a
    /// peer): bytes, or with a unit (512MiB, 8GiB); past it a step fails naming the node.
    /// Default: three quarters of the machine's memory
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,

    /// The most sessions open at once (graphs registered by masters included)
    #[arg(long, value_name = "N", default_value_t = EngineConfig::default().max_sessions)]
    pub max_sessions: usize,

    /// The most calls waiting for one session; past it a call is refused
    /// (RESOURCE_EXHAUSTED), so one busy session cannot pile up work
    #[arg(long, value_name = "N", default_value_t = EngineConfig::default().max_queued)]
    pub max_queued: usize,

    /// The most calls in flight at once on one client connection (HTTP/2 streams); past it
    /// a client's further calls wait for one to end
    #[arg(long, value_name = "N", default_value_t = EngineConfig::default().max_streams,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams: u32,

    /// A folder whose data sets clients may name for a fit (repeat for several); other paths
    /// are refused. Default: the engine's data folder (SLUICE_DATA_DIR, else
    /// ~/.local/share/sluice) and /usr/share/datasets
    #[arg(long = "data-root", value_name = "DIR")]
    pub data_roots: Vec<PathBuf>,

    /// The engine's TLS certificate (PEM, its chain); with --tls-key the engine serves only
    /// TLS. Also taken from SLUICE_TLS_CERT. Required beyond loopback
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM); also taken from SLUICE_TLS_KEY
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// The certificate authority (PEM) other engines' certificates are checked against on
    /// this engine's own calls to them; also taken from SLUICE_TLS_CA, from which clients
    /// take it too
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Mutual TLS: accept only callers (clients and other engines) presenting a certificate
    /// this authority (PEM) signed; clients name theirs in SLUICE_TLS_CLIENT_CERT and
    /// SLUICE_TLS_CLIENT_KEY, engines present their own. Also taken from SLUICE_TLS_CLIENT_CA
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,

    /// Writes one TensorBoard run per session under DIR (`tensorboard --logdir DIR`): its
    /// graph, the scalars its steps fetch, its fits' loss and examples/s
    #[arg(long, value_name = "DIR")]
    pub logdir: Option<PathBuf>,

    /// Listen beyond loopback without TLS: the token and every tensor then cross the network
    /// in clear text. Only for a network nobody else can read
    #[arg(long)]
    pub insecure_plaintext: bool,
}

/// A size in bytes: a number, optionally followed by KiB, MiB, GiB or TiB (or K, M, G, T).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| {
        format!("'{text}' is not a size: use bytes or a number with KiB, MiB, GiB, TiB")
    })?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" | "KB" => 10,
        "M" | "MiB" | "MB" => 20,
        "G" | "GiB" | "GB" => 30,
        "T" | "TiB" | "TB" => 40,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{text}': use KiB, MiB, GiB or TiB"
            ))
        }
    };
    n.checked_mul(1 << shift)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("'{text}' is not a size between 1 byte and 2^64"))
}

#[derive(Debug, Args)]
pub struct Cluster {
    /// How many worker tasks
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub workers: usize,

    /// How many parameter-server tasks
    #[arg(long, value_name = "M", default_value_t = 0)]
    pub ps: usize,
}

/// The engine's own default, so that the help text and the engine agree.
fn default_max_message_mib() -> u64 {
    (EngineConfig::default().max_message_bytes >> 20) as u64
}

impl ServiceOptions {
    /// The largest message in bytes; a cap past the address space is no cap.
    pub fn max_message_bytes(&self) -> usize {
        usize::try_from(self.max_message_mib)
            .unwrap_or(usize::MAX)
            .saturating_mul(1 << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("3 parsecs").is_err());
        assert!(parse_size("99999999999TiB").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_belong_to_their_subcommand() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["sluice-engine"], args].concat());
        assert!(parse(&["serve", "--listen=127.0.0.1:0", "--max-message-mib", "8"]).is_ok());
        assert!(parse(&["worker", "--task", "ps:1", "--token-file=t"]).is_ok());
        assert!(parse(&["cluster", "--workers=3", "--ps", "1"]).is_ok());
        for wrong in [
            &["serve", "--workers", "2"][..],
            &["serve", "--task", "worker:0"],
            &["cluster", "--listen", "127.0.0.1:0"],
            &["worker", "--task", "worker"],
            &["serve", "--max-message-mib", "0"],
            &[],
        ] {
            assert!(parse(wrong).is_err(), "{wrong:?} was accepted");
        }
    }
}
