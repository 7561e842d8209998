//! The kernel's side of the engine: the engine itself (embedded, or the one `SLUICE_ENGINE`
//! names), the sessions the cells use, cancelling their work on interrupt, their graphs for
//! drawing, and the event stream that feeds live curves.

use crate::error::{KernelError, Result};
use crate::live::LiveEvent;
use sluice::service::{EmbeddedEngine, EngineConfig, RemoteCancelToken, RemoteSession};
use sluice::Graph;
use std::collections::HashMap;
use std::sync::Mutex;

/// The environment variable naming the engine the cells talk to.
pub const ENGINE_ENV: &str = "SLUICE_ENGINE";

pub struct EngineLink {
    addr: String,
    embedded: Option<EmbeddedEngine>,
    /// Cancel tokens of the sessions cells used, by handle.
    tokens: Mutex<HashMap<String, RemoteCancelToken>>,
}

impl EngineLink {
    /// Uses the engine `SLUICE_ENGINE` names, or starts one inside the kernel on loopback.
    pub fn start() -> Result<EngineLink> {
        match std::env::var(ENGINE_ENV) {
            Ok(addr) if !addr.trim().is_empty() => Ok(EngineLink {
                addr: addr.trim().to_string(),
                embedded: None,
                tokens: Mutex::default(),
            }),
            _ => {
                let engine = EmbeddedEngine::start("127.0.0.1:0", EngineConfig::default())?;
                Ok(EngineLink {
                    addr: engine.addr().to_string(),
                    embedded: Some(engine),
                    tokens: Mutex::default(),
                })
            }
        }
    }

    /// Where the engine listens (`host:port`).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the engine runs inside this process.
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Remembers a session a cell uses, so an interrupt can cancel its work.
    pub fn register(&self, addr: &str, handle: &str) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if tokens.contains_key(handle) {
            return;
        }
        match RemoteSession::attach(addr, handle) {
            Ok((session, _graph)) => {
                tokens.insert(handle.to_string(), session.cancel_token());
            }
            Err(e) => eprintln!("sluice-kernel: cannot follow session {handle}: {e}"),
        }
    }

    /// The handles of the sessions cells use.
    pub fn sessions(&self) -> Vec<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.keys().cloned().collect()
    }

    /// Cancels the running and later steps of every known session; returns the failures.
    pub fn cancel_all(&self) -> Vec<String> {
        self.each_token(|t| t.cancel())
    }

    /// Lets every known session run steps again after a cancel.
    pub fn reset_all(&self) -> Vec<String> {
        self.each_token(|t| t.reset())
    }

    fn each_token(
        &self,
        f: impl Fn(&RemoteCancelToken) -> std::result::Result<(), sluice::SessionError>,
    ) -> Vec<String> {
        let tokens: Vec<(String, RemoteCancelToken)> = {
            let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            tokens.iter().map(|(h, t)| (h.clone(), t.clone())).collect()
        };
        tokens
            .iter()
            .filter_map(|(handle, token)| f(token).err().map(|e| format!("{handle}: {e}")))
            .collect()
    }

    /// The engine's graph of a session, rebuilt locally.
    pub fn fetch_graph(&self, addr: &str, handle: &str) -> Result<Graph> {
        let (_session, graph) =
            RemoteSession::attach(addr, handle).map_err(|e| KernelError::Engine(e.to_string()))?;
        Ok(graph)
    }

    /// Follows the engine's events, handing those that concern curves to `sink`, on a thread
    /// of its own. Returns false where the engine offers no event stream.
    pub fn watch(&self, sink: crossbeam_channel::Sender<LiveEvent>) -> bool {
        crate::engine_events::spawn_watcher(&self.addr, sink)
    }
}
