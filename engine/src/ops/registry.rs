//! Ops rebuilt from their type name and attributes: the inverse of [`Op::attrs`], used to
//! import graphs sent as data ([`crate::graph::GraphDef`]).

use super::array::{Cast, Concat, ConcatGrad, Identity, Reshape, ReshapeLike, Select, Transpose};
use super::conv::{Conv2D, Conv2DBackpropFilter, Conv2DBackpropInput};
use super::debug::CheckNumerics;
use super::indexing::{ExpandDims, Gather, GatherGrad, OneHot, Slice, SliceGrad, Squeeze};
use super::linalg::MatMul;
use super::math::{Binary, BinaryKind, Compare, CompareKind, FillLike, Unary, UnaryKind};
use super::nn::{Activation, ActivationKind, ReluGrad, Softmax, SoftmaxCrossEntropy};
use super::optimizer::{ApplyUpdate, Rule};
use super::pool::{MaxPool, MaxPoolGrad, MaxPoolGradGrad, PoolWindow};
use super::reduce::{ArgMax, BroadcastLike, Reduce, ReduceKind, SumToLike};
use super::sparse::{
    DynamicStitch, HashBucket, PartitionStrategy, Scatter, SegmentKind, SegmentMeanGrad,
    SegmentReduce, ShardIds, Unique, UnsortedSegmentSum, WeightedRows,
};
use super::state::{Assign, AssignKind, Const, NoOp, Placeholder, Variable};
use super::transfer::{Recv, Send};
use super::window::Padding;
use super::Op;
use crate::error::GraphError;
use crate::graph::{NodeDef, TypeShape};
use std::sync::Arc;

/// Finds a variable by name: its node id and type, or why the name does not name one.
pub type VariableLookup<'a> = dyn Fn(&str) -> Result<(usize, TypeShape), String> + 'a;

/// Every op type name that the ops of this crate have, all of which [`op_from_def`] rebuilds.
pub const OP_TYPES: &[&str] = &[
    // math
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Maximum",
    "Minimum",
    "Neg",
    "Exp",
    "Log",
    "Sqrt",
    "Square",
    "Abs",
    "Sign",
    "Equal",
    "NotEqual",
    "Greater",
    "GreaterEqual",
    "Less",
    "LessEqual",
    "ZerosLike",
    "FillLike",
    // nn
    "Relu",
    "Sigmoid",
    "Tanh",
    "ReluGrad",
    "Softmax",
    "LogSoftmax",
    "SoftmaxCrossEntropyWithLogits",
    "SparseSoftmaxCrossEntropyWithLogits",
    // array and indexing
    "Cast",
    "Identity",
    "Reshape",
    "ReshapeLike",
    "Select",
    "Transpose",
    "Concat",
    "ConcatGrad",
    "Slice",
    "SliceGrad",
    "Gather",
    "GatherGrad",
    "OneHot",
    "ExpandDims",
    "Squeeze",
    // linalg, conv, pool
    "MatMul",
    "Conv2D",
    "Conv2DBackpropInput",
    "Conv2DBackpropFilter",
    "MaxPool",
    "MaxPoolGrad",
    "MaxPoolGradGrad",
    // reduce
    "Sum",
    "Mean",
    "Max",
    "BroadcastLike",
    "SumToLike",
    "ArgMax",
    // sparse
    "UnsortedSegmentSum",
    "SegmentSum",
    "SegmentMean",
    "SegmentMeanGrad",
    "Unique",
    "HashBucket",
    "ShardIds",
    "DynamicStitch",
    "WeightedRows",
    "ScatterUpdate",
    "ScatterAdd",
    "ScatterSub",
    // state, optimizers, debug
    "Placeholder",
    "Const",
    "Variable",
    "Assign",
    "AssignAdd",
    "AssignSub",
    "NoOp",
    "ApplyGradientDescent",
    "ApplyMomentum",
    "ApplyAdam",
    "ApplyAdagrad",
    "ApplyFtrl",
    "SparseApplyGradientDescent",
    "SparseApplyMomentum",
    "SparseApplyAdam",
    "SparseApplyAdagrad",
    "SparseApplyFtrl",
    "CheckNumerics",
    // input readers
    "ReadBatches",
    // transfers between workers
    "_Send",
    "_Recv",
];

/// The op that `def` describes. Variables named in attributes (what an assignment or an
/// update writes) are found through `variables`.
pub fn op_from_def(def: &NodeDef, variables: &VariableLookup) -> Result<Arc<dyn Op>, GraphError> {
    let bad = |message: String| GraphError::BadAttr {
        node: def.name.clone(),
        op: def.op.clone(),
        message,
    };
    let families = [math, nn, array, windows, reduce, sparse, transfer];
    let mut found = None;
    for family in families {
        found = family(def).map_err(bad)?;
        if found.is_some() {
            break;
        }
    }
    if found.is_none() {
        found = state(def, variables).map_err(bad)?;
    }
    let Some(op) = found else {
        return Err(GraphError::UnknownOp {
            node: def.name.clone(),
            op: def.op.clone(),
        });
    };
    if op.type_name() != def.op {
        return Err(bad(format!(
            "these attributes make a {} op, not a {}",
            op.type_name(),
            def.op
        )));
    }
    Ok(op)
}

/// The names of the nodes that `def` refers to through its attributes (the variables an
/// assignment or an update writes): they must be added before it.
pub fn node_references(def: &NodeDef) -> Vec<&str> {
    match def.op.as_str() {
        "Assign"
        | "AssignAdd"
        | "AssignSub"
        | "ApplyGradientDescent"
        | "ApplyMomentum"
        | "ApplyAdam" => {
            let mut names: Vec<&str> = def.get_str("var").into_iter().collect();
            if let Ok(slots) = def.get_strs("slots") {
                names.extend(slots.iter().map(String::as_str));
            }
            names
        }
        _ => Vec::new(),
    }
}

type Built = Result<Option<Arc<dyn Op>>, String>;

fn some(op: impl Op) -> Built {
    Ok(Some(Arc::new(op)))
}

fn transfer(def: &NodeDef) -> Built {
    match def.op.as_str() {
        "_Send" => some(Send {
            key: def.get_str("key")?.to_string(),
        }),
        "_Recv" => some(Recv {
            key: def.get_str("key")?.to_string(),
            peer: def.get_str("peer")?.to_string(),
            dtype: def.get_dtype("dtype")?,
            shape: def.get_shape("shape")?.clone(),
            precision: def.get_str("precision")?.to_string(),
            timeout_ms: def.get_int("timeout_ms")?,
        }),
        _ => Ok(None),
    }
}

fn math(def: &NodeDef) -> Built {
    use BinaryKind as B;
    use CompareKind as C;
    use UnaryKind as U;
    let binary = |kind| some(Binary(kind));
    let unary = |kind| some(Unary(kind));
    let compare = |kind| some(Compare(kind));
    match def.op.as_str() {
        "Add" => binary(B::Add),
        "Sub" => binary(B::Sub),
        "Mul" => binary(B::Mul),
        "Div" => binary(B::Div),
        "Pow" => binary(B::Pow),
        "Maximum" => binary(B::Maximum),
        "Minimum" => binary(B::Minimum),
        "Neg" => unary(U::Neg),
        "Exp" => unary(U::Exp),
        "Log" => unary(U::Log),
        "Sqrt" => unary(U::Sqrt),
        "Square" => unary(U::Square),
        "Abs" => unary(U::Abs),
        "Sign" => unary(U::Sign),
        "Equal" => compare(C::Equal),
        "NotEqual" => compare(C::NotEqual),
        "Greater" => compare(C::Greater),
        "GreaterEqual" => compare(C::GreaterEqual),
        "Less" => compare(C::Less),
        "LessEqual" => compare(C::LessEqual),
        "ZerosLike" => some(FillLike(0.0)),
        "FillLike" => some(FillLike(def.get_float("value")?)),
        _ => Ok(None),
    }
}

fn nn(def: &NodeDef) -> Built {
    match def.op.as_str() {
        "Relu" => some(Activation(ActivationKind::Relu)),
        "Sigmoid" => some(Activation(ActivationKind::Sigmoid)),
        "Tanh" => some(Activation(ActivationKind::Tanh)),
        "ReluGrad" => some(ReluGrad),
        "Softmax" => some(Softmax { log: false }),
        "LogSoftmax" => some(Softmax { log: true }),
        "SoftmaxCrossEntropyWithLogits" => some(SoftmaxCrossEntropy { sparse: false }),
        "SparseSoftmaxCrossEntropyWithLogits" => some(SoftmaxCrossEntropy { sparse: true }),
        "CheckNumerics" => some(CheckNumerics {
            message: def.get_str("message")?.to_string(),
            checked: def.get_str("checked")?.to_string(),
        }),
        _ => Ok(None),
    }
}

fn array(def: &NodeDef) -> Built {
    match def.op.as_str() {
        "Cast" => some(Cast {
            to: def.get_dtype("to")?,
        }),
        "Identity" => some(Identity),
        "Reshape" => {
            let shape = def.get_ints("shape")?.to_vec();
            let mut known = shape.iter().filter(|&&d| d >= 0);
            let count = known.try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?));
            if count.is_none() {
                return Err(format!(
                    "attribute 'shape' holds more elements than can be counted: {shape:?}"
                ));
            }
            some(Reshape { shape })
        }
        "ReshapeLike" => some(ReshapeLike),
        "Select" => some(Select),
        "Transpose" => some(Transpose {
            perm: def.get_usizes("perm")?,
        }),
        "Concat" => some(Concat {
            axis: def.get_int("axis")?,
        }),
        "ConcatGrad" => some(ConcatGrad {
            axis: def.get_int("axis")?,
        }),
        "Slice" => some(Slice {
            begin: def.get_usizes("begin")?,
            size: def.get_ints("size")?.to_vec(),
        }),
        "SliceGrad" => some(SliceGrad {
            begin: def.get_usizes("begin")?,
            size: def.get_ints("size")?.to_vec(),
        }),
        "Gather" => some(Gather),
        "GatherGrad" => some(GatherGrad),
        "OneHot" => some(OneHot {
            depth: def.get_usize("depth")?,
        }),
        "ExpandDims" => some(ExpandDims {
            axis: def.get_int("axis")?,
        }),
        "Squeeze" => some(Squeeze {
            axes: def.get_ints("axes")?.to_vec(),
        }),
        "MatMul" => some(MatMul {
            transpose_a: def.get_bool("transpose_a")?,
            transpose_b: def.get_bool("transpose_b")?,
        }),
        _ => Ok(None),
    }
}

fn padding(def: &NodeDef) -> Result<Padding, String> {
    let name = def.get_str("padding")?;
    Padding::from_name(name)
        .ok_or_else(|| format!("attribute 'padding' must be \"SAME\" or \"VALID\", got {name:?}"))
}

/// Convolution and pooling.
fn windows(def: &NodeDef) -> Built {
    let window = || -> Result<PoolWindow, String> {
        Ok(PoolWindow {
            ksize: def.get_pair("ksize")?,
            strides: def.get_pair("strides")?,
            padding: padding(def)?,
        })
    };
    let conv = || -> Result<([usize; 2], Padding), String> {
        Ok((def.get_pair("strides")?, padding(def)?))
    };
    match def.op.as_str() {
        "Conv2D" => {
            let (strides, padding) = conv()?;
            some(Conv2D { strides, padding })
        }
        "Conv2DBackpropInput" => {
            let (strides, padding) = conv()?;
            some(Conv2DBackpropInput { strides, padding })
        }
        "Conv2DBackpropFilter" => {
            let (strides, padding) = conv()?;
            some(Conv2DBackpropFilter { strides, padding })
        }
        "MaxPool" => some(MaxPool(window()?)),
        "MaxPoolGrad" => some(MaxPoolGrad(window()?)),
        "MaxPoolGradGrad" => some(MaxPoolGradGrad(window()?)),
        _ => Ok(None),
    }
}

/// Segment reductions, unique and hashing (scatters write variables: see [`state`]).
fn sparse(def: &NodeDef) -> Built {
    match def.op.as_str() {
        "UnsortedSegmentSum" => some(UnsortedSegmentSum {
            num_segments: match def.get_int("num_segments")? {
                -1 => None,
                n => Some(usize::try_from(n).map_err(|_| {
                    format!(
                        "attribute 'num_segments' must be -1 (from the ids) or a count, got {n}"
                    )
                })?),
            },
        }),
        "SegmentSum" => some(SegmentReduce {
            kind: SegmentKind::Sum,
        }),
        "SegmentMean" => some(SegmentReduce {
            kind: SegmentKind::Mean,
        }),
        "SegmentMeanGrad" => some(SegmentMeanGrad),
        "Unique" => some(Unique),
        "ReadBatches" => some(super::input::ReadBatches {
            source: def.get_str("source")?.to_string(),
            shard: def.get_usize("shard")?,
            shards: def.get_usize("shards")?,
            batch: def.get_usize("batch")?,
            features: def.get_usize("features")?,
            classes: def.get_usize("classes")?,
            seed: def.get_int("seed")? as u64,
        }),
        "HashBucket" => some(HashBucket {
            buckets: def.get_usize("buckets")?,
        }),
        "ShardIds" => {
            let name = def.get_str("strategy")?;
            some(ShardIds {
                shards: def.get_usize("shards")?,
                rows: def.get_usize("rows")?,
                strategy: PartitionStrategy::from_name(name).ok_or_else(|| {
                    format!("attribute 'strategy' must be \"mod\" or \"div\", got {name:?}")
                })?,
            })
        }
        "DynamicStitch" => some(DynamicStitch {
            parts: def.get_usize("parts")?,
        }),
        "WeightedRows" => some(WeightedRows),
        _ => Ok(None),
    }
}

fn reduce(def: &NodeDef) -> Built {
    let reduction = |kind| -> Built {
        some(Reduce {
            kind,
            axes: def.get_ints("axes")?.to_vec(),
            keep_dims: def.get_bool("keep_dims")?,
        })
    };
    match def.op.as_str() {
        "Sum" => reduction(ReduceKind::Sum),
        "Mean" => reduction(ReduceKind::Mean),
        "Max" => reduction(ReduceKind::Max),
        "BroadcastLike" => some(BroadcastLike {
            axes: def.get_ints("axes")?.to_vec(),
            keep_dims: def.get_bool("keep_dims")?,
        }),
        "SumToLike" => some(SumToLike),
        "ArgMax" => some(ArgMax {
            axis: def.get_int("axis")?,
        }),
        _ => Ok(None),
    }
}

/// Sources, assignments and optimizer updates.
fn state(def: &NodeDef, variables: &VariableLookup) -> Built {
    let assign = |kind| -> Built {
        let (var, var_type) = find_variable(variables, "var", def.get_str("var")?)?;
        some(Assign {
            var,
            var_type,
            kind,
        })
    };
    let f = |key| def.get_float(key);
    match def.op.as_str() {
        "Placeholder" => some(Placeholder {
            dtype: def.get_dtype("dtype")?,
            shape: def.get_shape("shape")?.clone(),
        }),
        "Const" => some(Const::new(def.get_tensor("value")?.clone())),
        "Variable" => {
            let shape = def.get_shape("shape")?.clone();
            // Unknown dimensions are a buffer's whose rows change from step to step (it
            // starts from a constant); the known ones must count.
            let mut known = shape.dims().iter().flatten();
            let count = known.try_fold(1usize, |n, &d| n.checked_mul(d));
            if count.is_none() {
                return Err(format!(
                    "attribute 'shape' must be countable for a variable, got {shape}"
                ));
            }
            some(Variable {
                dtype: def.get_dtype("dtype")?,
                shape,
            })
        }
        "Assign" => assign(AssignKind::Set),
        "AssignAdd" => assign(AssignKind::Add),
        "AssignSub" => assign(AssignKind::Sub),
        "NoOp" => some(NoOp),
        name if name.starts_with("Apply") || name.starts_with("SparseApply") => {
            let sparse = name.starts_with("Sparse");
            let rule = match name.strip_prefix("Sparse").unwrap_or(name) {
                "ApplyGradientDescent" => Rule::GradientDescent {
                    learning_rate: f("learning_rate")?,
                },
                "ApplyMomentum" => Rule::Momentum {
                    learning_rate: f("learning_rate")?,
                    momentum: f("momentum")?,
                    nesterov: def.get_bool("nesterov")?,
                },
                "ApplyAdam" => Rule::Adam {
                    learning_rate: f("learning_rate")?,
                    beta1: f("beta1")?,
                    beta2: f("beta2")?,
                    epsilon: f("epsilon")?,
                },
                "ApplyAdagrad" => Rule::Adagrad {
                    learning_rate: f("learning_rate")?,
                    initial_accumulator_value: f("initial_accumulator_value")?,
                },
                "ApplyFtrl" => Rule::Ftrl {
                    learning_rate: f("learning_rate")?,
                    learning_rate_power: f("learning_rate_power")?,
                    initial_accumulator_value: f("initial_accumulator_value")?,
                    l1: f("l1")?,
                    l2: f("l2")?,
                },
                _ => return Ok(None),
            };
            apply_update(def, variables, rule, sparse)
        }
        "ScatterUpdate" | "ScatterAdd" | "ScatterSub" => {
            let (var, var_type) = find_variable(variables, "var", def.get_str("var")?)?;
            let kind = match def.op.as_str() {
                "ScatterUpdate" => AssignKind::Set,
                "ScatterAdd" => AssignKind::Add,
                _ => AssignKind::Sub,
            };
            some(Scatter {
                var,
                var_type,
                kind,
            })
        }
        _ => Ok(None),
    }
}

/// The variable that attribute `key` names.
fn find_variable(
    variables: &VariableLookup,
    key: &str,
    name: &str,
) -> Result<(usize, TypeShape), String> {
    variables(name).map_err(|e| format!("attribute '{key}' names no variable: {e}"))
}

/// An optimizer update: its variable, and slot variables of the same type, as many as the
/// rule keeps (the kernel relies on both).
fn apply_update(def: &NodeDef, variables: &VariableLookup, rule: Rule, sparse: bool) -> Built {
    let (var, var_type) = find_variable(variables, "var", def.get_str("var")?)?;
    let wanted = rule.slots().len();
    let names = match def.get_strs("slots") {
        Err(_) if wanted == 0 && !def.attrs.contains_key("slots") => &[][..],
        other => other?,
    };
    if names.len() != wanted {
        return Err(format!(
            "attribute 'slots' must name {wanted} variable(s) for {}, got {}",
            def.op,
            names.len()
        ));
    }
    let mut slots = Vec::with_capacity(wanted);
    for name in names {
        let (slot, slot_type) = find_variable(variables, "slots", name)?;
        if slot_type != var_type {
            return Err(format!(
                "attribute 'slots': slot '{name}' is {slot_type}, but the variable is {var_type}"
            ));
        }
        slots.push(slot);
    }
    some(ApplyUpdate {
        rule,
        var,
        var_type,
        slots,
        sparse,
    })
}

#[cfg(all(test, feature = "engine"))]
mod fuzz;
#[cfg(test)]
pub(crate) mod tests;
