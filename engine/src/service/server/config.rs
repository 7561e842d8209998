//! How an engine serves: its limits, credentials and data roots.

use crate::data::DataRoots;
use crate::service::tls::{ServerIdentity, TrustedCa};
use crate::tensor::MemoryBudget;

/// How an engine serves.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The largest message other than a tensor chunk (a graph definition, with its
    /// constants) that the engine decodes; larger ones are refused with OUT_OF_RANGE.
    pub max_message_bytes: usize,
    /// The tokens calls must carry (`authorization: Bearer TOKEN`), one per user: a
    /// session belongs to the token that created it, and other tokens can neither use nor
    /// watch it. The first is also what the engine's own calls to other engines carry.
    /// Empty: no check, which only a loopback engine may do.
    pub tokens: Vec<String>,
    /// The cluster task this engine is (`/job:worker/task:0`), reported by GetStatus.
    pub task: Option<String>,
    /// The most bytes one tensor (a step's value, a variable, a peer's tensor) may take.
    pub memory_budget: MemoryBudget,
    /// The most sessions (registered graphs included) open at once.
    pub max_sessions: usize,
    /// The most calls (steps, fits, variable reads and writes) waiting for one session; past
    /// it a call is refused with RESOURCE_EXHAUSTED.
    pub max_queued: usize,
    /// The most calls in flight at once on one client connection (HTTP/2 streams); a client
    /// past it waits for one of its calls to end.
    pub max_streams: u32,
    /// Where the data sets clients name for a fit may be read from.
    pub data_roots: DataRoots,
    /// The engine's certificate and key: with them it serves only TLS (and its bulk channel
    /// stays closed: large tensors travel over gRPC, encrypted).
    pub tls: Option<ServerIdentity>,
    /// The authority the engine checks other engines' certificates against on its own calls
    /// (`None`: `SLUICE_TLS_CA`, if set).
    pub peer_ca: Option<TrustedCa>,
    /// The authority callers' certificates must be signed by (mutual TLS, on the gRPC and
    /// bulk channels): with it, a caller without such a certificate is refused at the
    /// handshake, engines included. Needs `tls`.
    pub client_ca: Option<TrustedCa>,
    /// Where to write one TensorBoard run per session (its graph, the scalars of its steps,
    /// its fits); none: no runs.
    pub logdir: Option<std::path::PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_message_bytes: 256 << 20,
            tokens: Vec::new(),
            task: None,
            memory_budget: crate::devices::default_memory_budget(),
            max_sessions: 1024,
            max_queued: 64,
            max_streams: 200,
            data_roots: DataRoots::engine_default(),
            tls: None,
            peer_ca: None,
            client_ca: None,
            logdir: None,
        }
    }
}
