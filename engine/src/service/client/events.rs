//! Watching an engine: the WatchEvents stream as a blocking iterator of [`EngineEvent`]s, for
//! frontends that draw training as it runs (a notebook's loss curve, a REPL's progress line).

use super::transport::{block, connect, ClientRuntime};
use crate::error::{RemoteError, SessionError};
use crate::service::proto::{self, engine_event::Kind};
use crate::service::status::session_error;
use std::time::Duration;

/// Something that happened in the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    SessionCreated {
        session: String,
        graph_version: u64,
    },
    /// A client extended the session's graph by `added` nodes.
    GraphChanged {
        session: String,
        graph_version: u64,
        added: u64,
    },
    /// A step ran: a RunStep (`step` counts the session's steps; `scalars` are its scalar
    /// float fetches by name), or a fit's report (`step` is the global step; `scalars` holds
    /// `loss`, the mean since the last report; `steps_done` counts the fit's own steps).
    Step {
        session: String,
        step: i64,
        scalars: Vec<(String, f64)>,
        examples_per_second: Option<f64>,
        from_fit: bool,
        steps_done: Option<u64>,
    },
    FitStarted {
        session: String,
        steps: u64,
        dataset: String,
    },
    /// A fit stopped: `error` is `None` when it completed, else why not (`cancelled`, ...).
    FitEnded {
        session: String,
        steps_done: u64,
        error: Option<String>,
    },
    SessionClosed {
        session: String,
    },
    /// This watcher read too slowly and missed `missed` events.
    Lagged {
        missed: u64,
    },
}

impl EngineEvent {
    /// The session it concerns (`None` for [`EngineEvent::Lagged`]).
    pub fn session(&self) -> Option<&str> {
        match self {
            EngineEvent::SessionCreated { session, .. }
            | EngineEvent::GraphChanged { session, .. }
            | EngineEvent::Step { session, .. }
            | EngineEvent::FitStarted { session, .. }
            | EngineEvent::FitEnded { session, .. }
            | EngineEvent::SessionClosed { session } => Some(session),
            EngineEvent::Lagged { .. } => None,
        }
    }

    pub(crate) fn from_proto(event: proto::EngineEvent) -> Result<EngineEvent, SessionError> {
        let session = event.session_handle;
        Ok(match event.kind {
            Some(Kind::SessionCreated(e)) => EngineEvent::SessionCreated {
                session,
                graph_version: e.graph_version,
            },
            Some(Kind::GraphChanged(e)) => EngineEvent::GraphChanged {
                session,
                graph_version: e.graph_version,
                added: e.added,
            },
            Some(Kind::Step(e)) => EngineEvent::Step {
                session,
                step: e.step,
                scalars: e.scalars.into_iter().map(|s| (s.name, s.value)).collect(),
                examples_per_second: e.from_fit.then_some(e.examples_per_second),
                from_fit: e.from_fit,
                steps_done: e.from_fit.then_some(e.steps_done),
            },
            Some(Kind::FitStarted(e)) => EngineEvent::FitStarted {
                session,
                steps: e.steps,
                dataset: e.dataset,
            },
            Some(Kind::FitEnded(e)) => EngineEvent::FitEnded {
                session,
                steps_done: e.steps_done,
                error: (!e.error.is_empty()).then_some(e.error),
            },
            Some(Kind::SessionClosed(_)) => EngineEvent::SessionClosed { session },
            Some(Kind::Lagged(e)) => EngineEvent::Lagged { missed: e.missed },
            None => {
                return Err(RemoteError::Protocol("an event with no kind".into()).into());
            }
        })
    }
}

/// The engine's events from the moment of [`watch_events`], one at a time; `next` blocks
/// until one comes, and the iterator ends when the engine stops. Drop it to stop watching.
pub struct EventStream {
    stream: tonic::Streaming<proto::EngineEvent>,
    // Declared last: dropped after the stream that runs on it.
    runtime: ClientRuntime,
}

impl EventStream {
    /// The next event, waiting at most `timeout`: `Ok(None)` when none came in time or the
    /// stream ended (see [`EventStream::next`] to tell these apart).
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<EngineEvent>, SessionError> {
        let stream = &mut self.stream;
        let next = block(&self.runtime, async {
            tokio::time::timeout(timeout, stream.message()).await
        })?;
        match next {
            Err(_elapsed) => Ok(None),
            Ok(message) => message
                .map_err(session_error)?
                .map(EngineEvent::from_proto)
                .transpose(),
        }
    }
}

impl Iterator for EventStream {
    type Item = Result<EngineEvent, SessionError>;

    fn next(&mut self) -> Option<Self::Item> {
        let stream = &mut self.stream;
        match block(&self.runtime, stream.message()) {
            Err(e) => Some(Err(e)),
            Ok(Err(status)) => Some(Err(session_error(status))),
            Ok(Ok(None)) => None,
            Ok(Ok(Some(event))) => Some(EngineEvent::from_proto(event)),
        }
    }
}

/// Watches the engine at `addr`: the events of one session, or of all (`None`).
pub fn watch_events(addr: &str, session: Option<&str>) -> Result<EventStream, SessionError> {
    let (runtime, mut client) = connect(addr)?;
    let request = proto::WatchEventsRequest {
        session_handle: session.unwrap_or_default().to_string(),
    };
    let stream = block(&runtime, client.watch_events(request))?
        .map_err(session_error)?
        .into_inner();
    Ok(EventStream { stream, runtime })
}
