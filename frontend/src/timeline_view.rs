//! A traced step as the visualizer's plain data, and its drawings: an SVG timeline for
//! notebooks, a text summary for terminals. The cell's process writes the step's Chrome trace
//! to a file (`:trace`); the frontend reads it back from there.

use crate::error::{FrontendError, Result};
use sluice::timeline::{Span, StepTimeline};
use sluice_visualizer::{
    render_timeline_svg, render_timeline_text, ArrowView, LaneView, SpanView, TimelineOptions,
    TimelineView,
};
use std::path::Path;

/// A trace file larger than this is not drawn (a step of a million kernels is not a picture).
const MAX_TRACE_BYTES: u64 = 64 << 20;

/// Columns of the text form: what a terminal shows without wrapping.
const TEXT_COLUMNS: usize = 100;

/// The timeline of the trace at `path`, as display forms: text for terminals, SVG for
/// notebooks; the text ends with where the trace file is.
pub fn draw(path: &Path) -> Result<Vec<(String, String)>> {
    let timeline = StepTimeline::read_chrome_trace(path, MAX_TRACE_BYTES).map_err(|source| {
        FrontendError::Trace {
            path: path.display().to_string(),
            source,
        }
    })?;
    let view = timeline_view(&timeline);
    let svg = render_timeline_svg(&view, &TimelineOptions::default())?;
    let mut text = render_timeline_text(&view, TEXT_COLUMNS)?;
    text.push_str(&format!(
        "\nChrome trace: {} (opens in ui.perfetto.dev or chrome://tracing)",
        path.display()
    ));
    Ok(vec![
        ("text/plain".to_string(), text),
        ("image/svg+xml".to_string(), svg),
    ])
}

/// Lanes by task and device, spans coloured by op family (the estimate and a receive's wait
/// and transfer in their tooltips), arrows from each send to its receive.
pub fn timeline_view(timeline: &StepTimeline) -> TimelineView {
    let lanes = (timeline.lanes.iter())
        .map(|l| LaneView {
            // `/replica:0` says nothing here: a cluster has one replica.
            group: if l.process.is_empty() {
                "this process".to_string()
            } else {
                l.process.replace("/replica:0", "")
            },
            name: l.device.clone(),
        })
        .collect();
    let spans = (timeline.spans.iter())
        .map(|s| SpanView {
            lane: s.lane,
            start_us: s.start_micros,
            dur_us: s.micros,
            label: s.node.clone(),
            category: s.family.map(|f| f.name().to_string()).unwrap_or_default(),
            detail: detail(s),
        })
        .collect();
    let end = |s: &Span| s.start_micros + s.micros;
    let arrows = (timeline.flows.iter())
        .filter_map(|f| {
            let (from, to) = (timeline.spans.get(f.from)?, timeline.spans.get(f.to)?);
            Some(ArrowView {
                from_lane: from.lane,
                from_us: end(from),
                to_lane: to.lane,
                to_us: end(to),
                label: format!("{} ({} bytes)", f.tensor, f.wire_bytes),
            })
        })
        .collect();
    TimelineView {
        title: "step timeline".to_string(),
        lanes,
        spans,
        arrows,
    }
}

/// A span's tooltip beyond its name and times: op, the cost model's estimate, a receive's
/// wait and transfer.
fn detail(span: &Span) -> String {
    let mut parts = vec![span.op.clone()];
    if let Some(estimate) = span.estimate_micros {
        parts.push(format!("placement estimated {estimate:.1} µs"));
    }
    if let Some(t) = &span.transfer {
        let channel = if t.bulk { "bulk channel" } else { "gRPC" };
        parts.push(format!(
            "{} from {}: waited {:.1} µs, moved {} bytes in {:.1} µs over {channel}",
            t.tensor, t.from_task, t.wait_micros, t.wire_bytes, t.transfer_micros
        ));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice::{NodeTiming, OpFamily, TransferTiming};

    fn traced_step() -> StepTimeline {
        let w = |t: usize| format!("/job:worker/task:{t}/device:CPU:0");
        let send = NodeTiming {
            node: "_send/h/to_worker_1".into(),
            op: "_Send",
            family: Some(OpFamily::Transfer),
            start_micros: 30.0,
            micros: 2.0,
            device: w(0),
            ..NodeTiming::default()
        };
        let recv = NodeTiming {
            node: "_recv/h/from_worker_0".into(),
            op: "_Recv",
            family: Some(OpFamily::Transfer),
            start_micros: 5.0,
            micros: 40.0,
            device: w(1),
            transfer: Some(TransferTiming {
                tensor: "h:0".into(),
                from_task: "/job:worker/task:0".into(),
                sender: "_send/h/to_worker_1".into(),
                wait_micros: 28.0,
                transfer_micros: 10.0,
                wire_bytes: 102_400,
                bulk: true,
            }),
            ..NodeTiming::default()
        };
        let matmul = NodeTiming {
            node: "layer1/MatMul".into(),
            op: "MatMul",
            family: Some(OpFamily::Linalg),
            micros: 30.0,
            device: w(0),
            estimate_micros: Some(25.0),
            ..NodeTiming::default()
        };
        StepTimeline::from_timings(&[matmul, send, recv])
    }

    #[test]
    fn a_traced_step_draws_both_tasks_and_the_transfer_between_them() {
        let dir = std::env::temp_dir().join(format!("sluice-timeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("step.trace.json");
        traced_step().write_chrome_trace(&path).expect("write");
        let forms = draw(&path).expect("draw");
        let (text, svg) = (&forms[0].1, &forms[1].1);
        assert!(text.contains("task:0") && text.contains("task:1"), "{text}");
        assert!(text.contains("step.trace.json"), "{text}");
        assert_eq!(svg.matches("class=\"lane\"").count(), 2, "{svg}");
        assert_eq!(svg.matches("class=\"arrow\"").count(), 1, "{svg}");
        assert!(svg.contains("placement estimated 25.0"), "{svg}");
        assert!(svg.contains("waited 28.0"), "{svg}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_file_that_is_not_a_trace_is_named_in_the_error() {
        let path = std::env::temp_dir().join(format!("sluice-not-a-trace-{}", std::process::id()));
        std::fs::write(&path, b"{\"cells\": []}").expect("write");
        let err = draw(&path).unwrap_err().to_string();
        assert!(
            err.contains("not-a-trace") && err.contains("traceEvents"),
            "{err}"
        );
        std::fs::remove_file(&path).ok();
    }
}
