//! The frontend's side of the engine: the engine itself (embedded, or the standalone one
//! the frontend was pointed at), the sessions the cells use, cancelling their work on
//! interrupt, their graphs for drawing, and the event stream.

use crate::error::{FrontendError, Result};
use crate::ENGINE_ENV;
use sluice::service::{
    EmbeddedEngine, EngineConfig, EngineEvent, RemoteCancelToken, RemoteSession,
};
use sluice::Graph;
use std::collections::HashMap;
use std::sync::Mutex;

pub struct EngineLink {
    addr: String,
    embedded: Option<EmbeddedEngine>,
    /// Cancel tokens of the sessions cells used, by handle.
    tokens: Mutex<HashMap<String, RemoteCancelToken>>,
}

/// The embedded engine's settings. It listens on loopback, which other users of the machine
/// reach too: it requires a token nobody else knows, made now (or the one already in the
/// environment) and put in this process's environment, which the cell process inherits and
/// from which this frontend's own calls send it. It reads data sets from the engine's usual
/// folders and the folder the frontend started in (the notebook's).
fn embedded_config() -> Result<EngineConfig> {
    use sluice::service::auth::{random_u128, token_from_env, TOKEN_ENV};
    let token = match token_from_env() {
        Ok(Some(token)) => token,
        Ok(None) => {
            let token = format!("{:032x}", random_u128());
            std::env::set_var(TOKEN_ENV, &token);
            token
        }
        Err(e) => return Err(FrontendError::Engine(e.to_string())),
    };
    let defaults = EngineConfig::default();
    let here = std::env::current_dir().ok();
    let roots = defaults.data_roots.roots().iter().cloned().chain(here);
    Ok(EngineConfig {
        tokens: vec![token],
        data_roots: sluice::data::DataRoots::new(roots),
        ..defaults
    })
}

impl EngineLink {
    /// Uses the engine at `addr`, else the one `SLUICE_ENGINE` names, else starts one inside
    /// the frontend on loopback.
    pub fn start(addr: Option<&str>) -> Result<EngineLink> {
        let named = addr
            .map(str::to_string)
            .or_else(|| std::env::var(ENGINE_ENV).ok())
            .filter(|a| !a.trim().is_empty());
        if let Some(addr) = named {
            return Ok(EngineLink {
                addr: addr.trim().to_string(),
                embedded: None,
                tokens: Mutex::default(),
            });
        }
        let engine = EmbeddedEngine::start("127.0.0.1:0", embedded_config()?)
            .map_err(|e| FrontendError::Engine(format!("cannot start the embedded engine: {e}")))?;
        Ok(EngineLink {
            addr: engine.addr().to_string(),
            embedded: Some(engine),
            tokens: Mutex::default(),
        })
    }

    /// Where the engine listens (`host:port`).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the engine runs inside this process (then every session on it is the cells').
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Remembers a session a cell uses, so an interrupt can cancel its work. Asks nothing of
    /// the engine: a token only names the session.
    pub fn register(&self, addr: &str, handle: &str) {
        self.lock()
            .entry(handle.to_string())
            .or_insert_with(|| RemoteCancelToken::new(addr, handle));
    }

    /// Whether the cells use this session.
    pub fn is_ours(&self, handle: &str) -> bool {
        self.lock().contains_key(handle)
    }

    /// The handles of the sessions cells use.
    pub fn sessions(&self) -> Vec<String> {
        let mut handles: Vec<String> = self.lock().keys().cloned().collect();
        handles.sort();
        handles
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RemoteCancelToken>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
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
        let tokens: Vec<(String, RemoteCancelToken)> = self
            .lock()
            .iter()
            .map(|(h, t)| (h.clone(), t.clone()))
            .collect();
        tokens
            .iter()
            .filter_map(|(handle, token)| f(token).err().map(|e| format!("{handle}: {e}")))
            .collect()
    }

    /// The engine's graph of a session, rebuilt locally.
    pub fn fetch_graph(&self, addr: &str, handle: &str) -> Result<Graph> {
        let (_session, graph) = RemoteSession::attach(addr, handle)?;
        Ok(graph)
    }

    /// Follows the engine's events on a thread of its own (see [`crate::engine_events`]).
    pub fn watch(&self, sink: crossbeam_channel::Sender<EngineEvent>) -> Result<()> {
        Ok(crate::engine_events::spawn_watcher(&self.addr, sink)?)
    }
}
