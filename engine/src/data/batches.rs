//! Shuffled mini-batches.

use super::Dataset;
use crate::tensor::Tensor;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One mini-batch: inputs `[n, features]`, one-hot labels `[n, classes]`, class indices `[n]`.
#[derive(Debug, Clone)]
pub struct Batch {
    pub inputs: Tensor,
    pub one_hot: Tensor,
    pub labels: Tensor,
}

/// Endless mini-batches: each epoch visits every example once in a fresh seeded order; a
/// batch never spans two epochs (the last short one of an epoch is dropped).
pub struct Batches<'a> {
    data: &'a Dataset,
    order: EpochOrder,
    /// The last batch handed out, whose storage is reused once the caller has let it go:
    /// a training loop then touches the same warm memory every step.
    previous: Option<Batch>,
}

impl<'a> Batches<'a> {
    pub(crate) fn new(data: &'a Dataset, batch_size: usize, seed: u64) -> Self {
        let batch_size = batch_size.clamp(1, data.len().max(1));
        Batches {
            data,
            order: EpochOrder::new(data.len(), batch_size, seed),
            previous: None,
        }
    }
}

/// The rows of endless batches: every epoch a fresh seeded permutation (Fisher-Yates),
/// walked a batch at a time; the short tail of an epoch is dropped.
#[derive(Debug, Clone)]
pub(crate) struct EpochOrder {
    order: Vec<usize>,
    position: usize,
    batch: usize,
    rng: ChaCha8Rng,
}

impl EpochOrder {
    /// `batch` must be between 1 and `rows` for [`EpochOrder::next`] to give rows.
    pub(crate) fn new(rows: usize, batch: usize, seed: u64) -> EpochOrder {
        let mut order = EpochOrder {
            order: (0..rows).collect(),
            position: 0,
            batch,
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        order.shuffle();
        order
    }

    fn shuffle(&mut self) {
        for i in (1..self.order.len()).rev() {
            let j = (self.rng.next_u64() % (i as u64 + 1)) as usize;
            self.order.swap(i, j);
        }
        self.position = 0;
    }

    /// The next batch's rows (none when there are fewer rows than a batch).
    pub(crate) fn next(&mut self) -> Option<&[usize]> {
        if self.batch == 0 || self.batch > self.order.len() {
            return None;
        }
        if self.position + self.batch > self.order.len() {
            self.shuffle();
        }
        let rows = &self.order[self.position..self.position + self.batch];
        self.position += self.batch;
        Some(rows)
    }
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let previous = self.previous.take();
        let batch = self.data.batch_of(self.order.next()?, previous);
        self.previous = Some(batch.clone());
        Some(batch)
    }
}

impl Dataset {
    /// The batch of `rows`, in storage reclaimed from `previous` where nobody holds it.
    pub(crate) fn batch_of(&self, rows: &[usize], previous: Option<Batch>) -> Batch {
        let (inputs, one_hot) = match previous {
            Some(b) => (reclaim(b.inputs), reclaim(b.one_hot)),
            None => (Vec::new(), Vec::new()),
        };
        Batch {
            inputs: self.gather_inputs_into(rows, inputs),
            one_hot: self.gather_one_hot_into(rows, one_hot),
            labels: Tensor::from_vec(
                rows.iter()
                    .map(|&r| self.labels[r] as i64)
                    .collect::<Vec<_>>(),
            ),
        }
    }
}

/// The storage of a tensor nobody else holds any more, or a new vector.
fn reclaim(t: Tensor) -> Vec<f32> {
    match t.into_buffer() {
        Some(crate::tensor::Buffer::F32(v)) => v,
        _ => Vec::new(),
    }
}
