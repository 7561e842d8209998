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
    batch_size: usize,
    order: Vec<usize>,
    position: usize,
    rng: ChaCha8Rng,
    /// The last batch handed out, whose storage is reused once the caller has let it go:
    /// a training loop then touches the same warm memory every step.
    previous: Option<Batch>,
}

impl<'a> Batches<'a> {
    pub(crate) fn new(data: &'a Dataset, batch_size: usize, seed: u64) -> Self {
        let mut batches = Batches {
            data,
            batch_size: batch_size.clamp(1, data.len().max(1)),
            order: (0..data.len()).collect(),
            position: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            previous: None,
        };
        batches.shuffle();
        batches
    }

    fn shuffle(&mut self) {
        // Fisher-Yates.
        for i in (1..self.order.len()).rev() {
            let j = (self.rng.next_u64() % (i as u64 + 1)) as usize;
            self.order.swap(i, j);
        }
        self.position = 0;
    }
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.data.is_empty() {
            return None;
        }
        if self.position + self.batch_size > self.order.len() {
            self.shuffle();
        }
        let rows = &self.order[self.position..self.position + self.batch_size];
        self.position += self.batch_size;
        let (inputs, one_hot) = match self.previous.take() {
            Some(b) => (reclaim(b.inputs), reclaim(b.one_hot)),
            None => (Vec::new(), Vec::new()),
        };
        let batch = Batch {
            inputs: self.data.gather_inputs_into(rows, inputs),
            one_hot: self.data.gather_one_hot_into(rows, one_hot),
            labels: Tensor::from_vec(
                rows.iter()
                    .map(|&r| self.data.labels[r] as i64)
                    .collect::<Vec<_>>(),
            ),
        };
        self.previous = Some(batch.clone());
        Some(batch)
    }
}

/// The storage of a tensor nobody else holds any more, or a new vector.
fn reclaim(t: Tensor) -> Vec<f32> {
    match t.into_buffer() {
        Some(crate::tensor::Buffer::F32(v)) => v,
        _ => Vec::new(),
    }
}
