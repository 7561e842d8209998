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

/// The variable naming the device that cells' nodes go to outside any device scope: what
/// `--device` of the REPL and the kernel sets (`cpu`, `gpu`, `/device:GPU:1`).
pub const DEVICE_ENV: &str = "SLUICE_DEVICE";

/// Why the device asked for cannot be used.
#[derive(Debug)]
pub struct DeviceChoiceError(String);

impl std::fmt::Display for DeviceChoiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeviceChoiceError {}

/// Makes the device that [`DEVICE_ENV`] names the graph's default, once the engine is known
/// to have it: asking for a GPU where the engine has none is an error that lists what it
/// has, not a surprise at the first step.
pub fn use_default_device(sess: &RemoteSession, graph: &Graph) -> Result<(), DeviceChoiceError> {
    let choice = std::env::var(DEVICE_ENV).unwrap_or_default();
    check_device(choice.trim(), graph, || {
        sess.list_devices()
            .map(|ds| ds.into_iter().map(|d| d.name).collect())
            .map_err(|e| DeviceChoiceError(format!("cannot list the engine's devices: {e}")))
    })
}

fn check_device(
    choice: &str,
    graph: &Graph,
    devices: impl FnOnce() -> Result<Vec<String>, DeviceChoiceError>,
) -> Result<(), DeviceChoiceError> {
    use sluice::distributed::cluster::DeviceSpec;
    if choice.is_empty() || choice.eq_ignore_ascii_case("cpu") {
        return Ok(());
    }
    let probe = Graph::new();
    probe.set_default_device(choice);
    let wanted = DeviceSpec::parse(&probe.default_device()).map_err(|e| {
        DeviceChoiceError(format!(
            "{DEVICE_ENV}={choice:?} names no device (`cpu`, `gpu`, `/device:GPU:1`): {e}"
        ))
    })?;
    let key = |s: &DeviceSpec| {
        (
            s.device_type.clone().unwrap_or_default().to_uppercase(),
            s.device_index.unwrap_or(0),
        )
    };
    let names = devices()?;
    let found = names
        .iter()
        .filter_map(|n| DeviceSpec::parse(n).ok())
        .any(|d| key(&d) == key(&wanted));
    if !found {
        return Err(DeviceChoiceError(format!(
            "the device {choice:?} was asked for ({DEVICE_ENV}, --device), but the engine has \
             only {} (leave --device out, or ask for `cpu`)",
            names.join(", ")
        )));
    }
    graph.set_default_device(choice);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Result<Vec<String>, DeviceChoiceError> {
        Ok(vec!["/device:CPU:0".into(), "/device:GPU:0".into()])
    }

    #[test]
    fn a_device_the_engine_has_becomes_the_default() {
        let g = Graph::new();
        check_device("gpu", &g, engine).expect("the engine has a GPU");
        assert_eq!(g.default_device(), "/device:GPU:0");
        let g = Graph::new();
        check_device("cpu", &g, || unreachable!("no need to ask")).expect("cpu");
        assert_eq!(g.default_device(), "");
    }

    #[test]
    fn a_device_the_engine_lacks_is_an_error_that_lists_what_it_has() {
        let g = Graph::new();
        let err = check_device("/device:GPU:1", &g, engine).expect_err("no second GPU");
        assert!(err.to_string().contains("/device:GPU:0"), "{err}");
        assert_eq!(g.default_device(), "");
        let err = check_device("gpu", &g, || Ok(vec!["/device:CPU:0".into()])).expect_err("no GPU");
        assert!(err.to_string().contains("only /device:CPU:0"), "{err}");
        let err = check_device("/device:TPU:x", &g, engine).expect_err("bad name");
        assert!(err.to_string().contains("names no device"), "{err}");
    }
}
