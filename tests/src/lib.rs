//! End-to-end tests of Sluice live in `tests/`; this library finds and starts the programs
//! they run (examples, and the standalone engine), and skips (or, under `CI=true`, fails)
//! the tests whose optional data or tools are missing.

mod optional;

pub use optional::{
    fashion_mnist_dir, python_with, python_with_tensorboard, require, require_vulkan,
};

use sluice::distributed::replicas::Tower;
use sluice::prelude::*;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The folder of the build profile the tests were built with: `target/<profile>`.
fn profile_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/<profile>/deps/<test binary>
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .ok_or_else(|| "cannot locate the target folder".to_string())
}

/// A built program of the profile the tests were built with, or an error saying how to
/// build it.
fn built(path: PathBuf) -> Result<PathBuf, String> {
    if path.is_file() {
        return Ok(path);
    }
    Err(format!(
        "{} is not built: run `cargo build --release -p sluice --bins --examples` first \
         (`cargo test --workspace --release` builds it too)",
        path.display()
    ))
}

/// The built example `name` of the engine crate (`target/<profile>/examples/NAME`).
pub fn example_path(name: &str) -> Result<PathBuf, String> {
    built(profile_dir()?.join("examples").join(name))
}

/// The built standalone engine (`target/<profile>/sluice-engine`).
pub fn engine_path() -> Result<PathBuf, String> {
    built(profile_dir()?.join("sluice-engine"))
}

/// Runs a built example of the engine crate with `args` and returns its standard output.
/// `cargo test --release` builds the examples next to the test binaries.
pub fn run_example(name: &str, args: &[&str]) -> Result<String, String> {
    run_example_with_env(name, args, &[])
}

/// Like [`run_example`], with extra environment variables.
pub fn run_example_with_env(
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<String, String> {
    let example = example_path(name)?;
    let out = Command::new(&example)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .map_err(|e| format!("{}: {e}", example.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "{name} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

/// The number after `key` on the first line that starts with it (e.g. `test accuracy:`).
pub fn figure(output: &str, key: &str) -> Option<f64> {
    output
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.trim().parse().ok())
}

/// A standalone engine (`sluice-engine serve`) on a free loopback port, killed when dropped.
pub struct Engine {
    child: Child,
    /// Where it listens, `127.0.0.1:PORT`.
    pub addr: String,
}

impl Engine {
    /// Starts the built `sluice-engine` on a free loopback port (`--listen 127.0.0.1:0`) with
    /// `extra` arguments, and waits for its `listening on ADDR` line.
    pub fn start(extra: &[&str]) -> Result<Engine, String> {
        let mut args = vec!["--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Engine::start_with(&args)
    }

    /// As [`Engine::start`], with these environment variables set for the engine.
    pub fn start_env(extra: &[&str], env: &[(&str, &str)]) -> Result<Engine, String> {
        let mut args = vec!["--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Engine::spawn(&args, env)
    }

    /// Starts `sluice-engine serve` with these arguments; an engine that exits instead of
    /// listening gives its error output.
    pub fn start_with(args: &[&str]) -> Result<Engine, String> {
        Engine::spawn(args, &[])
    }

    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Result<Engine, String> {
        let exe = engine_path()?;
        let mut child = Command::new(&exe)
            .arg("serve")
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep reading so the engine never blocks on a full pipe.
            for _ in lines {}
        });
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[sluice-engine] {line}");
                text.push_str(&line);
                text.push('\n');
            }
            let _ = err_tx.send(text);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(Ok(line))) => line,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let errors = err_rx
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_default();
                return Err(format!("the engine did not start: {errors}"));
            }
        };
        let addr = line
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line from the engine: {line:?}"))?
            .trim()
            .to_string();
        Ok(Engine { child, addr })
    }

    /// The engine's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the engine with SIGTERM and returns whether it exited cleanly (status 0).
    pub fn terminate(mut self) -> Result<bool, String> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| e.to_string())?;
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status.success());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("the engine did not exit within 5 s of SIGTERM".into())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The seed program's model: softmax regression, cross-entropy summed over the batch.
pub fn softmax_tower(g: &Graph) -> Result<Tower, sluice::GraphError> {
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let b = g.variable("b", &[10], Initializer::Zeros);
    let logits = matmul(x, w) + b;
    let loss = -reduce_sum(y_ * log(softmax(logits)));
    let accuracy = reduce_mean(cast(equal(argmax(logits, 1), argmax(y_, 1)), DType::F32));
    Ok(Tower::new(loss, &[x, y_]).metric("accuracy", accuracy))
}

/// Trains the seed program data-parallel on `cluster` (2 workers, 1 ps, synchronous) for
/// `steps` steps, then moves a 1 MiB activation from worker 0 to worker 1 (the bulk
/// channel's size); returns the test accuracy. What the TLS tests check a cluster can do.
pub fn train_and_transfer(cluster: &sluice::distributed::ClusterSpec, steps: u64) -> f64 {
    use sluice::distributed::replicas::DataParallel;
    use sluice::distributed::{DistributedOptions, DistributedSession, Trainer, TrainerOptions};
    let model = DataParallel::parameter_servers(2, 1)
        .build(&Graph::new(), &GradientDescent::new(0.01), softmax_tower)
        .unwrap();
    let options = TrainerOptions {
        steps,
        report_every: 50,
        session: DistributedOptions::default(),
        ..TrainerOptions::default()
    };
    let mut trainer = Trainer::new(model, cluster, options).unwrap();
    let digits = sluice::data::mnist_digits().unwrap();
    let mut streams: Vec<_> = (0..2).map(|r| digits.train.batches(100, r)).collect();
    let reached = trainer
        .fit(
            &mut |r| {
                let b = streams[r].next().unwrap();
                vec![b.inputs, b.one_hot]
            },
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(reached, steps);
    let test = &digits.test;
    let metrics = trainer
        .evaluate(&[test.inputs_tensor(), test.one_hot_tensor()])
        .unwrap();

    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[256, 1024]);
    let h = {
        let _d = g.device("/job:worker/task:0");
        x * g.scalar(2.0)
    };
    let y = {
        let _d = g.device("/job:worker/task:1");
        reduce_sum(h)
    };
    let mut dist = DistributedSession::new(&g, cluster, DistributedOptions::default()).unwrap();
    let out = dist
        .run(&[y], &[(x, Tensor::full(&[256, 1024], 1.0f32))])
        .unwrap();
    assert_eq!(out[0].scalar_f64(), Some(2.0 * 256.0 * 1024.0));
    assert!(dist.last_step_transfers().wire_bytes >= 1 << 20);
    metrics[0].1
}
