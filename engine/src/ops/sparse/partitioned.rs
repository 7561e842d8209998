//! Tables split by rows over several variables, each on its own parameter server: what lets an
//! embedding grow past one machine's memory and spreads its traffic over several NICs.
//!
//! A lookup sends each shard's ids to where the shard lives, gathers there, and stitches the
//! rows back in the order asked for; the gradient of each shard is the rows it gave
//! ([`IndexedSlices`](super::IndexedSlices)), applied on that shard's server. Ids map to shards
//! as TensorFlow's `embedding_lookup` maps them: `mod` (id `i` in shard `i % n`, row `i / n`)
//! or `div` (contiguous ranges, the first `rows % n` shards one row longer).

use super::embedding_lookup;
use crate::error::GraphError;
use crate::graph::{AttrValue, Graph, Initializer, Output, Shape, TypeShape};
use crate::ops::indexing::expect_indices as expect_ids;
use crate::ops::{build, expect_inputs, reshape, Attrs, GradContext, GradientError, Op};
use crate::ops::{gather, graph_of};
use crate::tensor::{DType, Tensor};

/// The most shards a table may have (and parts a stitch): far more than any cluster has
/// parameter servers, and a bound on what a graph from elsewhere can make a lookup allocate.
pub const MAX_SHARDS: usize = 1 << 16;

/// How ids map to shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionStrategy {
    /// Id `i` is row `i / n` of shard `i % n`.
    Mod,
    /// Contiguous ranges of ids; the first `rows % n` shards hold one row more.
    Div,
}

impl PartitionStrategy {
    pub fn name(self) -> &'static str {
        match self {
            PartitionStrategy::Mod => "mod",
            PartitionStrategy::Div => "div",
        }
    }

    pub fn from_name(name: &str) -> Option<PartitionStrategy> {
        match name {
            "mod" => Some(PartitionStrategy::Mod),
            "div" => Some(PartitionStrategy::Div),
            _ => None,
        }
    }

    /// The rows of each of `shards` shards of a table of `rows` rows.
    pub fn shard_rows(self, rows: usize, shards: usize) -> Vec<usize> {
        let shards = shards.max(1);
        match self {
            // Mod: shard p holds ids p, p + n, ...; div: the first rows % n shards one more.
            // Either way as many rows.
            PartitionStrategy::Mod | PartitionStrategy::Div => (0..shards)
                .map(|p| rows / shards + usize::from(p < rows % shards))
                .collect(),
        }
    }

    /// The shard and the row within it of id `id` (below `rows`).
    pub fn locate(self, id: usize, rows: usize, shards: usize) -> (usize, usize) {
        let shards = shards.max(1);
        match self {
            PartitionStrategy::Mod => (id % shards, id / shards),
            PartitionStrategy::Div => {
                let (q, extras) = (rows / shards, rows % shards);
                let threshold = extras * (q + 1);
                if id < threshold {
                    (id / (q + 1), id % (q + 1))
                } else {
                    let rest = id - threshold;
                    (extras + rest / q.max(1), rest % q.max(1))
                }
            }
        }
    }
}

/// How many shards a table gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardCount {
    Fixed(usize),
    /// As few shards as keep each under this many bytes (TensorFlow's
    /// `variable_axis_size_partitioner`), at most one per row.
    MaxShardBytes(u64),
}

/// How a table is split: the shard count, the strategy, and (optionally) the devices the
/// shards go to in turn. Without devices, a [`Graph::shard_variables`] scope places them, or
/// the device scope does.
#[derive(Debug, Clone, PartialEq)]
pub struct Partitioner {
    pub shards: ShardCount,
    pub strategy: PartitionStrategy,
    pub devices: Vec<String>,
}

impl Partitioner {
    pub fn fixed(shards: usize, strategy: PartitionStrategy) -> Partitioner {
        Partitioner {
            shards: ShardCount::Fixed(shards),
            strategy,
            devices: Vec::new(),
        }
    }

    /// Shard `i` goes to `devices[i % devices.len()]`.
    pub fn on(mut self, devices: &[&str]) -> Partitioner {
        self.devices = devices.iter().map(|d| d.to_string()).collect();
        self
    }

    fn count(&self, rows: usize, row_bytes: u64) -> usize {
        let n = match self.shards {
            ShardCount::Fixed(n) => n,
            ShardCount::MaxShardBytes(max) => {
                let total = (rows as u64).saturating_mul(row_bytes);
                usize::try_from(total.div_ceil(max.max(1))).unwrap_or(usize::MAX)
            }
        };
        n.clamp(1, rows.clamp(1, MAX_SHARDS))
    }
}

/// A table split by rows into shard variables; see the module's documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionedVariable {
    pub name: String,
    /// The whole table's shape.
    pub shape: Vec<usize>,
    pub strategy: PartitionStrategy,
    /// `name/part_0`, `name/part_1`, ...
    pub shards: Vec<Output>,
}

impl PartitionedVariable {
    /// A trainable f32 table of `shape` split as `partitioner` says; each shard starts from
    /// `init` (a constant initial value is split by rows as the shards hold them).
    pub fn new(
        graph: &Graph,
        name: &str,
        shape: &[usize],
        init: Initializer,
        partitioner: &Partitioner,
    ) -> Result<PartitionedVariable, GraphError> {
        let bad = |message: String| GraphError::BadNodeDef {
            node: name.to_string(),
            message,
        };
        let Some((&rows, rest)) = shape.split_first() else {
            return Err(bad("a partitioned variable needs rank 1 or more".into()));
        };
        let row_elements = rest.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let row_bytes = row_elements
            .and_then(|n| n.checked_mul(DType::F32.size()))
            .ok_or_else(|| bad(format!("rows of shape {rest:?} are too large to count")))?;
        let strategy = partitioner.strategy;
        let count = partitioner.count(rows, row_bytes as u64);
        let init = match init {
            Initializer::Constant(whole) if whole.shape() != shape => {
                return Err(bad(format!(
                    "the initial value has shape {:?}, the table {shape:?}",
                    whole.shape()
                )))
            }
            Initializer::Constant(whole) => Initializer::Constant(whole.cast(DType::F32)),
            other => other,
        };
        let mut constants = match &init {
            Initializer::Constant(whole) => split_rows(whole, strategy, count).map_err(bad)?,
            _ => Vec::new(),
        }
        .into_iter();
        let mut shards = Vec::with_capacity(count);
        for (p, shard_rows) in strategy.shard_rows(rows, count).into_iter().enumerate() {
            let mut dims = vec![shard_rows];
            dims.extend_from_slice(rest);
            let init = match (&init, constants.next()) {
                (Initializer::Constant(_), Some(part)) => Initializer::Constant(part),
                (other, _) => other.clone(),
            };
            let device = partitioner
                .devices
                .get(p % partitioner.devices.len().max(1));
            let _device = device.map(|d| graph.device(d));
            shards.push(graph.variable(&format!("{name}/part_{p}"), &dims, init));
        }
        // The name the shards have (within scopes, or a replica's reused ones).
        let first = shards[0].name();
        let name = first.strip_suffix("/part_0").unwrap_or(&first).to_string();
        let table = PartitionedVariable {
            name,
            shape: shape.to_vec(),
            strategy,
            shards,
        };
        graph.add_partitioned(&table);
        Ok(table)
    }

    /// Rows `ids` (any rank, i32 or i64, each below the table's row count) of the whole
    /// table: `ids.shape + shape[1..]` (ids of rank 2 or more have at most one dimension
    /// unknown when the graph is built; flatten others first). Each shard's gather runs where
    /// the shard lives.
    pub fn lookup(&self, ids: Output) -> Output {
        let n = self.shards.len();
        if n == 1 {
            return embedding_lookup(self.shards[0], ids);
        }
        let rows = self.shape.first().copied().unwrap_or(0);
        let split = build(
            ShardIds {
                shards: n,
                rows,
                strategy: self.strategy,
            },
            &[ids],
        );
        let mut inputs = Vec::with_capacity(2 * n);
        inputs.extend((0..n).map(|p| split.output(n + p)));
        for (p, &shard) in self.shards.iter().enumerate() {
            inputs.push(embedding_lookup(shard, split.output(p)));
        }
        let stitched = build(DynamicStitch { parts: n }, &inputs);
        // Back to the ids' shape (an unknown dimension as -1) and a row's.
        let id_dims = (ids.type_shape().ok()).map(|t| t.shape.dims().to_vec());
        match id_dims {
            Some(dims) if dims.len() != 1 && dims.iter().filter(|d| d.is_none()).count() <= 1 => {
                let full: Vec<i64> = (dims.iter().map(|d| d.map_or(-1, |d| d as i64)))
                    .chain(self.shape[1..].iter().map(|&d| d as i64))
                    .collect();
                reshape(stitched, &full)
            }
            _ => stitched,
        }
    }

    /// The whole table from its shards' values (in shard order), as a checkpoint keeps it.
    pub fn assemble(&self, shards: &[Tensor]) -> Result<Tensor, String> {
        let rows = self.shape.first().copied().unwrap_or(0);
        let inner: usize = self.shape.get(1..).unwrap_or_default().iter().product();
        let n = self.shards.len();
        if shards.len() != n {
            return Err(format!("{} shard values for {n} shards", shards.len()));
        }
        let sizes = self.strategy.shard_rows(rows, n);
        for (p, (shard, &shard_rows)) in shards.iter().zip(&sizes).enumerate() {
            let fits = shard.shape().split_first() == Some((&shard_rows, &self.shape[1..]));
            if !fits {
                return Err(format!(
                    "shard {p} is {:?}; this table's shard {p} is {shard_rows} rows of {:?}",
                    shard.shape(),
                    &self.shape[1..]
                ));
            }
        }
        let parts: Vec<&[f32]> = (shards.iter())
            .map(|t| t.as_slice::<f32>().map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let len = (rows.checked_mul(inner))
            .ok_or_else(|| format!("a table of shape {:?} is too large", self.shape))?;
        let mut whole: Vec<f32> = Vec::new();
        (whole.try_reserve_exact(len))
            .map_err(|e| format!("no memory for a table of shape {:?}: {e}", self.shape))?;
        whole.resize(len, 0.0);
        for id in 0..rows {
            let (p, local) = self.strategy.locate(id, rows, n);
            let src = (parts[p].get(local * inner..(local + 1) * inner))
                .ok_or_else(|| format!("shard {p} has no row {local}"))?;
            whole[id * inner..(id + 1) * inner].copy_from_slice(src);
        }
        Tensor::new(&self.shape, whole).map_err(|e| e.to_string())
    }

    /// The shards' values for a whole table's `value` (its inverse of [`Self::assemble`]):
    /// how a checkpoint of the table, split any way, comes back into these shards.
    pub fn split(&self, value: &Tensor) -> Result<Vec<Tensor>, String> {
        if value.shape() != self.shape.as_slice() {
            return Err(format!(
                "the table is {:?}, the value {:?}",
                self.shape,
                value.shape()
            ));
        }
        split_rows(value, self.strategy, self.shards.len())
    }
}

/// The `count` shards of a whole table's value, rows as `strategy` assigns them: one pass
/// over the rows, each to its shard in id order (which is each shard's row order).
fn split_rows(
    whole: &Tensor,
    strategy: PartitionStrategy,
    count: usize,
) -> Result<Vec<Tensor>, String> {
    let Some((&rows, rest)) = whole.shape().split_first() else {
        return Err("the initial value must have rank 1 or more".into());
    };
    let inner: usize = rest.iter().product();
    let values = whole.as_slice::<f32>().map_err(|e| e.to_string())?;
    let sizes = strategy.shard_rows(rows, count);
    let mut parts: Vec<Vec<f32>> = sizes
        .iter()
        .map(|&n| Vec::with_capacity(n * inner))
        .collect();
    for (id, row) in values.chunks_exact(inner.max(1)).take(rows).enumerate() {
        parts[strategy.locate(id, rows, count).0].extend_from_slice(row);
    }
    (parts.into_iter().zip(sizes))
        .map(|(part, n)| {
            let dims: Vec<usize> = std::iter::once(n).chain(rest.iter().copied()).collect();
            Tensor::new(&dims, part).map_err(|e| format!("the initial value does not fit: {e}"))
        })
        .collect()
}

/// Splits ids among the shards of a table of `rows` rows: outputs `0..shards` are each
/// shard's rows (i64, in the order the ids name them), outputs `shards..2*shards` the
/// positions in the flattened ids they came from, what [`DynamicStitch`] puts them back by.
#[derive(Debug, Clone)]
pub struct ShardIds {
    pub shards: usize,
    pub rows: usize,
    pub strategy: PartitionStrategy,
}

impl Op for ShardIds {
    fn type_name(&self) -> &'static str {
        "ShardIds"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![
            ("shards", AttrValue::int(self.shards)),
            ("rows", AttrValue::int(self.rows)),
            ("strategy", AttrValue::Str(self.strategy.name().into())),
        ]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        expect_ids(&inputs[0], "ids")?;
        if self.shards > MAX_SHARDS {
            return Err(format!("{} shards: at most {MAX_SHARDS}", self.shards));
        }
        if self.shards == 0 || self.shards > self.rows.max(1) {
            return Err(format!(
                "{} shards of a table of {} rows: each shard needs a row",
                self.shards, self.rows
            ));
        }
        let list = TypeShape::new(DType::I64, Shape(vec![None]));
        Ok(vec![list; 2 * self.shards])
    }

    fn gradient(&self, _: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![None])
    }
}

/// Interleaves rows by position: `parts` lists of positions (rank 1) and then `parts` tensors
/// of rows, one per position; row `j` of the result is the row given for position `j`
/// (TensorFlow's `dynamic_stitch`, whose later parts win a position named twice). Positions
/// not named are zeros.
#[derive(Debug, Clone)]
pub struct DynamicStitch {
    pub parts: usize,
}

impl Op for DynamicStitch {
    fn type_name(&self) -> &'static str {
        "DynamicStitch"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![("parts", AttrValue::int(self.parts))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        let n = self.parts;
        if n == 0 || n > MAX_SHARDS {
            return Err(format!("stitches 1 to {MAX_SHARDS} parts, not {n}"));
        }
        expect_inputs(inputs, 2 * n)?;
        let (positions, data) = inputs.split_at(n);
        let row = data[0].shape.dims().get(1..).unwrap_or_default().to_vec();
        for (p, (at, rows)) in positions.iter().zip(data).enumerate() {
            expect_ids(at, &format!("positions {p}"))?;
            let same_row = rows.shape.dims().get(1..) == Some(&row[..]);
            if at.shape.rank() != 1 || rows.dtype != data[0].dtype || !same_row {
                return Err(format!(
                    "part {p} has positions {at} and rows {rows}: parts need rank-1 positions \
                     and rows like part 0's, {}",
                    data[0]
                ));
            }
        }
        let mut dims = vec![None];
        dims.extend(row);
        Ok(vec![TypeShape::new(data[0].dtype, Shape(dims))])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let n = self.parts;
        let mut grads = vec![None; n];
        grads.extend((0..n).map(|p| Some(gather(g.dy(), g.x(p)))));
        Ok(grads)
    }
}

/// Rows of `data[p]` placed at `positions[p]` (see [`DynamicStitch`]).
pub fn dynamic_stitch(positions: &[Output], data: &[Output]) -> Output {
    let inputs: Vec<Output> = positions.iter().chain(data).copied().collect();
    let graph = positions.first().map(|&p| graph_of(p)).unwrap_or_default();
    let op = DynamicStitch {
        parts: positions.len(),
    };
    graph.add_node(std::sync::Arc::new(op), inputs, vec![], None)
}
