//! Sluice graphs as TensorFlow `GraphDef`s, for TensorBoard's Graphs tab. Node names keep
//! their name scopes (`hidden1/MatMul`, `gradients/...`, `GradientDescent/...`), so the tab
//! collapses scopes the way it does for TensorFlow programs; devices colour nodes; each node
//! carries its attributes and `_output_shapes` (TensorFlow's own attribute for the shapes
//! the Graphs tab writes on edges).

use super::proto;
use crate::graph::{AttrValue, Graph, Shape, TypeShape};
use crate::service::wire::encode_elements;
use crate::tensor::{DType, Tensor};
use std::collections::HashMap;

/// Constants and tensor attributes above this many bytes are written with their dtype and
/// shape only: the Graphs tab shows no more than that, and graphs stay small. (TensorFlow
/// would read such a constant as zeros: these graphs are for looking at, not importing.)
const TENSOR_CONTENT_LIMIT: usize = 1024;

/// TensorFlow's GraphDef producer version that matches the ops' meaning here (TensorBoard
/// shows it; nothing depends on it).
const PRODUCER: i32 = 22;

/// `graph` as TensorFlow's GraphDef, each node on the device it names (a distributed
/// session's `placed_graph` names the task and device it placed the node on).
pub fn tensorflow_graph_def(graph: &Graph) -> proto::GraphDef {
    let def = graph.to_graph_def(0);
    let outputs: HashMap<String, Vec<TypeShape>> = graph
        .nodes()
        .into_iter()
        .map(|node| (node.name, node.outputs))
        .collect();
    let node = def
        .nodes
        .into_iter()
        .map(|n| {
            let mut attr: HashMap<String, proto::AttrValue> = n
                .attrs
                .iter()
                .map(|(key, value)| (key.clone(), attr_value(value)))
                .collect();
            if let Some(types) = outputs.get(&n.name) {
                let shapes = types.iter().map(|t| shape(&t.shape)).collect();
                attr.insert(
                    "_output_shapes".into(),
                    list(proto::attr_value::ListValue {
                        shape: shapes,
                        ..Default::default()
                    }),
                );
            }
            // TensorFlow names the element type of an op's inputs `T` (sources say `dtype`).
            let first_input = n.inputs.iter().find(|i| !i.starts_with('^'));
            let input_type = first_input.and_then(|input| {
                let (name, index) = match input.rsplit_once(':') {
                    Some((name, index)) => (name, index.parse::<usize>().ok()?),
                    None => (input.as_str(), 0),
                };
                outputs.get(name)?.get(index).map(|t| t.dtype)
            });
            if let (Some(dtype), false) = (input_type, attr.contains_key("dtype")) {
                let dtype = proto::attr_value::Value::Type(data_type(dtype) as i32);
                attr.insert("T".into(), value(dtype));
            }
            proto::NodeDef {
                name: n.name,
                op: n.op,
                input: n.inputs,
                device: n.device,
                attr,
            }
        })
        .collect();
    proto::GraphDef {
        node,
        versions: Some(proto::VersionDef {
            producer: PRODUCER,
            min_consumer: 0,
            bad_consumers: Vec::new(),
        }),
    }
}

fn value(v: proto::attr_value::Value) -> proto::AttrValue {
    proto::AttrValue { value: Some(v) }
}

fn list(l: proto::attr_value::ListValue) -> proto::AttrValue {
    value(proto::attr_value::Value::List(l))
}

fn attr_value(v: &AttrValue) -> proto::AttrValue {
    use proto::attr_value::{ListValue, Value};
    match v {
        AttrValue::Bool(b) => value(Value::B(*b)),
        AttrValue::Int(i) => value(Value::I(*i)),
        AttrValue::Float(f) => value(Value::F(*f as f32)),
        AttrValue::Ints(i) => list(ListValue {
            i: i.clone(),
            ..Default::default()
        }),
        AttrValue::Floats(f) => list(ListValue {
            f: f.iter().map(|&f| f as f32).collect(),
            ..Default::default()
        }),
        AttrValue::Str(s) => value(Value::S(s.clone().into_bytes())),
        AttrValue::Strs(s) => list(ListValue {
            s: s.iter().map(|s| s.clone().into_bytes()).collect(),
            ..Default::default()
        }),
        AttrValue::DType(d) => value(Value::Type(data_type(*d) as i32)),
        AttrValue::Shape(s) => value(Value::Shape(shape(s))),
        AttrValue::Tensor(t) => value(Value::Tensor(tensor(t, TENSOR_CONTENT_LIMIT))),
    }
}

/// TensorFlow's name for a dtype.
pub fn data_type(dtype: DType) -> proto::DataType {
    match dtype {
        DType::F32 => proto::DataType::DtFloat,
        DType::F64 => proto::DataType::DtDouble,
        DType::I32 => proto::DataType::DtInt32,
        DType::I64 => proto::DataType::DtInt64,
        DType::U8 => proto::DataType::DtUint8,
        DType::Bool => proto::DataType::DtBool,
    }
}

/// A shape as TensorFlow writes one: unknown dimensions are -1.
pub fn shape(shape: &Shape) -> proto::TensorShapeProto {
    let dim = shape
        .dims()
        .iter()
        .map(|d| proto::tensor_shape_proto::Dim {
            size: d.map_or(-1, |d| i64::try_from(d).unwrap_or(i64::MAX)),
            name: String::new(),
        })
        .collect();
    proto::TensorShapeProto {
        dim,
        unknown_rank: false,
    }
}

/// A tensor as TensorFlow's TensorProto: its elements as raw little-endian bytes
/// (TensorFlow's `tensor_content`), left out above `limit` bytes.
pub fn tensor(t: &Tensor, limit: usize) -> proto::TensorProto {
    let bytes = t.len().saturating_mul(t.dtype().size());
    let mut tensor_content = Vec::new();
    if bytes <= limit {
        encode_elements(t.buffer(), 0, t.len(), &mut tensor_content);
    }
    proto::TensorProto {
        dtype: data_type(t.dtype()) as i32,
        tensor_shape: Some(shape(&Shape::known(t.shape()))),
        tensor_content,
        ..Default::default()
    }
}
