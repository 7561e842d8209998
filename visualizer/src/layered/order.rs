//! Crossing reduction: barycentric sweeps, keeping the order with the fewest crossings.

use super::Layered;

/// Sweeps of barycentric reordering at most (fewer once no sweep helps).
const ORDER_SWEEPS: usize = 16;

/// Barycentric sweeps down and up; keeps the order with the fewest crossings.
pub(super) fn order_layers(graph: &mut Layered) {
    let mut position = vec![0usize; graph.layer.len()];
    let refresh = |layers: &[Vec<usize>], position: &mut [usize]| {
        for layer in layers {
            for (i, &v) in layer.iter().enumerate() {
                position[v] = i;
            }
        }
    };
    refresh(&graph.layers, &mut position);
    let mut best = graph.layers.clone();
    let mut best_crossings = count_crossings(graph, &position);
    let mut stale = 0;
    for sweep in 0..ORDER_SWEEPS {
        if best_crossings == 0 || stale >= 3 {
            break;
        }
        let downward = sweep % 2 == 0;
        let count = graph.layers.len();
        for step in 1..count {
            let l = if downward { step } else { count - 1 - step };
            let neighbours = if downward { &graph.up } else { &graph.down };
            let mut keyed: Vec<(f64, usize)> = graph.layers[l]
                .iter()
                .map(|&v| {
                    let adjacent = &neighbours[v];
                    let key = if adjacent.is_empty() {
                        position[v] as f64
                    } else {
                        adjacent.iter().map(|&w| position[w] as f64).sum::<f64>()
                            / adjacent.len() as f64
                    };
                    (key, v)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            graph.layers[l] = keyed.into_iter().map(|(_, v)| v).collect();
            for (i, &v) in graph.layers[l].iter().enumerate() {
                position[v] = i;
            }
        }
        let crossings = count_crossings(graph, &position);
        if crossings < best_crossings {
            best_crossings = crossings;
            best = graph.layers.clone();
            stale = 0;
        } else {
            stale += 1;
        }
    }
    graph.layers = best;
}

/// Edge crossings between all pairs of adjacent layers: inversions of lower positions
/// once edges are sorted by upper position, counted with a Fenwick tree.
fn count_crossings(graph: &Layered, position: &[usize]) -> usize {
    let mut total = 0;
    for pair in graph.layers.windows(2) {
        let mut edges: Vec<(usize, usize)> = pair[0]
            .iter()
            .flat_map(|&v| {
                graph.down[v]
                    .iter()
                    .map(move |&w| (position[v], position[w]))
            })
            .collect();
        edges.sort_unstable();
        let size = pair[1].len() + 1;
        let mut tree = vec![0usize; size + 1];
        for (seen, &(_, lower)) in edges.iter().enumerate() {
            // Edges seen so far that end to the right of `lower` cross this one.
            let mut at_or_below = 0;
            let mut i = lower + 1;
            while i > 0 {
                at_or_below += tree[i];
                i -= i & i.wrapping_neg();
            }
            total += seen - at_or_below;
            let mut i = lower + 1;
            while i <= size {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
        }
    }
    total
}
