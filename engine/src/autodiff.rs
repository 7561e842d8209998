//! Symbolic reverse-mode differentiation: adds gradient nodes to the same graph, the way
//! `tf.gradients` does, so they are pruned, placed and run like any other node.

use crate::error::GraphError;
use crate::graph::Output;
use crate::ops::{ones_like, GradContext, GradientError};
use std::collections::HashMap;

/// d(sum of `ys`)/d`x` for each of `xs`; `None` where `x` does not influence any `y`.
pub fn gradients(ys: &[Output], xs: &[Output]) -> Result<Vec<Option<Output>>, GraphError> {
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
    let mut pending: HashMap<Output, Vec<Output>> = HashMap::new();
    for &y in ys {
        pending.entry(y).or_default().push(ones_like(y));
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
            .map(|o| pending.remove(o).and_then(sum_all))
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
        let dxs = node.op.gradient(&context).map_err(|e| match e {
            GradientError::NotDifferentiable => GraphError::NoGradient {
                node: node.name.clone(),
                op: node.op_name().to_string(),
            },
        })?;
        for ((input, dx), ty) in node.inputs.iter().zip(dxs).zip(&input_types) {
            if let Some(dx) = dx {
                if from_x[input.node()] && ty.dtype.is_float() {
                    pending.entry(*input).or_default().push(dx);
                }
            }
        }
    }
    Ok(xs
        .iter()
        .map(|x| pending.get(x).cloned().and_then(sum_all))
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

fn sum_all(parts: Vec<Output>) -> Option<Output> {
    parts.into_iter().reduce(|a, b| a + b)
}
