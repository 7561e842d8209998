//! Ops on rows picked by ids, the working parts of sparse models: segment reductions (how
//! the rows of one example, or the gradients of one row, are added up), `unique`, hashing of
//! integer features into buckets, and scatter updates that change only some rows of a
//! variable. [`slices`] holds the sparse gradient value these ops build and consume, and the
//! embedding lookups.
//!
//! Ids from data are hostile: every kernel checks them against the rows there are, and sizes
//! that ids decide (a segment count) are held to the step's memory budget before anything is
//! allocated.

pub mod partitioned;
pub mod slices;

pub use partitioned::*;
pub use slices::*;

use super::indexing::{compatible, expect_indices as expect_ids};
use super::{build, expect_inputs, Attrs, Effect, GradContext, GradientError, Op};
use crate::error::GraphError;
use crate::graph::{AttrValue, Output, Shape, TypeShape};
use crate::ops::{gather, AssignKind};
use crate::tensor::DType;

/// The shape `ids.shape + rest`, where rows of shape `rest` are picked by `ids`.
fn rows_shape(ids: &Shape, rest: &[Option<usize>]) -> Shape {
    let mut dims = ids.dims().to_vec();
    dims.extend_from_slice(rest);
    Shape(dims)
}

/// Checks that `data` holds one row per id: its leading axes are the ids' shape.
fn expect_rows_of(data: &TypeShape, ids: &TypeShape) -> Result<(), String> {
    let r = ids.shape.rank();
    let lead = Shape(data.shape.dims().iter().take(r).copied().collect());
    if data.shape.rank() < r || !compatible(&lead, &ids.shape) {
        return Err(format!(
            "data is {data}, but its leading axes must be the shape of the ids, {ids}"
        ));
    }
    Ok(())
}

/// Sums the rows of `data` that share a segment id: output row `s` is the sum of the rows
/// whose id is `s` (zeros where none is). Ids may come in any order. `num_segments` fixes the
/// number of output rows; without it there are as many as the largest id plus one.
#[derive(Debug, Clone)]
pub struct UnsortedSegmentSum {
    pub num_segments: Option<usize>,
}

impl Op for UnsortedSegmentSum {
    fn type_name(&self) -> &'static str {
        "UnsortedSegmentSum"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        let n = self.num_segments.map_or(-1, |n| n as i64);
        vec![("num_segments", AttrValue::Int(n))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        let (data, ids) = (&inputs[0], &inputs[1]);
        expect_ids(ids, "segment ids")?;
        if data.dtype == DType::Bool {
            return Err(format!("data must be numeric, got {data}"));
        }
        expect_rows_of(data, ids)?;
        let mut dims = vec![self.num_segments];
        dims.extend_from_slice(&data.shape.dims()[ids.shape.rank()..]);
        Ok(vec![TypeShape::new(data.dtype, Shape(dims))])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![Some(gather(g.dy(), g.x(1))), None])
    }
}

/// Row `s` of the result is the sum of the rows of `data` whose segment id is `s`; ids (i32 or
/// i64, one per leading element of `data`) in any order. `num_segments` rows, or (None) as
/// many as the largest id plus one.
pub fn unsorted_segment_sum(data: Output, ids: Output, num_segments: Option<usize>) -> Output {
    build(UnsortedSegmentSum { num_segments }, &[data, ids])
}

/// How a segment's rows are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    Sum,
    Mean,
}

/// Reduces runs of rows that share a segment id; the ids (one per row of `data`) are sorted,
/// as TensorFlow's `segment_sum` and `segment_mean` require. There are as many output rows as
/// the last id plus one; a segment with no rows is zeros.
#[derive(Debug, Clone)]
pub struct SegmentReduce {
    pub kind: SegmentKind,
}

impl Op for SegmentReduce {
    fn type_name(&self) -> &'static str {
        match self.kind {
            SegmentKind::Sum => "SegmentSum",
            SegmentKind::Mean => "SegmentMean",
        }
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        let (data, ids) = (&inputs[0], &inputs[1]);
        expect_ids(ids, "segment ids")?;
        if ids.shape.rank() != 1 {
            return Err(format!("segment ids must have rank 1, got {ids}"));
        }
        if data.shape.rank() == 0 {
            return Err(format!("data must have rank 1 or more, got {data}"));
        }
        if self.kind == SegmentKind::Mean {
            super::expect_float(data, "data")?;
        } else if data.dtype == DType::Bool {
            return Err(format!("data must be numeric, got {data}"));
        }
        expect_rows_of(data, ids)?;
        let mut dims = vec![None];
        dims.extend_from_slice(&data.shape.dims()[1..]);
        Ok(vec![TypeShape::new(data.dtype, Shape(dims))])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let dx = match self.kind {
            SegmentKind::Sum => gather(g.dy(), g.x(1)),
            SegmentKind::Mean => build(SegmentMeanGrad, &[g.dy(), g.x(1)]),
        };
        Ok(vec![Some(dx), None])
    }
}

/// Sums the rows of `data` by sorted segment `ids` (rank 1): TensorFlow's `segment_sum`.
pub fn segment_sum(data: Output, ids: Output) -> Output {
    build(
        SegmentReduce {
            kind: SegmentKind::Sum,
        },
        &[data, ids],
    )
}

/// Averages the rows of `data` by sorted segment `ids` (rank 1): TensorFlow's `segment_mean`.
pub fn segment_mean(data: Output, ids: Output) -> Output {
    build(
        SegmentReduce {
            kind: SegmentKind::Mean,
        },
        &[data, ids],
    )
}

/// The gradient of `segment_mean`: row `i` is `dy[ids[i]]` over the size of that segment.
#[derive(Debug, Clone)]
pub struct SegmentMeanGrad;

impl Op for SegmentMeanGrad {
    fn type_name(&self) -> &'static str {
        "SegmentMeanGrad"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        let (dy, ids) = (&inputs[0], &inputs[1]);
        expect_ids(ids, "segment ids")?;
        super::expect_float(dy, "dy")?;
        if ids.shape.rank() != 1 || dy.shape.rank() == 0 {
            return Err(format!(
                "segment ids must have rank 1 and dy rank 1 or more, got {ids} and {dy}"
            ));
        }
        let mut dims = ids.shape.dims().to_vec();
        dims.extend_from_slice(&dy.shape.dims()[1..]);
        Ok(vec![TypeShape::new(dy.dtype, Shape(dims))])
    }
}

/// The distinct values of a rank-1 integer tensor in order of first appearance, and for each
/// element the position of its value among them (i64): `x == gather(y, idx)`.
#[derive(Debug, Clone)]
pub struct Unique;

impl Op for Unique {
    fn type_name(&self) -> &'static str {
        "Unique"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        let x = &inputs[0];
        if !matches!(x.dtype, DType::I32 | DType::I64 | DType::U8) {
            return Err(format!("x must be i32, i64 or u8, got {x}"));
        }
        if x.shape.rank() != 1 {
            return Err(format!("x must have rank 1, got {x}"));
        }
        Ok(vec![
            TypeShape::new(x.dtype, Shape(vec![None])),
            TypeShape::new(DType::I64, x.shape.clone()),
        ])
    }

    fn gradient(&self, _: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![None])
    }
}

/// The distinct values of rank-1 integer `x` (first appearance first) and, per element, the
/// index of its value among them: `(y, idx)` with `x == gather(y, idx)`.
pub fn unique(x: Output) -> (Output, Output) {
    let y = build(Unique, &[x]);
    (y, y.output(1))
}

/// Hashes integer features into `buckets` buckets (i64 in `[0, buckets)`): the hashing
/// trick of wide models, where a feature's id space is too large or open to index a table by.
/// The hash is SplitMix64's finaliser of the value as an i64, so a feature lands in the same
/// bucket on every machine and in every run.
#[derive(Debug, Clone)]
pub struct HashBucket {
    pub buckets: usize,
}

impl Op for HashBucket {
    fn type_name(&self) -> &'static str {
        "HashBucket"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![("buckets", AttrValue::int(self.buckets))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        let x = &inputs[0];
        if !matches!(x.dtype, DType::I32 | DType::I64 | DType::U8) {
            return Err(format!("features must be i32, i64 or u8, got {x}"));
        }
        if self.buckets == 0 {
            return Err("buckets must be at least 1".into());
        }
        Ok(vec![TypeShape::new(DType::I64, x.shape.clone())])
    }

    fn gradient(&self, _: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![None])
    }
}

/// The bucket of each integer feature of `x`, in `[0, buckets)` (i64, `x`'s shape).
pub fn hash_bucket(x: Output, buckets: usize) -> Output {
    build(HashBucket { buckets }, &[x])
}

/// The bucket of one feature value: SplitMix64's finaliser, then the remainder. Shared by the
/// kernel and by readers that hash features on the host.
pub fn bucket_of(value: i64, buckets: u64) -> i64 {
    let mut z = value as u64;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % buckets.max(1)) as i64
}

/// A replica's gradient rows as a synchronous update takes them (inputs: a scalar weight,
/// rank-1 indices, their rows): the rows times the weight, or no rows at all where the
/// weight is zero. A replica left out of a step (late, or a backup) then touches no row: a
/// sparse update leaves a row it is given alone only if it is not given it.
#[derive(Debug, Clone)]
pub struct WeightedRows;

impl Op for WeightedRows {
    fn type_name(&self) -> &'static str {
        "WeightedRows"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 3)?;
        let (weight, indices, values) = (&inputs[0], &inputs[1], &inputs[2]);
        super::expect_float(weight, "weight")?;
        super::expect_float(values, "rows")?;
        expect_ids(indices, "indices")?;
        if weight.shape.rank() != 0 || indices.shape.rank() != 1 || values.shape.rank() == 0 {
            return Err(format!(
                "takes a scalar weight, rank-1 indices and their rows, got {weight}, {indices} \
                 and {values}"
            ));
        }
        let mut rows = vec![None];
        rows.extend_from_slice(&values.shape.dims()[1..]);
        Ok(vec![
            TypeShape::new(indices.dtype, Shape(vec![None])),
            TypeShape::new(values.dtype, Shape(rows)),
        ])
    }
}

/// Writes rows of the variable of node `var` picked by `indices` (first input) from
/// `updates` (second input, shape `indices.shape + var.shape[1..]`): sets them, or adds or
/// subtracts (where ids repeat, every update counts). Only those rows are touched, so an
/// update of a large table costs the rows it names. Has no output: run it as a target.
#[derive(Debug, Clone)]
pub struct Scatter {
    pub var: usize,
    pub var_type: TypeShape,
    pub kind: AssignKind,
}

impl Op for Scatter {
    fn type_name(&self) -> &'static str {
        match self.kind {
            AssignKind::Set => "ScatterUpdate",
            AssignKind::Add => "ScatterAdd",
            AssignKind::Sub => "ScatterSub",
        }
    }

    fn attrs(&self, name_of: &dyn Fn(usize) -> String) -> Attrs {
        vec![("var", AttrValue::Str(name_of(self.var)))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        let (indices, updates) = (&inputs[0], &inputs[1]);
        let var = &self.var_type;
        expect_ids(indices, "indices")?;
        if var.shape.rank() == 0 {
            return Err(format!("the variable must have rank 1 or more, got {var}"));
        }
        let want = rows_shape(&indices.shape, &var.shape.dims()[1..]);
        if updates.dtype != var.dtype || !compatible(&want, &updates.shape) {
            return Err(format!(
                "updates are {updates}, but rows {indices} of variable {var} take {} {want}",
                var.dtype
            ));
        }
        if var.dtype == DType::Bool && self.kind != AssignKind::Set {
            return Err(format!("cannot add to or subtract from {var}"));
        }
        Ok(vec![])
    }

    fn effect(&self) -> Effect {
        Effect::WriteVariable { var: self.var }
    }
}

fn scatter_op(
    var: Output,
    indices: Output,
    updates: Output,
    kind: AssignKind,
) -> Result<Output, GraphError> {
    let graph = var.graph()?;
    graph.variable_node(var)?;
    let op = Scatter {
        var: var.node(),
        var_type: var.type_shape()?,
        kind,
    };
    let node = graph.add_node(
        std::sync::Arc::new(op),
        vec![indices, updates],
        vec![],
        None,
    );
    match graph.node(node.node()).and_then(|n| n.error) {
        Some(e) => Err(e),
        None => Ok(node),
    }
}

/// `var[indices] = updates`, row by row (a target: it has no value to fetch).
pub fn scatter_update(var: Output, indices: Output, updates: Output) -> Result<Output, GraphError> {
    scatter_op(var, indices, updates, AssignKind::Set)
}

/// `var[indices] += updates`; repeated indices add every update.
pub fn scatter_add(var: Output, indices: Output, updates: Output) -> Result<Output, GraphError> {
    scatter_op(var, indices, updates, AssignKind::Add)
}

/// `var[indices] -= updates`; repeated indices subtract every update.
pub fn scatter_sub(var: Output, indices: Output, updates: Output) -> Result<Output, GraphError> {
    scatter_op(var, indices, updates, AssignKind::Sub)
}
