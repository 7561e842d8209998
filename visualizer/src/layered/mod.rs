//! Layered (Sugiyama) layout of one container: cycle removal, layering, crossing reduction
//! by barycenters, and coordinates by least-squares placement under ordering constraints.
//! Boxes of any size; no two boxes overlap, by construction.

mod coordinates;
mod order;

use coordinates::assign_coordinates;
use order::order_layers;
use std::collections::{HashMap, HashSet};

/// What one container asks of the layout.
pub(crate) struct LayeredInput {
    /// Width and height of each box.
    pub sizes: Vec<(f64, f64)>,
    /// Directed edges between boxes; duplicates and self-loops are ignored.
    pub edges: Vec<(usize, usize)>,
    /// Horizontal space between neighbouring boxes.
    pub node_gap: f64,
    /// Vertical space between layers.
    pub layer_gap: f64,
    /// Boxes held to the first or last layer (a scope's entry and exit points); empty
    /// means none.
    pub pins: Vec<Pin>,
}

/// Where a box may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pin {
    Free,
    /// Above everything else.
    Top,
    /// Below everything else.
    Bottom,
}

/// Where everything went, relative to the container's top-left corner.
pub(crate) struct LayeredOutput {
    pub centers: Vec<(f64, f64)>,
    pub width: f64,
    pub height: f64,
    /// For each input edge, the bend points between its ends (empty for adjacent layers).
    pub routes: Vec<Vec<(f64, f64)>>,
    /// For each box, the top and bottom of its row (as tall as the row's tallest box; boxes
    /// are centred in it).
    pub rows: Vec<(f64, f64)>,
}

type Edge = (usize, usize);
/// Each acyclic edge with the dummy boxes it passes through, top to bottom.
type Chains = Vec<(Edge, Vec<usize>)>;

/// Long edges pass through thin dummy boxes, one per layer crossed.
pub(super) const DUMMY_WIDTH: f64 = 4.0;

pub(super) struct Layered {
    pub(super) layer: Vec<usize>,
    pub(super) width: Vec<f64>,
    pub(super) height: Vec<f64>,
    pub(super) is_dummy: Vec<bool>,
    pub(super) is_pinned: Vec<bool>,
    pub(super) up: Vec<Vec<usize>>,
    pub(super) down: Vec<Vec<usize>>,
    pub(super) layers: Vec<Vec<usize>>,
}

pub(crate) fn layout(input: &LayeredInput) -> LayeredOutput {
    let n = input.sizes.len();
    if n == 0 {
        return LayeredOutput {
            centers: Vec::new(),
            width: 0.0,
            height: 0.0,
            routes: vec![Vec::new(); input.edges.len()],
            rows: Vec::new(),
        };
    }
    let (acyclic, reversed) = break_cycles(n, &input.edges);
    let pin = |v: usize| input.pins.get(v).copied().unwrap_or(Pin::Free);
    let layer = assign_layers(n, &acyclic, pin);
    let (mut graph, chains) = add_dummies(input, &acyclic, layer);
    order_layers(&mut graph);
    let (x, y, width, height) = assign_coordinates(&graph, input);

    let centers = (0..n).map(|v| (x[v], y[v])).collect();
    let mut tallest = vec![0.0_f64; graph.layers.len()];
    for (v, &l) in graph.layer.iter().enumerate() {
        tallest[l] = tallest[l].max(graph.height[v]);
    }
    let rows = (0..n)
        .map(|v| {
            let half = tallest[graph.layer[v]] / 2.0;
            (y[v] - half, y[v] + half)
        })
        .collect();
    let chain_of: HashMap<(usize, usize), &Vec<usize>> =
        chains.iter().map(|(edge, chain)| (*edge, chain)).collect();
    // Routes per input edge, via the chain of its (possibly reversed) acyclic edge.
    let routes = input
        .edges
        .iter()
        .map(|&(from, to)| {
            let key = if reversed.contains(&(from, to)) {
                (to, from)
            } else {
                (from, to)
            };
            let mut points: Vec<(f64, f64)> = chain_of
                .get(&key)
                .map(|chain| chain.iter().map(|&d| (x[d], y[d])).collect())
                .unwrap_or_default();
            if key != (from, to) {
                points.reverse();
            }
            points
        })
        .collect();
    LayeredOutput {
        centers,
        width,
        height,
        routes,
        rows,
    }
}

/// Distinct non-loop edges with every cycle broken by reversing DFS back edges. Returns
/// the acyclic edges and the set of original edges that were reversed.
fn break_cycles(n: usize, edges: &[(usize, usize)]) -> (Vec<Edge>, HashSet<Edge>) {
    let mut seen = HashSet::new();
    let mut out_edges = vec![Vec::new(); n];
    for &(a, b) in edges {
        if a != b && a < n && b < n && seen.insert((a, b)) {
            out_edges[a].push(b);
        }
    }
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        OnStack,
        Done,
    }
    let mut state = vec![State::New; n];
    let mut reversed = HashSet::new();
    for start in 0..n {
        if state[start] != State::New {
            continue;
        }
        // Iterative DFS: (node, next child position).
        let mut stack = vec![(start, 0usize)];
        state[start] = State::OnStack;
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if let Some(&w) = out_edges[v].get(*next) {
                *next += 1;
                match state[w] {
                    State::New => {
                        state[w] = State::OnStack;
                        stack.push((w, 0));
                    }
                    State::OnStack => {
                        reversed.insert((v, w));
                    }
                    State::Done => {}
                }
            } else {
                state[v] = State::Done;
                stack.pop();
            }
        }
    }
    let mut acyclic: Vec<(usize, usize)> = Vec::with_capacity(seen.len());
    let mut kept = HashSet::new();
    for &(a, b) in edges {
        if a == b || a >= n || b >= n {
            continue;
        }
        let e = if reversed.contains(&(a, b)) {
            (b, a)
        } else {
            (a, b)
        };
        if kept.insert(e) {
            acyclic.push(e);
        }
    }
    (acyclic, reversed)
}

/// Longest path from the sources, then each source moved down to just above its first
/// consumer, so that variables and constants sit next to where they are used.
/// Pinned boxes then take the first (or last) layer, alone.
fn assign_layers(n: usize, edges: &[(usize, usize)], pin: impl Fn(usize) -> Pin) -> Vec<usize> {
    let mut in_degree = vec![0usize; n];
    let mut successors = vec![Vec::new(); n];
    let mut is_source = vec![true; n];
    for &(a, b) in edges {
        is_source[b] = false;
        // Edges from entry points (and to exit points) do not push free boxes down: the
        // pinned rows are added below, and counting them twice left an empty row under
        // the entry points of every scope.
        if pin(a) == Pin::Free && pin(b) == Pin::Free {
            successors[a].push(b);
            in_degree[b] += 1;
        }
    }
    let mut layer = vec![0usize; n];
    let mut queue: Vec<usize> = (0..n).filter(|&v| in_degree[v] == 0).collect();
    let mut head = 0;
    while head < queue.len() {
        let v = queue[head];
        head += 1;
        for &w in &successors[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            in_degree[w] -= 1;
            if in_degree[w] == 0 {
                queue.push(w);
            }
        }
    }
    for v in 0..n {
        if is_source[v] && pin(v) == Pin::Free {
            if let Some(first_use) = successors[v].iter().map(|&w| layer[w]).min() {
                layer[v] = first_use.saturating_sub(1);
            }
        }
    }
    let shift = usize::from((0..n).any(|v| pin(v) == Pin::Top));
    let mut deepest = 0;
    for (v, l) in layer.iter_mut().enumerate() {
        if pin(v) == Pin::Free {
            *l += shift;
            deepest = deepest.max(*l);
        }
    }
    for (v, l) in layer.iter_mut().enumerate() {
        match pin(v) {
            Pin::Top => *l = 0,
            Pin::Bottom => *l = deepest + 1,
            Pin::Free => {}
        }
    }
    layer
}

/// Splits edges that span several layers into chains through dummy boxes.
fn add_dummies(
    input: &LayeredInput,
    edges: &[(usize, usize)],
    mut layer: Vec<usize>,
) -> (Layered, Chains) {
    let n = input.sizes.len();
    let mut width: Vec<f64> = input.sizes.iter().map(|s| s.0).collect();
    let mut height: Vec<f64> = input.sizes.iter().map(|s| s.1).collect();
    let mut is_dummy = vec![false; n];
    let mut is_pinned: Vec<bool> = (0..n)
        .map(|v| input.pins.get(v).is_some_and(|p| *p != Pin::Free))
        .collect();
    let mut up = vec![Vec::new(); n];
    let mut down = vec![Vec::new(); n];
    let mut chains = Vec::new();
    for &(a, b) in edges {
        let mut chain = Vec::new();
        let mut previous = a;
        for l in layer[a] + 1..layer[b] {
            let dummy = layer.len();
            layer.push(l);
            width.push(DUMMY_WIDTH);
            height.push(0.0);
            is_dummy.push(true);
            is_pinned.push(false);
            up.push(vec![previous]);
            down.push(Vec::new());
            down[previous].push(dummy);
            chain.push(dummy);
            previous = dummy;
        }
        down[previous].push(b);
        up[b].push(previous);
        chains.push(((a, b), chain));
    }
    let depth = layer.iter().max().map_or(0, |&l| l + 1);
    let mut layers = vec![Vec::new(); depth];
    // Initial order: depth-first from the sources, so that connected boxes start close.
    let mut placed = vec![false; layer.len()];
    let mut stack: Vec<usize> = (0..n).rev().filter(|&v| up[v].is_empty()).collect();
    let visit = |v: usize, layers: &mut Vec<Vec<usize>>, placed: &mut Vec<bool>| {
        if !placed[v] {
            placed[v] = true;
            layers[layer[v]].push(v);
        }
    };
    while let Some(v) = stack.pop() {
        if placed[v] {
            continue;
        }
        visit(v, &mut layers, &mut placed);
        stack.extend(down[v].iter().rev().copied().filter(|&w| !placed[w]));
    }
    for v in 0..layer.len() {
        visit(v, &mut layers, &mut placed);
    }
    let graph = Layered {
        layer,
        width,
        height,
        is_dummy,
        is_pinned,
        up,
        down,
        layers,
    };
    (graph, chains)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxes(n: usize) -> Vec<(f64, f64)> {
        vec![(60.0, 30.0); n]
    }

    #[test]
    fn a_chain_is_a_vertical_line() {
        let out = layout(&LayeredInput {
            sizes: boxes(3),
            edges: vec![(0, 1), (1, 2)],
            node_gap: 20.0,
            layer_gap: 40.0,
            pins: Vec::new(),
        });
        assert!(out
            .centers
            .iter()
            .all(|c| (c.0 - out.centers[0].0).abs() < 1e-9));
        assert!(out.centers[0].1 < out.centers[1].1 && out.centers[1].1 < out.centers[2].1);
    }

    #[test]
    fn cycles_are_laid_out_and_long_edges_bend_through_dummies() {
        let out = layout(&LayeredInput {
            sizes: boxes(4),
            edges: vec![(0, 1), (1, 2), (2, 3), (3, 0), (0, 3)],
            node_gap: 20.0,
            layer_gap: 40.0,
            pins: Vec::new(),
        });
        assert_eq!(out.routes.len(), 5);
        assert_eq!(out.routes[4].len(), 2, "0 -> 3 crosses two layers");
    }

    #[test]
    fn pinned_boxes_take_the_first_and_last_layers() {
        let out = layout(&LayeredInput {
            sizes: vec![(60.0, 30.0), (60.0, 30.0), (4.0, 0.0), (4.0, 0.0)],
            edges: vec![(2, 1), (0, 1), (1, 3), (0, 3)],
            node_gap: 20.0,
            layer_gap: 40.0,
            pins: vec![Pin::Free, Pin::Free, Pin::Top, Pin::Bottom],
        });
        let y = |v: usize| out.centers[v].1;
        assert!(y(2) < y(0) && y(0) < y(1) && y(1) < y(3));
    }

    #[test]
    fn entry_points_leave_no_empty_row() {
        // entry -> box -> exit: three rows, with the short gap next to pinned rows.
        let out = layout(&LayeredInput {
            sizes: vec![(60.0, 30.0), (4.0, 0.0), (4.0, 0.0)],
            edges: vec![(1, 0), (0, 2)],
            node_gap: 20.0,
            layer_gap: 40.0,
            pins: vec![Pin::Free, Pin::Top, Pin::Bottom],
        });
        assert_eq!(out.height, 20.0 + 30.0 + 20.0);
        assert_eq!(out.centers[0].1 - out.centers[1].1, 20.0 + 15.0);
    }

    #[test]
    fn crossings_are_removed_when_possible() {
        // Two parallel chains given in crossed order.
        let out = layout(&LayeredInput {
            sizes: boxes(4),
            edges: vec![(0, 3), (1, 2)],
            node_gap: 20.0,
            layer_gap: 40.0,
            pins: Vec::new(),
        });
        let x = |v: usize| out.centers[v].0;
        assert_eq!(x(0) < x(1), x(3) < x(2));
    }
}
