//! Precision on the wire: a float tensor may cross between workers as f32, bf16, f16 or int8
//! with one scale per tensor; other dtypes always travel as they are.

use crate::service::proto::WirePrecision;
use crate::service::wire::{decode_elements, encode_elements};
use crate::tensor::{Buffer, DType, Tensor};
use half::{bf16, f16};

/// A tensor's payload in some precision, with what decoding needs.
pub struct Encoded {
    pub precision: WirePrecision,
    pub scale: f32,
    pub bytes: Vec<u8>,
}

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

/// Encodes `t`: f32 tensors in `precision`, everything else raw.
pub fn encode(t: &Tensor, precision: WirePrecision) -> Encoded {
    let raw = |t: &Tensor| {
        let mut bytes = Vec::with_capacity(t.len() * t.dtype().size());
        encode_elements(t.buffer(), 0, t.len(), &mut bytes);
        Encoded {
            precision: WirePrecision::WireF32,
            scale: 1.0,
            bytes,
        }
    };
    let Ok(values) = t.as_slice::<f32>() else {
        return raw(t);
    };
    match precision {
        WirePrecision::WireF32 => raw(t),
        WirePrecision::WireBf16 => Encoded {
            precision,
            scale: 1.0,
            bytes: values
                .iter()
                .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
                .collect(),
        },
        WirePrecision::WireF16 => Encoded {
            precision,
            scale: 1.0,
            bytes: values
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect(),
        },
        WirePrecision::WireInt8 => {
            let max = values
                .iter()
                .filter(|v| v.is_finite())
                .fold(0.0f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            Encoded {
                precision,
                scale,
                bytes: values
                    .iter()
                    .map(|&v| (v / scale).round().clamp(-127.0, 127.0) as i8 as u8)
                    .collect(),
            }
        }
    }
}

/// Decodes a payload back into a tensor of `dtype` and `shape`.
pub fn decode(
    dtype: DType,
    shape: &[usize],
    precision: WirePrecision,
    scale: f32,
    bytes: &[u8],
) -> Result<Tensor, String> {
    let count: usize = shape.iter().product();
    let width = match (dtype, precision) {
        (DType::F32, WirePrecision::WireBf16 | WirePrecision::WireF16) => 2,
        (DType::F32, WirePrecision::WireInt8) => 1,
        _ => dtype.size(),
    };
    if bytes.len() != count * width {
        return Err(format!(
            "{} bytes arrived for {count} elements of {width} byte(s)",
            bytes.len()
        ));
    }
    let buf = match (dtype, precision) {
        (DType::F32, WirePrecision::WireBf16) => Buffer::F32(
            bytes
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        ),
        (DType::F32, WirePrecision::WireF16) => Buffer::F32(
            bytes
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        ),
        (DType::F32, WirePrecision::WireInt8) => {
            Buffer::F32(bytes.iter().map(|&b| b as i8 as f32 * scale).collect())
        }
        _ => {
            let mut buf = Buffer::zeros(dtype, 0);
            decode_elements(&mut buf, bytes, count)?;
            buf
        }
    };
    Tensor::from_buffer(shape, buf).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let e = encode(&t, p);
            assert_eq!(e.bytes.len(), bytes, "{}", name(p));
            let back = decode(DType::F32, &[10, 100], e.precision, e.scale, &e.bytes).unwrap();
            let back = back.to_vec::<f32>().unwrap();
            let worst = values
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst <= tolerance, "{}: {worst}", name(p));
        }
        // Integers travel as they are, whatever was asked.
        let ints = Tensor::from_vec(vec![1i64, -2, 3]);
        let e = encode(&ints, WirePrecision::WireInt8);
        assert_eq!(e.precision, WirePrecision::WireF32);
        let back = decode(DType::I64, &[3], e.precision, e.scale, &e.bytes).unwrap();
        assert_eq!(back, ints);
        assert!(parse("fp8").is_err());
    }
}
