//! `:trace`: one step run traced and drawn under the cell as a timeline (a lane per device of
//! each task, kernels coloured by op family, tensors between tasks as arrows). The step's
//! Chrome trace goes to a file the frontend reads and draws; the same file opens in Perfetto
//! (ui.perfetto.dev) or `chrome://tracing`.

use crate::directive;
use crate::protocol::TIMELINE;
use sluice::prelude::*;
use sluice::timeline::StepTimeline;
use sluice::{Runner, SessionError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Runs one step of `sess` traced (in-process, on an engine or over a cluster): `fetches`
/// with `feeds`, running `targets` too (a training step's updates). Draws its timeline under
/// the cell and returns the fetched values, even when the trace cannot be written (a note
/// says why).
pub fn trace<R: Runner + ?Sized>(
    sess: &mut R,
    fetches: &[Output],
    feeds: &[(Output, Tensor)],
    targets: &[Output],
) -> Result<Vec<Tensor>, SessionError> {
    let (values, timings) = sess.run_traced_with_targets(fetches, feeds, targets)?;
    let mut timeline = StepTimeline::from_timings(&timings);
    // A step of one process is named by where it ran: `in-process`, `engine at ADDR`.
    for lane in timeline.lanes.iter_mut().filter(|l| l.process.is_empty()) {
        lane.process = sess.location();
    }
    match write_trace(&timeline) {
        Ok(path) => directive(TIMELINE, &[&path.to_string_lossy()]),
        Err(e) => eprintln!("the step ran, but its trace could not be written: {e}"),
    }
    Ok(values)
}

/// Writes the trace to a file of its own in the cell process's folder under the system's
/// temporary folder (no folder shared with other users' processes).
fn write_trace(timeline: &StepTimeline) -> std::io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let dir = std::env::temp_dir().join(format!("sluice-traces-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("step-{n}.trace.json"));
    timeline.write_chrome_trace(&path)?;
    Ok(path)
}
