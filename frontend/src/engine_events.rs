//! The engine's WatchEvents stream, followed on a thread of its own: what drives live curves
//! and progress bars, and tells the frontend about sessions its cells made. One rule for
//! both frontends: a stream that ends or fails is opened again, after a pause that grows to
//! a few seconds, for as long as someone listens.

use sluice::service::{watch_events, EngineEvent};
use std::time::Duration;

/// The first pause before the stream is opened again, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Follows every event of the engine at `addr`, handing each to `sink`; the thread ends
/// when `sink`'s receiver is dropped.
pub fn spawn_watcher(
    addr: &str,
    sink: crossbeam_channel::Sender<EngineEvent>,
) -> std::io::Result<()> {
    let addr = addr.to_string();
    std::thread::Builder::new()
        .name("sluice-events".into())
        .spawn(move || {
            let mut pause = RETRY_FIRST;
            loop {
                match watch_events(&addr, None) {
                    Ok(stream) => {
                        for event in stream {
                            match event {
                                Ok(event) => {
                                    pause = RETRY_FIRST;
                                    if sink.send(event).is_err() {
                                        return;
                                    }
                                }
                                Err(e) => {
                                    tracing::debug!("engine events from {addr}: {e}");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::debug!("cannot watch the engine at {addr}: {e}"),
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(RETRY_MAX);
            }
        })?;
    Ok(())
}
