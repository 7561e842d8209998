//! Keeping the local graph and the engine's in step: sending the nodes the engine lacks,
//! and pulling in those other clients added.

use super::transport::protocol;
use super::RemoteSession;
use crate::error::{RemoteError, SessionError};
use crate::graph::{GraphDef, Output};
use crate::service::proto;
use crate::service::status::{is_stale, session_error};
use crate::service::wire::{graph_def_from_proto, graph_def_to_proto};
use std::collections::{BTreeSet, HashSet};

/// How many times a graph delta is rebased on other clients' changes before giving up.
const SYNC_ATTEMPTS: usize = 16;

/// What the client knows of the engine's graph.
pub(super) struct SyncState {
    /// The engine graph's version (its node count) when last seen.
    pub(super) engine_version: u64,
    /// Local node ids below this have been accounted for: sent, received, or in `unsent`.
    pub(super) seen: usize,
    /// Local nodes the engine does not have yet.
    pub(super) unsent: BTreeSet<usize>,
}

impl RemoteSession {
    /// Sends the local nodes the engine does not have, catching up first if other clients
    /// changed the graph.
    pub(super) fn sync(&self) -> Result<(), SessionError> {
        let mut state = self.state();
        let len = self.graph.len();
        let seen = state.seen;
        state.unsent.extend(seen..len);
        state.seen = state.seen.max(len);
        for _ in 0..SYNC_ATTEMPTS {
            if state.unsent.is_empty() {
                return Ok(());
            }
            let delta = self.delta(&state.unsent);
            if delta.nodes.is_empty() {
                // Only invalid nodes are left, which cannot be sent.
                state.unsent.clear();
                return Ok(());
            }
            let request = proto::ExtendSessionRequest {
                session_handle: self.handle.clone(),
                graph_def: Some(graph_def_to_proto(&delta)),
                current_graph_version: state.engine_version,
            };
            let mut c = self.client.clone();
            match self.block(c.extend_session(request))? {
                Ok(reply) => {
                    state.engine_version = reply.into_inner().new_graph_version;
                    state.unsent.clear();
                    return Ok(());
                }
                Err(status) if is_stale(&status) => self.pull(&mut state)?,
                Err(status) => return Err(session_error(status)),
            }
        }
        Err(RemoteError::Protocol(format!(
            "the graph kept changing: {SYNC_ATTEMPTS} attempts to send new nodes were each \
             preceded by another client's change"
        ))
        .into())
    }

    /// The unsent nodes, as a delta (their inputs may name nodes the engine has).
    fn delta(&self, unsent: &BTreeSet<usize>) -> GraphDef {
        let Some(&first) = unsent.first() else {
            return GraphDef::default();
        };
        let names: HashSet<String> = {
            let data = self.graph.read();
            (unsent.iter())
                .filter_map(|&id| data.nodes.get(id).map(|n| n.name.clone()))
                .collect()
        };
        let mut def = self.graph.to_graph_def(first);
        def.nodes.retain(|n| names.contains(&n.name));
        def
    }

    /// Imports the nodes the engine has and this client has not seen.
    pub(super) fn pull(&self, state: &mut SyncState) -> Result<(), SessionError> {
        let request = proto::GetGraphRequest {
            session_handle: self.handle.clone(),
            from_version: state.engine_version,
        };
        let mut c = self.client.clone();
        let reply = self
            .block(c.get_graph(request))?
            .map_err(session_error)?
            .into_inner();
        let def = graph_def_from_proto(&reply.graph_def.unwrap_or_default(), "graph_def")
            .map_err(protocol)?;
        // Local nodes added since the last look are ours, unsent; what is imported now is not.
        let len = self.graph.len();
        let seen = state.seen;
        state.unsent.extend(seen..len);
        // Another client may have sent a name one of our unsent nodes has (two cells both
        // making a `Const`): ours, which nobody else knows yet, takes a fresh one, as a taken
        // name does locally.
        let incoming: HashSet<&str> = def.nodes.iter().map(|n| n.name.as_str()).collect();
        let clashing: Vec<usize> = {
            let data = self.graph.read();
            (state.unsent.iter().copied())
                .filter(|&id| {
                    data.nodes
                        .get(id)
                        .is_some_and(|n| incoming.contains(n.name.as_str()))
                })
                .collect()
        };
        for id in clashing {
            self.graph.rename_fresh(id, &incoming);
        }
        let imported: HashSet<usize> = self
            .graph
            .import_graph_def(&def)?
            .into_iter()
            .map(Output::node)
            .collect();
        let now = self.graph.len();
        state
            .unsent
            .extend((len..now).filter(|id| !imported.contains(id)));
        state.seen = now;
        state.engine_version = reply.graph_version;
        Ok(())
    }
}
