//! Data sets from columnar files: Arrow IPC (`.arrow`, `.feather` v2, `.ipc`) and Parquet.
//!
//! One column holds the labels (integer class indices 0..=255); the features are either named
//! or, by default, every other numeric column in file order. A feature column is a number
//! (any int, uint or float type) or a `FixedSizeList` of numbers (e.g. an `image` column of
//! 784 pixels); each row's features are laid out row-major in that order, as f32.
//! Rows are counted from 0 across the whole file in every error (across the groups read,
//! for a shard read by row groups).

use super::{DataError, Dataset, LoadLimits, Shard, Split};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{ArrowError, DataType, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// A columnar file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// The Arrow IPC file format (Feather v2); the IPC stream format is read too.
    ArrowIpc,
    Parquet,
}

impl TableFormat {
    /// The format named by a file's extension: `.arrow`, `.feather`, `.ipc` or `.parquet`.
    pub fn from_path(path: &Path) -> Result<TableFormat, DataError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("arrow" | "feather" | "ipc") => Ok(TableFormat::ArrowIpc),
            Some("parquet") => Ok(TableFormat::Parquet),
            _ => Err(DataError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            TableFormat::ArrowIpc => "Arrow IPC",
            TableFormat::Parquet => "Parquet",
        }
    }
}

/// Which columns of a table make a data set.
#[derive(Debug, Clone, Copy)]
pub struct Columns<'a> {
    /// The column of class indices.
    pub label: &'a str,
    /// The feature columns, in order; `None`: every numeric column but the label.
    pub features: Option<&'a [String]>,
}

/// Reads one table as a data set; `classes` is the largest label + 1, and at least 2.
pub fn load_table(
    path: &Path,
    format: TableFormat,
    columns: Columns<'_>,
) -> Result<Dataset, DataError> {
    load_table_within(path, format, columns, &LoadLimits::none())
}

/// [`load_table`] within `limits`: checked for a stop and counted batch by batch.
pub fn load_table_within(
    path: &Path,
    format: TableFormat,
    columns: Columns<'_>,
    limits: &LoadLimits,
) -> Result<Dataset, DataError> {
    let (plan, batches) = open(path, format, columns, None)?;
    read_batches(path, format, plan, batches, limits)
}

/// One worker's part of a table: the Parquet row groups (or Arrow IPC record batches)
/// `shard.index`, `shard.index + shard.count`, ... read alone, so each worker reads its own
/// part of the file. `None` where the file has fewer groups than shards (the caller then
/// shares out rows).
pub(crate) fn load_table_groups(
    path: &Path,
    format: TableFormat,
    columns: Columns<'_>,
    shard: Shard,
    limits: &LoadLimits,
) -> Result<Option<Dataset>, DataError> {
    let (plan, batches) = open(path, format, columns, Some(shard))?;
    match batches {
        Some(batches) => read_batches(path, format, plan, Some(batches), limits).map(Some),
        None => Ok(None),
    }
}

/// Reads batches into a data set (rows in errors are counted across the batches read).
fn read_batches(
    path: &Path,
    format: TableFormat,
    plan: Plan,
    batches: Option<BatchIter>,
    limits: &LoadLimits,
) -> Result<Dataset, DataError> {
    let batches = batches.into_iter().flatten();
    let mut inputs = Vec::new();
    let mut labels = Vec::new();
    for batch in batches {
        limits.check()?;
        let batch = batch.map_err(|e| columnar_error(path, format, e))?;
        let rows = batch.num_rows();
        let floats = rows.saturating_mul(plan.stride);
        let bytes = (floats as u64)
            .saturating_mul(4)
            .saturating_add(rows as u64);
        limits.take(path, bytes)?;
        let too_large = |_| limits.too_large(path, bytes);
        inputs.try_reserve(floats).map_err(too_large)?;
        labels.try_reserve(rows).map_err(too_large)?;
        append_batch(path, &plan, &batch, labels.len(), &mut inputs, &mut labels)?;
    }
    let classes = labels
        .iter()
        .map(|&l| l as usize + 1)
        .max()
        .unwrap_or(0)
        .max(2);
    Ok(Dataset {
        features: plan.stride,
        classes,
        inputs,
        labels,
    })
}

/// A training set and a test set from tables: the test set is `test`'s rows if given
/// (same columns), or else the last 20% of `path`'s rows (rounded down), in file order.
/// Both sets get the same `classes`.
pub fn load_table_split(
    path: &Path,
    format: TableFormat,
    columns: Columns<'_>,
    test: Option<&Path>,
    limits: &LoadLimits,
) -> Result<Split, DataError> {
    let all = load_table_within(path, format, columns, limits)?;
    let (mut train, mut test) = match test {
        Some(test_path) => {
            let test = load_table_within(test_path, format, columns, limits)?;
            if test.features != all.features {
                return Err(DataError::Mismatch(format!(
                    "{}: {} features per row, but {} has {}",
                    test_path.display(),
                    test.features,
                    path.display(),
                    all.features
                )));
            }
            (all, test)
        }
        None => split_tail(all),
    };
    let classes = train.classes.max(test.classes);
    (train.classes, test.classes) = (classes, classes);
    Ok(Split { train, test })
}

/// The first 80% and the last 20% (rounded down) of a data set's rows.
fn split_tail(mut all: Dataset) -> (Dataset, Dataset) {
    let keep = all.len() - all.len() / 5;
    let test = Dataset {
        features: all.features,
        classes: all.classes,
        inputs: all.inputs.split_off(keep * all.features),
        labels: all.labels.split_off(keep),
    };
    (all, test)
}

/// The columns to read and where each goes in a row of features.
struct Plan {
    label: String,
    /// Feature columns with their widths (1, or the size of a fixed-size list).
    features: Vec<(String, usize)>,
    /// Features per row.
    stride: usize,
}

type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>>>;

fn columnar_error(path: &Path, format: TableFormat, e: impl std::fmt::Display) -> DataError {
    DataError::Columnar {
        path: path.to_path_buf(),
        format: format.name(),
        reason: e.to_string(),
    }
}

/// Opens a table, checks its schema against `columns`, and returns its batches (Parquet:
/// only the columns needed); with `part`, only that shard's row groups (IPC: record
/// batches), or none where the file has fewer groups than shards.
fn open(
    path: &Path,
    format: TableFormat,
    columns: Columns<'_>,
    part: Option<Shard>,
) -> Result<(Plan, Option<BatchIter>), DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bad = |e: &dyn std::fmt::Display| columnar_error(path, format, e);
    let mut file = File::open(path).map_err(io)?;
    match format {
        TableFormat::ArrowIpc => {
            // The file format starts with "ARROW1", the stream format (since Arrow 0.15) with
            // a continuation marker.
            let mut magic = [0u8; 6];
            let magic = file
                .read_exact(&mut magic)
                .map(|()| magic)
                .unwrap_or_default();
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            let (schema, batches): (_, Option<BatchIter>) = if &magic == b"ARROW1" {
                let mut reader = arrow_ipc::reader::FileReader::try_new_buffered(file, None)
                    .map_err(|e| bad(&e))?;
                let schema = reader.schema();
                let batches: Option<BatchIter> = match part {
                    None => Some(Box::new(reader)),
                    Some(s) if reader.num_batches() < s.count => None,
                    Some(s) => {
                        let mine = (s.index..reader.num_batches()).step_by(s.count);
                        Some(Box::new(mine.filter_map(
                            move |i| match reader.set_index(i) {
                                Ok(()) => reader.next(),
                                Err(e) => Some(Err(e)),
                            },
                        )))
                    }
                };
                (schema, batches)
            } else if magic[..4] == [0xff; 4] {
                let reader = arrow_ipc::reader::StreamReader::try_new_buffered(file, None)
                    .map_err(|e| bad(&e))?;
                let schema = reader.schema();
                // A stream has no index of its batches: its rows are shared out instead.
                (
                    schema,
                    part.is_none().then(|| Box::new(reader) as BatchIter),
                )
            } else {
                let what = "neither ARROW1 (the file format, Feather v2) nor an IPC stream";
                return Err(bad(&format!("it starts with {what}")));
            };
            Ok((plan(path, &schema, columns)?, batches))
        }
        TableFormat::Parquet => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad(&e))?;
            let schema = builder.schema().clone();
            let plan = plan(path, &schema, columns)?;
            let wanted = std::iter::once(&plan.label).chain(plan.features.iter().map(|f| &f.0));
            let roots: Vec<usize> = wanted.filter_map(|n| schema.index_of(n).ok()).collect();
            let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
            let groups = builder.metadata().num_row_groups();
            let builder = match part {
                None => builder,
                Some(s) if groups < s.count => return Ok((plan, None)),
                Some(s) => builder.with_row_groups((s.index..groups).step_by(s.count).collect()),
            };
            let reader = builder.with_projection(mask).build().map_err(|e| bad(&e))?;
            Ok((plan, Some(Box::new(reader))))
        }
    }
}

fn is_number(t: &DataType) -> bool {
    t.is_integer() || t.is_floating()
}

/// A feature column's width: 1 for a number, N for a `FixedSizeList` of N numbers.
fn feature_width(t: &DataType) -> Option<usize> {
    match t {
        t if is_number(t) => Some(1),
        DataType::FixedSizeList(item, n) if *n > 0 && is_number(item.data_type()) => {
            Some(*n as usize)
        }
        _ => None,
    }
}

/// The columns of a table with their types, for errors (the first 20 of a wide table).
fn column_names(schema: &Schema) -> String {
    let fields = schema.fields();
    let mut names: Vec<String> = fields
        .iter()
        .take(20)
        .map(|f| format!("{} ({})", f.name(), f.data_type()))
        .collect();
    if fields.len() > 20 {
        names.push(format!("... and {} more", fields.len() - 20));
    }
    names.join(", ")
}

fn plan(path: &Path, schema: &Schema, columns: Columns<'_>) -> Result<Plan, DataError> {
    let field = |name: &str| {
        schema
            .field_with_name(name)
            .map_err(|_| DataError::MissingColumn {
                path: path.to_path_buf(),
                column: name.to_string(),
                available: column_names(schema),
            })
    };
    let label = field(columns.label)?;
    if !label.data_type().is_integer() {
        return Err(DataError::ColumnType {
            path: path.to_path_buf(),
            column: label.name().clone(),
            dtype: label.data_type().to_string(),
            expected: "labels must be an integer column of class indices",
        });
    }
    let features: Vec<(String, usize)> = match columns.features {
        Some(names) => names
            .iter()
            .map(|name| {
                let f = field(name)?;
                match feature_width(f.data_type()) {
                    Some(width) => Ok((name.clone(), width)),
                    None => Err(DataError::ColumnType {
                        path: path.to_path_buf(),
                        column: name.clone(),
                        dtype: f.data_type().to_string(),
                        expected: "features must be numbers (int, uint, float) or a \
                                   FixedSizeList of numbers",
                    }),
                }
            })
            .collect::<Result<_, _>>()?,
        None => schema
            .fields()
            .iter()
            .filter(|f| f.name() != columns.label)
            .filter_map(|f| Some((f.name().clone(), feature_width(f.data_type())?)))
            .collect(),
    };
    let stride = features.iter().map(|f| f.1).sum();
    if stride == 0 {
        return Err(DataError::NoFeatures {
            path: path.to_path_buf(),
            label: columns.label.to_string(),
            available: column_names(schema),
        });
    }
    Ok(Plan {
        label: columns.label.to_string(),
        features,
        stride,
    })
}

/// Appends one batch's rows; `first_row` is the file row of the batch's first row.
fn append_batch(
    path: &Path,
    plan: &Plan,
    batch: &RecordBatch,
    first_row: usize,
    inputs: &mut Vec<f32>,
    labels: &mut Vec<u8>,
) -> Result<(), DataError> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| DataError::MissingColumn {
                path: path.to_path_buf(),
                column: name.to_string(),
                available: column_names(&batch.schema()),
            })
    };
    let null_at = |column: String, row: usize| DataError::NullValue {
        path: path.to_path_buf(),
        column,
        row: first_row + row,
    };
    let rows = batch.num_rows();
    let label = column(&plan.label)?;
    if let Some(row) = first_null(label.as_ref()) {
        return Err(null_at(plan.label.clone(), row));
    }
    append_labels(path, &plan.label, label.as_ref(), first_row, labels)?;

    let start = inputs.len();
    inputs.resize(start + rows * plan.stride, 0.0);
    let out = &mut inputs[start..];
    let mut offset = 0;
    for (name, width) in &plan.features {
        let array = column(name)?;
        if let Some(row) = first_null(array.as_ref()) {
            return Err(null_at(name.clone(), row));
        }
        let values = match array.as_fixed_size_list_opt() {
            Some(list) if list.value_length() as usize == *width => list.values().clone(),
            Some(_) | None if *width == 1 => array.clone(),
            _ => {
                return Err(DataError::ColumnType {
                    path: path.to_path_buf(),
                    column: name.clone(),
                    dtype: array.data_type().to_string(),
                    expected: "the type changed between batches",
                })
            }
        };
        if let Some(k) = first_null(values.as_ref()) {
            return Err(null_at(format!("{name}[{}]", k % width), k / width));
        }
        if !scatter(values.as_ref(), out, plan.stride, offset, *width) {
            return Err(DataError::ColumnType {
                path: path.to_path_buf(),
                column: name.clone(),
                dtype: array.data_type().to_string(),
                expected: "features must be numbers (int, uint, float) or a FixedSizeList \
                           of numbers",
            });
        }
        offset += width;
    }
    Ok(())
}

/// The first null slot of an array, if any.
fn first_null(array: &dyn Array) -> Option<usize> {
    let nulls = array.logical_nulls()?;
    (nulls.null_count() > 0)
        .then(|| (0..array.len()).find(|&i| nulls.is_null(i)))
        .flatten()
}

/// Writes `values` (rows × `width` numbers) as f32 into columns `offset..offset + width` of
/// the `stride`-wide rows of `out`; false if they are not numbers.
fn scatter(
    values: &dyn Array,
    out: &mut [f32],
    stride: usize,
    offset: usize,
    width: usize,
) -> bool {
    fn put(
        values: impl Iterator<Item = f32>,
        out: &mut [f32],
        stride: usize,
        cols: (usize, usize),
    ) {
        let mut values = values;
        for row in out.chunks_exact_mut(stride) {
            for slot in &mut row[cols.0..cols.1] {
                if let Some(v) = values.next() {
                    *slot = v;
                }
            }
        }
    }
    let cols = (offset, offset + width);
    macro_rules! put {
        ($t:ty, $f:expr) => {
            match values.as_primitive_opt::<$t>() {
                Some(a) => {
                    put(a.values().iter().map($f), out, stride, cols);
                    true
                }
                None => false,
            }
        };
    }
    match values.data_type() {
        DataType::Int8 => put!(Int8Type, |&v| v as f32),
        DataType::Int16 => put!(Int16Type, |&v| v as f32),
        DataType::Int32 => put!(Int32Type, |&v| v as f32),
        DataType::Int64 => put!(Int64Type, |&v| v as f32),
        DataType::UInt8 => put!(UInt8Type, |&v| v as f32),
        DataType::UInt16 => put!(UInt16Type, |&v| v as f32),
        DataType::UInt32 => put!(UInt32Type, |&v| v as f32),
        DataType::UInt64 => put!(UInt64Type, |&v| v as f32),
        DataType::Float16 => put!(Float16Type, |v| v.to_f32()),
        DataType::Float32 => put!(Float32Type, |&v| v),
        DataType::Float64 => put!(Float64Type, |&v| v as f32),
        _ => false,
    }
}

/// Appends a batch's labels, checking each is a class index in 0..=255.
fn append_labels(
    path: &Path,
    column: &str,
    array: &dyn Array,
    first_row: usize,
    labels: &mut Vec<u8>,
) -> Result<(), DataError> {
    let wide: Vec<i128> = {
        macro_rules! wide {
            ($t:ty) => {
                array
                    .as_primitive_opt::<$t>()
                    .map(|a| a.values().iter().map(|&v| v as i128).collect())
            };
        }
        match array.data_type() {
            DataType::Int8 => wide!(Int8Type),
            DataType::Int16 => wide!(Int16Type),
            DataType::Int32 => wide!(Int32Type),
            DataType::Int64 => wide!(Int64Type),
            DataType::UInt8 => wide!(UInt8Type),
            DataType::UInt16 => wide!(UInt16Type),
            DataType::UInt32 => wide!(UInt32Type),
            DataType::UInt64 => wide!(UInt64Type),
            _ => None,
        }
    }
    .ok_or_else(|| DataError::ColumnType {
        path: path.to_path_buf(),
        column: column.to_string(),
        dtype: array.data_type().to_string(),
        expected: "labels must be an integer column of class indices",
    })?;
    labels.reserve(wide.len());
    for (row, value) in wide.into_iter().enumerate() {
        let label = u8::try_from(value).map_err(|_| DataError::BadLabel {
            path: path.to_path_buf(),
            column: column.to_string(),
            row: first_row + row,
            value,
        })?;
        labels.push(label);
    }
    Ok(())
}
