//! A text outline of a graph for terminals: scopes as a tree, one line per node with op,
//! shape and device; collapsed scopes as one line with a summary of their ops.

use crate::graph_view::GraphView;
use crate::scopes::{CollapseOptions, Item, ScopeTree, ROOT};
use std::collections::BTreeMap;

/// Widest name column, so that op and shape columns stay on screen; a longer name is shown
/// whole on its own line, with its columns on the next.
const MAX_NAME_COLUMN: usize = 44;

struct Row {
    prefix: String,
    /// What stands before a second line of this row, so that the tree's lines go on.
    continuation: String,
    name: String,
    rest: Rest,
}

/// After the name: a node's aligned columns, or a scope's free-form summary.
enum Rest {
    Node {
        op: String,
        shape: String,
        device: String,
    },
    Summary(String),
}

/// The outline of `graph`, scopes collapsed as `collapse` says.
pub fn render_outline(graph: &GraphView, collapse: &CollapseOptions) -> String {
    let tree = ScopeTree::build(graph, collapse);
    let mut rows = Vec::new();
    outline_container(graph, &tree, ROOT, "", &mut rows);

    let mut devices: Vec<&str> = graph
        .nodes
        .iter()
        .map(|n| n.device.as_str())
        .filter(|d| !d.is_empty())
        .collect();
    devices.sort_unstable();
    devices.dedup();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut out = format!(
        "graph: {}, {}\n",
        plural(graph.nodes.len(), "node"),
        plural(devices.len(), "device")
    );
    let width = |f: &dyn Fn(&Row) -> usize| rows.iter().map(f).max().unwrap_or(0);
    let name_width =
        width(&|r| r.prefix.chars().count() + r.name.chars().count()).min(MAX_NAME_COLUMN);
    let op_width = width(&|r| match &r.rest {
        Rest::Node { op, .. } => op.chars().count(),
        Rest::Summary(_) => 0,
    });
    let shape_width = width(&|r| match &r.rest {
        Rest::Node { shape, .. } => shape.chars().count(),
        Rest::Summary(_) => 0,
    });
    let mut push_line = |mut line: String| {
        line.truncate(line.trim_end().len());
        out.push_str(&line);
        out.push('\n');
    };
    for row in &rows {
        let room = name_width.saturating_sub(row.prefix.chars().count());
        let fits = row.name.chars().count() <= room;
        match &row.rest {
            Rest::Node { op, shape, device } => {
                let columns = format!("{op:<op_width$}  {shape:<shape_width$}  {device}");
                if fits {
                    push_line(format!("{}{:<room$}  {columns}", row.prefix, row.name));
                } else {
                    // Names are never cut: the name alone, then the aligned columns.
                    push_line(format!("{}{}", row.prefix, row.name));
                    push_line(format!("{}{:<room$}  {columns}", row.continuation, ""));
                }
            }
            // A summary is not a column: a long scope name just pushes it along.
            Rest::Summary(summary) => {
                push_line(format!("{}{:<room$}  {summary}", row.prefix, row.name));
            }
        }
    }
    out
}

fn nodes(count: usize) -> String {
    format!("{count} node{}", if count == 1 { "" } else { "s" })
}

fn outline_container(
    graph: &GraphView,
    tree: &ScopeTree,
    container: usize,
    indent: &str,
    rows: &mut Vec<Row>,
) {
    let children = tree.children(container);
    for (i, &item) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        let prefix = format!("{indent}{}", if last { "└── " } else { "├── " });
        let deeper = format!("{indent}{}", if last { "    " } else { "│   " });
        match item {
            Item::Node(n) => {
                let node = &graph.nodes[n];
                rows.push(Row {
                    prefix,
                    continuation: deeper,
                    name: node.short_name().to_string(),
                    rest: Rest::Node {
                        op: node.op.clone(),
                        shape: node.type_label(),
                        device: node.device.clone(),
                    },
                });
            }
            Item::Open(s) => {
                let scope = &tree.scopes[s];
                rows.push(Row {
                    prefix,
                    continuation: deeper.clone(),
                    name: format!("{}/", scope.name),
                    rest: Rest::Summary(nodes(scope.all_nodes.len())),
                });
                outline_container(graph, tree, s, &deeper, rows);
            }
            Item::Collapsed(s) => {
                let scope = &tree.scopes[s];
                rows.push(Row {
                    prefix,
                    continuation: deeper,
                    name: format!("{}/", scope.name),
                    rest: Rest::Summary(format!(
                        "{} (collapsed): {}",
                        nodes(scope.all_nodes.len()),
                        op_summary(graph, &scope.all_nodes)
                    )),
                });
            }
        }
    }
}

/// The four most frequent ops, e.g. `Mul ×3, Sum ×2, Tile, …`.
fn op_summary(graph: &GraphView, members: &[usize]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for &m in members {
        *counts.entry(graph.nodes[m].op.as_str()).or_default() += 1;
    }
    let mut by_count: Vec<(&str, usize)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut parts: Vec<String> = by_count
        .iter()
        .take(4)
        .map(|&(op, n)| {
            if n == 1 {
                op.to_string()
            } else {
                format!("{op} ×{n}")
            }
        })
        .collect();
    if by_count.len() > 4 {
        parts.push("…".into());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph_view::NodeView;

    #[test]
    fn scopes_nest_and_collapse() {
        let graph = GraphView {
            nodes: vec![
                NodeView::new(0, "x", "Placeholder").typed("f32", &[None, Some(784)]),
                NodeView::new(1, "dense/MatMul", "MatMul").on("/cpu:0"),
                NodeView::new(2, "gradients/a", "Mul"),
                NodeView::new(3, "gradients/b", "Mul"),
            ],
            edges: Vec::new(),
        };
        let text = render_outline(&graph, &CollapseOptions::default());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "graph: 4 nodes, 1 device");
        assert!(lines[1].starts_with("├── x ") && lines[1].contains("f32[?, 784]"));
        assert!(lines[2].starts_with("├── dense/"));
        assert!(lines[3].starts_with("│   └── MatMul") && lines[3].ends_with("/cpu:0"));
        assert!(lines[4].starts_with("└── gradients/") && lines[4].contains("Mul ×2"));
    }
}
