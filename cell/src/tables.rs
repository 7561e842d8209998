//! Values as HTML tables: tensors (a corner of them) and graph summaries.

use sluice::prelude::*;
use sluice::GraphSummary;

/// At most this many rows and columns of a tensor go into its table.
const TABLE_LIMIT: usize = 20;

/// A tensor as an HTML table (scalars, vectors and matrices; a summary for higher ranks).
pub fn tensor_html(t: &Tensor) -> String {
    let shape = t.shape().to_vec();
    let mut html = format!("<div><small>Tensor {} {:?}</small>", t.dtype(), shape);
    let (rows, cols) = match shape.as_slice() {
        [] => (1, 1),
        [n] => (1, *n),
        [r, c] => (*r, *c),
        _ => (0, 0),
    };
    if rows * cols > 0 {
        html.push_str("<table>");
        for r in 0..rows.min(TABLE_LIMIT) {
            html.push_str("<tr>");
            for c in 0..cols.min(TABLE_LIMIT) {
                html.push_str(&format!(
                    "<td>{}</td>",
                    format_value(t.get_f64(r * cols + c))
                ));
            }
            if cols > TABLE_LIMIT {
                html.push_str("<td>&hellip;</td>");
            }
            html.push_str("</tr>");
        }
        if rows > TABLE_LIMIT {
            html.push_str("<tr><td>&vellip;</td></tr>");
        }
        html.push_str("</table>");
    }
    html.push_str("</div>");
    html
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.6}")
    }
}

/// A graph summary as an HTML table: one row per layer (name scope) or node outside one.
pub fn summary_html(summary: &GraphSummary) -> String {
    let devices = summary.rows.iter().any(|r| !r.devices.is_empty());
    let mut html = format!(
        "<div><b>Graph</b>: {} nodes, {} trainable parameters",
        summary.nodes,
        sluice::graph::thousands(summary.parameters)
    );
    if summary.other_state > 0 {
        html.push_str(&format!(
            " ({} values of other state: optimizer slots, counters)",
            sluice::graph::thousands(summary.other_state)
        ));
    }
    html.push_str("<table><tr><th style=\"text-align:left\">name</th><th style=\"text-align:left\">ops</th><th style=\"text-align:left\">output</th><th>parameters</th>");
    if devices {
        html.push_str("<th style=\"text-align:left\">device</th>");
    }
    html.push_str("</tr>");
    for row in &summary.rows {
        let style = if row.training {
            " style=\"color:#888\""
        } else {
            ""
        };
        html.push_str(&format!(
            "<tr{style}><td style=\"text-align:left\"><code>{}</code></td><td style=\"text-align:left\">{}</td><td style=\"text-align:left\"><code>{}</code></td><td>{}</td>",
            escape(&row.name),
            escape(&row.ops),
            escape(&row.output),
            sluice::graph::thousands(row.parameters),
        ));
        if devices {
            html.push_str(&format!(
                "<td style=\"text-align:left\">{}</td>",
                escape(&row.devices.join(", "))
            ));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table></div>");
    html
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrices_become_tables() {
        let t = Tensor::new(&[2, 2], vec![1.0f32, 2.5, 3.0, 4.0])
            .unwrap_or_else(|_| Tensor::scalar(0.0f32));
        let html = tensor_html(&t);
        assert!(html.contains("<table>"));
        assert!(html.contains("<td>2.500000</td>"));
        assert_eq!(html.matches("<tr>").count(), 2);
    }

    #[test]
    fn summaries_become_tables() {
        let g = Graph::new();
        let x = g.placeholder("x", DType::F32, &[-1, 3]);
        let w = g.variable("W", &[3, 2], Initializer::Zeros);
        let _y = matmul(x, w);
        let html = summary_html(&g.summary());
        assert!(html.contains("<code>W</code>"), "{html}");
        assert!(html.contains("<td>6</td>"), "{html}");
        assert!(!html.contains(">device<"), "no devices, no column: {html}");
    }
}
