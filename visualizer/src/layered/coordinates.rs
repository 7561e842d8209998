//! Coordinates: y by layer; x by least-squares placement under ordering constraints.

use super::{Layered, LayeredInput, DUMMY_WIDTH};

/// Rounds of coordinate refinement.
const COORDINATE_ROUNDS: usize = 8;
/// Dummies resist being pushed aside, which keeps long edges straight.
const DUMMY_WEIGHT: f64 = 4.0;

/// y by layer; x by repeated least-squares pulls towards neighbours, each projected onto
/// "keep the order, keep the gaps" (pool adjacent violators), so boxes never overlap.
pub(super) fn assign_coordinates(
    graph: &Layered,
    input: &LayeredInput,
) -> (Vec<f64>, Vec<f64>, f64, f64) {
    let total = graph.layer.len();
    let mut y = vec![0.0; total];
    // Rows of entry or exit points only need a short gap: nothing is labelled there.
    let pinned_row: Vec<bool> = graph
        .layers
        .iter()
        .map(|layer| !layer.is_empty() && layer.iter().all(|&v| graph.is_pinned[v]))
        .collect();
    let mut top = 0.0;
    for (l, layer) in graph.layers.iter().enumerate() {
        let tallest = layer.iter().map(|&v| graph.height[v]).fold(0.0, f64::max);
        for &v in layer {
            y[v] = top + tallest / 2.0;
        }
        top += tallest;
        if l + 1 < graph.layers.len() {
            top += if pinned_row[l] || pinned_row[l + 1] {
                (input.layer_gap / 2.0).max(16.0)
            } else {
                input.layer_gap
            };
        }
    }
    let height = top;

    let thin = |v: usize| graph.is_dummy[v] || graph.width[v] <= DUMMY_WIDTH;
    let gap = |a: usize, b: usize| {
        let space = if thin(a) || thin(b) {
            input.node_gap / 2.0
        } else {
            input.node_gap
        };
        (graph.width[a] + graph.width[b]) / 2.0 + space
    };
    let mut x = vec![0.0; total];
    for layer in &graph.layers {
        let mut at = 0.0;
        for (i, &v) in layer.iter().enumerate() {
            if i > 0 {
                at += gap(layer[i - 1], v);
            }
            x[v] = at;
        }
    }
    let weight = |v: usize| if graph.is_dummy[v] { DUMMY_WEIGHT } else { 1.0 };
    for round in 0..COORDINATE_ROUNDS {
        let last = round + 1 == COORDINATE_ROUNDS;
        let count = graph.layers.len();
        for step in 0..count {
            let downward = round % 2 == 0;
            let l = if downward { step } else { count - 1 - step };
            let layer = &graph.layers[l];
            let desired: Vec<f64> = layer
                .iter()
                .map(|&v| {
                    let neighbours: Vec<usize> = match (last, downward) {
                        (true, _) => graph.up[v].iter().chain(&graph.down[v]).copied().collect(),
                        (false, true) => graph.up[v].clone(),
                        (false, false) => graph.down[v].clone(),
                    };
                    if neighbours.is_empty() {
                        x[v]
                    } else {
                        neighbours.iter().map(|&w| x[w]).sum::<f64>() / neighbours.len() as f64
                    }
                })
                .collect();
            let separations: Vec<f64> = layer.windows(2).map(|p| gap(p[0], p[1])).collect();
            let weights: Vec<f64> = layer.iter().map(|&v| weight(v)).collect();
            let placed = place_in_order(&desired, &weights, &separations);
            for (&v, px) in layer.iter().zip(placed) {
                x[v] = px;
            }
        }
    }
    let left = (0..total)
        .map(|v| x[v] - graph.width[v] / 2.0)
        .fold(f64::INFINITY, f64::min);
    let right = (0..total)
        .map(|v| x[v] + graph.width[v] / 2.0)
        .fold(f64::NEG_INFINITY, f64::max);
    for value in &mut x {
        *value -= left;
    }
    (x, y, right - left, height)
}

/// Positions closest (weighted least squares) to `desired` such that consecutive ones are
/// at least `separations[i]` apart: shift out the separations, and the rest is isotonic
/// regression, solved exactly by pooling adjacent violators.
fn place_in_order(desired: &[f64], weights: &[f64], separations: &[f64]) -> Vec<f64> {
    let mut offsets = Vec::with_capacity(desired.len());
    let mut offset = 0.0;
    for i in 0..desired.len() {
        if i > 0 {
            offset += separations[i - 1];
        }
        offsets.push(offset);
    }
    // Blocks of (weight sum, weighted target sum, length).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::new();
    for i in 0..desired.len() {
        let target = desired[i] - offsets[i];
        blocks.push((weights[i], weights[i] * target, 1));
        while blocks.len() > 1 {
            let (w2, s2, n2) = blocks[blocks.len() - 1];
            let (w1, s1, n1) = blocks[blocks.len() - 2];
            if s1 / w1 <= s2 / w2 {
                break;
            }
            blocks.pop();
            let merged = blocks.len() - 1;
            blocks[merged] = (w1 + w2, s1 + s2, n1 + n2);
        }
    }
    let mut out = Vec::with_capacity(desired.len());
    for (w, s, n) in blocks {
        let value = s / w;
        for _ in 0..n {
            out.push(value + offsets[out.len()]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::place_in_order;

    #[test]
    fn ordered_placement_keeps_gaps_and_stays_close() {
        let placed = place_in_order(&[0.0, 0.0, 0.0], &[1.0; 3], &[10.0, 10.0]);
        assert_eq!(placed, vec![-10.0, 0.0, 10.0]);
        let placed = place_in_order(&[0.0, 100.0], &[1.0; 2], &[10.0]);
        assert_eq!(placed, vec![0.0, 100.0]);
    }
}
