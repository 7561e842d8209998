//! Input readers (`read_batches`): a replica's own shard of a data set, read where the op
//! runs, by Parquet row groups or Arrow IPC record batches, or by rows where the file has too
//! few of them; endless epochs in fresh orders; refused files and shapes named; the outputs
//! still fed for evaluation.

#![cfg(feature = "engine")]

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use sluice::data::DataRoots;
use sluice::devices::gpu::GpuOptions;
use sluice::devices::DeviceSet;
use sluice::ops::{read_batches, InputBatch, InputSpec};
use sluice::prelude::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// Rows `rows` of a table: an `id` feature (the row number) and a `label` (id mod 3).
fn rows(range: std::ops::Range<usize>) -> RecordBatch {
    let ids: Float32Array = range.clone().map(|i| i as f32).collect();
    let labels: Int64Array = range.map(|i| (i % 3) as i64).collect();
    RecordBatch::try_from_iter([
        ("id", Arc::new(ids) as ArrayRef),
        ("label", Arc::new(labels) as ArrayRef),
    ])
    .unwrap()
}

/// 100 rows in four groups of 25: Parquet row groups or Arrow IPC record batches (file
/// format), by the extension; `.stream` writes the IPC stream format.
fn write_groups(path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let parts: Vec<RecordBatch> = (0..4).map(|g| rows(g * 25..(g + 1) * 25)).collect();
    let schema = parts[0].schema();
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => {
            let props = WriterProperties::builder()
                .set_max_row_group_row_count(Some(25))
                .build();
            let mut writer = ArrowWriter::try_new(file, schema, Some(props)).unwrap();
            parts.iter().for_each(|b| writer.write(b).unwrap());
            writer.close().unwrap();
        }
        Some("stream") => {
            let mut writer = arrow_ipc::writer::StreamWriter::try_new(file, &schema).unwrap();
            parts.iter().for_each(|b| writer.write(b).unwrap());
            writer.finish().unwrap();
        }
        _ => {
            let mut writer = arrow_ipc::writer::FileWriter::try_new(file, &schema).unwrap();
            parts.iter().for_each(|b| writer.write(b).unwrap());
            writer.finish().unwrap();
        }
    }
}

fn spec(source: String, batch: usize) -> InputSpec {
    InputSpec {
        source,
        features: 1,
        classes: 3,
        batch,
        seed: 7,
    }
}

/// The ids of `batches` batches of a reader, batch by batch.
fn read_ids(sess: &mut Session, read: InputBatch, batches: usize) -> Vec<Vec<usize>> {
    (0..batches)
        .map(|_| {
            let out = sess.run(&[read.inputs, read.one_hot, read.labels], &[]);
            let out = out.expect("a batch");
            let ids: Vec<usize> = (out[0].to_vec::<f32>().unwrap().iter())
                .map(|&v| v as usize)
                .collect();
            // Labels and their one-hot rows are the rows' own.
            let labels = out[2].to_vec::<i64>().unwrap();
            let hot = out[1].to_vec::<f32>().unwrap();
            for (k, &id) in ids.iter().enumerate() {
                assert_eq!(labels[k], (id % 3) as i64);
                assert_eq!(hot[k * 3 + id % 3], 1.0);
            }
            ids
        })
        .collect()
}

fn set(batches: &[Vec<usize>]) -> BTreeSet<usize> {
    batches.iter().flatten().copied().collect()
}

#[test]
fn each_shard_reads_its_own_row_groups_in_a_fresh_order_every_epoch() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["t.parquet", "t.arrow"] {
        let path = dir.path().join(name);
        write_groups(&path);
        let kind = if name.ends_with("parquet") {
            "parquet"
        } else {
            "arrow"
        };
        let p = path.display();
        let source = format!("{kind}:{p}?label=label&features=id&test={p}");
        let g = Graph::new();
        let shards: Vec<InputBatch> = (0..2)
            .map(|r| read_batches(&g, &spec(source.clone(), 10), r, 2))
            .collect();
        let mut sess = Session::new(&g);
        // Shard 0 holds groups 0 and 2, shard 1 groups 1 and 3: 50 rows, 5 batches an epoch.
        let expect = [
            (0..25).chain(50..75).collect::<BTreeSet<_>>(),
            (25..50).chain(75..100).collect(),
        ];
        for (r, read) in shards.into_iter().enumerate() {
            let first = read_ids(&mut sess, read, 5);
            let second = read_ids(&mut sess, read, 5);
            assert_eq!(
                set(&first),
                expect[r],
                "{name}, shard {r}: its groups, once each"
            );
            assert_eq!(
                set(&second),
                expect[r],
                "{name}, shard {r}: the second epoch"
            );
            assert_ne!(first, second, "{name}: each epoch is shuffled anew");
        }
    }
}

#[test]
fn too_few_groups_or_a_split_by_tail_share_out_rows() {
    let dir = tempfile::tempdir().unwrap();
    let stream = dir.path().join("t.stream");
    write_groups(&stream);
    let parquet = dir.path().join("t.parquet");
    write_groups(&parquet);
    let g = Graph::new();
    let p = stream.display();
    // An IPC stream has no index of its batches: every 3rd row of all 100.
    let by_rows = read_batches(
        &g,
        &spec(format!("arrow:{p}?label=label&features=id&test={p}"), 11),
        1,
        3,
    );
    // Four row groups for five shards: rows again.
    let q = parquet.display();
    let five = read_batches(
        &g,
        &spec(format!("parquet:{q}?label=label&features=id&test={q}"), 5),
        4,
        5,
    );
    // No test file: the training split is the first 80 rows, shared out by rows.
    let tail = read_batches(
        &g,
        &spec(format!("parquet:{q}?label=label&features=id"), 8),
        0,
        2,
    );
    let mut sess = Session::new(&g);
    let expect: BTreeSet<usize> = (0..100).filter(|i| i % 3 == 1).collect();
    assert_eq!(set(&read_ids(&mut sess, by_rows, 3)), expect);
    let expect: BTreeSet<usize> = (0..100).filter(|i| i % 5 == 4).collect();
    assert_eq!(set(&read_ids(&mut sess, five, 4)), expect);
    let expect: BTreeSet<usize> = (0..80).filter(|i| i % 2 == 0).collect();
    assert_eq!(set(&read_ids(&mut sess, tail, 5)), expect);
}

#[test]
fn a_reader_trains_a_model_and_its_outputs_are_fed_for_evaluation() {
    let g = Graph::new();
    let input = InputSpec {
        source: "mnist-digits".into(),
        features: 784,
        classes: 10,
        batch: 50,
        seed: 1,
    };
    let read = read_batches(&g, &input, 0, 1);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let b = g.variable("b", &[10], Initializer::Zeros);
    let logits = matmul(read.inputs, w) + b;
    let loss = reduce_mean(softmax_cross_entropy_with_logits(logits, read.one_hot));
    let accuracy = reduce_mean(cast(
        equal(argmax(logits, 1), argmax(read.one_hot, 1)),
        DType::F32,
    ));
    let train = GradientDescent::new(0.5).minimize(loss).unwrap();
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    for _ in 0..300 {
        sess.run_with_targets(&[], &[], &[train]).unwrap();
    }
    // The test split, fed to the reader's outputs: the reader does not run.
    let test = sluice::data::mnist_digits().unwrap().test;
    let feeds = [
        (read.inputs, test.inputs_tensor()),
        (read.one_hot, test.one_hot_tensor()),
    ];
    let acc = sess.run(&[accuracy], &feeds).unwrap()[0]
        .scalar_f64()
        .unwrap();
    assert!(acc > 0.85, "test accuracy {acc}");
}

#[test]
fn bad_readers_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    write_groups(&path);
    let p = path.display();
    let source = format!("parquet:{p}?label=label&features=id&test={p}");
    let g = Graph::new();
    let wide = read_batches(
        &g,
        &InputSpec {
            features: 2,
            ..spec(source.clone(), 5)
        },
        0,
        1,
    );
    let few = read_batches(
        &g,
        &InputSpec {
            classes: 2,
            ..spec(source.clone(), 5)
        },
        0,
        1,
    );
    let big = read_batches(&g, &spec(source.clone(), 60), 1, 2);
    let mut sess = Session::new(&g);
    let err = |out: Output, sess: &mut Session| sess.run(&[out], &[]).unwrap_err().to_string();
    let e = err(wide.inputs, &mut sess);
    assert!(
        e.contains("1 features per row") && e.contains("declares 2"),
        "{e}"
    );
    assert!(e.contains("shard 0 of 1") && e.contains("t.parquet"), "{e}");
    let e = err(few.inputs, &mut sess);
    assert!(e.contains("label 2") && e.contains("2 classes"), "{e}");
    let e = err(big.inputs, &mut sess);
    assert!(e.contains("50 rows, fewer than one batch of 60"), "{e}");

    // A graph's own mistakes are found when it is built.
    let g = Graph::new();
    let bad = read_batches(&g, &spec("nonsense:x".into(), 5), 0, 1);
    assert!(bad.inputs.type_shape().is_err());
    let bad = read_batches(&g, &spec("mnist-digits".into(), 5), 2, 2);
    let e = bad.inputs.type_shape().unwrap_err().to_string();
    assert!(e.contains("shard 2 of 2"), "{e}");

    // An engine's session reads files under its data roots only; the embedded digits always.
    let g = Graph::new();
    let outside = read_batches(&g, &spec(source, 5), 0, 1);
    let digits = InputSpec {
        features: 784,
        classes: 10,
        ..spec("mnist-digits".into(), 5)
    };
    let embedded = read_batches(&g, &digits, 0, 1);
    let devices = DeviceSet::shared(GpuOptions::default());
    let mut engine = Session::with_devices(&g, devices.clone(), true);
    let e = err(outside.inputs, &mut engine);
    assert!(e.contains("data roots"), "{e}");
    engine
        .run(&[embedded.inputs], &[])
        .expect("the embedded digits");
    let mut allowed = Session::with_devices(&g, devices, true);
    allowed.set_data_roots(DataRoots::new([dir.path().to_path_buf()]));
    allowed
        .run(&[outside.inputs], &[])
        .expect("a file under the roots");
}
