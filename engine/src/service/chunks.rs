//! Tensors as streams of [`RunStepChunk`]s: a `tensor` message (name, dtype, shape and the
//! first piece of the bytes), then `data` messages, every piece at most [`CHUNK_BYTES`].
//!
//! [`TensorChunks`] cuts tensors into chunks lazily, one piece at a time, so a large fetch is
//! never copied whole; [`Assembler`] checks a chunk sequence against the declared dtype and
//! shape and decodes it piece by piece, holding no more than the declared tensor needs.

use super::proto::{run_step_chunk::Part, RunStepChunk, TensorBegin};
use super::wire::{checked_shape, decode_elements, dtype_from_proto, dtype_to_proto};
use super::wire::{encode_elements, WireError};
use crate::tensor::{Buffer, DType, Tensor};
use std::collections::VecDeque;

/// The most tensor bytes one message carries.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Chunks of `lead` messages, then named tensors, then a `trail` message.
pub struct TensorChunks {
    lead: VecDeque<RunStepChunk>,
    tensors: VecDeque<(String, Tensor)>,
    /// The tensor being sent and the index of its next element.
    current: Option<(Tensor, usize)>,
    trail: Option<RunStepChunk>,
}

impl TensorChunks {
    pub fn new(
        lead: Vec<RunStepChunk>,
        tensors: Vec<(String, Tensor)>,
        trail: Option<RunStepChunk>,
    ) -> TensorChunks {
        TensorChunks {
            lead: lead.into(),
            tensors: tensors.into(),
            current: None,
            trail,
        }
    }

    /// The next piece of the current tensor: elements from `start`, at most a chunk's bytes.
    fn piece(tensor: &Tensor, start: usize) -> (Vec<u8>, usize) {
        let per_chunk = (CHUNK_BYTES / tensor.dtype().size()).max(1);
        let end = tensor.len().min(start.saturating_add(per_chunk));
        let mut bytes = Vec::with_capacity((end - start) * tensor.dtype().size());
        encode_elements(tensor.buffer(), start, end, &mut bytes);
        (bytes, end)
    }
}

impl Iterator for TensorChunks {
    type Item = RunStepChunk;

    fn next(&mut self) -> Option<RunStepChunk> {
        if let Some(chunk) = self.lead.pop_front() {
            return Some(chunk);
        }
        if let Some((tensor, start)) = self.current.take() {
            let (data, end) = TensorChunks::piece(&tensor, start);
            if end < tensor.len() {
                self.current = Some((tensor, end));
            }
            return Some(RunStepChunk {
                part: Some(Part::Data(data.into())),
            });
        }
        if let Some((name, tensor)) = self.tensors.pop_front() {
            let (data, end) = TensorChunks::piece(&tensor, 0);
            let begin = TensorBegin {
                name,
                dtype: dtype_to_proto(tensor.dtype()) as i32,
                shape: tensor
                    .shape()
                    .iter()
                    .map(|&d| i64::try_from(d).unwrap_or(i64::MAX))
                    .collect(),
                data: data.into(),
            };
            if end < tensor.len() {
                self.current = Some((tensor, end));
            }
            return Some(RunStepChunk {
                part: Some(Part::Tensor(begin)),
            });
        }
        self.trail.take()
    }
}

/// A tensor being received.
struct Partial {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
    /// Bytes the declared dtype and shape take, and bytes received so far.
    expected: usize,
    received: usize,
    buf: Buffer,
    /// The bytes of an element split between two pieces.
    carry: Vec<u8>,
}

/// Rebuilds tensors from `tensor` and `data` parts, checking sizes as they come.
#[derive(Default)]
pub struct Assembler {
    current: Option<Partial>,
    /// How many tensors were begun, to name them in errors.
    count: usize,
}

impl Assembler {
    /// Whether a tensor has begun and is not complete.
    pub fn in_progress(&self) -> bool {
        self.current.is_some()
    }

    /// Says what is missing if a tensor is incomplete: for a stream that ended too early.
    pub fn finish(&self) -> Result<(), WireError> {
        match &self.current {
            None => Ok(()),
            Some(p) => Err(WireError::new(
                format!("tensor '{}'", p.name),
                format!(
                    "the stream ended after {} of the {} bytes that a {} tensor of shape {:?} \
                     takes",
                    p.received, p.expected, p.dtype, p.shape
                ),
            )),
        }
    }

    /// Starts a tensor; returns it at once if its first piece completes it.
    pub fn begin(&mut self, begin: TensorBegin) -> Result<Option<(String, Tensor)>, WireError> {
        self.count += 1;
        let field = format!("tensor {} ('{}')", self.count, begin.name);
        if let Some(p) = &self.current {
            return Err(WireError::new(
                field,
                format!(
                    "begins while tensor '{}' has {} of its {} bytes",
                    p.name, p.received, p.expected
                ),
            ));
        }
        let dtype = dtype_from_proto(begin.dtype, &format!("{field}.dtype"))?;
        let (shape, expected) = checked_shape(&begin.shape, dtype, &format!("{field}.shape"))?;
        self.current = Some(Partial {
            name: begin.name,
            dtype,
            shape,
            expected,
            received: 0,
            buf: Buffer::zeros(dtype, 0),
            carry: Vec::new(),
        });
        self.data(&begin.data)
    }

    /// The next piece of the current tensor; returns the tensor once complete.
    pub fn data(&mut self, bytes: &[u8]) -> Result<Option<(String, Tensor)>, WireError> {
        let Some(p) = self.current.as_mut() else {
            return Err(WireError::new(
                "data",
                format!(
                    "a piece of {} bytes came with no tensor begun (a `tensor` message must \
                     come first)",
                    bytes.len()
                ),
            ));
        };
        let field = format!("tensor '{}'", p.name);
        if bytes.len() > CHUNK_BYTES {
            return Err(WireError::new(
                field,
                format!(
                    "a piece of {} bytes is over the {CHUNK_BYTES} bytes (1 MiB) a chunk may hold",
                    bytes.len()
                ),
            ));
        }
        if bytes.len() > p.expected - p.received {
            return Err(WireError::new(
                field,
                format!(
                    "its pieces hold more than the {} bytes that a {} tensor of shape {:?} takes",
                    p.expected, p.dtype, p.shape
                ),
            ));
        }
        p.received += bytes.len();
        let size = p.dtype.size();
        let total = p.expected / size;
        let mut rest: &[u8] = bytes;
        if !p.carry.is_empty() {
            let need = (size - p.carry.len()).min(rest.len());
            p.carry.extend_from_slice(&rest[..need]);
            rest = &rest[need..];
            if p.carry.len() == size {
                decode_elements(&mut p.buf, &p.carry, total)
                    .map_err(|m| WireError::new(field.clone(), m))?;
                p.carry.clear();
            }
        }
        let whole = rest.len() / size * size;
        decode_elements(&mut p.buf, &rest[..whole], total)
            .map_err(|m| WireError::new(field.clone(), m))?;
        p.carry.extend_from_slice(&rest[whole..]);
        if p.received < p.expected {
            return Ok(None);
        }
        let Some(p) = self.current.take() else {
            return Ok(None);
        };
        let tensor = Tensor::from_buffer(&p.shape, p.buf)
            .map_err(|e| WireError::new(field, e.to_string()))?;
        Ok(Some((p.name, tensor)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(tensors: Vec<(String, Tensor)>) -> Vec<Part> {
        TensorChunks::new(vec![], tensors, None)
            .map(|c| c.part.unwrap())
            .collect()
    }

    fn assemble(parts: Vec<Part>) -> Result<Vec<(String, Tensor)>, WireError> {
        let mut a = Assembler::default();
        let mut out = Vec::new();
        for part in parts {
            let done = match part {
                Part::Tensor(b) => a.begin(b)?,
                Part::Data(d) => a.data(&d)?,
                _ => panic!("unexpected part"),
            };
            out.extend(done);
        }
        a.finish()?;
        Ok(out)
    }

    #[test]
    fn large_and_small_tensors_round_trip() {
        let big: Vec<f32> = (0..700_000).map(|i| i as f32 * 0.5).collect();
        let tensors = vec![
            ("a".to_string(), Tensor::new(&[1000, 700], big).unwrap()),
            ("b".to_string(), Tensor::scalar(3i64)),
            ("c".to_string(), Tensor::zeros(DType::F64, &[0])),
            ("d".to_string(), Tensor::from_vec(vec![true; 3_000_000])),
        ];
        let p = parts(tensors.clone());
        // 2.8 MB of f32 in 3 pieces, one for the scalar, one for the empty, 3 for the bools.
        assert_eq!(p.len(), 3 + 1 + 1 + 3);
        assert_eq!(assemble(p).unwrap(), tensors);
    }

    #[test]
    fn pieces_may_split_elements() {
        let t = Tensor::from_vec(vec![1.0f64, -2.0, 3.5]);
        let mut bytes = Vec::new();
        encode_elements(t.buffer(), 0, 3, &mut bytes);
        let begin = TensorBegin {
            name: "x".into(),
            dtype: dtype_to_proto(DType::F64) as i32,
            shape: vec![3],
            data: bytes[..5].to_vec().into(),
        };
        let got = assemble(vec![
            Part::Tensor(begin),
            Part::Data(bytes[5..13].to_vec().into()),
            Part::Data(bytes[13..].to_vec().into()),
        ])
        .unwrap();
        assert_eq!(got[0].1, t);
    }

    #[test]
    fn inconsistent_streams_are_named() {
        let begin = |shape: Vec<i64>, data: Vec<u8>| {
            Part::Tensor(TensorBegin {
                name: "x".into(),
                dtype: dtype_to_proto(DType::F32) as i32,
                shape,
                data: data.into(),
            })
        };
        let short = assemble(vec![begin(vec![2], vec![0; 4])]).unwrap_err();
        assert!(
            short.to_string().contains("ended after 4 of the 8 bytes"),
            "{short}"
        );
        let long = assemble(vec![
            begin(vec![2], vec![0; 4]),
            Part::Data(vec![0; 8].into()),
        ]);
        assert!(long.unwrap_err().to_string().contains("more than the 8"));
        let orphan = assemble(vec![Part::Data(vec![1].into())]).unwrap_err();
        assert!(orphan.to_string().contains("no tensor begun"), "{orphan}");
        let huge = assemble(vec![begin(vec![1 << 20, 1 << 11], vec![])]).unwrap_err();
        assert!(huge.too_large, "{huge}");
        let fat = assemble(vec![
            begin(vec![1 << 20], vec![]),
            Part::Data(vec![0; CHUNK_BYTES + 4].into()),
        ]);
        assert!(fat.unwrap_err().to_string().contains("1 MiB"));
        let overlap = assemble(vec![begin(vec![2], vec![0; 4]), begin(vec![1], vec![])]);
        assert!(overlap.unwrap_err().to_string().contains("begins while"));
    }
}
