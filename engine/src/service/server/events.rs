//! The engine's event bus: what WatchEvents streams. Publishing costs nothing while no one
//! watches; a watcher that reads too slowly is told how many events it missed instead of
//! holding the engine back.

use crate::service::auth::Caller;
use crate::service::proto::{self, engine_event::Kind};
use crate::tensor::Tensor;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};
use tonic::Status;

/// Events kept for watchers that fall behind, before they miss some.
const BACKLOG: usize = 4096;

/// The stream WatchEvents answers with.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<proto::EngineEvent, Status>> + Send>>;

/// An event and the user whose session it concerns (see [`Caller`]).
type Owned = (Option<Caller>, proto::EngineEvent);

/// Where the service publishes its events. Clones publish to the same watchers.
#[derive(Clone)]
pub(crate) struct EventBus {
    tx: broadcast::Sender<Owned>,
    /// Who owns each session, where the engine has tokens: its events go to that user only.
    owners: Arc<Mutex<HashMap<String, Caller>>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(BACKLOG).0,
            owners: Arc::default(),
        }
    }
}

impl EventBus {
    /// Whether anyone watches: callers skip building events nobody reads.
    pub(crate) fn watched(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Records (or, with `None`, forgets) whose session `session` is.
    pub(crate) fn set_owner(&self, session: &str, owner: Option<Caller>) {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        match owner {
            Some(owner) => owners.insert(session.to_string(), owner),
            None => owners.remove(session),
        };
    }

    pub(crate) fn publish(&self, session: &str, kind: Kind) {
        if !self.watched() {
            return;
        }
        let owner = (self.owners.lock().unwrap_or_else(|e| e.into_inner()))
            .get(session)
            .copied();
        let unix_seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        // Fails only when the last watcher left meanwhile.
        let _ = self.tx.send((
            owner,
            proto::EngineEvent {
                session_handle: session.to_string(),
                unix_seconds,
                kind: Some(kind),
            },
        ));
    }

    /// A step's summary: its scalar fetches, by name.
    pub(crate) fn publish_step(&self, session: &str, step: i64, fetched: &[(String, Tensor)]) {
        if !self.watched() {
            return;
        }
        let scalars = fetched
            .iter()
            .filter(|(_, t)| t.dtype().is_float())
            .filter_map(|(name, t)| {
                Some(proto::Scalar {
                    name: name.clone(),
                    value: t.scalar_f64()?,
                })
            })
            .collect();
        self.publish(
            session,
            Kind::Step(proto::StepSummary {
                step,
                scalars,
                examples_per_second: 0.0,
                from_fit: false,
                steps_done: 0,
            }),
        );
    }

    /// Every event from now on, with the user whose session it concerns.
    pub(crate) fn receiver(&self) -> broadcast::Receiver<Owned> {
        self.tx.subscribe()
    }

    /// The events from now on: of one session, or of all `caller`'s when `session` is empty
    /// (every session's, on an engine without tokens).
    pub(crate) fn subscribe(&self, session: String, caller: Option<Caller>) -> WatchStream {
        let stream = BroadcastStream::new(self.tx.subscribe()).filter_map(move |item| match item {
            Ok((owner, event))
                if (owner.is_none() || owner == caller)
                    && (session.is_empty() || event.session_handle == session) =>
            {
                Some(Ok(event))
            }
            Ok(_) => None,
            Err(BroadcastStreamRecvError::Lagged(missed)) => Some(Ok(proto::EngineEvent {
                session_handle: session.clone(),
                unix_seconds: 0.0,
                kind: Some(Kind::Lagged(proto::Lagged { missed })),
            })),
        });
        Box::pin(stream)
    }
}
