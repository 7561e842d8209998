//! Symbolic reverse-mode differentiation: adds gradient nodes to the same graph, the way
//! `tf.gradients` does, so they are pruned, placed and run like any other node.
//!
//! Gradients travel as [`Gradient`] values: the gradient of a table read by `gather` stays
//! the rows picked ([`IndexedSlices`](crate::ops::IndexedSlices)) while it is only added up,
//! and is densified where an op's gradient must read it as a tensor. [`gradient_values`] hands
//! sparse gradients to the caller (the optimizers apply them row by row); [`gradients`]
//! returns tensors.

use crate::error::GraphError;
use crate::graph::Output;
use crate::ops::{ones_like, GradContext, Gradient, GradientError};
use std::collections::HashMap;

/// d(sum of `ys`)/d`x` for each of `xs`; `None` where `x` does not influence any `y`.
/// Sparse gradients are densified (see [`gradient_values`] to keep them sparse).
pub fn gradients(ys: &[Output], xs: &[Output]) -> Result<Vec<Option<Output>>, GraphError> {
    let values = gradient_values(ys, xs)?;
    Ok(values
        .iter()
        .map(|g| g.as_ref().map(Gradient::to_dense))
        .collect())
}

/// d(sum of `ys`)/d`x` for each of `xs` as gradient values: rows of `x` where only rows of it
/// were read (by gathers), tensors otherwise; `None` where `x` does not influence any `y`.
pub fn gradient_values(ys: &[Output], xs: &[Output]) -> Result<Vec<Option<Gradient>>, GraphError> {
    differentiate(ys, xs, true)
}

/// The gradients, kept sparse while they are only added up (`sparse`), or each densified
/// where an op makes it: then the graph has a dense gradient per read of a table, as a dense
/// consumer wants it (each densified on the device of its gather).
fn differentiate(
    ys: &[Output],
    xs: &[Output],
    sparse: bool,
) -> Result<Vec<Option<Gradient>>, GraphError> {
    let Some(&first) = ys.first() else {
        return Ok(vec![None; xs.len()]);
    };
    let graph = first.graph()?;
    let nodes = graph.nodes();
    for o in ys.iter().chain(xs) {
        if o.graph_id() != graph.id {
            return Err(GraphError::MixedGraphs { node: o.name() });
        }
        if let Some(e) = nodes.get(o.node()).and_then(|n| n.error.clone()) {
            return Err(e);
        }
    }
    let Some(last) = ys.iter().map(|y| y.node()).max() else {
        return Ok(vec![None; xs.len()]);
    };
    let count = last + 1;
    // Nodes that depend on some x, and nodes some y depends on: gradients flow through both.
    let mut from_x = vec![false; count];
    for x in xs.iter().filter(|x| x.node() < count) {
        from_x[x.node()] = true;
    }
    for id in 0..count {
        if !from_x[id] && nodes[id].inputs.iter().any(|i| from_x[i.node()]) {
            from_x[id] = true;
        }
    }
    let mut to_y = vec![false; count];
    for y in ys {
        to_y[y.node()] = true;
    }
    for id in (0..count).rev() {
        if to_y[id] {
            for i in &nodes[id].inputs {
                to_y[i.node()] = true;
            }
        }
    }

    let _scope = graph.name_scope("gradients");
    let mut pending: HashMap<Output, Vec<Gradient>> = HashMap::new();
    for &y in ys {
        pending
            .entry(y)
            .or_default()
            .push(Gradient::Dense(ones_like(y)));
    }
    for id in (0..count).rev() {
        let node = &nodes[id];
        if !(from_x[id] && to_y[id]) || node.inputs.is_empty() {
            continue;
        }
        let outputs: Vec<Output> = (0..node.outputs.len())
            .map(|i| Output::new(graph.id, id, i))
            .collect();
        let dys: Vec<Option<Output>> = outputs
            .iter()
            .map(|o| {
                let sum = pending.remove(o).and_then(Gradient::sum);
                sum.map(|g| g.to_dense())
            })
            .collect();
        if dys.iter().all(Option::is_none) {
            continue;
        }
        let input_types: Vec<_> = node
            .inputs
            .iter()
            .map(|i| nodes[i.node()].outputs[i.index()].clone())
            .collect();
        let context = GradContext {
            inputs: &node.inputs,
            outputs: &outputs,
            input_types: &input_types,
            output_types: &node.outputs,
            dys: &dys,
        };
        let dxs = node.op.gradient_values(&context).map_err(|e| match e {
            GradientError::NotDifferentiable => GraphError::NoGradient {
                node: node.name.clone(),
                op: node.op_name().to_string(),
            },
        })?;
        for ((input, dx), ty) in node.inputs.iter().zip(dxs).zip(&input_types) {
            if let Some(dx) = dx {
                if from_x[input.node()] && ty.dtype.is_float() {
                    let dx = match dx {
                        Gradient::Sparse(rows) if !sparse => Gradient::Dense(rows.to_dense()),
                        dx => dx,
                    };
                    pending.entry(*input).or_default().push(dx);
                }
            }
        }
    }
    Ok(xs
        .iter()
        .map(|x| pending.get(x).cloned().and_then(Gradient::sum))
        .collect())
}

/// The gradient of `y` with respect to one `x`; an error if `x` does not influence `y`.
pub fn gradient(y: Output, x: Output) -> Result<Output, GraphError> {
    gradients(&[y], &[x])?
        .pop()
        .flatten()
        .ok_or_else(|| GraphError::Unconnected {
            x: x.name(),
            y: y.name(),
        })
}
