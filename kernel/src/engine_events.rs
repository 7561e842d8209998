//! The engine's WatchEvents stream, turned into [`LiveEvent`]s on a thread of its own.

use crate::live::LiveEvent;
use sluice::service::{watch_events, EngineEvent};
use std::time::Duration;

/// Starts following every event of the engine at `addr`, reconnecting if the stream ends;
/// the thread stops when `sink` is dropped.
pub fn spawn_watcher(addr: &str, sink: crossbeam_channel::Sender<LiveEvent>) -> bool {
    let addr = addr.to_string();
    let spawned = std::thread::Builder::new()
        .name("sluice-events".into())
        .spawn(move || loop {
            match watch_events(&addr, None) {
                Ok(stream) => {
                    for event in stream {
                        match event {
                            Ok(event) => {
                                if let Some(live) = live_event(event) {
                                    if sink.send(live).is_err() {
                                        return;
                                    }
                                }
                            }
                            Err(e) => {
                                eprintln!("sluice-kernel: engine events: {e}");
                                break;
                            }
                        }
                    }
                }
                Err(e) => eprintln!("sluice-kernel: cannot watch the engine at {addr}: {e}"),
            }
            std::thread::sleep(Duration::from_secs(1));
        });
    spawned.is_ok()
}

/// The part of an engine event that curves and interrupts care about.
pub fn live_event(event: EngineEvent) -> Option<LiveEvent> {
    match event {
        EngineEvent::SessionCreated { session, .. } => Some(LiveEvent::SessionCreated { session }),
        EngineEvent::Step {
            session,
            step,
            scalars,
            from_fit,
            ..
        } => Some(LiveEvent::Step {
            session,
            step,
            scalars,
            from_fit,
        }),
        EngineEvent::FitStarted { session, steps, .. } => {
            Some(LiveEvent::FitStarted { session, steps })
        }
        EngineEvent::FitEnded {
            session,
            steps_done,
            error,
        } => Some(LiveEvent::FitEnded {
            session,
            steps_done,
            error,
        }),
        _ => None,
    }
}
