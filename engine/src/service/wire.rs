//! Engine values and their protobuf form: dtypes, tensors (raw little-endian bytes), graph
//! definitions. Every decoding error names the field it found wrong.

use super::proto;
use crate::graph::{AttrValue, GraphDef, NodeDef, Shape};
use crate::tensor::{Buffer, DType, Tensor};
use thiserror::Error;

/// The most bytes one tensor may declare; more is refused before anything is allocated.
pub const MAX_TENSOR_BYTES: u64 = 4 << 30;

/// What was wrong with a message: `field` says where.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{field}: {message}")]
pub struct WireError {
    pub field: String,
    pub message: String,
    /// The value is well formed but larger than the engine accepts.
    pub too_large: bool,
}

impl WireError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> WireError {
        WireError {
            field: field.into(),
            message: message.into(),
            too_large: false,
        }
    }

    fn too_large(field: impl Into<String>, message: impl Into<String>) -> WireError {
        WireError {
            too_large: true,
            ..WireError::new(field, message)
        }
    }
}

pub fn dtype_to_proto(dtype: DType) -> proto::DataType {
    match dtype {
        DType::F32 => proto::DataType::DtFloat,
        DType::F64 => proto::DataType::DtDouble,
        DType::I32 => proto::DataType::DtInt32,
        DType::I64 => proto::DataType::DtInt64,
        DType::U8 => proto::DataType::DtUint8,
        DType::Bool => proto::DataType::DtBool,
    }
}

pub fn dtype_from_proto(value: i32, field: &str) -> Result<DType, WireError> {
    match proto::DataType::try_from(value) {
        Ok(proto::DataType::DtFloat) => Ok(DType::F32),
        Ok(proto::DataType::DtDouble) => Ok(DType::F64),
        Ok(proto::DataType::DtInt32) => Ok(DType::I32),
        Ok(proto::DataType::DtInt64) => Ok(DType::I64),
        Ok(proto::DataType::DtUint8) => Ok(DType::U8),
        Ok(proto::DataType::DtBool) => Ok(DType::Bool),
        Ok(proto::DataType::DtInvalid) => Err(WireError::new(field, "dtype is not set")),
        Err(_) => Err(WireError::new(
            field,
            format!("dtype {value} is not one the engine has (f32, f64, i32, i64, u8, bool)"),
        )),
    }
}

/// A concrete shape from the wire and the bytes its elements take, refusing negative
/// dimensions and anything over [`MAX_TENSOR_BYTES`].
pub fn checked_shape(
    dims: &[i64],
    dtype: DType,
    field: &str,
) -> Result<(Vec<usize>, usize), WireError> {
    let mut shape = Vec::with_capacity(dims.len());
    let mut bytes: u64 = dtype.size() as u64;
    for &d in dims {
        let d = u64::try_from(d).map_err(|_| {
            WireError::new(field, format!("shape {dims:?} has a negative dimension"))
        })?;
        bytes = bytes.saturating_mul(d);
        shape.push(d);
    }
    if bytes > MAX_TENSOR_BYTES {
        return Err(WireError::too_large(
            field,
            format!(
                "a {dtype} tensor of shape {dims:?} would take {bytes} bytes, over the limit of \
                 {MAX_TENSOR_BYTES} bytes (4 GiB) for one tensor"
            ),
        ));
    }
    let shape = shape
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| WireError::new(field, "dimension too large")))
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = usize::try_from(bytes).map_err(|_| WireError::new(field, "tensor too large"))?;
    Ok((shape, bytes))
}

fn dims_to_proto(dims: &[usize]) -> Vec<i64> {
    dims.iter()
        .map(|&d| i64::try_from(d).unwrap_or(i64::MAX))
        .collect()
}

/// Appends the little-endian bytes of `items` to `out`: a copy, on little-endian machines.
fn put_le<T: bytemuck::Pod>(items: &[T], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(bytemuck::cast_slice(items));
    if cfg!(target_endian = "big") {
        let size = std::mem::size_of::<T>();
        out[start..]
            .chunks_exact_mut(size)
            .for_each(<[u8]>::reverse);
    }
}

/// Appends the elements whose little-endian bytes are `bytes` (whole elements only) to `v`,
/// growing it towards `total` elements at most rather than doubling past them.
fn take_le<T: bytemuck::Pod>(v: &mut Vec<T>, bytes: &[u8], total: usize) {
    let size = std::mem::size_of::<T>();
    let adding = bytes.len() / size;
    grow(v, adding, total);
    let old = v.len();
    v.resize(old + adding, T::zeroed());
    let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut v[old..]);
    dst.copy_from_slice(&bytes[..adding * size]);
    if cfg!(target_endian = "big") {
        dst.chunks_exact_mut(size).for_each(<[u8]>::reverse);
    }
}

fn grow<T>(v: &mut Vec<T>, adding: usize, total: usize) {
    if v.capacity() - v.len() < adding {
        let want = v.capacity().max(adding).max(1 << 16);
        v.reserve_exact(want.min(total.saturating_sub(v.len())).max(adding));
    }
}

/// Appends the little-endian bytes of elements `start..end` of `buf` to `out`.
pub fn encode_elements(buf: &Buffer, start: usize, end: usize, out: &mut Vec<u8>) {
    match buf {
        Buffer::F32(v) => put_le(v.get(start..end).unwrap_or_default(), out),
        Buffer::F64(v) => put_le(v.get(start..end).unwrap_or_default(), out),
        Buffer::I32(v) => put_le(v.get(start..end).unwrap_or_default(), out),
        Buffer::I64(v) => put_le(v.get(start..end).unwrap_or_default(), out),
        Buffer::U8(v) => put_le(v.get(start..end).unwrap_or_default(), out),
        Buffer::Bool(v) => {
            if let Some(items) = v.get(start..end) {
                out.extend(items.iter().map(|&b| u8::from(b)));
            }
        }
    }
}

/// Appends whole elements decoded from `bytes` (a multiple of the element size) to `buf`,
/// growing it towards `total` elements at most.
pub fn decode_elements(buf: &mut Buffer, bytes: &[u8], total: usize) -> Result<(), String> {
    match buf {
        Buffer::F32(v) => take_le(v, bytes, total),
        Buffer::F64(v) => take_le(v, bytes, total),
        Buffer::I32(v) => take_le(v, bytes, total),
        Buffer::I64(v) => take_le(v, bytes, total),
        Buffer::U8(v) => take_le(v, bytes, total),
        Buffer::Bool(v) => {
            if let Some(bad) = bytes.iter().find(|&&b| b > 1) {
                return Err(format!("a bool element is byte {bad}, not 0 or 1"));
            }
            grow(v, bytes.len(), total);
            v.extend(bytes.iter().map(|&b| b == 1));
        }
    }
    Ok(())
}

pub fn tensor_to_proto(t: &Tensor) -> proto::TensorProto {
    let mut content = Vec::new();
    encode_elements(t.buffer(), 0, t.len(), &mut content);
    proto::TensorProto {
        dtype: dtype_to_proto(t.dtype()) as i32,
        shape: dims_to_proto(t.shape()),
        content: content.into(),
    }
}

pub fn tensor_from_proto(p: &proto::TensorProto, field: &str) -> Result<Tensor, WireError> {
    let dtype = dtype_from_proto(p.dtype, &format!("{field}.dtype"))?;
    let (shape, bytes) = checked_shape(&p.shape, dtype, &format!("{field}.shape"))?;
    if p.content.len() != bytes {
        return Err(WireError::new(
            format!("{field}.content"),
            format!(
                "holds {} bytes, but a {dtype} tensor of shape {shape:?} takes {bytes}",
                p.content.len()
            ),
        ));
    }
    let elements = bytes / dtype.size();
    let mut buf = Buffer::zeros(dtype, 0);
    decode_elements(&mut buf, &p.content, elements)
        .map_err(|m| WireError::new(format!("{field}.content"), m))?;
    Tensor::from_buffer(&shape, buf).map_err(|e| WireError::new(field, e.to_string()))
}

fn attr_to_proto(value: &AttrValue) -> proto::AttrValue {
    use proto::attr_value::{FloatList, IntList, StringList, Value};
    let value = match value {
        AttrValue::Bool(b) => Value::B(*b),
        AttrValue::Int(i) => Value::I(*i),
        AttrValue::Float(f) => Value::F(*f),
        AttrValue::Ints(v) => Value::Ints(IntList { value: v.clone() }),
        AttrValue::Floats(v) => Value::Floats(FloatList { value: v.clone() }),
        AttrValue::Str(s) => Value::S(s.clone()),
        AttrValue::Strs(v) => Value::Strs(StringList { value: v.clone() }),
        AttrValue::DType(d) => Value::Dtype(dtype_to_proto(*d) as i32),
        AttrValue::Shape(s) => Value::Shape(proto::ShapeProto {
            dim: s
                .dims()
                .iter()
                .map(|d| d.map_or(-1, |d| i64::try_from(d).unwrap_or(i64::MAX)))
                .collect(),
        }),
        AttrValue::Tensor(t) => Value::Tensor(tensor_to_proto(t)),
    };
    proto::AttrValue { value: Some(value) }
}

fn attr_from_proto(p: &proto::AttrValue, field: &str) -> Result<AttrValue, WireError> {
    use proto::attr_value::Value;
    Ok(match &p.value {
        None => return Err(WireError::new(field, "the attribute holds no value")),
        Some(Value::B(b)) => AttrValue::Bool(*b),
        Some(Value::I(i)) => AttrValue::Int(*i),
        Some(Value::F(f)) => AttrValue::Float(*f),
        Some(Value::Ints(v)) => AttrValue::Ints(v.value.clone()),
        Some(Value::Floats(v)) => AttrValue::Floats(v.value.clone()),
        Some(Value::S(s)) => AttrValue::Str(s.clone()),
        Some(Value::Strs(v)) => AttrValue::Strs(v.value.clone()),
        Some(Value::Dtype(d)) => AttrValue::DType(dtype_from_proto(*d, field)?),
        Some(Value::Shape(s)) => {
            if let Some(bad) = s.dim.iter().find(|&&d| d < -1) {
                return Err(WireError::new(
                    field,
                    format!("shape dimension {bad}: use -1 for an unknown dimension"),
                ));
            }
            AttrValue::Shape(Shape::from_dims(&s.dim))
        }
        Some(Value::Tensor(t)) => AttrValue::Tensor(tensor_from_proto(t, field)?),
    })
}

pub fn graph_def_to_proto(def: &GraphDef) -> proto::GraphDef {
    proto::GraphDef {
        node: def
            .nodes
            .iter()
            .map(|n| proto::NodeDef {
                name: n.name.clone(),
                op: n.op.clone(),
                input: n.inputs.clone(),
                device: n.device.clone(),
                attr: n
                    .attrs
                    .iter()
                    .map(|(k, v)| (k.clone(), attr_to_proto(v)))
                    .collect(),
            })
            .collect(),
        seed: def.seed,
    }
}

/// A graph definition from the wire; `field` names where it sits (`graph_def`).
pub fn graph_def_from_proto(p: &proto::GraphDef, field: &str) -> Result<GraphDef, WireError> {
    let nodes = p
        .node
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let attrs = n
                .attr
                .iter()
                .map(|(k, v)| {
                    let at = format!("{field}.node[{i}] ('{}').attr['{k}']", n.name);
                    Ok((k.clone(), attr_from_proto(v, &at)?))
                })
                .collect::<Result<_, WireError>>()?;
            Ok(NodeDef {
                name: n.name.clone(),
                op: n.op.clone(),
                inputs: n.input.clone(),
                device: n.device.clone(),
                attrs,
            })
        })
        .collect::<Result<Vec<_>, WireError>>()?;
    Ok(GraphDef {
        nodes,
        seed: p.seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_round_trip_in_every_dtype() {
        let tensors = [
            Tensor::new(&[2, 2], vec![1.5f32, -2.0, 0.0, 3.25]).unwrap(),
            Tensor::from_vec(vec![1e300f64, -1.0]),
            Tensor::from_vec(vec![i32::MIN, 7]),
            Tensor::new(&[1, 2], vec![i64::MAX, -3]).unwrap(),
            Tensor::from_vec(vec![0u8, 255]),
            Tensor::from_vec(vec![true, false, true]),
            Tensor::scalar(4.0f32),
            Tensor::zeros(DType::F32, &[0, 3]),
        ];
        for t in tensors {
            let back = tensor_from_proto(&tensor_to_proto(&t), "t").unwrap();
            assert_eq!(back, t);
        }
    }

    #[test]
    fn tensor_errors_name_the_field() {
        let mut p = tensor_to_proto(&Tensor::from_vec(vec![1.0f32, 2.0]));
        p.content.truncate(7);
        let e = tensor_from_proto(&p, "feed").unwrap_err();
        assert_eq!(e.field, "feed.content");
        assert!(e.message.contains("holds 7 bytes"), "{e}");
        p.dtype = 77;
        let e = tensor_from_proto(&p, "feed").unwrap_err();
        assert!(e.to_string().contains("dtype 77"), "{e}");
        p.dtype = proto::DataType::DtFloat as i32;
        p.shape = vec![-2];
        assert!(tensor_from_proto(&p, "feed")
            .unwrap_err()
            .to_string()
            .contains("negative"));
        p.shape = vec![1 << 31, 4];
        let e = tensor_from_proto(&p, "feed").unwrap_err();
        assert!(e.too_large, "{e}");
        let bools = proto::TensorProto {
            dtype: proto::DataType::DtBool as i32,
            shape: vec![1],
            content: vec![2].into(),
        };
        assert!(tensor_from_proto(&bools, "b").is_err());
    }

    #[test]
    fn graph_defs_round_trip() {
        let g = crate::graph::Graph::new();
        let x = g.placeholder("x", DType::F32, &[-1, 3]);
        let w = g.variable("w", &[3, 2], crate::graph::Initializer::Zeros);
        let y = crate::ops::matmul(x, w) + 1.0f32;
        let _ = crate::ops::reduce_sum(y);
        let def = g.to_graph_def(0);
        let back = graph_def_from_proto(&graph_def_to_proto(&def), "graph_def").unwrap();
        assert_eq!(back, def);
    }
}
