//! A session's metric history as a table: Arrow IPC or Parquet, for pandas and polars.

use super::columnar::TableFormat;
use super::DataError;
use crate::fit::MetricPoint;
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The file format of an exported history (the same formats as tables are read from).
pub type HistoryFormat = TableFormat;

/// Writes a metric history to `path` as a table of three columns, one row per point:
/// `step` (int64), `loss` (float64) and `wall_time` (float64, seconds since the session
/// began). Arrow IPC files are uncompressed (Feather v2: `pandas.read_feather`,
/// `polars.read_ipc`); Parquet files are snappy-compressed. The file appears whole or not
/// at all: it is written to a temporary file in the same folder and renamed into place.
pub fn write_history(
    points: &[MetricPoint],
    path: &Path,
    format: HistoryFormat,
) -> Result<(), DataError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("step", DataType::Int64, false),
        Field::new("loss", DataType::Float64, false),
        Field::new("wall_time", DataType::Float64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(points.iter().map(|p| p.step))),
        Arc::new(Float64Array::from_iter_values(
            points.iter().map(|p| p.loss),
        )),
        Arc::new(Float64Array::from_iter_values(
            points.iter().map(|p| p.wall_time),
        )),
    ];
    let bad = |e: &dyn std::fmt::Display| DataError::Columnar {
        path: path.to_path_buf(),
        format: format.name(),
        reason: e.to_string(),
    };
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| bad(&e))?;
    write_atomically(path, |file| match format {
        TableFormat::ArrowIpc => {
            let mut writer =
                arrow_ipc::writer::FileWriter::try_new(file, &schema).map_err(|e| bad(&e))?;
            writer.write(&batch).map_err(|e| bad(&e))?;
            writer.finish().map_err(|e| bad(&e))?;
            flush(writer.into_inner().map_err(|e| bad(&e))?, path)
        }
        TableFormat::Parquet => {
            let props = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .build();
            let mut writer =
                ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| bad(&e))?;
            writer.write(&batch).map_err(|e| bad(&e))?;
            flush(writer.into_inner().map_err(|e| bad(&e))?, path)
        }
    })
}

/// Flushes a buffered file and syncs it to disk.
fn flush(writer: BufWriter<File>, path: &Path) -> Result<(), DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = writer.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)
}

/// Runs `write` on a fresh temporary file next to `path`, then renames it to `path`; the
/// temporary file is removed if anything fails.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(BufWriter<File>) -> Result<(), DataError>,
) -> Result<(), DataError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataError::Io { path, source }
    };
    let name = path
        .file_name()
        .ok_or_else(|| io(path)(std::io::ErrorKind::InvalidInput.into()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(
        ".{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let temp = dir.join(temp_name);
    let result = File::create_new(&temp)
        .map_err(io(&temp))
        .and_then(|file| write(BufWriter::new(file)))
        .and_then(|()| std::fs::rename(&temp, path).map_err(io(path)));
    match result {
        Ok(()) => {
            // Make the rename itself durable; not every platform can sync a folder.
            if let Ok(d) = File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}
