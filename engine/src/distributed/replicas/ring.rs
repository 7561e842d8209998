//! Ring all-reduce as graph nodes: each replica's flat gradient is cut into one chunk per
//! replica; in the reduce-scatter each chunk travels once around the ring, picking up every
//! replica's part, and in the all-gather the finished chunk travels around again. The
//! partitioner turns every hop into one transfer between neighbours, so each worker sends
//! 2(N-1)/N of the gradient per step, whatever N is.

use crate::error::GraphError;
use crate::graph::{Graph, Output};
use crate::ops::{add, concat, identity, slice};
use crate::tensor::{DType, Tensor};

/// The sum of the `flat` vectors (each `len` long, replica `r`'s on `devices[r]`), as one
/// output per replica on that replica's device.
pub fn ring_all_reduce(
    graph: &Graph,
    flat: &[Output],
    devices: &[String],
    len: usize,
) -> Result<Vec<Output>, GraphError> {
    let n = flat.len();
    if n != devices.len() {
        return Err(GraphError::BadNodeDef {
            node: "all_reduce".into(),
            message: format!("{n} vectors for {} devices", devices.len()),
        });
    }
    if n <= 1 {
        return Ok(flat.to_vec());
    }
    let _scope = graph.name_scope("all_reduce");
    let chunk = len.div_ceil(n);
    let padded = chunk * n;
    // chunks[r][c]: replica r's part of chunk c.
    let chunks: Vec<Vec<Output>> = (0..n)
        .map(|r| {
            let _device = graph.device(&devices[r]);
            let x = if padded > len {
                let zeros = graph.constant(Tensor::zeros(DType::F32, &[padded - len]));
                concat(&[flat[r], zeros], 0)
            } else {
                flat[r]
            };
            (0..n)
                .map(|c| slice(x, &[c * chunk], &[chunk as i64]))
                .collect()
        })
        .collect();
    // Reduce-scatter: chunk c starts on replica c and gathers the others' parts hop by hop;
    // it ends complete on replica c - 1.
    let mut gathered: Vec<Vec<Option<Output>>> = vec![vec![None; n]; n];
    for c in 0..n {
        let mut sum = chunks[c][c];
        for hop in 1..n {
            let w = (c + hop) % n;
            let _device = graph.device(&devices[w]);
            sum = add(chunks[w][c], sum);
        }
        // All-gather: the complete chunk goes on around the ring.
        let holder = (c + n - 1) % n;
        gathered[holder][c] = Some(sum);
        let mut copy = sum;
        for hop in 1..n {
            let w = (holder + hop) % n;
            let _device = graph.device(&devices[w]);
            copy = identity(copy);
            gathered[w][c] = Some(copy);
        }
    }
    Ok(gathered
        .into_iter()
        .enumerate()
        .map(|(r, parts)| {
            let _device = graph.device(&devices[r]);
            let parts: Vec<Output> = parts.into_iter().flatten().collect();
            let whole = concat(&parts, 0);
            if padded > len {
                slice(whole, &[0], &[len as i64])
            } else {
                whole
            }
        })
        .collect())
}
