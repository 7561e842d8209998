//! A session as the service holds it: its graph, its in-process session behind a fair queue
//! that holds no thread while it waits, and who owns it.

use crate::executor::CancelToken;
use crate::graph::Graph;
use crate::service::auth::Caller;
use crate::session::Session;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tonic::Status;

/// One session: its graph, its variables and steps, and what serialises changes.
pub(super) struct Entry {
    pub(super) handle: String,
    pub(super) graph: Graph,
    /// Steps run so far (RunStep), for the step events.
    pub(super) steps: AtomicI64,
    /// Taken by each call that uses the session, in the order they came (tokio's mutex is
    /// fair), waiting without a thread: see [`Entry::acquire`].
    pub(super) session: Arc<tokio::sync::Mutex<Session>>,
    /// Calls waiting for (or holding) the session.
    pub(super) queued: Arc<AtomicUsize>,
    pub(super) max_queued: usize,
    /// Held while the graph's version is checked and a delta imported.
    pub(super) extend: Mutex<()>,
    pub(super) cancel: CancelToken,
    /// The token that created the session, where the engine has tokens.
    pub(super) owner: Option<Caller>,
}

/// A call's place in a session's queue, given up however the call ends.
struct InQueue(Arc<AtomicUsize>);

impl Drop for InQueue {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The session, held by one call; its place in the queue goes with it.
pub(super) struct Held {
    pub(super) session: tokio::sync::OwnedMutexGuard<Session>,
    _place: InQueue,
}

impl Entry {
    /// Waits for the session behind the calls before this one, on no thread: a session busy
    /// with a long step makes its own callers wait, never the engine's other sessions. Past
    /// `max_queued` waiting calls, a call is refused at once.
    pub(super) async fn acquire(&self) -> Result<Held, Status> {
        let place = InQueue(self.queued.clone());
        let before = self.queued.fetch_add(1, Ordering::SeqCst);
        if before >= self.max_queued {
            return Err(Status::resource_exhausted(format!(
                "session '{}' has {before} calls waiting, the most it queues \
                 (--max-queued {}); wait for them or cancel the running step",
                self.handle, self.max_queued
            )));
        }
        Ok(Held {
            session: self.session.clone().lock_owned().await,
            _place: place,
        })
    }
}
