//! Graphs as data, the way TensorFlow's GraphDef and NodeDef carry them: what a client sends
//! to an engine (ExtendSession) and what [`Graph::import_graph_def`] rebuilds.
//!
//! A node's inputs are written `name` (output 0), `name:index`, or `^name` for a control
//! input. Its op is named by type (`MatMul`) and rebuilt from its attributes by
//! [`crate::ops::registry::op_from_def`]. Variables also carry how they start
//! (`init` and its parameters), whether they are `trainable`, and which one is the
//! `global_step`.

use super::{Graph, Initializer, Shape};
use crate::tensor::{DType, Tensor};
use std::collections::{BTreeMap, HashSet};

/// One attribute value of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Ints(Vec<i64>),
    Floats(Vec<f64>),
    Str(String),
    /// Names, e.g. the slot variables of an optimizer update.
    Strs(Vec<String>),
    DType(DType),
    Shape(Shape),
    Tensor(Tensor),
}

impl AttrValue {
    /// What the value is, for error messages: `int 3`, `a list of floats`, ...
    pub fn describe(&self) -> String {
        match self {
            AttrValue::Bool(b) => format!("bool {b}"),
            AttrValue::Int(i) => format!("int {i}"),
            AttrValue::Float(f) => format!("float {f}"),
            AttrValue::Ints(_) => "a list of ints".into(),
            AttrValue::Floats(_) => "a list of floats".into(),
            AttrValue::Str(s) => format!("string {s:?}"),
            AttrValue::Strs(_) => "a list of strings".into(),
            AttrValue::DType(d) => format!("dtype {d}"),
            AttrValue::Shape(s) => format!("shape {s}"),
            AttrValue::Tensor(t) => format!("a {} tensor of shape {:?}", t.dtype(), t.shape()),
        }
    }

    /// An `Int` from a size or index.
    pub fn int(value: usize) -> AttrValue {
        AttrValue::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }

    /// `Ints` from sizes or indices.
    pub fn ints(values: &[usize]) -> AttrValue {
        AttrValue::Ints(
            values
                .iter()
                .map(|&v| i64::try_from(v).unwrap_or(i64::MAX))
                .collect(),
        )
    }
}

/// One node: its full name, op type, inputs, device constraint and attributes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeDef {
    pub name: String,
    pub op: String,
    /// `name` (output 0), `name:index`, or `^name` for a control input.
    pub inputs: Vec<String>,
    pub device: String,
    pub attrs: BTreeMap<String, AttrValue>,
}

/// A graph, or the part of one added since some node (a delta).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GraphDef {
    pub nodes: Vec<NodeDef>,
    /// The graph-level seed that random initialisers derive from.
    pub seed: u64,
}

fn mistyped(key: &str, want: &str, got: &AttrValue) -> String {
    format!("attribute '{key}' must be {want}, got {}", got.describe())
}

fn to_usize(key: &str, v: i64) -> Result<usize, String> {
    usize::try_from(v).map_err(|_| format!("attribute '{key}' must not be negative, got {v}"))
}

impl NodeDef {
    pub fn new(name: &str, op: &str) -> NodeDef {
        NodeDef {
            name: name.to_string(),
            op: op.to_string(),
            ..NodeDef::default()
        }
    }

    /// Adds an input (`name`, `name:index` or `^name`).
    pub fn input(mut self, input: &str) -> NodeDef {
        self.inputs.push(input.to_string());
        self
    }

    /// Sets an attribute.
    pub fn attr(mut self, key: &str, value: AttrValue) -> NodeDef {
        self.attrs.insert(key.to_string(), value);
        self
    }

    /// The attribute `key`, or an error saying it is missing.
    pub fn get(&self, key: &str) -> Result<&AttrValue, String> {
        self.attrs
            .get(key)
            .ok_or_else(|| format!("attribute '{key}' is missing"))
    }

    pub fn get_bool(&self, key: &str) -> Result<bool, String> {
        match self.get(key)? {
            AttrValue::Bool(b) => Ok(*b),
            other => Err(mistyped(key, "a bool", other)),
        }
    }

    pub fn get_int(&self, key: &str) -> Result<i64, String> {
        match self.get(key)? {
            AttrValue::Int(i) => Ok(*i),
            other => Err(mistyped(key, "an int", other)),
        }
    }

    /// A non-negative int.
    pub fn get_usize(&self, key: &str) -> Result<usize, String> {
        to_usize(key, self.get_int(key)?)
    }

    pub fn get_float(&self, key: &str) -> Result<f64, String> {
        match self.get(key)? {
            AttrValue::Float(f) => Ok(*f),
            other => Err(mistyped(key, "a float", other)),
        }
    }

    pub fn get_ints(&self, key: &str) -> Result<&[i64], String> {
        match self.get(key)? {
            AttrValue::Ints(v) => Ok(v),
            other => Err(mistyped(key, "a list of ints", other)),
        }
    }

    /// A list of non-negative ints.
    pub fn get_usizes(&self, key: &str) -> Result<Vec<usize>, String> {
        self.get_ints(key)?
            .iter()
            .map(|&v| to_usize(key, v))
            .collect()
    }

    /// Exactly two non-negative ints (a window or strides).
    pub fn get_pair(&self, key: &str) -> Result<[usize; 2], String> {
        match self.get_usizes(key)?.as_slice() {
            &[a, b] => Ok([a, b]),
            other => Err(format!(
                "attribute '{key}' must hold 2 ints, got {}",
                other.len()
            )),
        }
    }

    pub fn get_floats(&self, key: &str) -> Result<&[f64], String> {
        match self.get(key)? {
            AttrValue::Floats(v) => Ok(v),
            other => Err(mistyped(key, "a list of floats", other)),
        }
    }

    pub fn get_str(&self, key: &str) -> Result<&str, String> {
        match self.get(key)? {
            AttrValue::Str(s) => Ok(s),
            other => Err(mistyped(key, "a string", other)),
        }
    }

    pub fn get_strs(&self, key: &str) -> Result<&[String], String> {
        match self.get(key)? {
            AttrValue::Strs(v) => Ok(v),
            other => Err(mistyped(key, "a list of strings", other)),
        }
    }

    pub fn get_dtype(&self, key: &str) -> Result<DType, String> {
        match self.get(key)? {
            AttrValue::DType(d) => Ok(*d),
            other => Err(mistyped(key, "a dtype", other)),
        }
    }

    pub fn get_shape(&self, key: &str) -> Result<&Shape, String> {
        match self.get(key)? {
            AttrValue::Shape(s) => Ok(s),
            other => Err(mistyped(key, "a shape", other)),
        }
    }

    pub fn get_tensor(&self, key: &str) -> Result<&Tensor, String> {
        match self.get(key)? {
            AttrValue::Tensor(t) => Ok(t),
            other => Err(mistyped(key, "a tensor", other)),
        }
    }
}

/// The attributes that describe an initialiser: `init` names the kind, the others are its
/// parameters.
pub(crate) fn initializer_attrs(init: &Initializer) -> Vec<(&'static str, AttrValue)> {
    let kind = |k: &str| ("init", AttrValue::Str(k.into()));
    match init {
        Initializer::Zeros => vec![kind("zeros")],
        Initializer::Ones => vec![kind("ones")],
        Initializer::Fill(v) => vec![kind("fill"), ("value", AttrValue::Float(*v))],
        Initializer::Constant(t) => vec![kind("constant"), ("value", AttrValue::Tensor(t.clone()))],
        Initializer::RandomNormal { mean, stddev } => vec![
            kind("random_normal"),
            ("mean", AttrValue::Float(*mean)),
            ("stddev", AttrValue::Float(*stddev)),
        ],
        Initializer::RandomUniform { low, high } => vec![
            kind("random_uniform"),
            ("low", AttrValue::Float(*low)),
            ("high", AttrValue::Float(*high)),
        ],
        Initializer::TruncatedNormal { mean, stddev } => vec![
            kind("truncated_normal"),
            ("mean", AttrValue::Float(*mean)),
            ("stddev", AttrValue::Float(*stddev)),
        ],
        Initializer::GlorotUniform => vec![kind("glorot_uniform")],
        Initializer::GlorotNormal => vec![kind("glorot_normal")],
    }
}

/// The initialiser a variable's attributes describe; zeros when `init` is absent.
pub(crate) fn initializer_from_def(def: &NodeDef) -> Result<Initializer, String> {
    if !def.attrs.contains_key("init") {
        return Ok(Initializer::Zeros);
    }
    let f = |key| def.get_float(key);
    Ok(match def.get_str("init")? {
        "zeros" => Initializer::Zeros,
        "ones" => Initializer::Ones,
        "fill" => Initializer::Fill(f("value")?),
        "constant" => Initializer::Constant(def.get_tensor("value")?.clone()),
        "random_normal" => Initializer::RandomNormal {
            mean: f("mean")?,
            stddev: f("stddev")?,
        },
        "random_uniform" => Initializer::RandomUniform {
            low: f("low")?,
            high: f("high")?,
        },
        "truncated_normal" => Initializer::TruncatedNormal {
            mean: f("mean")?,
            stddev: f("stddev")?,
        },
        "glorot_uniform" => Initializer::GlorotUniform,
        "glorot_normal" => Initializer::GlorotNormal,
        other => {
            return Err(format!(
                "attribute 'init' names no initialiser: {other:?} (zeros, ones, fill, constant, \
                 random_normal, random_uniform, truncated_normal, glorot_uniform, glorot_normal)"
            ))
        }
    })
}

/// How an input is written: `name` for output 0, else `name:index`.
fn input_string(name: &str, index: usize) -> String {
    if index == 0 {
        name.to_string()
    } else {
        format!("{name}:{index}")
    }
}

impl Graph {
    /// The nodes with id `from_node` or more (0: the whole graph), in id order, as data.
    ///
    /// Invalid nodes (those whose type inference failed, see [`Graph::errors`]) are left
    /// out, and so is every node that depends on one, through a data or a control input:
    /// they could not be rebuilt, and running them only reports the error.
    pub fn to_graph_def(&self, from_node: usize) -> GraphDef {
        let data = self.read();
        let nodes = &data.nodes;
        let name_of = |id: usize| {
            nodes
                .get(id)
                .map_or_else(|| format!("<node {id}>"), |n| n.name.clone())
        };
        let variables: HashSet<usize> = data.variables.iter().copied().collect();
        let trainable: HashSet<usize> = data.trainable.iter().copied().collect();
        let mut skipped = vec![false; nodes.len()];
        let mut out = Vec::new();
        for (id, node) in nodes.iter().enumerate() {
            // Inputs always come from earlier nodes, so one pass in id order sees them first.
            let is_skipped = |dep: usize| skipped.get(dep).copied().unwrap_or(true);
            let skip = node.error.is_some()
                || node.inputs.iter().any(|i| is_skipped(i.node()))
                || node.control_inputs.iter().any(|&c| is_skipped(c));
            skipped[id] = skip;
            if skip || id < from_node {
                continue;
            }
            let mut inputs: Vec<String> = node
                .inputs
                .iter()
                .map(|i| input_string(&name_of(i.node()), i.index()))
                .collect();
            inputs.extend(
                node.control_inputs
                    .iter()
                    .map(|&c| format!("^{}", name_of(c))),
            );
            let mut attrs: BTreeMap<String, AttrValue> = node
                .op
                .attrs(&name_of)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            if variables.contains(&id) {
                let init = data.initializers.get(&id).unwrap_or(&Initializer::Zeros);
                for (k, v) in initializer_attrs(init) {
                    attrs.insert(k.to_string(), v);
                }
                attrs.insert("trainable".into(), AttrValue::Bool(trainable.contains(&id)));
                let is_step = data.global_step == Some(id);
                if is_step || node.name == "global_step" {
                    attrs.insert("global_step".into(), AttrValue::Bool(is_step));
                }
            }
            out.push(NodeDef {
                name: node.name.clone(),
                op: node.op_name().to_string(),
                inputs,
                device: node.device.clone(),
                attrs,
            });
        }
        GraphDef {
            nodes: out,
            seed: data.seed,
        }
    }
}
