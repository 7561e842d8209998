//! `sluice-engine serve --logdir DIR`: the engine follows its own events into one
//! TensorBoard run per session ([`SessionRuns`]), on a thread of its own that reads the
//! sessions' graphs from the engine's session map.

use super::entry::Entry;
use super::events::EventBus;
use super::lock;
use crate::service::{EngineEvent, SessionRuns};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::broadcast::error::RecvError;

type Sessions = Mutex<HashMap<String, Arc<Entry>>>;

/// Starts writing every session's events under `logdir`; the thread ends with the engine
/// (when its event bus goes).
pub(super) fn spawn(
    logdir: PathBuf,
    events: &EventBus,
    sessions: Weak<Sessions>,
) -> std::io::Result<()> {
    let mut receiver = events.receiver();
    let mut runs = SessionRuns::new(logdir)?;
    std::thread::Builder::new()
        .name("sluice-logdir".into())
        .spawn(move || {
            let mut graph_of = |handle: &str| {
                let sessions = sessions.upgrade()?;
                let entry = lock(&sessions).get(handle).cloned()?;
                Some(entry.graph.clone())
            };
            loop {
                let event = match receiver.blocking_recv() {
                    Ok((_, event)) => EngineEvent::from_proto(event).ok(),
                    Err(RecvError::Lagged(missed)) => Some(EngineEvent::Lagged { missed }),
                    Err(RecvError::Closed) => break,
                };
                if let Some(event) = event {
                    runs.record(&event, &mut graph_of);
                }
            }
            runs.flush();
        })?;
    Ok(())
}
