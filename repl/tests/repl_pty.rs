//! The REPL driven through a real pseudo-terminal, as a person types at it: the seed program
//! line by line with its progress bar and accuracy, Ctrl-C during a long fit, the history
//! after a restart, and errors that leave the prompt usable.
//!
//! The first start builds the engine's client crate in evcxr's shared build folder (minutes);
//! later starts reuse it. The tests run one at a time: each REPL compiles its cells.

use expectrl::session::{OsProcess, OsStream};
use expectrl::stream::log::LogStream;
use expectrl::{Eof, Expect, Regex, Session};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One REPL at a time: compiling cells is what they spend their time on.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const PROMPT: &str = "sluice> ";
/// Starting may build the client crate the first time.
const START_TIMEOUT: Duration = Duration::from_secs(1200);
const CELL_TIMEOUT: Duration = Duration::from_secs(300);

type Pty = Session<OsProcess, LogStream<OsStream, Transcript>>;

/// Everything the REPL printed (and was sent), for the message of a wait that fails.
#[derive(Clone, Default)]
struct Transcript(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Transcript {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Transcript {
    /// The last few thousand characters.
    fn tail(&self) -> String {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&kept);
        let start = text.len().saturating_sub(6000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text[start..].to_string()
    }
}

struct Repl {
    pty: Pty,
    transcript: Transcript,
}

impl Repl {
    fn start(history: &Path) -> Repl {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .env("SLUICE_HISTORY", history)
            .env("TERM", "xterm-256color")
            .env_remove("SLUICE_ENGINE");
        let mut pty = Session::spawn(command).expect("spawn sluice in a pty");
        // A pty starts 0x0: progress bars are cut to the width, so give it a real one.
        pty.get_process_mut()
            .set_window_size(120, 40)
            .expect("set the pty's size");
        let transcript = Transcript::default();
        let mut pty = expectrl::session::log(pty, transcript.clone()).expect("log the pty");
        pty.set_expect_timeout(Some(START_TIMEOUT));
        let mut repl = Repl { pty, transcript };
        repl.expect(PROMPT);
        repl.pty.set_expect_timeout(Some(CELL_TIMEOUT));
        repl
    }

    /// Everything up to and including `needle`, as text.
    fn expect(&mut self, needle: &str) -> String {
        match self.pty.expect(needle) {
            Ok(found) => String::from_utf8_lossy(found.before()).into_owned() + needle,
            Err(e) => panic!(
                "waiting for {needle:?}: {e}; the REPL's last output:\n{}",
                self.transcript.tail()
            ),
        }
    }

    /// The first capture group of `pattern`.
    fn expect_regex(&mut self, pattern: &str) -> String {
        match self.pty.expect(Regex(pattern)) {
            Ok(found) => found
                .get(1)
                .map(|m| String::from_utf8_lossy(m).into_owned())
                .unwrap_or_default(),
            Err(e) => panic!(
                "waiting for /{pattern}/: {e}; the REPL's last output:\n{}",
                self.transcript.tail()
            ),
        }
    }

    /// Types a line and presses Enter.
    fn type_line(&mut self, line: &str) {
        self.pty
            .send(format!("{line}\r"))
            .unwrap_or_else(|e| panic!("typing {line:?}: {e}"));
    }

    /// Types an entry line by line (each line but the last continues the entry), then waits
    /// for the prompt after it ran; returns what it printed.
    fn run(&mut self, entry: &str) -> String {
        for line in entry.lines() {
            self.type_line(line);
        }
        self.expect(PROMPT)
    }

    fn send(&mut self, keys: &str) {
        self.pty.send(keys).expect("send keys");
    }

    /// Ctrl-D, then waits for the process to end: a REPL started next must not find this
    /// one still holding its build folder.
    fn quit(mut self) {
        self.send("\x04");
        if let Err(e) = self.pty.expect(Eof) {
            panic!(
                "the REPL did not leave on Ctrl-D: {e}; its last output:\n{}",
                self.transcript.tail()
            );
        }
        if let Err(e) = self.pty.get_process().wait() {
            panic!("waiting for the REPL to end: {e}");
        }
    }
}

fn temp_history(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-repl-test-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// The session's TensorBoard run that `:logdir` asked for: the fit's loss and the graph
/// (written on the frontend's own thread: given a few seconds).
fn check_tensorboard_run(runs: &Path) {
    let started = std::time::Instant::now();
    loop {
        let (losses, graphs, files) = tensorboard_run(runs);
        if losses >= 10 && graphs >= 1 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{losses} losses and {graphs} graphs in {files:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `fit/loss` scalars and graphs in the event files under `runs`, and the files.
fn tensorboard_run(runs: &Path) -> (usize, usize, Vec<PathBuf>) {
    use sluice::tensorboard::{proto::event::What, proto::summary::value::Value, read_event_file};
    let files: Vec<PathBuf> = std::fs::read_dir(runs)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|run| {
            std::fs::read_dir(run.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|file| file.path())
        .collect();
    let events: Vec<_> = files
        .iter()
        .flat_map(|f| read_event_file(f).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let losses = events
        .iter()
        .filter_map(|e| match &e.what {
            Some(What::Summary(s)) => Some(s),
            _ => None,
        })
        .flat_map(|s| &s.value)
        .filter(|v| v.tag == "fit/loss" && matches!(v.value, Some(Value::SimpleValue(_))))
        .count();
    let graphs = (events.iter())
        .filter(|e| matches!(e.what, Some(What::GraphDef(_))))
        .count();
    (losses, graphs, files)
}

/// The seed program's graph, one line per entry, as the README writes it.
const SEED_GRAPH: &[&str] = &[
    "let test = mnist_digits()?.test;",
    "let x = graph.placeholder(\"x\", DType::F32, &[-1, 784]);",
    "let w = graph.variable(\"W\", &[784, 10], Initializer::Zeros);",
    "let b = graph.variable(\"b\", &[10], Initializer::Zeros);",
    "let y = softmax(matmul(x, w) + b);",
    "let y_ = graph.placeholder(\"y_\", DType::F32, &[-1, 10]);",
    "let xent = -reduce_sum(y_ * log(y));",
    "let train = GradientDescent::new(0.01).minimize(xent)?;",
    "let correct = equal(argmax(y, 1), argmax(y_, 1));",
    "let accuracy = reduce_mean(cast(correct, DType::F32));",
    "sess.init_variables()?;",
];

const ACCURACY: &str =
    "let acc = sess.run(&[accuracy], &[(x, test.inputs_tensor()), (y_, test.one_hot_tensor())])?;";

#[test]
fn seed_program_trains_with_a_progress_bar_and_history_survives_a_restart() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let history = temp_history("seed");
    let mut repl = Repl::start(&history);
    let runs = history.with_file_name("runs");
    let _ = std::fs::remove_dir_all(&runs);
    let out = repl.run(&format!(":logdir {}", runs.display()));
    assert!(out.contains("TensorBoard runs go to"), ":logdir: {out}");
    for line in SEED_GRAPH {
        repl.run(line);
    }
    // The engine-side fit: 1000 steps of 100, as the seed program; the bar, then a chart.
    repl.run("let config = FitConfig::new(x, y_, xent, train);");
    repl.type_line("sess.fit(\"mnist-digits\", &config, &mut |_| {})?;");
    let bar = repl.expect_regex(r"step (\d+)/1000");
    assert!(!bar.is_empty(), "no progress bar");
    repl.expect("ex/s");
    repl.expect("fit: 1000/1000 steps");
    repl.expect("loss, fit of 1000 steps");
    repl.expect(PROMPT);
    repl.run(ACCURACY);
    repl.type_line("println!(\"test accuracy: {:.4}\", acc[0].scalar_f64().unwrap_or(0.0));");
    let accuracy: f64 = repl
        .expect_regex(r"test accuracy: ([0-9.]+)")
        .parse()
        .expect("accuracy is a number");
    repl.expect(PROMPT);
    assert!(accuracy >= 0.91, "test accuracy {accuracy} < 0.91");

    // A multi-line entry waits for its closing bracket.
    for line in ["for i in 0..3 {", "    println!(\"row {}\", i * 10);", "}"] {
        repl.type_line(line);
    }
    repl.expect("row 20");
    repl.expect(PROMPT);

    let out = repl.run(":loss");
    assert!(out.contains("loss, fit of 1000 steps"), ":loss: {out}");
    // One step traced on the engine: its lane, its longest kernels, its trace file.
    let out = repl.run(
        ":trace &mut sess, &[xent], &[(x, test.inputs_tensor()), (y_, test.one_hot_tensor())], &[]",
    );
    assert!(
        out.contains("engine at") && out.contains("MatMul") && out.contains("Chrome trace: "),
        ":trace: {out}"
    );
    check_tensorboard_run(&runs);
    let out = repl.run(":graph");
    assert!(out.contains("graph:") && out.contains("W"), ":graph: {out}");
    let svg = history.with_file_name("graph.svg");
    repl.run(&format!(":graph --svg {}", svg.display()));
    let drawn = std::fs::read_to_string(&svg).unwrap_or_default();
    assert!(drawn.contains("<svg"), "no SVG in {}", svg.display());
    let out = repl.run(":vars");
    assert!(out.contains("accuracy"), ":vars: {out}");
    let out = repl.run(":devices");
    assert!(out.contains("CPU"), ":devices: {out}");
    let out = repl.run(":summary");
    assert!(
        out.contains("7,850 trainable parameters"),
        ":summary: {out}"
    );
    let out = repl.run("display_html(\"<b>saved</b>\");");
    assert!(
        out.contains("[text/html, 12 bytes: "),
        "rich output saved to a file: {out}"
    );
    repl.run("let history_marker = 7;");
    repl.quit();

    // A new REPL finds the entries in its history: Up brings back the last one.
    let mut repl = Repl::start(&history);
    repl.send("\x1b[A");
    repl.expect("let history_marker = 7;");
    repl.send("\x15");
    repl.quit();
    let saved = std::fs::read_to_string(&history).unwrap_or_default();
    assert!(
        saved.contains("sess.init_variables()?;"),
        "history file: {saved}"
    );
}

#[test]
fn ctrl_c_cancels_a_fit_and_errors_bring_the_prompt_back() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let history = temp_history("interrupt");
    let mut repl = Repl::start(&history);

    // The embedded engine listens on loopback, where other users reach it too: it requires
    // a token of its own, which this process (another user, say) does not have.
    repl.type_line(":engine");
    let addr = repl.expect_regex(r"engine (127\.0\.0\.1:\d+) \(embedded");
    repl.expect(PROMPT);
    std::env::remove_var(sluice::service::auth::TOKEN_ENV);
    std::env::remove_var(sluice::service::auth::TOKEN_FILE_ENV);
    let outsider = sluice::service::RemoteSession::create(&addr, &sluice::Graph::new())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(outsider.contains("requires a token"), "{addr}: {outsider}");

    // Ctrl-C at the prompt drops the line.
    repl.send("let dropped = 1");
    repl.send("\x03");
    repl.expect(PROMPT);

    // A syntax error, a compile error and an engine error: a message, then the prompt.
    let out = repl.run("let a = ;");
    assert!(out.contains("error"), "syntax error: {out}");
    let out = repl.run("let n: i32 = \"text\";");
    assert!(out.contains("mismatched types"), "compile error: {out}");
    repl.run("let p = graph.placeholder(\"p\", DType::F32, &[-1, 3]);");
    let out = repl.run("let q = sess.run(&[p], &[])?;");
    assert!(out.contains("stopped at a `?`"), "engine error: {out}");
    assert!(
        out.contains("placeholder 'p' needs a value"),
        "the engine error names the node: {out}"
    );

    // A cell that asks for a line reads what is typed at its prompt.
    // (The prompt is put together so that the echo of the typed line does not hold it.)
    repl.type_line("let who = sluice_cell::input(&format!(\"Who{}\", \": is it? \"));");
    repl.expect("Who: is it? ");
    repl.type_line("Ada");
    repl.expect(PROMPT);
    let out = repl.run("println!(\"hello {who}\");");
    assert!(out.contains("hello Ada"), "the cell read the answer: {out}");

    // The seed graph (keys typed while a cell runs are not kept: wait for each prompt), then
    // a fit far too long to wait for.
    for line in SEED_GRAPH {
        repl.run(line);
    }
    repl.run("let config = FitConfig { steps: 10_000_000, ..FitConfig::new(x, y_, xent, train) };");
    repl.type_line("sess.fit(\"mnist-digits\", &config, &mut |_| {})?;");
    repl.expect_regex(r"step (\d+)/10000000");
    repl.expect("ex/s");
    std::thread::sleep(Duration::from_secs(2));
    repl.send("\x03");
    let out = repl.expect(PROMPT);
    assert!(out.contains("interrupted"), "after Ctrl-C: {out}");

    // The variables and the trained weights are still there.
    repl.run(ACCURACY);
    repl.type_line("println!(\"after interrupt: {:.4}\", acc[0].scalar_f64().unwrap_or(0.0));");
    let accuracy: f64 = repl
        .expect_regex(r"after interrupt: ([0-9.]+)")
        .parse()
        .expect("accuracy is a number");
    repl.expect(PROMPT);
    assert!(
        accuracy > 0.5,
        "accuracy after the interrupted fit: {accuracy}"
    );
    repl.quit();
}
