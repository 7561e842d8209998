//! A model at a glance (`graph.summary()`), as Keras' `model.summary()` gives one: a row per
//! layer, where a layer is a top-level name scope (`hidden1/...`), or per node outside any
//! scope; each with its ops, the shape of what it outputs, its parameters and devices. The
//! gradient and optimizer scopes are rows of their own, marked as training. Plain data:
//! frontends draw it as text or as an HTML table.

use super::{Graph, Node};
use crate::ops::Effect;
use std::fmt;

/// Top-level scopes that autodiff and the optimizers make (`gradients`, `Adam_1`, ...).
pub const TRAINING_SCOPES: [&str; 4] = ["gradients", "GradientDescent", "Momentum", "Adam"];

/// One row of a [`GraphSummary`].
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// The scope, or the node's name.
    pub name: String,
    /// The node's op, or the scope's op count and its first distinct ops.
    pub ops: String,
    /// dtype and shape of the row's last node's first output (`f32[?, 10]`).
    pub output: String,
    /// Elements of trainable variables in the row.
    pub parameters: u64,
    /// Elements of other variables (optimizer slots, counters).
    pub other_state: u64,
    /// Device constraints of the row's nodes, distinct, in order of appearance.
    pub devices: Vec<String>,
    /// A gradient or optimizer scope.
    pub training: bool,
}

/// What [`Graph::summary`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphSummary {
    pub rows: Vec<SummaryRow>,
    pub nodes: usize,
    /// Elements of every trainable variable.
    pub parameters: u64,
    /// Elements of every other variable.
    pub other_state: u64,
}

impl Graph {
    /// The graph at a glance: a row per top-level name scope or per node outside one
    /// (constants left out), in the order they were made.
    pub fn summary(&self) -> GraphSummary {
        let nodes = self.nodes();
        let trainable: std::collections::HashSet<usize> = self
            .trainable_variables()
            .iter()
            .map(|v| v.node())
            .collect();
        let mut rows: Vec<(SummaryRow, Vec<&'static str>, usize)> = Vec::new();
        let mut row_of: std::collections::HashMap<&str, usize> = Default::default();
        for (id, node) in nodes.iter().enumerate() {
            let (group, scoped) = match node.name.split_once('/') {
                Some((scope, _)) => (scope, true),
                None => (node.name.as_str(), false),
            };
            if !scoped && node.op.effect() == Effect::Constant {
                continue;
            }
            let index = *row_of.entry(group).or_insert_with(|| {
                rows.push((new_row(group), Vec::new(), 0));
                rows.len() - 1
            });
            let (row, ops, count) = &mut rows[index];
            add_node(row, node, trainable.contains(&id));
            *count += 1;
            if !ops.contains(&node.op_name()) {
                ops.push(node.op_name());
            }
        }
        let rows: Vec<SummaryRow> = rows
            .into_iter()
            .map(|(mut row, ops, count)| {
                row.ops = describe_ops(&ops, count);
                row
            })
            .collect();
        GraphSummary {
            nodes: nodes.len(),
            parameters: rows.iter().map(|r| r.parameters).sum(),
            other_state: rows.iter().map(|r| r.other_state).sum(),
            rows,
        }
    }
}

fn new_row(name: &str) -> SummaryRow {
    let base = name.rsplit_once('_').map_or(name, |(base, n)| {
        if n.chars().all(|c| c.is_ascii_digit()) {
            base
        } else {
            name
        }
    });
    SummaryRow {
        name: name.to_string(),
        ops: String::new(),
        output: String::new(),
        parameters: 0,
        other_state: 0,
        devices: Vec::new(),
        training: TRAINING_SCOPES.contains(&base),
    }
}

fn add_node(row: &mut SummaryRow, node: &Node, trainable: bool) {
    if let Some(out) = node.outputs.first() {
        row.output = out.to_string();
        if node.op.effect() == Effect::ReadVariable {
            let elements = out.shape.num_elements().unwrap_or(0) as u64;
            if trainable {
                row.parameters += elements;
            } else {
                row.other_state += elements;
            }
        }
    }
    if !node.device.is_empty() && !row.devices.contains(&node.device) {
        row.devices.push(node.device.clone());
    }
}

/// `MatMul` for one node; `5 ops: MatMul, Add, Relu, ...` for a scope.
fn describe_ops(ops: &[&str], count: usize) -> String {
    if count == 1 {
        return ops.first().copied().unwrap_or_default().to_string();
    }
    let shown: Vec<&str> = ops.iter().copied().take(3).collect();
    let more = if ops.len() > 3 { ", ..." } else { "" };
    format!("{count} ops: {}{more}", shown.join(", "))
}

/// `12345` as `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for GraphSummary {
    /// A text table, for terminals and as the plain form of the notebook's table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Graph: {} nodes, {} trainable parameters",
            self.nodes,
            thousands(self.parameters)
        )?;
        if self.other_state > 0 {
            write!(
                f,
                " ({} values of other state)",
                thousands(self.other_state)
            )?;
        }
        writeln!(f)?;
        let devices = self.rows.iter().any(|r| !r.devices.is_empty());
        let mut table = vec![vec![
            "name".to_string(),
            "ops".into(),
            "output".into(),
            "parameters".into(),
            "device".into(),
        ]];
        for row in &self.rows {
            let ops = if row.training {
                format!("{} (training)", row.ops)
            } else {
                row.ops.clone()
            };
            table.push(vec![
                row.name.clone(),
                ops,
                row.output.clone(),
                thousands(row.parameters),
                row.devices.join(", "),
            ]);
        }
        let columns = if devices { 5 } else { 4 };
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                table
                    .iter()
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &table {
            let mut line = String::new();
            for (c, cell) in row.iter().take(columns).enumerate() {
                let pad = widths[c].saturating_sub(cell.chars().count());
                if c == 3 {
                    // Numbers line up on the right.
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                }
                line.push_str("  ");
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    #[test]
    fn layers_variables_and_training_scopes() {
        let g = Graph::new();
        let x = g.placeholder("x", DType::F32, &[-1, 4]);
        let hidden = {
            let _scope = g.name_scope("hidden");
            let w = g.variable("W", &[4, 3], Initializer::Zeros);
            let b = g.variable("b", &[3], Initializer::Zeros);
            relu(matmul(x, w) + b)
        };
        let loss = reduce_sum(hidden);
        let _train = GradientDescent::new(0.1).minimize(loss);
        let summary = g.summary();
        let names: Vec<&str> = summary.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names.first(), Some(&"x"), "{names:?}");
        let layer = summary.rows.iter().find(|r| r.name == "hidden");
        let layer = layer.expect("a row for the hidden scope");
        assert_eq!(layer.parameters, 15);
        assert_eq!(layer.output, "f32[?, 3]");
        assert!(layer.ops.starts_with("5 ops"), "{}", layer.ops);
        assert!(summary
            .rows
            .iter()
            .any(|r| r.name == "gradients" && r.training));
        assert_eq!(summary.parameters, 15);
        let text = summary.to_string();
        assert!(text.contains("15 trainable parameters"), "{text}");
        assert!(!text.contains("device"), "no devices, no column: {text}");
    }

    #[test]
    fn digits_are_grouped() {
        assert_eq!(thousands(7850), "7,850");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
