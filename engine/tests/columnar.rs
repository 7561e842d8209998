//! Data sets from Arrow IPC and Parquet files, and metric histories exported to them (read
//! back by arrow-rs here, and by pandas and polars through tests/python/check_history.py).

#![cfg(feature = "engine")]

mod common;

use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, UInt8Array,
};
use arrow_schema::{DataType, Field, Schema};
use common::python_with_pandas;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use sluice::data::{
    load_table, mnist_digits, write_history, Columns, DataError, DataSource, Dataset,
    HistoryFormat, TableFormat,
};
use sluice::prelude::*;
use sluice::MetricPoint;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;

/// Rows `rows` of a data set as a batch: the features as one FixedSizeList column `image`
/// (`wide == false`) or as columns `p0`, `p1`, ... (`wide == true`), then an int64 `label`.
fn digits_batch(data: &Dataset, rows: std::ops::Range<usize>, wide: bool) -> RecordBatch {
    let f = data.features;
    let pixels = &data.inputs[rows.start * f..rows.end * f];
    let mut columns: Vec<(String, ArrayRef)> = Vec::new();
    if wide {
        for j in 0..f {
            let column: Float32Array = pixels.iter().skip(j).step_by(f).copied().collect();
            columns.push((format!("p{j}"), Arc::new(column)));
        }
    } else {
        let item = Arc::new(Field::new("item", DataType::Float32, true));
        let values = Arc::new(Float32Array::from(pixels.to_vec()));
        let image = FixedSizeListArray::try_new(item, f as i32, values, None).unwrap();
        columns.push(("image".into(), Arc::new(image)));
    }
    let labels: Int64Array = data.labels[rows].iter().map(|&l| l as i64).collect();
    columns.push(("label".into(), Arc::new(labels)));
    RecordBatch::try_from_iter(columns).unwrap()
}

/// Writes batches (one schema) as an Arrow IPC file or a Parquet file, by the extension.
fn write_table(path: &Path, batches: &[RecordBatch]) {
    let file = std::fs::File::create(path).unwrap();
    let schema = batches[0].schema();
    if path.extension().unwrap() == "parquet" {
        let mut writer = ArrowWriter::try_new(file, schema, None).unwrap();
        batches.iter().for_each(|b| writer.write(b).unwrap());
        writer.close().unwrap();
    } else {
        let mut writer = arrow_ipc::writer::FileWriter::try_new(file, &schema).unwrap();
        batches.iter().for_each(|b| writer.write(b).unwrap());
        writer.finish().unwrap();
    }
}

/// A batch of nullable columns (so that batches with and without nulls share a schema).
fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter_with_nullable(columns.into_iter().map(|(n, a)| (n, a, true)))
        .unwrap()
}

fn f32s(values: &[f32]) -> ArrayRef {
    Arc::new(Float32Array::from(values.to_vec()))
}

fn i64s(values: &[Option<i64>]) -> ArrayRef {
    Arc::new(Int64Array::from(values.to_vec()))
}

/// Whether `got` holds exactly rows `range` of `data`.
fn same_rows(got: &Dataset, data: &Dataset, range: std::ops::Range<usize>) -> bool {
    let f = data.features;
    got.inputs == data.inputs[range.start * f..range.end * f] && got.labels == data.labels[range]
}

/// Asserts that an error matches a pattern, showing its message if not.
macro_rules! assert_err {
    ($err:expr, $($pattern:tt)+) => {{
        let err = $err;
        assert!(matches!(&err, $($pattern)+), "{err}");
        err
    }};
}

#[test]
fn digits_round_trip_through_both_formats_and_both_layouts() {
    let digits = mnist_digits().unwrap().train;
    let dir = tempfile::Builder::new()
        .prefix("sluice-columnar-round-trip-")
        .tempdir()
        .expect("a temporary folder");
    for ext in ["arrow", "parquet"] {
        for wide in [false, true] {
            let path = dir.path().join(format!("digits-{wide}.{ext}"));
            // Two batches, so rows are gathered across them.
            write_table(
                &path,
                &[
                    digits_batch(&digits, 0..100, wide),
                    digits_batch(&digits, 100..300, wide),
                ],
            );
            let spec = format!("{ext}:{}?label=label", path.display());
            let split = spec.parse::<DataSource>().unwrap().load().unwrap();
            let what = format!("{ext}, wide {wide}");
            assert_eq!((split.train.len(), split.test.len()), (240, 60), "{what}");
            let (train, test) = (&split.train, &split.test);
            assert_eq!((train.features, train.classes, test.classes), (784, 10, 10));
            assert!(same_rows(train, &digits, 0..240), "{what}");
            assert!(same_rows(test, &digits, 240..300), "{what}");

            // Named features, and a test file.
            let features = if wide { "p0,p1,p783" } else { "image" };
            let spec = format!("{spec}&features={features}&test={}", path.display());
            let split = spec.parse::<DataSource>().unwrap().load().unwrap();
            assert_eq!((split.train.len(), split.test.len()), (300, 300), "{what}");
            if wide {
                assert_eq!(split.train.features, 3);
                for r in [0, 123, 299] {
                    let want = [0, 1, 783].map(|j| digits.inputs[r * 784 + j]);
                    assert_eq!(split.train.inputs[r * 3..r * 3 + 3], want, "{what} row {r}");
                }
            } else {
                assert!(same_rows(&split.test, &digits, 0..300), "{what}");
            }
        }
    }
}

#[test]
fn numeric_columns_of_every_type_become_f32_and_strings_are_skipped_by_default() {
    let dir = tempfile::Builder::new()
        .prefix("sluice-columnar-types-")
        .tempdir()
        .expect("a temporary folder");
    let path = dir.path().join("mixed.feather");
    write_table(
        &path,
        &[batch(vec![
            ("name", Arc::new(StringArray::from(vec!["a"; 5]))),
            ("i", Arc::new(Int32Array::from(vec![-3, 0, 7, 1, 2]))),
            ("y", Arc::new(UInt8Array::from(vec![0, 1, 4, 1, 0]))),
            ("u", Arc::new(UInt8Array::from(vec![255, 0, 1, 2, 3]))),
            (
                "d",
                Arc::new(Float64Array::from(vec![0.5, -1.25, 3.0, 4.0, 5.0])),
            ),
        ])],
    );
    let columns = Columns {
        label: "y",
        features: None,
    };
    let data = load_table(&path, TableFormat::ArrowIpc, columns).unwrap();
    assert_eq!((data.len(), data.features, data.classes), (5, 3, 5));
    assert_eq!(data.labels, [0, 1, 4, 1, 0]);
    let first_rows = [-3.0, 255.0, 0.5, 0.0, 0.0, -1.25, 7.0, 1.0, 3.0];
    assert_eq!(data.inputs[..9], first_rows);
    // The IPC stream format (polars' write_ipc_stream) reads the same.
    let stream = dir.path().join("mixed-stream.arrow");
    let table = arrow_ipc::reader::FileReader::try_new(std::fs::File::open(&path).unwrap(), None)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let file = std::fs::File::create(&stream).unwrap();
    let mut writer = arrow_ipc::writer::StreamWriter::try_new(file, &table.schema()).unwrap();
    writer.write(&table).unwrap();
    writer.finish().unwrap();
    let streamed = load_table(&stream, TableFormat::ArrowIpc, columns).unwrap();
    assert!(same_rows(&streamed, &data, 0..5));

    // One class only still makes two, so one-hot rows and softmax stay well formed.
    let path = dir.path().join("one-class.parquet");
    write_table(
        &path,
        &[batch(vec![
            ("x", f32s(&[1.0, 2.0])),
            ("y", i64s(&[Some(0); 2])),
        ])],
    );
    let data = load_table(&path, TableFormat::Parquet, columns).unwrap();
    assert_eq!((data.classes, data.inputs.clone()), (2, vec![1.0, 2.0]));
}

#[test]
fn softmax_regression_fits_a_parquet_file_of_the_training_digits() {
    let digits = mnist_digits().unwrap();
    let dir = tempfile::Builder::new()
        .prefix("sluice-columnar-fit-")
        .tempdir()
        .expect("a temporary folder");
    let (train_path, test_path) = (
        dir.path().join("train.parquet"),
        dir.path().join("test.parquet"),
    );
    write_table(&train_path, &[digits_batch(&digits.train, 0..8000, false)]);
    write_table(&test_path, &[digits_batch(&digits.test, 0..2000, false)]);
    let (train_path, test_path) = (train_path.display(), test_path.display());
    let spec = format!("parquet:{train_path}?label=label&test={test_path}");
    let split = spec.parse::<DataSource>().unwrap().load().unwrap();
    assert_eq!((split.train.len(), split.test.len()), (8000, 2000));
    assert_eq!(split.test.inputs, digits.test.inputs);

    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let b = g.variable("b", &[10], Initializer::Zeros);
    let y = softmax(matmul(x, w) + b);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let xent = -reduce_sum(y_ * log(y));
    let train = GradientDescent::new(0.01).minimize(xent).unwrap();
    let accuracy = reduce_mean(cast(equal(argmax(y, 1), argmax(y_, 1)), DType::F32));
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    let config = FitConfig::new(x, y_, xent, train);
    sess.fit(&split.train, &config, &mut |_| {}).unwrap();
    let test = &digits.test;
    let acc = sess
        .run(
            &[accuracy],
            &[(x, test.inputs_tensor()), (y_, test.one_hot_tensor())],
        )
        .unwrap()[0]
        .scalar_f64()
        .unwrap();
    assert!(acc > 0.85, "accuracy {acc}");
}

/// The error of loading `path` with label `y`, features as named.
fn load_error(path: &Path, features: Option<&[String]>) -> DataError {
    let format = TableFormat::from_path(path).unwrap();
    let columns = Columns {
        label: "y",
        features,
    };
    load_table(path, format, columns).unwrap_err()
}

#[test]
fn bad_tables_get_errors_that_name_the_column_and_row() {
    let dir = tempfile::Builder::new()
        .prefix("sluice-columnar-errors-")
        .tempdir()
        .expect("a temporary folder");
    let x = || f32s(&[1.0, 2.0, 3.0]);
    let y = || i64s(&[Some(0), Some(1), Some(1)]);
    let table = |name: &str, columns: Vec<(&str, ArrayRef)>| {
        let path = dir.path().join(name);
        write_table(&path, &[batch(columns)]);
        path
    };

    let path = table("no-label.parquet", vec![("x", x())]);
    let err = assert_err!(load_error(&path, None), DataError::MissingColumn { column, .. } if column == "y");
    assert!(err.to_string().contains("x (Float32)"), "{err}");
    let path = table("ok.arrow", vec![("x", x()), ("y", y())]);
    let named = ["x".to_string(), "z".to_string()];
    assert_err!(load_error(&path, Some(&named)), DataError::MissingColumn { column, .. } if column == "z");

    // A null in the second batch: rows count across batches.
    let path = dir.path().join("null.parquet");
    let nulls: ArrayRef = Arc::new(Float32Array::from(vec![Some(1.0), None, Some(3.0)]));
    let batches = [
        batch(vec![("x", x()), ("y", y())]),
        batch(vec![("x", nulls), ("y", y())]),
    ];
    write_table(&path, &batches);
    assert_err!(load_error(&path, None), DataError::NullValue { column, row: 4, .. } if column == "x");
    let path = table(
        "null-label.arrow",
        vec![("x", x()), ("y", i64s(&[Some(0), Some(1), None]))],
    );
    assert_err!(load_error(&path, None), DataError::NullValue { column, row: 2, .. } if column == "y");

    for (value, name) in [(-1i64, "negative.parquet"), (256, "too-big.arrow")] {
        let path = table(
            name,
            vec![("x", x()), ("y", i64s(&[Some(0), Some(value), Some(2)]))],
        );
        let err = assert_err!(
            load_error(&path, None),
            DataError::BadLabel { column, row: 1, value: v, .. } if column == "y" && *v == value as i128
        );
        assert!(err.to_string().contains(&format!("label {value}")), "{err}");
    }

    let names: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c"]));
    let path = table("string.parquet", vec![("s", names), ("y", y())]);
    assert_err!(
        load_error(&path, Some(&["s".into()])),
        DataError::ColumnType { column, dtype, .. } if column == "s" && dtype == "Utf8"
    );
    // Unnamed, the string column is skipped, and nothing is left.
    assert_err!(load_error(&path, None), DataError::NoFeatures { .. });
    let labels: ArrayRef = Arc::new(Float64Array::from(vec![0.0, 1.0, 2.0]));
    let path = table("float-label.arrow", vec![("x", x()), ("y", labels)]);
    assert_err!(load_error(&path, None), DataError::ColumnType { column, .. } if column == "y");

    for (name, format) in [
        ("garbage.parquet", "Parquet"),
        ("garbage.arrow", "Arrow IPC"),
    ] {
        let garbage = dir.path().join(name);
        std::fs::write(&garbage, b"not a table at all").unwrap();
        assert_err!(load_error(&garbage, None), DataError::Columnar { format: f, .. } if *f == format);
    }
    assert_err!(
        load_error(&dir.path().join("missing.arrow"), None),
        DataError::Io { .. }
    );
    assert_err!(
        TableFormat::from_path(Path::new("h.csv")).unwrap_err(),
        DataError::UnknownFormat { .. }
    );
}

#[test]
fn data_source_names_parse_or_get_named_errors() {
    assert_eq!(
        "parquet:/d/t.parquet?label=y&features=a, b&test=/d/u.parquet"
            .parse::<DataSource>()
            .unwrap(),
        DataSource::Parquet {
            path: "/d/t.parquet".into(),
            label: "y".into(),
            features: Some(vec!["a".into(), "b".into()]),
            test: Some("/d/u.parquet".into()),
        }
    );
    assert_eq!(
        "arrow:t.arrow?label=y".parse::<DataSource>().unwrap(),
        DataSource::Arrow {
            path: "t.arrow".into(),
            label: "y".into(),
            features: None,
            test: None,
        }
    );
    let err = assert_err!(
        "csv:t.csv?label=y".parse::<DataSource>().unwrap_err(),
        DataError::UnknownSource { name } if name == "csv:t.csv?label=y"
    );
    assert!(err.to_string().contains("parquet:PATH?label=COL"), "{err}");
    for (spec, reason) in [
        ("arrow:t.arrow", "name the label column"),
        ("parquet:t.parquet?features=a", "name the label column"),
        ("arrow:?label=y", "the path is empty"),
        ("arrow:t.arrow?label=y&colour=red", "unknown key 'colour'"),
        ("arrow:t.arrow?label=y&label=z", "'label' is given twice"),
        ("arrow:t.arrow?label=y&features=a,,b", "empty column name"),
        ("arrow:t.arrow?label=", "'label' needs a value"),
    ] {
        let err = spec.parse::<DataSource>().unwrap_err();
        let err = assert_err!(err, DataError::BadSpec { spec: s, .. } if s == spec);
        assert!(err.to_string().contains(reason), "{spec}: {err}");
    }
}

/// 1,000 points with a NaN loss among them, as a training loop may record.
fn history() -> Vec<MetricPoint> {
    (0..1000)
        .map(|i| MetricPoint {
            step: i + 1,
            loss: [2.5 / (i as f64 + 1.0), f64::NAN][(i == 500) as usize],
            wall_time: i as f64 * 0.0137 + 0.1,
        })
        .collect()
}

fn read_history(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    if path.extension().unwrap() == "parquet" {
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        reader.build().unwrap().map(Result::unwrap).collect()
    } else {
        let reader = arrow_ipc::reader::FileReader::try_new(file, None).unwrap();
        reader.map(Result::unwrap).collect()
    }
}

#[test]
fn a_history_written_as_arrow_or_parquet_reads_back_exactly() {
    let points = history();
    let dir = tempfile::Builder::new()
        .prefix("sluice-columnar-history-")
        .tempdir()
        .expect("a temporary folder");
    for name in ["h.arrow", "h.feather", "h.parquet"] {
        let path = dir.path().join(name);
        let format = HistoryFormat::from_path(&path).unwrap();
        std::fs::write(&path, b"an older file, replaced whole").unwrap();
        write_history(&points, &path, format).unwrap();
        let batches = read_history(&path);
        let schema = batches[0].schema();
        let want = Schema::new(vec![
            Field::new("step", DataType::Int64, false),
            Field::new("loss", DataType::Float64, false),
            Field::new("wall_time", DataType::Float64, false),
        ]);
        assert_eq!(schema.fields(), want.fields(), "{name}");
        let mut got = Vec::new();
        for b in &batches {
            let step = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let loss = b.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
            let wall = b.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
            assert_eq!(b.column(1).null_count(), 0);
            for i in 0..b.num_rows() {
                got.push((step.value(i), loss.value(i).to_bits(), wall.value(i)));
            }
        }
        let want = points
            .iter()
            .map(|p| (p.step, p.loss.to_bits(), p.wall_time));
        assert!(got.into_iter().eq(want), "{name}: the points differ");

        write_history(&[], &path, format).unwrap();
        assert!(read_history(&path).iter().all(|b| b.num_rows() == 0));
    }
    // Nothing but the files themselves: no temporary file is left behind.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["h.arrow", "h.feather", "h.parquet"]);

    // A folder that does not exist: an error, and no file.
    let nowhere = dir.path().join("no/such/folder/h.parquet");
    let err = write_history(&points, &nowhere, HistoryFormat::Parquet).unwrap_err();
    assert_err!(err, DataError::Io { .. });
    assert!(!nowhere.exists());
}

/// Runs `tests/python/SCRIPT ARGS...` with `python` (see [`python_with_pandas`]); its stdout.
fn run_python(python: &OsStr, script: &str, args: &[&Path]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/python")
        .join(script);
    let out = std::process::Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run SLUICE_PY={python:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script:?} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// pandas and polars read the exported files: real readers, not just arrow-rs.
#[test]
fn pandas_and_polars_read_an_exported_history() {
    let Some(python) = python_with_pandas() else {
        return;
    };
    let points = history();
    let dir = tempfile::Builder::new()
        .prefix("sluice-columnar-python-read-")
        .tempdir()
        .expect("a temporary folder");
    let mut csv = String::from("step,loss,wall_time\n");
    for p in &points {
        // `{:?}` writes the shortest text that reads back as the same f64 (and NaN as NaN).
        csv.push_str(&format!("{},{:?},{:?}\n", p.step, p.loss, p.wall_time));
    }
    let expected = dir.path().join("expected.csv");
    std::fs::write(&expected, csv).unwrap();
    let (arrow, parquet) = (dir.path().join("h.arrow"), dir.path().join("h.parquet"));
    write_history(&points, &arrow, HistoryFormat::ArrowIpc).unwrap();
    write_history(&points, &parquet, HistoryFormat::Parquet).unwrap();
    let stdout = run_python(&python, "check_history.py", &[&expected, &arrow, &parquet]);
    assert_eq!(stdout.matches("ok: ").count(), 4, "{stdout}");
}

/// Tables written by pandas and polars, each in its default compression (lz4 Feather,
/// snappy and zstd Parquet), with a polars Array column, load as written.
#[test]
fn tables_written_by_pandas_and_polars_load() {
    let Some(python) = python_with_pandas() else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("sluice-columnar-python-write-")
        .tempdir()
        .expect("a temporary folder");
    run_python(&python, "write_tables.py", &[dir.path()]);
    for (file, polars) in [
        ("pandas.feather", false),
        ("pandas.parquet", false),
        ("polars.arrow", true),
        ("polars.parquet", true),
    ] {
        let path = dir.path().join(file);
        let format = ["arrow", "parquet"][file.ends_with("parquet") as usize];
        let spec = format!("{format}:{}?label=label", path.display());
        let split = spec.parse::<DataSource>().unwrap().load().unwrap();
        let width = if polars { 6 } else { 2 };
        let (train, test) = (&split.train, &split.test);
        let shape = (
            train.len(),
            test.len(),
            train.features,
            train.classes,
            test.classes,
        );
        assert_eq!(shape, (40, 10, width, 3, 3), "{file}");
        let rows = train.inputs.chunks(width).chain(test.inputs.chunks(width));
        let labels = train.labels.iter().chain(&test.labels);
        for (i, (row, &label)) in rows.zip(labels).enumerate() {
            let x = i as f32;
            let mut want = vec![x - 10.0, x / 4.0];
            if polars {
                want.extend([x, x + 1.0, x + 2.0, x + 3.0]);
            }
            assert_eq!((row, label), (&want[..], (i % 3) as u8), "{file} row {i}");
        }
    }
}
