//! Helpers for cells of the Sluice Jupyter kernel, compiled once and linked by every cell (so a
//! cell compiles only its own code). The cell's process talks to the kernel by printing
//! directive lines on stdout (`SLUICE_KERNEL <verb> ...`), which the kernel takes out of the
//! stream; see [`protocol`].

pub mod protocol;

use protocol::{encode_word, CURVE, DIRECTIVE_PREFIX, PANIC, SESSION, SHOW_GRAPH};
use sluice::distributed::TrainEvent;
use sluice::prelude::*;

/// Notebook helpers for sessions.
pub trait SluiceNotebook {
    /// Draws the session's graph in the notebook (what `:graph` does).
    fn show_graph(&mut self);
}

impl SluiceNotebook for RemoteSession {
    fn show_graph(&mut self) {
        // A step with nothing to compute sends the nodes added since the last call, so the
        // engine's graph (which the kernel draws) is the cell's.
        let _ = self.run_with_targets(&[], &[], &[]);
        println!(
            "{DIRECTIVE_PREFIX}{SHOW_GRAPH} {} {}",
            self.addr(),
            self.handle()
        );
    }
}

/// Asks the person at the notebook (an input box under the cell) or at the terminal for a
/// line, after showing `prompt`; the line comes back without its newline. Empty when the
/// frontend takes no input or the cell is interrupted.
pub fn input(prompt: &str) -> String {
    ask(evcxr_input::GET_CMD, prompt)
}

/// As [`input`], for a secret: the notebook does not show what is typed.
pub fn password(prompt: &str) -> String {
    ask(evcxr_input::GET_CMD_PASSWORD, prompt)
}

/// evcxr_input's request line, with the prompt encoded so that colons survive evcxr.
fn ask(command: &str, prompt: &str) -> String {
    // evcxr sees the request only at the start of a line: end whatever `print!` left open
    // (the kernel drops the empty line this makes otherwise).
    println!();
    println!("{command}:{}", protocol::encode_prompt(prompt));
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(_) => line.trim_end_matches(['\n', '\r']).to_string(),
        Err(_) => String::new(),
    }
}

impl SluiceNotebook for sluice::distributed::DistributedSession {
    /// Draws the whole graph as placed, nodes coloured by task and device. The kernel draws
    /// graphs it reads from its engine: the placed graph goes there as a session of its own,
    /// which replaces the one the previous drawing left.
    fn show_graph(&mut self) {
        static VIEW: std::sync::Mutex<Option<RemoteSession>> = std::sync::Mutex::new(None);
        let placed = match self.placed_graph() {
            Ok(g) => g,
            Err(e) => return eprintln!("cannot place the graph: {e}"),
        };
        let engine = std::env::var("SLUICE_ENGINE").unwrap_or_default();
        let mut view = VIEW.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = view.take() {
            let _ = old.close();
        }
        match RemoteSession::create(&engine, &placed) {
            Ok(session) => {
                println!(
                    "{DIRECTIVE_PREFIX}{SHOW_GRAPH} {} {}",
                    session.addr(),
                    session.handle()
                );
                *view = Some(session);
            }
            Err(e) => eprintln!("cannot hand the placed graph to the kernel's engine: {e}"),
        }
    }
}

/// Tells the kernel that the cells use this session (its work is cancelled on interrupt).
pub fn announce_session(sess: &RemoteSession) {
    println!(
        "{DIRECTIVE_PREFIX}{SESSION} {} {}",
        sess.addr(),
        sess.handle()
    );
}

/// Tells the kernel about a distributed session's graphs on its workers, so that an
/// interrupt cancels the steps running there too (not only the cell's own engine work).
pub fn announce_cluster_session(sess: &sluice::distributed::DistributedSession) {
    for (_task, addr, handle) in sess.task_graphs() {
        println!("{DIRECTIVE_PREFIX}{SESSION} {addr} {handle}");
    }
}

/// Adds a point to each series of the live chart `name` under the running cell (drawn with
/// the loss curves, redrawn in place as points arrive).
pub fn plot(name: &str, step: u64, points: &[(&str, f64)]) {
    let points: Vec<String> = (points.iter())
        .filter(|(_, v)| v.is_finite())
        .map(|(series, v)| format!("{}={v}", encode_word(series)))
        .collect();
    if !points.is_empty() {
        println!(
            "{DIRECTIVE_PREFIX}{CURVE} {} {step} {}",
            encode_word(name),
            points.join(" ")
        );
    }
}

/// Shows a data-parallel trainer's progress as it goes: each step's loss as the series
/// `series` of the live chart `name`; lost tasks, restores and stalls as lines of text.
pub fn plot_training(name: &str, series: &str, event: &TrainEvent) {
    match event {
        TrainEvent::Step { step, loss } => plot(name, *step, &[(series, *loss)]),
        TrainEvent::Lost { tasks, message } => {
            println!("{series}: lost {} ({message})", tasks.join(", "))
        }
        TrainEvent::Stalled { missing, seconds } => {
            println!(
                "{series}: no answer from {} for {seconds:.1} s",
                missing.join(", ")
            )
        }
        TrainEvent::Restored { step, checkpoint } => match checkpoint {
            Some(path) => println!("{series}: going on from step {step} ({})", path.display()),
            None => println!("{series}: going on from step {step}"),
        },
        TrainEvent::Worker { .. } | TrainEvent::Checkpoint { .. } => {}
    }
}

/// Reports panics to the kernel, which shows them as the cell's `error`.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let text = format!("{message}{place}");
        println!("{DIRECTIVE_PREFIX}{PANIC} {}", text.escape_default());
    }));
}

/// How the kernel shows values of Sluice's types as a cell's result (evcxr calls
/// `evcxr_display` on a cell's final value when the type has it).
pub trait SluiceDisplay {
    fn evcxr_display(&self);
}

impl SluiceDisplay for Tensor {
    fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/plain\n{self}\nEVCXR_END_CONTENT");
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            tensor_html(self)
        );
    }
}

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
}
