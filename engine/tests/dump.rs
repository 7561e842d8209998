#![cfg(feature = "engine")]

//! Tensor dumps: a step writes the tensors it computed as `.npy` files, all or by name
//! pattern, and NumPy (from the SLUICE_PY venv) reads them as Sluice computed them.

mod common;

use common::python_with_pandas;
use sluice::dump::{dumped_file, npy::read_npy, TensorDump};
use sluice::prelude::*;
use std::path::Path;

/// A layer and its training step; the fed batch.
fn layer() -> (Graph, Output, Output, Output, Vec<(Output, Tensor)>) {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 3]);
    let h = {
        let _scope = g.name_scope("layer1");
        let w = g.variable(
            "W",
            &[3, 2],
            Initializer::Constant(Tensor::full(&[3, 2], 0.5f32)),
        );
        relu(matmul(x, w))
    };
    let loss = reduce_sum(h);
    let train = GradientDescent::new(0.1).minimize(loss).expect("minimize");
    let batch = Tensor::new(&[2, 3], vec![1.0f32, -2.0, 3.0, 0.5, 0.5, -4.0]).expect("batch");
    (g, h, loss, train, vec![(x, batch)])
}

#[test]
fn a_dumped_step_writes_the_nodes_that_match_and_their_values() {
    let (g, h, loss, train, feeds) = layer();
    let mut sess = Session::new(&g);
    sess.init_variables().expect("init");
    let dir = tempfile::Builder::new()
        .prefix("sluice-dump-pattern-")
        .tempdir()
        .expect("a temporary folder");
    let spec = TensorDump::matching(dir.path(), "layer1/*");
    let (values, report) = sess
        .run_dumped(&[h, loss], &feeds, &[train], &spec)
        .expect("dumped step");
    assert!(
        report.error.is_none() && report.skipped.is_empty(),
        "{report:?}"
    );
    let names: Vec<String> = (report.files.iter())
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        names.contains(&"layer1/MatMul.npy".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"layer1/Relu.npy".to_string()), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("layer1/")), "{names:?}");
    let relu = read_npy(&dumped_file(dir.path(), "layer1/Relu", 0)).expect("read");
    assert_eq!(relu, values[0]);
    // The step trained: the dumped step is a whole step.
    let again = sess.run(&[loss], &feeds).expect("run");
    assert_ne!(again[0], values[1]);
}

#[test]
fn a_whole_step_dump_reads_in_numpy_as_sluice_computed_it() {
    let (g, h, loss, train, feeds) = layer();
    let mut sess = Session::new(&g);
    sess.init_variables().expect("init");
    let dir = tempfile::Builder::new()
        .prefix("sluice-dump-all-")
        .tempdir()
        .expect("a temporary folder");
    let (values, report) = sess
        .run_dumped(&[h, loss], &feeds, &[train], &TensorDump::all(dir.path()))
        .expect("dumped step");
    assert!(report.files.len() >= 8, "{:?}", report.files);
    assert!(report.bytes > 0 && report.error.is_none(), "{report:?}");
    let Some(python) = python_with_pandas() else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/check_npy.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(dir.path())
        .output()
        .expect("run check_npy.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let relu = &seen["layer1/Relu:0"];
    assert_eq!(relu["dtype"], "float32");
    assert_eq!(relu["shape"], serde_json::json!([2, 2]));
    let sum: f32 = values[0].to_vec::<f32>().expect("f32").iter().sum();
    assert!((relu["sum"].as_f64().expect("sum") - f64::from(sum)).abs() < 1e-5);
    assert_eq!(seen.as_object().map(|o| o.len()), Some(report.files.len()));
}

#[test]
fn a_dump_that_cannot_be_written_does_not_lose_the_step() {
    let (g, h, _loss, _train, feeds) = layer();
    let mut sess = Session::new(&g);
    sess.init_variables().expect("init");
    let dir = tempfile::Builder::new()
        .prefix("sluice-dump-")
        .tempdir()
        .expect("a temporary folder");
    let file = dir.path().join("sluice-dump-blocked");
    std::fs::write(&file, b"a file where the folder would go").expect("write");
    let (values, report) = sess
        .run_dumped(&[h], &feeds, &[], &TensorDump::all(&file))
        .expect("the step still runs");
    assert_eq!(values[0].shape(), [2, 2]);
    let error = report.error.expect("the failure is reported");
    assert!(error.contains("sluice-dump-blocked"), "{error}");
    assert!(!report.skipped.is_empty());
}
