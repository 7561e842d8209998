//! Nested layout of open name scopes. Each open scope is laid out on its own and then is
//! one big box in its parent's layout. An edge that leaves a scope goes through an exit
//! point on the scope's bottom row, and one that enters goes through an entry point on its
//! top row, so edges are routed inside each scope too instead of cutting across it.

use crate::graph_view::GraphView;
use crate::layered::{self, LayeredInput, LayeredOutput, Pin};
use crate::layout::{BoxKind, BoxText, EdgePath, GraphLayout, NodeBox, Rect, ScopeBox};
use crate::scopes::{Item, ScopeTree, ROOT};
use std::collections::{HashMap, HashSet};

/// Something laid out inside a container: a child, or a scope's entry or exit point for
/// the edges of one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    Child(Item),
    Entry(Item),
    Exit(Item),
}

/// Box sizes and spacing, decided by the caller.
pub(crate) struct Spacing {
    pub node_gap: f64,
    pub layer_gap: f64,
    pub scope_pad: f64,
    pub scope_title: f64,
    pub margin: f64,
}

const PORT_WIDTH: f64 = 4.0;

/// One drawn edge: graph edges between the same two boxes, merged.
pub(crate) struct VisibleEdge {
    pub ends: (Item, Item),
    /// The deepest container holding both ends.
    pub container: usize,
    /// The children of `container` that hold each end.
    pub local: (Item, Item),
    /// Scopes left on the way, innermost first, with their child holding the source.
    pub exits: Vec<(usize, Item)>,
    /// Scopes entered on the way, outermost first, with their child holding the target.
    pub entries: Vec<(usize, Item)>,
    pub control: bool,
    pub count: usize,
    pub labels: Vec<String>,
}

impl VisibleEdge {
    pub(crate) fn new(
        tree: &ScopeTree,
        chains: &HashMap<usize, Vec<usize>>,
        from: Item,
        to: Item,
    ) -> VisibleEdge {
        let empty = Vec::new();
        let chain_from = chains.get(&tree.container_of(from)).unwrap_or(&empty);
        let chain_to = chains.get(&tree.container_of(to)).unwrap_or(&empty);
        let common = chain_from
            .iter()
            .zip(chain_to)
            .take_while(|(a, b)| a == b)
            .count();
        let container = common.checked_sub(1).map_or(ROOT, |i| chain_from[i]);
        // For each scope below the common container, the child of it that holds the end.
        let path = |chain: &Vec<usize>, end: Item| -> Vec<(usize, Item)> {
            (common..chain.len())
                .map(|j| {
                    let child = chain.get(j + 1).map_or(end, |&s| Item::Open(s));
                    (chain[j], child)
                })
                .collect()
        };
        let mut exits = path(chain_from, from);
        exits.reverse();
        let entries = path(chain_to, to);
        let local_end =
            |chain: &Vec<usize>, end: Item| chain.get(common).map_or(end, |&s| Item::Open(s));
        VisibleEdge {
            ends: (from, to),
            container,
            local: (local_end(chain_from, from), local_end(chain_to, to)),
            exits,
            entries,
            control: true,
            count: 0,
            labels: Vec::new(),
        }
    }
}

/// The layout of one container, in its own coordinates until placed.
struct ContainerLayout {
    slots: Vec<Slot>,
    sizes: Vec<(f64, f64)>,
    output: LayeredOutput,
    route_of: HashMap<(Slot, Slot), usize>,
    box_size: (f64, f64),
    /// Absolute position of the content's top-left corner, once placed.
    origin: (f64, f64),
}

/// Labels and size of each node or collapsed-scope box, computed by the caller.
pub(crate) type BoxLabels = HashMap<Item, BoxText>;

/// Lays out every container bottom-up, places them top-down, then routes the edges.
pub(crate) fn lay_out(
    tree: &ScopeTree,
    containers: &[usize],
    visible: &[VisibleEdge],
    mut labels: BoxLabels,
    title_width: impl Fn(usize) -> f64,
    spacing: &Spacing,
) -> GraphLayout {
    let edges_by_container = container_edges(visible);
    let mut done: HashMap<usize, ContainerLayout> = HashMap::new();
    for &container in containers.iter().rev() {
        let edges = edges_by_container
            .get(&container)
            .cloned()
            .unwrap_or_default();
        let mut slots: Vec<Slot> = tree
            .children(container)
            .into_iter()
            .map(Slot::Child)
            .collect();
        let mut seen: HashSet<Slot> = slots.iter().copied().collect();
        for &(a, b) in &edges {
            for slot in [a, b] {
                if seen.insert(slot) {
                    slots.push(slot);
                }
            }
        }
        let sizes: Vec<(f64, f64)> = slots
            .iter()
            .map(|slot| match slot {
                Slot::Child(Item::Open(s)) => done.get(s).map_or((0.0, 0.0), |c| c.box_size),
                Slot::Child(item) => labels.get(item).map_or((0.0, 0.0), |l| l.size),
                Slot::Entry(_) | Slot::Exit(_) => (PORT_WIDTH, 0.0),
            })
            .collect();
        let pins = slots
            .iter()
            .map(|slot| match slot {
                Slot::Child(_) => Pin::Free,
                Slot::Entry(_) => Pin::Top,
                Slot::Exit(_) => Pin::Bottom,
            })
            .collect();
        let position: HashMap<Slot, usize> =
            slots.iter().enumerate().map(|(i, &s)| (s, i)).collect();
        let input = LayeredInput {
            sizes,
            edges: edges
                .iter()
                .map(|(a, b)| (position[a], position[b]))
                .collect(),
            node_gap: spacing.node_gap,
            layer_gap: spacing.layer_gap,
            pins,
        };
        let output = layered::layout(&input);
        let box_size = (
            output.width.max(title_width(container)) + 2.0 * spacing.scope_pad,
            output.height + spacing.scope_title + spacing.scope_pad,
        );
        let route_of = edges.iter().enumerate().map(|(i, &e)| (e, i)).collect();
        done.insert(
            container,
            ContainerLayout {
                slots,
                sizes: input.sizes,
                output,
                route_of,
                box_size,
                origin: (0.0, 0.0),
            },
        );
    }

    let mut placement = Placement {
        layout: GraphLayout {
            width: 0.0,
            height: 0.0,
            boxes: Vec::new(),
            scopes: Vec::new(),
            edges: Vec::new(),
        },
        box_of: HashMap::new(),
        port_at: HashMap::new(),
        scope_rect: HashMap::new(),
        row_of: HashMap::new(),
    };
    let origin = (spacing.margin, spacing.margin);
    placement.place(tree, &mut done, &mut labels, ROOT, origin, spacing);
    if let Some(root) = done.get(&ROOT) {
        placement.layout.width = root.output.width + 2.0 * spacing.margin;
        placement.layout.height = root.output.height + 2.0 * spacing.margin;
    }
    for edge in visible {
        if let Some(path) = placement.route(edge, &done) {
            placement.layout.edges.push(path);
        }
    }
    placement.layout
}

/// The edges each container lays out: between its children, and from entry points and to
/// exit points for edges that cross its border.
fn container_edges(visible: &[VisibleEdge]) -> HashMap<usize, Vec<(Slot, Slot)>> {
    let mut edges: HashMap<usize, Vec<(Slot, Slot)>> = HashMap::new();
    let mut seen: HashSet<(usize, Slot, Slot)> = HashSet::new();
    let mut add = |container: usize, a: Slot, b: Slot| {
        if seen.insert((container, a, b)) {
            edges.entry(container).or_default().push((a, b));
        }
    };
    for edge in visible {
        add(
            edge.container,
            Slot::Child(edge.local.0),
            Slot::Child(edge.local.1),
        );
        for &(scope, child) in &edge.exits {
            add(scope, Slot::Child(child), Slot::Exit(child));
        }
        for &(scope, child) in &edge.entries {
            add(scope, Slot::Entry(child), Slot::Child(child));
        }
    }
    edges
}

struct Placement {
    layout: GraphLayout,
    box_of: HashMap<Item, usize>,
    port_at: HashMap<Slot, (f64, f64)>,
    scope_rect: HashMap<usize, Rect>,
    /// The top and bottom of the row each child (box or open scope) sits in.
    row_of: HashMap<Item, (f64, f64)>,
}

impl Placement {
    /// Places a container's slots at absolute positions, recursing into open scopes.
    fn place(
        &mut self,
        tree: &ScopeTree,
        done: &mut HashMap<usize, ContainerLayout>,
        labels: &mut BoxLabels,
        container: usize,
        origin: (f64, f64),
        spacing: &Spacing,
    ) {
        let Some(this) = done.get_mut(&container) else {
            return;
        };
        this.origin = origin;
        let placed: Vec<(Slot, Rect)> = this
            .slots
            .iter()
            .zip(&this.sizes)
            .zip(&this.output.centers)
            .map(|((&slot, &(width, height)), &(cx, cy))| {
                let rect = Rect {
                    x: origin.0 + cx - width / 2.0,
                    y: origin.1 + cy - height / 2.0,
                    width,
                    height,
                };
                (slot, rect)
            })
            .collect();
        for (&slot, &(top, bottom)) in this.slots.iter().zip(&this.output.rows) {
            if let Slot::Child(item) = slot {
                self.row_of
                    .insert(item, (origin.1 + top, origin.1 + bottom));
            }
        }
        for (slot, rect) in placed {
            match slot {
                Slot::Entry(_) | Slot::Exit(_) => {
                    self.port_at.insert(slot, rect.center());
                }
                Slot::Child(Item::Open(s)) => {
                    let scope = &tree.scopes[s];
                    self.layout.scopes.push(ScopeBox {
                        path: scope.path.clone(),
                        label: scope.name.clone(),
                        depth: scope.depth,
                        node_count: scope.all_nodes.len(),
                        rect,
                    });
                    self.scope_rect.insert(s, rect);
                    let inner_width = done.get(&s).map_or(0.0, |c| c.output.width);
                    let inner = (
                        rect.x + (rect.width - inner_width) / 2.0,
                        rect.y + spacing.scope_title,
                    );
                    self.place(tree, done, labels, s, inner, spacing);
                }
                Slot::Child(item) => {
                    let kind = match item {
                        Item::Collapsed(s) => BoxKind::CollapsedScope {
                            path: tree.scopes[s].path.clone(),
                            members: tree.scopes[s].all_nodes.clone(),
                        },
                        Item::Node(n) | Item::Open(n) => BoxKind::Node(n),
                    };
                    let Some(text) = labels.remove(&item) else {
                        continue;
                    };
                    self.box_of.insert(item, self.layout.boxes.len());
                    self.layout.boxes.push(NodeBox {
                        kind,
                        rect,
                        heading: text.heading,
                        detail: text.detail,
                        heading_lines: text.heading_lines,
                        detail_lines: text.detail_lines,
                    });
                }
            }
        }
    }

    /// Source box, out through each scope's exit point, across the common container, in
    /// through each scope's entry point, to the target box.
    fn route(
        &self,
        edge: &VisibleEdge,
        done: &HashMap<usize, ContainerLayout>,
    ) -> Option<EdgePath> {
        let from = *self.box_of.get(&edge.ends.0)?;
        let to = *self.box_of.get(&edge.ends.1)?;
        let (source, target) = (self.layout.boxes[from].rect, self.layout.boxes[to].rect);
        let bends = |container: usize, a: Slot, b: Slot, points: &mut Vec<(f64, f64)>| {
            let Some(layout) = done.get(&container) else {
                return;
            };
            let Some(&route) = layout.route_of.get(&(a, b)) else {
                return;
            };
            let (ox, oy) = layout.origin;
            if let Some(route) = layout.output.routes.get(route) {
                points.extend(route.iter().map(|&(x, y)| (x + ox, y + oy)));
            }
        };
        let upwards = edge.exits.is_empty()
            && edge.entries.is_empty()
            && target.center().1 < source.center().1;
        // A box shorter than its row is centred in it: an edge first runs straight to the
        // row's edge, so that it does not cut across a taller neighbour on the way.
        let row_edge = |item: Item, low: bool| {
            self.row_of
                .get(&item)
                .map(|&(top, bottom)| if low { bottom } else { top })
        };
        let to_row_edge = |points: &mut Vec<(f64, f64)>, item: Item, low: bool| {
            if let (Some(&(x, y)), Some(row_y)) = (points.last(), row_edge(item, low)) {
                if (row_y - y).abs() > 0.5 {
                    points.push((x, row_y));
                }
            }
        };
        let mut points = vec![if upwards {
            (source.center().0, source.y)
        } else {
            (source.center().0, source.bottom())
        }];
        to_row_edge(&mut points, edge.ends.0, !upwards);
        for &(scope, child) in &edge.exits {
            bends(scope, Slot::Child(child), Slot::Exit(child), &mut points);
            let port = *self.port_at.get(&Slot::Exit(child))?;
            points.push(port);
            let border = self.scope_rect.get(&scope).map_or(port.1, |r| r.bottom());
            points.push((port.0, border));
            to_row_edge(&mut points, Item::Open(scope), true);
        }
        bends(
            edge.container,
            Slot::Child(edge.local.0),
            Slot::Child(edge.local.1),
            &mut points,
        );
        for &(scope, child) in &edge.entries {
            let port = *self.port_at.get(&Slot::Entry(child))?;
            let border = self.scope_rect.get(&scope).map_or(port.1, |r| r.y);
            if let Some(row_top) = row_edge(Item::Open(scope), false) {
                if border - row_top > 0.5 {
                    points.push((port.0, row_top));
                }
            }
            points.push((port.0, border));
            points.push(port);
            bends(scope, Slot::Entry(child), Slot::Child(child), &mut points);
        }
        let end = if upwards {
            (target.center().0, target.bottom())
        } else {
            (target.center().0, target.y)
        };
        if let Some(row_y) = row_edge(edge.ends.1, upwards) {
            if (row_y - end.1).abs() > 0.5 {
                points.push((end.0, row_y));
            }
        }
        points.push(end);
        points.dedup();
        let label = match edge.labels.as_slice() {
            [] => None,
            [one] if edge.count == 1 => Some(one.clone()),
            [one] => Some(format!("{one} ×{}", edge.count)),
            _ => Some(format!("{} tensors", edge.count)),
        };
        Some(EdgePath {
            from,
            to,
            points,
            control: edge.control,
            count: edge.count,
            label,
            auxiliary: false,
        })
    }
}

/// Containers reachable through open scopes, parents before children.
pub(crate) fn open_containers(tree: &ScopeTree) -> Vec<usize> {
    let mut containers = vec![ROOT];
    let mut at = 0;
    while at < containers.len() {
        for &child in &tree.scopes[containers[at]].child_scopes {
            if tree.scopes[child].open {
                containers.push(child);
            }
        }
        at += 1;
    }
    containers
}

/// Merges the graph's edges into visible edges between drawn boxes.
pub(crate) fn visible_edges(
    graph: &GraphView,
    tree: &ScopeTree,
    containers: &[usize],
    index: &HashMap<usize, usize>,
    edge_labels: bool,
) -> Vec<VisibleEdge> {
    let chains: HashMap<usize, Vec<usize>> =
        containers.iter().map(|&c| (c, tree.chain(c))).collect();
    let representative: Vec<Item> = (0..graph.nodes.len())
        .map(|n| tree.representative(n))
        .collect();
    let mut visible: Vec<VisibleEdge> = Vec::new();
    let mut slot_of: HashMap<(Item, Item), usize> = HashMap::new();
    for edge in &graph.edges {
        let (Some(&from), Some(&to)) = (index.get(&edge.from), index.get(&edge.to)) else {
            continue;
        };
        let (rep_from, rep_to) = (representative[from], representative[to]);
        if rep_from == rep_to {
            continue;
        }
        let slot = *slot_of.entry((rep_from, rep_to)).or_insert_with(|| {
            visible.push(VisibleEdge::new(tree, &chains, rep_from, rep_to));
            visible.len() - 1
        });
        let merged = &mut visible[slot];
        merged.control &= edge.control;
        merged.count += 1;
        if edge_labels && !edge.control {
            let label = graph.nodes[from].type_label();
            if !label.is_empty() && !merged.labels.contains(&label) {
                merged.labels.push(label);
            }
        }
    }
    visible
}
