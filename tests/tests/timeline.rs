//! Step timelines: a traced step, in-process, on a standalone engine and over two worker
//! processes, written as Chrome trace-event JSON by the examples' `--trace`, checked against
//! the trace-event schema with jsonschema from PyPI (tests/python/check_trace.py, run from
//! the SLUICE_PY venv) and read back as Sluice's timeline.

use sluice::timeline::StepTimeline;
use sluice::OpFamily;
use sluice_tests::{python_with, run_example, run_example_with_env, Engine};
use std::path::{Path, PathBuf};

/// A trace file in a temporary folder of its own, removed with it.
struct TraceFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl TraceFile {
    fn new(name: &str) -> TraceFile {
        let dir = tempfile::Builder::new()
            .prefix("sluice-trace-")
            .tempdir()
            .expect("a temporary folder");
        let path = dir.path().join(format!("{name}.json"));
        TraceFile { _dir: dir, path }
    }

    fn arg(&self) -> &str {
        self.path.to_str().expect("a UTF-8 temporary path")
    }
}

/// Runs check_trace.py on `trace`; panics with its output if a check failed.
fn check_trace(trace: &Path, tasks: Option<usize>) {
    let Some(python) = python_with("jsonschema") else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/check_trace.py");
    let mut command = std::process::Command::new(python);
    command.arg(&script).arg(trace);
    if let Some(tasks) = tasks {
        command.args(["--tasks", &tasks.to_string()]);
    }
    let out = command.output().expect("run check_trace.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("check_trace: all passed"),
        "the trace fails its checks ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One process's step: one lane, kernels one after another, each with its op's family.
fn check_one_process_step(timeline: &StepTimeline) {
    let lanes: Vec<_> = (timeline.lanes.iter())
        .map(|l| (l.process.as_str(), l.device.as_str()))
        .collect();
    assert_eq!(lanes, [("", "CPU:0")]);
    assert!(
        timeline.spans.len() >= 10,
        "{} kernels",
        timeline.spans.len()
    );
    assert!(timeline.flows.is_empty());
    for pair in timeline.spans.windows(2) {
        let end = pair[0].start_micros + pair[0].micros;
        assert!(
            pair[1].start_micros >= end - 1e-3,
            "{} starts at {} before {} ends at {end}",
            pair[1].node,
            pair[1].start_micros,
            pair[0].node
        );
    }
    let families: Vec<_> = timeline.spans.iter().map(|s| s.family).collect();
    assert!(
        families.contains(&Some(OpFamily::Linalg)) && families.contains(&Some(OpFamily::State)),
        "{families:?}"
    );
    assert!(!families.contains(&None) && !families.contains(&Some(OpFamily::Other)));
    let step_micros: f64 = timeline.spans.iter().map(|s| s.micros).sum();
    assert!(step_micros > 0.0);
}

#[test]
fn the_seed_programs_last_step_in_process_is_a_trace_perfetto_reads() {
    let trace = TraceFile::new("seed");
    let out = run_example("mnist_softmax", &["--trace", trace.arg()]).expect("mnist_softmax");
    assert!(out.contains("Chrome trace: "), "{out}");
    check_trace(&trace.path, None);
    let timeline = StepTimeline::read_chrome_trace(&trace.path, 1 << 26).expect("read back");
    check_one_process_step(&timeline);
}

#[test]
fn a_step_on_a_standalone_engine_keeps_its_times_devices_and_families() {
    let engine = Engine::start(&[]).expect("start the engine");
    let trace = TraceFile::new("remote");
    let out = run_example_with_env(
        "mnist_softmax",
        &["--trace", trace.arg()],
        &[("SLUICE_ENGINE", &engine.addr)],
    )
    .expect("mnist_softmax on the engine");
    assert!(
        out.contains(&format!("running engine at {}", engine.addr)),
        "{out}"
    );
    check_trace(&trace.path, None);
    let timeline = StepTimeline::read_chrome_trace(&trace.path, 1 << 26).expect("read back");
    check_one_process_step(&timeline);
}

#[test]
fn a_model_parallel_step_shows_both_workers_and_the_tensors_between_them() {
    let trace = TraceFile::new("model-parallel");
    let out = run_example("model_parallel", &["--steps", "30", "--trace", trace.arg()])
        .expect("model_parallel");
    assert!(out.contains("Chrome trace: "), "{out}");
    check_trace(&trace.path, Some(2));
    let timeline = StepTimeline::read_chrome_trace(&trace.path, 1 << 26).expect("read back");
    let processes: Vec<_> = timeline.lanes.iter().map(|l| l.process.as_str()).collect();
    assert_eq!(
        processes,
        [
            "/job:worker/replica:0/task:0",
            "/job:worker/replica:0/task:1"
        ]
    );
    // The hidden layer forward, its gradient back: at least one tensor each way.
    let crossings: Vec<(usize, usize)> = (timeline.flows.iter())
        .map(|f| (timeline.spans[f.from].lane, timeline.spans[f.to].lane))
        .collect();
    assert!(
        crossings.contains(&(0, 1)) && crossings.contains(&(1, 0)),
        "{crossings:?}"
    );
    let hidden = (timeline.flows.iter())
        .find(|f| f.tensor.starts_with("layer1/Relu"))
        .unwrap_or_else(|| panic!("no flow of the hidden layer: {:?}", timeline.flows));
    // 100 x 256 floats of f32.
    assert_eq!(hidden.wire_bytes, 100 * 256 * 4);
    let received = &timeline.spans[hidden.to];
    let transfer = received.transfer.as_ref().expect("the receive's transfer");
    assert_eq!(transfer.from_task, "/job:worker/task:0");
    assert!(transfer.wait_micros >= 0.0 && transfer.transfer_micros > 0.0);
    let matmul = (timeline.spans.iter())
        .find(|s| s.node == "layer1/MatMul")
        .expect("layer1/MatMul ran");
    assert!(matmul.estimate_micros.is_some_and(|e| e > 0.0));
    assert_eq!(
        timeline.lanes[matmul.lane].process,
        "/job:worker/replica:0/task:0"
    );
}
