//! A traced step as TensorFlow's `RunMetadata`: a `StepStats` entry per device with each
//! node's start and end, which TensorBoard's Graphs tab shows as compute time per node (pick
//! the step under "Session runs", colour by "Compute time").

use super::proto::{DeviceStepStats, NodeExecStats, RunMetadata, StepStats};
use crate::timeline::NodeTiming;

/// The step's `RunMetadata`, its times counted from `step_start_micros` (microseconds since
/// the Unix epoch), devices in the order they first ran a kernel.
pub fn run_metadata(timings: &[NodeTiming], step_start_micros: i64) -> RunMetadata {
    let mut devices: Vec<DeviceStepStats> = Vec::new();
    for t in timings {
        let at = match devices.iter().position(|d| d.device == t.device) {
            Some(at) => at,
            None => {
                devices.push(DeviceStepStats {
                    device: t.device.clone(),
                    node_stats: Vec::new(),
                });
                devices.len() - 1
            }
        };
        let start = step_start_micros.saturating_add(t.start_micros.max(0.0) as i64);
        let micros = t.micros.max(0.0);
        devices[at].node_stats.push(NodeExecStats {
            node_name: t.node.clone(),
            all_start_micros: start,
            op_start_rel_micros: 0,
            op_end_rel_micros: micros as i64,
            all_end_rel_micros: micros as i64,
            timeline_label: format!("{} = {}()", t.node, t.op),
            all_start_nanos: start.saturating_mul(1000),
            op_start_rel_nanos: 0,
            op_end_rel_nanos: (micros * 1e3) as i64,
            ..Default::default()
        });
    }
    RunMetadata {
        step_stats: Some(StepStats { dev_stats: devices }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_grouped_by_device_with_their_times() {
        let timing = |node: &str, device: &str, start: f64, micros: f64| NodeTiming {
            node: node.into(),
            op: "MatMul",
            start_micros: start,
            micros,
            device: device.into(),
            ..NodeTiming::default()
        };
        let meta = run_metadata(
            &[
                timing("a", "/job:worker/task:0/device:CPU:0", 0.0, 12.4),
                timing("b", "/job:worker/task:1/device:CPU:0", 5.0, 3.0),
                timing("c", "/job:worker/task:0/device:CPU:0", 20.0, 1.0),
            ],
            1_000_000,
        );
        let stats = meta.step_stats.expect("step stats").dev_stats;
        assert_eq!(stats.len(), 2);
        assert_eq!(stats[0].device, "/job:worker/task:0/device:CPU:0");
        let names: Vec<_> = stats[0]
            .node_stats
            .iter()
            .map(|n| n.node_name.as_str())
            .collect();
        assert_eq!(names, ["a", "c"]);
        let c = &stats[0].node_stats[1];
        assert_eq!((c.all_start_micros, c.op_end_rel_micros), (1_000_020, 1));
        assert_eq!(stats[1].node_stats[0].op_end_rel_nanos, 3000);
    }
}
