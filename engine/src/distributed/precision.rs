//! Precision on the wire: a float tensor may cross between workers as f32, bf16, f16 or int8
//! with one scale per tensor; other dtypes always travel as they are.

use crate::service::proto::WirePrecision;
use crate::service::wire::{decode_elements, encode_elements};
use crate::tensor::{element_count, Buffer, DType, MemoryBudget, Tensor};
use half::{bf16, f16};

/// Parses the precision attribute of a `_Recv` node.
pub fn parse(text: &str) -> Result<WirePrecision, String> {
    match text {
        "f32" | "" => Ok(WirePrecision::WireF32),
        "bf16" => Ok(WirePrecision::WireBf16),
        "f16" => Ok(WirePrecision::WireF16),
        "int8" => Ok(WirePrecision::WireInt8),
        other => Err(format!(
            "unknown wire precision '{other}': use f32, bf16, f16 or int8"
        )),
    }
}

pub fn name(precision: WirePrecision) -> &'static str {
    match precision {
        WirePrecision::WireF32 => "f32",
        WirePrecision::WireBf16 => "bf16",
        WirePrecision::WireF16 => "f16",
        WirePrecision::WireInt8 => "int8",
    }
}

/// The precision a tensor actually travels in: floats of f32 as asked, the rest as they are.
fn effective(t: &Tensor, asked: WirePrecision) -> WirePrecision {
    if t.dtype() == DType::F32 {
        asked
    } else {
        WirePrecision::WireF32
    }
}

/// The size in bytes of `t` on the wire when `asked` is asked for, without encoding it.
pub fn wire_bytes(t: &Tensor, asked: WirePrecision) -> usize {
    t.len() * width(t.dtype(), effective(t, asked))
}

fn width(dtype: DType, precision: WirePrecision) -> usize {
    match (dtype, precision) {
        (DType::F32, WirePrecision::WireBf16 | WirePrecision::WireF16) => 2,
        (DType::F32, WirePrecision::WireInt8) => 1,
        _ => dtype.size(),
    }
}

/// A tensor's payload, produced piece by piece as the stream is read, so encoding one
/// piece overlaps sending the one before.
pub struct Encoder {
    tensor: Tensor,
    pub precision: WirePrecision,
    pub scale: f32,
    /// Elements per piece.
    step: usize,
    next: usize,
}

impl Encoder {
    /// Pieces of at most `piece_bytes` bytes of `t` in `asked` precision.
    pub fn new(t: &Tensor, asked: WirePrecision, piece_bytes: usize) -> Encoder {
        let precision = effective(t, asked);
        let scale = match (precision, t.as_slice::<f32>()) {
            (WirePrecision::WireInt8, Ok(values)) => {
                let max = (values.iter())
                    .filter(|v| v.is_finite())
                    .fold(0.0f32, |m, v| m.max(v.abs()));
                if max > 0.0 {
                    max / 127.0
                } else {
                    1.0
                }
            }
            _ => 1.0,
        };
        Encoder {
            step: (piece_bytes / width(t.dtype(), precision)).max(1),
            tensor: t.clone(),
            precision,
            scale,
            next: 0,
        }
    }

    /// The tensor being encoded.
    pub fn tensor(&self) -> &Tensor {
        &self.tensor
    }

    /// The payload's size in bytes.
    pub fn wire_bytes(&self) -> usize {
        self.tensor.len() * width(self.tensor.dtype(), self.precision)
    }
}

impl Iterator for Encoder {
    type Item = bytes::Bytes;

    fn next(&mut self) -> Option<bytes::Bytes> {
        let (start, len) = (self.next, self.tensor.len());
        if start >= len {
            return None;
        }
        let end = (start + self.step).min(len);
        self.next = end;
        let mut out =
            Vec::with_capacity((end - start) * width(self.tensor.dtype(), self.precision));
        match (self.precision, self.tensor.as_slice::<f32>()) {
            (WirePrecision::WireBf16, Ok(v)) => out.extend(
                v[start..end]
                    .iter()
                    .flat_map(|&x| bf16::from_f32(x).to_le_bytes()),
            ),
            (WirePrecision::WireF16, Ok(v)) => out.extend(
                v[start..end]
                    .iter()
                    .flat_map(|&x| f16::from_f32(x).to_le_bytes()),
            ),
            (WirePrecision::WireInt8, Ok(v)) => {
                let scale = self.scale;
                out.extend(
                    v[start..end]
                        .iter()
                        .map(|&x| (x / scale).round().clamp(-127.0, 127.0) as i8 as u8),
                )
            }
            _ => encode_elements(self.tensor.buffer(), start, end, &mut out),
        }
        Some(out.into())
    }
}

/// Rebuilds a tensor from its pieces as they arrive.
pub struct Decoder {
    dtype: DType,
    shape: Vec<usize>,
    precision: WirePrecision,
    scale: f32,
    count: usize,
    buf: Buffer,
}

impl Decoder {
    /// A decoder for a `dtype` tensor of `shape` (a peer's header says so: checked against
    /// `budget` before any memory is set aside, and that memory is reserved fallibly).
    pub fn new(
        dtype: DType,
        shape: &[usize],
        precision: WirePrecision,
        scale: f32,
        budget: MemoryBudget,
    ) -> Result<Decoder, String> {
        budget.check(dtype, shape).map_err(|e| e.to_string())?;
        let count = element_count(shape).ok_or("the shape's element count overflows")?;
        let buf = match (dtype, precision) {
            (
                DType::F32,
                WirePrecision::WireBf16 | WirePrecision::WireF16 | WirePrecision::WireInt8,
            ) => {
                let mut v = Vec::new();
                v.try_reserve_exact(count)
                    .map_err(|e| format!("cannot set aside {count} f32 elements: {e}"))?;
                Buffer::F32(v)
            }
            _ => Buffer::zeros(dtype, 0),
        };
        Ok(Decoder {
            dtype,
            shape: shape.to_vec(),
            precision,
            scale,
            count,
            buf,
        })
    }

    /// The payload's size in bytes, for checking the header.
    pub fn wire_bytes(&self) -> usize {
        self.count * width(self.dtype, self.precision)
    }

    /// Adds a piece: whole elements only, never past the tensor's size.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), String> {
        let w = width(self.dtype, self.precision);
        if !bytes.len().is_multiple_of(w) || self.buf.len() + bytes.len() / w > self.count {
            return Err(format!(
                "a piece of {} bytes does not fit: {} of {} elements of {w} byte(s) arrived",
                bytes.len(),
                self.buf.len(),
                self.count
            ));
        }
        match (&mut self.buf, self.precision) {
            (Buffer::F32(v), WirePrecision::WireBf16) => v.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()),
            ),
            (Buffer::F32(v), WirePrecision::WireF16) => v.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
            ),
            (Buffer::F32(v), WirePrecision::WireInt8) => {
                let scale = self.scale;
                v.extend(bytes.iter().map(|&b| b as i8 as f32 * scale))
            }
            (buf, _) => decode_elements(buf, bytes, self.count)?,
        }
        Ok(())
    }

    /// Reads the whole payload from `reader`: straight into the tensor's memory when the
    /// wire form is the memory form (f32 as is, little-endian host), else piece by piece.
    pub fn read_from(mut self, reader: &mut impl std::io::Read) -> std::io::Result<Tensor> {
        let direct = self.precision == WirePrecision::WireF32
            && cfg!(target_endian = "little")
            && self.dtype != DType::Bool
            && self.buf.is_empty();
        if direct {
            let mut buf =
                Buffer::try_zeros(self.dtype, self.count).map_err(std::io::Error::other)?;
            let bytes: &mut [u8] = match &mut buf {
                Buffer::F32(v) => bytemuck::cast_slice_mut(v),
                Buffer::F64(v) => bytemuck::cast_slice_mut(v),
                Buffer::I32(v) => bytemuck::cast_slice_mut(v),
                Buffer::I64(v) => bytemuck::cast_slice_mut(v),
                Buffer::U8(v) => v,
                Buffer::Bool(_) => &mut [],
            };
            reader.read_exact(bytes)?;
            return Tensor::from_buffer(&self.shape, buf).map_err(std::io::Error::other);
        }
        let w = width(self.dtype, self.precision);
        let mut left = self.wire_bytes();
        let mut piece = vec![0u8; left.min((4 << 20) / w * w)];
        while left > 0 {
            let n = left.min(piece.len());
            reader.read_exact(&mut piece[..n])?;
            self.push(&piece[..n]).map_err(std::io::Error::other)?;
            left -= n;
        }
        self.finish().map_err(std::io::Error::other)
    }

    pub fn finish(self) -> Result<Tensor, String> {
        if self.buf.len() != self.count {
            return Err(format!(
                "{} of {} elements arrived",
                self.buf.len(),
                self.count
            ));
        }
        Tensor::from_buffer(&self.shape, self.buf).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNLIMITED: MemoryBudget = MemoryBudget::unlimited();

    #[test]
    fn a_header_past_the_budget_reserves_nothing() {
        let budget = MemoryBudget::new(1 << 20);
        let err = Decoder::new(DType::F32, &[1 << 38], WirePrecision::WireBf16, 1.0, budget);
        assert!(err.is_err_and(|e| e.contains("memory budget")));
        let wraps = Decoder::new(
            DType::F64,
            &[1 << 40, 1 << 40],
            WirePrecision::WireF32,
            1.0,
            UNLIMITED,
        );
        assert!(wraps.is_err());
    }

    #[test]
    fn each_precision_round_trips_within_its_resolution() {
        let values: Vec<f32> = (0..1000).map(|i| ((i as f32) * 0.37).sin() * 3.0).collect();
        let t = Tensor::new(&[10, 100], values.clone()).unwrap();
        for (p, bytes, tolerance) in [
            (WirePrecision::WireF32, 4000, 0.0),
            (WirePrecision::WireBf16, 2000, 3.0 / 128.0),
            (WirePrecision::WireF16, 2000, 3.0 / 1024.0),
            (WirePrecision::WireInt8, 1000, 3.0 / 127.0 / 2.0 + 1e-6),
        ] {
            // Pieces of 300 bytes: whole elements in each, whatever the width.
            let e = Encoder::new(&t, p, 300);
            assert_eq!(e.wire_bytes(), bytes, "{}", name(p));
            let mut d =
                Decoder::new(DType::F32, &[10, 100], e.precision, e.scale, UNLIMITED).unwrap();
            let pieces: Vec<_> = e.collect();
            assert_eq!(pieces.iter().map(|b| b.len()).sum::<usize>(), bytes);
            for piece in &pieces {
                d.push(piece).unwrap();
            }
            let back = d.finish().unwrap().to_vec::<f32>().unwrap();
            let worst = values
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst <= tolerance, "{}: {worst}", name(p));
        }
        // Integers travel as they are, whatever was asked.
        let ints = Tensor::from_vec(vec![1i64, -2, 3]);
        let e = Encoder::new(&ints, WirePrecision::WireInt8, 1 << 20);
        assert_eq!(e.precision, WirePrecision::WireF32);
        let mut d = Decoder::new(DType::I64, &[3], e.precision, e.scale, UNLIMITED).unwrap();
        for piece in e {
            d.push(&piece).unwrap();
        }
        assert_eq!(d.finish().unwrap(), ints);
        // A piece that splits an element, or one too many, is refused.
        let mut d = Decoder::new(DType::F32, &[2], WirePrecision::WireF32, 1.0, UNLIMITED).unwrap();
        assert!(d.push(&[0, 0, 0]).is_err());
        assert!(d.push(&[0; 12]).is_err());
        assert!(parse("fp8").is_err());
    }
}
