//! TensorBoard reads what Sluice writes: its own event reader (EventAccumulator) and the
//! `tensorboard` server's HTTP API, run from the test venv (SLUICE_PY, with TensorBoard from
//! PyPI), check scalars with their steps, histograms, text and the graph against what Sluice
//! says it wrote (tests/python/check_tensorboard.py).

use serde_json::{json, Map, Value};
use sluice::prelude::*;
use sluice::tensorboard::{proto, read_event_file};
use sluice_tests::{python_with_tensorboard, run_example};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Runs check_tensorboard.py on `logdir` against `expected`; panics with its output if a
/// check failed.
fn check_with_tensorboard(python: &OsStr, logdir: &Path, expected: &Value, http: bool) {
    let expected_path = logdir.with_extension("expected.json");
    std::fs::write(&expected_path, expected.to_string()).expect("write expected");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/check_tensorboard.py");
    let mut command = std::process::Command::new(python);
    command.arg(&script).arg(logdir).arg(&expected_path);
    if http {
        command.arg("--http");
    }
    let out = command.output().expect("run check_tensorboard.py");
    let _ = std::fs::remove_file(&expected_path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("check_tensorboard: all passed"),
        "TensorBoard disagrees ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

/// Scalars, histograms, text and graph of one event file, as Sluice reads it back: what the
/// checks expect TensorBoard to read.
fn expected_from_file(path: &Path) -> Value {
    let mut scalars: Map<String, Value> = Map::new();
    let mut histograms: Map<String, Value> = Map::new();
    let mut graph = Map::new();
    let mut run_metadata = Map::new();
    for event in read_event_file(path).expect("read the event file") {
        match event.what {
            Some(proto::event::What::Summary(summary)) => {
                for value in summary.value {
                    match value.value {
                        Some(proto::summary::value::Value::SimpleValue(v)) => {
                            push(&mut scalars, &value.tag, json!([event.step, v]))
                        }
                        Some(proto::summary::value::Value::Histo(h)) => push(
                            &mut histograms,
                            &value.tag,
                            json!([event.step, h.num, h.min, h.max]),
                        ),
                        _ => {}
                    }
                }
            }
            Some(proto::event::What::TaggedRunMetadata(tagged)) => {
                use prost::Message;
                let meta =
                    proto::RunMetadata::decode(&tagged.run_metadata[..]).expect("RunMetadata");
                let devices: Map<String, Value> = (meta.step_stats.into_iter())
                    .flat_map(|s| s.dev_stats)
                    .map(|d| (d.device, json!(d.node_stats.len())))
                    .collect();
                run_metadata.insert(tagged.tag, Value::Object(devices));
            }
            Some(proto::event::What::GraphDef(bytes)) => {
                use prost::Message;
                let def = proto::GraphDef::decode(bytes.as_slice()).expect("a GraphDef");
                graph = def
                    .node
                    .into_iter()
                    .map(|n| (n.name, Value::String(n.device)))
                    .collect();
            }
            _ => {}
        }
    }
    let mut expected = json!({"scalars": scalars, "histograms": histograms});
    if !graph.is_empty() {
        expected["graph"] = Value::Object(graph);
    }
    if !run_metadata.is_empty() {
        expected["run_metadata"] = Value::Object(run_metadata);
    }
    expected
}

fn push(map: &mut Map<String, Value>, tag: &str, row: Value) {
    let rows = map.entry(tag).or_insert_with(|| json!([]));
    if let Value::Array(rows) = rows {
        rows.push(row);
    }
}

/// The single event file in `dir`.
fn event_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("logdir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("events.out.tfevents."))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one event file in {}: {files:?}",
        dir.display()
    );
    files[0].clone()
}

#[test]
fn tensorboard_reads_scalars_histograms_text_and_the_graph_of_a_sluice_run() {
    let Some(python) = python_with_tensorboard() else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("sluice-tb-")
        .tempdir()
        .expect("a temporary folder");
    let logdir = dir.path().join("softmax");
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let (w, logits) = {
        let _scope = g.name_scope("softmax");
        let w = g.variable("W", &[784, 10], Initializer::Zeros);
        let b = g.variable("b", &[10], Initializer::Zeros);
        (w, matmul(x, w) + b)
    };
    let loss = {
        let _scope = g.name_scope("loss");
        -reduce_sum(y_ * log(softmax(logits)))
    };
    let train = GradientDescent::new(0.01).minimize(loss).expect("minimize");
    let mut sess = Session::new(&g);
    sess.init_variables().expect("init");
    let writer = SummaryWriter::new(&logdir).expect("writer");
    writer.graph(&g).expect("graph");
    writer
        .text("notes", 0, "softmax regression, *50 steps*")
        .expect("text");
    let digits = sluice::data::mnist_digits().expect("digits");
    let mut losses = Vec::new();
    let mut histograms = Vec::new();
    for (step, batch) in (1i64..=50).zip(digits.train.batches(100, 0)) {
        let feeds = [(x, batch.inputs), (y_, batch.one_hot)];
        let out = sess
            .run_with_targets(&[loss], &feeds, &[train])
            .expect("step");
        let value = out[0].scalar_f64().expect("a scalar loss");
        writer.scalar("loss", step, value).expect("scalar");
        losses.push(json!([step, value]));
        if step % 10 == 0 {
            let weights = sess.variable(w).expect("read W");
            writer
                .histogram("softmax/W", step, &weights)
                .expect("histogram");
            let values = weights.to_vec::<f32>().expect("f32 weights");
            let lo = values.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            histograms.push(json!([step, values.len(), lo, hi]));
        }
    }
    writer.flush().expect("flush");
    // Sluice's own graph: every node, with the device it names.
    let graph: Map<String, Value> = g
        .nodes()
        .into_iter()
        .map(|n| (n.name, Value::String(n.device)))
        .collect();
    assert!(
        graph.keys().any(|n| n.starts_with("gradients/")),
        "{graph:?}"
    );
    let expected = json!({
        "scalars": {"loss": losses},
        "histograms": {"softmax/W": histograms},
        "text": {"notes": [[0, "softmax regression, *50 steps*"]]},
        "graph": graph,
    });
    check_with_tensorboard(&python, &logdir, &expected, false);
    check_with_tensorboard(&python, &logdir, &expected, true);
}

#[test]
fn the_seed_program_writes_a_run_tensorboard_reads() {
    let Some(python) = python_with_tensorboard() else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("sluice-tb-")
        .tempdir()
        .expect("a temporary folder");
    let logdir = dir.path().join("seed");
    let logdir_arg = logdir.to_string_lossy().to_string();
    let out = run_example("mnist_softmax", &["--logdir", &logdir_arg]).expect("seed program");
    assert!(out.contains("TensorBoard run:"), "{out}");
    let expected = expected_from_file(&event_file(&logdir));
    let loss = &expected["scalars"]["loss"];
    assert_eq!(loss.as_array().map(Vec::len), Some(1000), "a loss per step");
    assert_eq!(
        expected["histograms"]["W"].as_array().map(Vec::len),
        Some(10)
    );
    let graph = expected["graph"].as_object().expect("a graph");
    for name in ["x", "W", "b", "y_"] {
        assert!(graph.contains_key(name), "{name} in {graph:?}");
    }
    // The last step's kernel times, for the Graphs tab.
    let timed = &expected["run_metadata"]["step 1000"]["/device:CPU:0"];
    assert!(timed.as_u64().is_some_and(|n| n >= 10), "{expected}");
    check_with_tensorboard(&python, &logdir, &expected, false);
}

/// Runs `example` with `--logdir` and checks its run with TensorBoard's reader and server;
/// gives what it wrote.
fn example_run_passes(python: &OsStr, example: &str, args: &[&str]) -> Value {
    let dir = tempfile::Builder::new()
        .prefix("sluice-tb-")
        .tempdir()
        .expect("a temporary folder");
    let logdir = dir.path().join(example);
    let logdir_arg = logdir.to_string_lossy().to_string();
    let mut args = args.to_vec();
    args.extend(["--logdir", &logdir_arg]);
    let out = run_example(example, &args).unwrap_or_else(|e| panic!("{example}: {e}"));
    assert!(out.contains("TensorBoard run:"), "{out}");
    let expected = expected_from_file(&event_file(&logdir));
    check_with_tensorboard(python, &logdir, &expected, false);
    check_with_tensorboard(python, &logdir, &expected, true);
    expected
}

/// Whether `device` (`/job:worker/replica:0/task:1/device:CPU:0`) is on `job`'s task `task`.
fn on_task(device: &str, job: &str, task: usize) -> bool {
    device.starts_with(&format!("/job:{job}/")) && device.contains(&format!("/task:{task}/"))
}

/// The devices of a run's graph, distinct and sorted.
fn devices(expected: &Value) -> Vec<String> {
    let graph = expected["graph"].as_object().expect("a graph");
    let mut devices: Vec<String> = graph
        .values()
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect();
    devices.sort();
    devices.dedup();
    devices
}

#[test]
fn the_data_parallel_example_writes_a_placed_run_tensorboard_reads() {
    let Some(python) = python_with_tensorboard() else {
        return;
    };
    let args = ["--workers", "2", "--ps", "1", "--steps", "200", "--quiet"];
    let expected = example_run_passes(&python, "mnist_data_parallel", &args);
    let loss = expected["scalars"]["loss"].as_array().expect("loss");
    assert_eq!(loss.len(), 200, "a loss per global step");
    for tag in [
        "worker0/examples_per_second",
        "worker1/staleness",
        "test_accuracy",
    ] {
        assert!(expected["scalars"].get(tag).is_some(), "{tag}: {expected}");
    }
    let devices = devices(&expected);
    for (job, task) in [("ps", 0), ("worker", 0), ("worker", 1)] {
        assert!(
            devices.iter().any(|d| on_task(d, job, task)),
            "/job:{job}/task:{task} among the placed devices {devices:?}"
        );
    }
}

#[test]
fn the_model_parallel_example_writes_a_placed_run_tensorboard_reads() {
    let Some(python) = python_with_tensorboard() else {
        return;
    };
    let expected = example_run_passes(&python, "model_parallel", &["--steps", "200"]);
    let loss = expected["scalars"]["loss"].as_array().expect("loss");
    assert_eq!(loss.len(), 200, "a loss per step");
    assert_eq!(
        expected["histograms"]["layer1/W"].as_array().map(Vec::len),
        Some(2)
    );
    let traced = expected["run_metadata"]["traced step"].as_object();
    let traced_devices: Vec<&String> = traced.into_iter().flat_map(|d| d.keys()).collect();
    assert!(
        traced_devices.len() == 2
            && traced_devices
                .iter()
                .all(|d| on_task(d, "worker", 0) || on_task(d, "worker", 1)),
        "a traced step's kernel times on both workers: {traced_devices:?}"
    );
    let graph = expected["graph"].as_object().expect("a graph");
    let device_of = |name: &str| graph.get(name).and_then(Value::as_str).unwrap_or("");
    assert!(
        on_task(device_of("layer1/MatMul"), "worker", 0),
        "{graph:?}"
    );
    assert!(
        on_task(device_of("layer2/MatMul"), "worker", 1),
        "{graph:?}"
    );
}

#[test]
fn an_engine_with_a_logdir_writes_a_run_per_session() {
    let Some(python) = python_with_tensorboard() else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("sluice-tb-")
        .tempdir()
        .expect("a temporary folder");
    let logdir = dir.path().join("engine-runs");
    let logdir_arg = logdir.to_string_lossy().to_string();
    let engine = sluice_tests::Engine::start(&["--logdir", &logdir_arg]).expect("engine");
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let b = g.variable("b", &[10], Initializer::Zeros);
    let loss = -reduce_sum(y_ * log(softmax(matmul(x, w) + b)));
    let train = GradientDescent::new(0.01).minimize(loss).expect("minimize");
    let mut sess = RemoteSession::create(&engine.addr, &g).expect("session");
    sess.init_variables().expect("init");
    let digits = sluice::data::mnist_digits().expect("digits");
    let mut losses = Vec::new();
    for batch in digits.train.batches(100, 0).take(30) {
        let feeds = [(x, batch.inputs), (y_, batch.one_hot)];
        let out = sess
            .run_with_targets(&[loss], &feeds, &[train])
            .expect("step");
        losses.push(out[0].scalar_f64().expect("a scalar loss"));
    }
    let mut config = FitConfig::new(x, y_, loss, train);
    config.steps = 100;
    // The fit's own run, which this side writes from the reports it gets.
    let fit_run = dir.path().join("fit");
    config.logdir = Some(fit_run.clone());
    let mut reports = Vec::new();
    sess.fit("mnist-digits", &config, &mut |p| reports.push(p.clone()))
        .expect("fit");
    sess.close().expect("close");
    let fit_expected = expected_from_file(&event_file(&fit_run));
    let fit_losses: Vec<(i64, f64)> = fit_expected["scalars"]["loss"]
        .as_array()
        .expect("the fit's losses")
        .iter()
        .filter_map(|r| Some((r[0].as_i64()?, r[1].as_f64()?)))
        .collect();
    let reported: Vec<(i64, f64)> = reports.iter().map(|p| (p.global_step, p.loss)).collect();
    assert_eq!(
        fit_losses.len(),
        reported.len(),
        "{fit_losses:?} vs {reported:?}"
    );
    for ((step, written), (global_step, loss)) in fit_losses.iter().zip(&reported) {
        assert_eq!(step, global_step);
        assert!(
            (written - loss).abs() <= 1e-4 * loss.abs().max(1.0),
            "{written} vs {loss}"
        );
    }
    check_with_tensorboard(&python, &fit_run, &fit_expected, false);
    // The run is flushed when its session closes; the engine writes it on a thread.
    let run = logdir.join("session-0");
    let started = std::time::Instant::now();
    let mut expected = Value::Null;
    while started.elapsed() < std::time::Duration::from_secs(20) {
        if run.is_dir() {
            expected = expected_from_file(&event_file(&run));
            if expected["scalars"].get("fit/loss").is_some() {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let scalars = expected["scalars"].as_object().expect("scalars in the run");
    // The steps' scalar fetch (the loss node, by its name) and the fit's (`fit/...`).
    let stepped: Vec<f64> = scalars
        .iter()
        .find(|(tag, _)| !tag.starts_with("fit/"))
        .and_then(|(_, rows)| rows.as_array())
        .map(|rows| rows.iter().filter_map(|r| r[1].as_f64()).collect())
        .unwrap_or_default();
    assert_eq!(
        stepped.len(),
        losses.len(),
        "a scalar per step: {scalars:?}"
    );
    for (written, fetched) in stepped.iter().zip(&losses) {
        assert!(
            (written - fetched).abs() <= 1e-4 * fetched.abs().max(1.0),
            "{written} vs {fetched}"
        );
    }
    assert!(
        scalars.contains_key("fit/examples_per_second"),
        "{scalars:?}"
    );
    let graph = expected["graph"].as_object().expect("a graph");
    assert_eq!(
        graph.len(),
        g.len(),
        "the engine's graph is the client's: {graph:?}"
    );
    check_with_tensorboard(&python, &run, &expected, false);
    check_with_tensorboard(&python, &run, &expected, true);
}
