//! Sparse gradients as values of their own, and the embedding lookups that make them.
//!
//! The gradient of `gather(table, ids)` with respect to the table is zero but for the rows the
//! ids picked. Built densely it is a tensor of the whole table, which a 10M-row embedding
//! would move and add every step for the hundred rows a batch touched. [`IndexedSlices`] keeps
//! it as those rows and their ids (TensorFlow's `IndexedSlices`): added up by concatenation,
//! sent between workers as rows plus ids, and applied by sparse optimizer updates to the rows
//! it names. Whoever needs it dense (an op's gradient that reads a tensor) densifies it
//! explicitly, with a warning where the table is large.

use super::{segment_mean, segment_sum, unique, unsorted_segment_sum};
use crate::graph::{Output, Shape};
use crate::ops::{
    add, cast, concat, div, expand_dims, gather, mul, reshape, sqrt, square, GatherGrad,
};
use crate::tensor::DType;

/// Densifying a sparse gradient of more elements than this warns (TensorFlow's threshold).
pub const LARGE_DENSE_ELEMENTS: usize = 100_000_000;

/// Rows of a table and their gradients: the row of `values` at position `p` of `indices`
/// belongs to row `indices[p]` of a tensor of shape `dense_shape`. Indices (i32 or i64, of
/// any rank: a gather's, as it was given) may repeat; their rows add up.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedSlices {
    pub indices: Output,
    /// `indices.shape + dense_shape[1..]`.
    pub values: Output,
    pub dense_shape: Shape,
    /// The tensor whose rows these are: read for its shape only when densifying where
    /// `dense_shape` leaves the row count unknown.
    pub table: Output,
}

impl IndexedSlices {
    /// The slices for rows `ids` (any rank, i32 or i64) of `table`, with `values` shaped
    /// `ids.shape + table.shape[1..]`; `None` where the table's row shape is not known when
    /// the graph is built (the rows could not be flattened then).
    pub fn for_rows(table: Output, ids: Output, values: Output) -> Option<IndexedSlices> {
        let dense_shape = table.type_shape().ok()?.shape;
        let rest = dense_shape.dims().get(1..)?;
        rest.iter().all(Option::is_some).then_some(IndexedSlices {
            indices: ids,
            values,
            dense_shape,
            table,
        })
    }

    /// The same slices with rank-1 indices and rank-`r` values, one row per index.
    pub fn flattened(&self) -> IndexedSlices {
        let rank1 = self.indices.type_shape().is_ok_and(|t| t.shape.rank() == 1);
        if rank1 {
            return self.clone();
        }
        let rest = self.dense_shape.dims().get(1..).unwrap_or_default();
        let flat: Vec<i64> = std::iter::once(-1)
            .chain(rest.iter().map(|d| d.map_or(-1, |d| d as i64)))
            .collect();
        IndexedSlices {
            indices: reshape(self.indices, &[-1]),
            values: reshape(self.values, &flat),
            ..self.clone()
        }
    }

    /// The number of elements of the dense form, where known.
    pub fn dense_elements(&self) -> Option<usize> {
        let dims = self.dense_shape.to_known()?;
        dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
    }

    /// The dense tensor: zeros but for the rows named, where the rows' values add up. Warns
    /// when that is known to be more than [`LARGE_DENSE_ELEMENTS`] elements.
    pub fn to_dense(&self) -> Output {
        // (A table whose size is not known here is a gradient's own intermediate, as in
        // `embedding_lookup_sparse`: no warning for those.)
        if let Some(n) = self.dense_elements().filter(|&n| n > LARGE_DENSE_ELEMENTS) {
            tracing::warn!(
                "converting the sparse gradient of '{}' ({}) to a dense tensor of {n} elements: \
                 this may use a large amount of memory",
                self.table.name(),
                self.dense_shape,
            );
        }
        match self.dense_shape.dims().first().copied().flatten() {
            Some(rows) => unsorted_segment_sum(self.values, self.indices, Some(rows)),
            None => crate::ops::build(GatherGrad, &[self.values, self.indices, self.table]),
        }
    }

    /// The same gradient with each row named once, its values summed: what updates whose
    /// rule is not linear in the gradient (Adagrad, Adam) need, and fewer rows to send.
    pub fn deduplicate(&self) -> IndexedSlices {
        let flat = self.flattened();
        let (ids, positions) = unique(flat.indices);
        IndexedSlices {
            indices: ids,
            values: unsorted_segment_sum(flat.values, positions, None),
            ..flat
        }
    }

    /// The rows times the scalar `weight`, or none where it is zero (see
    /// [`WeightedRows`](super::WeightedRows)).
    pub fn weighted(&self, weight: Output) -> IndexedSlices {
        let flat = self.flattened();
        let kept = crate::ops::build(super::WeightedRows, &[weight, flat.indices, flat.values]);
        IndexedSlices {
            indices: kept,
            values: kept.output(1),
            ..flat
        }
    }

    /// Several gradients of one table as one: their rows one after another.
    pub fn concat(parts: &[IndexedSlices]) -> Option<IndexedSlices> {
        if parts.len() == 1 {
            return parts.first().cloned();
        }
        let parts: Vec<IndexedSlices> = parts.iter().map(IndexedSlices::flattened).collect();
        let first = parts.first()?;
        // Indices of one dtype; i64 where the parts differ.
        let dtype = first.indices.dtype();
        let mixed = parts.iter().any(|p| p.indices.dtype() != dtype);
        let indices: Vec<Output> = (parts.iter())
            .map(|p| match mixed && p.indices.dtype() != DType::I64 {
                true => cast(p.indices, DType::I64),
                false => p.indices,
            })
            .collect();
        let values: Vec<Output> = parts.iter().map(|p| p.values).collect();
        Some(IndexedSlices {
            indices: concat(&indices, 0),
            values: concat(&values, 0),
            ..first.clone()
        })
    }
}

/// A gradient as autodiff passes it on: a tensor, or rows of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Gradient {
    Dense(Output),
    Sparse(IndexedSlices),
}

impl Gradient {
    /// The dense tensor (a sparse gradient is densified, see [`IndexedSlices::to_dense`]).
    pub fn to_dense(&self) -> Output {
        match self {
            Gradient::Dense(d) => *d,
            Gradient::Sparse(s) => s.to_dense(),
        }
    }

    pub fn as_sparse(&self) -> Option<&IndexedSlices> {
        match self {
            Gradient::Sparse(s) => Some(s),
            Gradient::Dense(_) => None,
        }
    }

    /// The sum of `parts`: still sparse when every part is (rows concatenated), dense
    /// otherwise.
    pub fn sum(parts: Vec<Gradient>) -> Option<Gradient> {
        let sparse: Option<Vec<IndexedSlices>> =
            parts.iter().map(|p| p.as_sparse().cloned()).collect();
        match sparse {
            Some(rows) => IndexedSlices::concat(&rows).map(Gradient::Sparse),
            None => (parts.iter().map(Gradient::to_dense))
                .reduce(add)
                .map(Gradient::Dense),
        }
    }
}

impl From<Output> for Gradient {
    fn from(dense: Output) -> Gradient {
        Gradient::Dense(dense)
    }
}

/// Rows `ids` (any rank, i32 or i64) of an embedding table: `gather`, placed where the table
/// lives when it is a variable placed on a device (a parameter server), as TensorFlow
/// colocates it, so that only the rows picked travel to the worker. Its gradient with respect
/// to the table is sparse.
pub fn embedding_lookup(table: Output, ids: Output) -> Output {
    let graph = crate::ops::graph_of(table);
    let device = (graph.variable_node(table).ok()).map(|n| n.device);
    let _device = device.filter(|d| !d.is_empty()).map(|d| graph.device(&d));
    gather(table, ids)
}

/// How `embedding_lookup_sparse` combines the rows of one example.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combiner {
    Sum,
    /// The weighted mean: the sum over the sum of the weights.
    Mean,
    /// The sum over the square root of the sum of the squared weights.
    SqrtN,
}

/// Examples of variable numbers of ids: `ids[i]` (with weight `weights[i]`, 1 when there are
/// none) belongs to example `segments[i]`; segments are sorted (TensorFlow's sparse ids in
/// row-major order give this: the row of each entry).
#[derive(Debug, Clone, Copy)]
pub struct SparseIds {
    pub segments: Output,
    pub ids: Output,
    pub weights: Option<Output>,
}

/// One row per example: the rows of a rank-2 `table` named by the example's ids, combined
/// (TensorFlow's `embedding_lookup_sparse`). Each distinct id is gathered once.
pub fn embedding_lookup_sparse(table: Output, ids: SparseIds, combiner: Combiner) -> Output {
    let (distinct, positions) = unique(ids.ids);
    let rows = gather(embedding_lookup(table, distinct), positions);
    let Some(weights) = ids.weights else {
        return match combiner {
            Combiner::Sum => segment_sum(rows, ids.segments),
            Combiner::Mean => segment_mean(rows, ids.segments),
            Combiner::SqrtN => {
                let ones = crate::ops::fill_like(cast(ids.ids, rows.dtype()), 1.0);
                let counts = segment_sum(ones, ids.segments);
                div(
                    segment_sum(rows, ids.segments),
                    expand_dims(sqrt(counts), -1),
                )
            }
        };
    };
    let weighted = mul(rows, expand_dims(weights, -1));
    let sums = segment_sum(weighted, ids.segments);
    match combiner {
        Combiner::Sum => sums,
        Combiner::Mean => div(sums, expand_dims(segment_sum(weights, ids.segments), -1)),
        Combiner::SqrtN => {
            let norms = sqrt(segment_sum(square(weights), ids.segments));
            div(sums, expand_dims(norms, -1))
        }
    }
}
