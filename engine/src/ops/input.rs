//! Input readers: ops that read a data set where they run. In data-parallel training each
//! worker's replica reads its own shard of the data and batches it itself, so the trainer
//! sends step orders instead of batches and one client can drive many workers (what
//! TensorFlow's reader ops and `tf.data` iterators are for).
//!
//! The data set is named as the engine names data sets (`mnist-digits`,
//! `parquet:PATH?label=COL&test=PATH2`, ...; see `DataSource`), and an engine reads only
//! files under its data roots, as for a remote fit. The reader's state (its part of the data
//! set in memory, the epoch's order, the position) lives in the session that runs it: a new
//! session reads from the start again. A step that fails or is cancelled after its reader
//! ran has used up that batch.

use super::{expect_inputs, Attrs, Effect, Op};
use crate::graph::{AttrValue, Graph, Output, Shape, TypeShape};
use crate::tensor::DType;
use std::sync::Arc;

/// Endless shuffled mini-batches of part `shard` of `shards` of a data set's training split:
/// outputs `[batch, features]` f32 inputs, `[batch, classes]` f32 one-hot labels and
/// `[batch]` i64 class indices (declared `[-1, ...]`, so that they can be fed). Each epoch visits every row of the part once, in an order
/// drawn from `seed` (a batch never spans two epochs).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadBatches {
    /// The data set's name (`DataSource` syntax).
    pub source: String,
    pub shard: usize,
    pub shards: usize,
    pub batch: usize,
    pub features: usize,
    pub classes: usize,
    pub seed: u64,
}

impl Op for ReadBatches {
    fn type_name(&self) -> &'static str {
        "ReadBatches"
    }

    fn effect(&self) -> Effect {
        Effect::ReadInput
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![
            ("source", AttrValue::Str(self.source.clone())),
            ("shard", AttrValue::int(self.shard)),
            ("shards", AttrValue::int(self.shards)),
            ("batch", AttrValue::int(self.batch)),
            ("features", AttrValue::int(self.features)),
            ("classes", AttrValue::int(self.classes)),
            // The seed's bits, as TensorFlow keeps its int attributes.
            ("seed", AttrValue::Int(self.seed as i64)),
        ]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 0)?;
        if let Err(e) = self.source.parse::<crate::data::DataSource>() {
            return Err(e.to_string());
        }
        if self.shard >= self.shards {
            return Err(format!(
                "shard {} of {}: the shard must be below the number of shards",
                self.shard, self.shards
            ));
        }
        for (what, n) in [
            ("batch", self.batch),
            ("features", self.features),
            ("classes", self.classes),
        ] {
            if n == 0 || n > i64::MAX as usize {
                return Err(format!("{what} is {n}; it must be between 1 and 2^63 - 1"));
            }
        }
        // The batch dimension is left open, as a placeholder's: the outputs may be fed
        // batches of any size (an evaluation's).
        let rows = |width: usize| Shape::from_dims(&[-1, width as i64]);
        Ok(vec![
            TypeShape::new(DType::F32, rows(self.features)),
            TypeShape::new(DType::F32, rows(self.classes)),
            TypeShape::new(DType::I64, Shape::from_dims(&[-1])),
        ])
    }
}

/// What [`read_batches`] reads: a data set, how wide its rows and how many its classes (so
/// the graph's shapes are known before any worker opens the file), the batch and the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    /// The data set's name (`mnist-digits`, `parquet:PATH?label=COL&test=PATH2`, ...).
    pub source: String,
    pub features: usize,
    pub classes: usize,
    pub batch: usize,
    pub seed: u64,
}

/// A reader's outputs.
#[derive(Debug, Clone, Copy)]
pub struct InputBatch {
    /// `[batch, features]` f32.
    pub inputs: Output,
    /// `[batch, classes]` f32.
    pub one_hot: Output,
    /// `[batch]` i64.
    pub labels: Output,
}

/// A reader of part `shard` of `shards` of `spec`'s data set, on the current device (a
/// replica's worker). Its outputs can still be fed, so the same tower evaluates fed data.
pub fn read_batches(graph: &Graph, spec: &InputSpec, shard: usize, shards: usize) -> InputBatch {
    let op = ReadBatches {
        source: spec.source.clone(),
        shard,
        shards,
        batch: spec.batch,
        features: spec.features,
        classes: spec.classes,
        seed: spec.seed,
    };
    let node = graph.add_node(Arc::new(op), vec![], vec![], Some("read_batches"));
    InputBatch {
        inputs: node,
        one_hot: node.output(1),
        labels: node.output(2),
    }
}
