//! The command lines as users and scripts meet them: the built `sluice-engine` and examples
//! answer `--help` and `--version`, take `--option=value` as well as `--option value`, and
//! refuse what they do not take with a usage error on stderr and exit code 2.

use sluice_tests::{engine_path, example_path, Engine};
use std::path::Path;
use std::process::{Command, Output};

/// Runs `program` with `args` to its end.
fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a usage error: exit code 2, nothing on stdout, and stderr naming `what`.
fn assert_usage_error(out: &Output, what: &str) {
    let (stdout, stderr) = (stdout(out), stderr(out));
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "a usage error on stdout: {stdout}");
    assert!(stderr.contains("error:"), "{stderr}");
    assert!(stderr.contains(what), "{what} is not named: {stderr}");
}

/// Asserts a successful exit whose stdout contains each of `wanted`.
fn assert_prints(out: &Output, wanted: &[&str]) {
    let text = stdout(out);
    assert!(out.status.success(), "{text}\n{}", stderr(out));
    for want in wanted {
        assert!(text.contains(want), "{want} is missing from:\n{text}");
    }
}

#[test]
fn the_engine_prints_its_version_and_its_help() {
    let engine = engine_path().unwrap();
    let version = format!("sluice-engine {}", env!("CARGO_PKG_VERSION"));
    assert_prints(&run(&engine, &["--version"]), &[&version]);
    assert_prints(
        &run(&engine, &["--help"]),
        &["serve", "worker", "cluster", "RUST_LOG"],
    );
    assert_prints(
        &run(&engine, &["serve", "--help"]),
        &[
            "--listen <HOST:PORT>",
            "--token-file <FILE>",
            "--max-message-mib <N>",
        ],
    );
    assert_prints(
        &run(&engine, &["worker", "--help"]),
        &[
            "--task <JOB:INDEX>",
            "--listen <HOST:PORT>",
            "--token-file <FILE>",
        ],
    );
    assert_prints(
        &run(&engine, &["cluster", "--help"]),
        &["--workers <N>", "--ps <M>"],
    );
}

#[test]
fn the_engine_refuses_what_a_subcommand_does_not_take() {
    let engine = engine_path().unwrap();
    // An option of `cluster` given to `serve`, and of `serve` given to `cluster`.
    assert_usage_error(&run(&engine, &["serve", "--workers", "2"]), "--workers");
    assert_usage_error(
        &run(&engine, &["cluster", "--listen", "127.0.0.1:0"]),
        "--listen",
    );
    assert_usage_error(&run(&engine, &["serve", "--task", "worker:0"]), "--task");
    // Values are checked before anything starts.
    assert_usage_error(&run(&engine, &["worker", "--task", "worker"]), "--task");
    assert_usage_error(
        &run(&engine, &["serve", "--max-message-mib=lots"]),
        "--max-message-mib",
    );
    assert_usage_error(&run(&engine, &["cluster", "--ps", "many"]), "--ps");
    assert_usage_error(&run(&engine, &["launch"]), "launch");
    // No subcommand: the help, on stderr, as a usage error.
    let bare = run(&engine, &[]);
    assert_eq!(bare.status.code(), Some(2));
    assert!(stdout(&bare).is_empty());
    assert!(stderr(&bare).contains("Usage: sluice-engine <COMMAND>"));
}

#[test]
fn the_engine_takes_options_with_an_equals_sign() {
    let engine = Engine::start_with(&["--listen=127.0.0.1:0", "--max-message-mib=16"]).unwrap();
    assert!(engine.addr.starts_with("127.0.0.1:"), "{}", engine.addr);
    assert!(
        engine.terminate().unwrap(),
        "the engine did not exit cleanly"
    );
}

/// Each example and options its `--help` must list.
const EXAMPLES: &[(&str, &[&str])] = &[
    ("mnist_softmax", &["--seed <S>"]),
    (
        "fashion_mlp",
        &["--data <DIR>", "--steps <N>", "--seed <S>"],
    ),
    ("rpc_latency", &["--calls <N>", "--fit-steps <N>"]),
    ("model_parallel", &["--steps <N>", "--wire <PRECISION>"]),
    ("transfer_bandwidth", &["--repeats <N>"]),
    (
        "mnist_data_parallel",
        &[
            "--workers <N>",
            "--ps <M>",
            "--async",
            "--allreduce",
            "--staleness <S>",
            "--aggregate <K>",
            "--steps <N>",
            "--batch <B>",
            "--model <MODEL>",
            "--checkpoint-dir <D>",
            "--checkpoint-steps <N>",
            "--quiet",
            "--cluster-from-env",
        ],
    ),
];

#[test]
fn every_example_lists_its_options_and_prints_its_version() {
    for &(name, options) in EXAMPLES {
        let example = example_path(name).unwrap();
        let mut wanted = vec!["--help", "--version"];
        wanted.extend_from_slice(options);
        assert_prints(&run(&example, &["--help"]), &wanted);
        let version = format!("{name} {}", env!("CARGO_PKG_VERSION"));
        assert_prints(&run(&example, &["--version"]), &[&version]);
    }
}

#[test]
fn examples_refuse_bad_options_before_doing_anything() {
    let example = |name| example_path(name).unwrap();
    assert_usage_error(&run(&example("mnist_softmax"), &["--bogus"]), "--bogus");
    assert_usage_error(&run(&example("mnist_softmax"), &["--seed=x"]), "--seed");
    assert_usage_error(&run(&example("rpc_latency"), &["--calls"]), "--calls");
    assert_usage_error(
        &run(&example("model_parallel"), &["--wire", "f64"]),
        "--wire",
    );
    assert_usage_error(
        &run(&example("transfer_bandwidth"), &["--repeats", "0"]),
        "--repeats",
    );
    let data_parallel = example("mnist_data_parallel");
    assert_usage_error(&run(&data_parallel, &["--model", "cnn"]), "--model");
    assert_usage_error(&run(&data_parallel, &["--staleness", "4"]), "--async");
    assert_usage_error(
        &run(&data_parallel, &["--cluster-from-env", "--workers", "4"]),
        "--workers",
    );
}

/// A launched worker ends when its launcher does, even when the launcher's stderr (where the
/// worker logs) went with it: notebooks launch workers from the cell's process, whose stderr
/// is a pipe to the kernel.
#[test]
fn a_launched_worker_ends_with_its_launcher_whose_stderr_is_gone() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut worker = Command::new(engine_path().unwrap())
        .args(["worker", "--listen", "127.0.0.1:0", "--task", "worker:0"])
        .env(sluice::distributed::launcher::EXIT_WITH_PARENT_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts sluice-engine worker");
    let mut line = String::new();
    if let Some(out) = worker.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    assert!(line.starts_with("listening on"), "{line}");
    // The launcher goes: its end of stdin and of stderr close.
    drop(worker.stdin.take());
    drop(worker.stderr.take());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let ended = loop {
        match worker.try_wait() {
            Ok(Some(status)) => break Some(status),
            _ if std::time::Instant::now() > deadline => break None,
            _ => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    };
    if ended.is_none() {
        let _ = worker.kill();
    }
    assert!(ended.is_some(), "the worker outlived its launcher");
}
