//! The engine's WatchEvents stream, read on a thread of its own and handed to the output
//! thread: what drives the progress bar.

use crossbeam_channel::Sender;
use sluice::service::{watch_events, EngineEvent};
use std::time::Duration;

/// How often a lost event stream is opened again before giving up.
const RECONNECTS: usize = 5;

/// Follows every session's events on the engine at `addr` (the output thread keeps those of
/// this REPL's sessions). Returns false when the stream cannot be opened.
pub fn spawn(addr: &str, sink: Sender<EngineEvent>) -> bool {
    let first = match watch_events(addr, None) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!("sluice: no live progress (the engine's event stream: {e})");
            return false;
        }
    };
    let addr = addr.to_string();
    let thread = std::thread::Builder::new()
        .name("sluice-events".into())
        .spawn(move || {
            let mut stream = Some(first);
            for _ in 0..=RECONNECTS {
                let Some(events) = stream.take() else { break };
                for event in events {
                    match event {
                        Ok(event) => {
                            if sink.send(event).is_err() {
                                return;
                            }
                        }
                        Err(_) => break,
                    }
                }
                // The engine went away or the stream broke: try again a little later.
                std::thread::sleep(Duration::from_millis(500));
                stream = watch_events(&addr, None).ok();
            }
        });
    thread.is_ok()
}
