//! Sessions and the frontend: which sessions an interrupt cancels, and graph drawings.

use crate::directive;
use crate::protocol::{SESSION, SHOW_GRAPH};
use sluice::distributed::DistributedSession;
use sluice::prelude::*;

/// Drawing a session's graph under the cell.
pub trait ShowGraph {
    /// Draws the session's graph (what `:graph` does): a picture in a notebook, an outline
    /// in the terminal.
    fn show_graph(&mut self);
}

impl ShowGraph for RemoteSession {
    fn show_graph(&mut self) {
        // A step with nothing to compute sends the nodes added since the last call, so the
        // engine's graph (which the frontend draws) is the cell's.
        if let Err(e) = self.run_with_targets(&[], &[], &[]) {
            eprintln!("cannot send the graph to the engine: {e}");
            return;
        }
        directive(SHOW_GRAPH, &[self.addr(), self.handle()]);
    }
}

impl ShowGraph for DistributedSession {
    /// Draws the whole graph as placed, nodes coloured by task and device. The frontend draws
    /// graphs it reads from its engine: the placed graph goes there as a session of its own,
    /// which replaces the one the previous drawing left.
    fn show_graph(&mut self) {
        static VIEW: std::sync::Mutex<Option<RemoteSession>> = std::sync::Mutex::new(None);
        let placed = match self.placed_graph() {
            Ok(g) => g,
            Err(e) => return eprintln!("cannot place the graph: {e}"),
        };
        let engine = std::env::var("SLUICE_ENGINE").unwrap_or_default();
        let mut view = VIEW.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = view.take() {
            let _ = old.close();
        }
        match RemoteSession::create(&engine, &placed) {
            Ok(session) => {
                directive(SHOW_GRAPH, &[session.addr(), session.handle()]);
                *view = Some(session);
            }
            Err(e) => eprintln!("cannot hand the placed graph to the frontend's engine: {e}"),
        }
    }
}

/// Tells the frontend that the cells use this session (its work is cancelled on interrupt).
pub fn announce_session(sess: &RemoteSession) {
    directive(SESSION, &[sess.addr(), sess.handle()]);
}

/// Tells the frontend about a distributed session's graphs on its workers, so that an
/// interrupt cancels the steps running there too (not only the cell's own engine work).
pub fn announce_cluster_session(sess: &DistributedSession) {
    for (_task, addr, handle) in sess.task_graphs() {
        directive(SESSION, &[&addr, &handle]);
    }
}
