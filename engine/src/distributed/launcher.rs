//! A cluster of local processes for tests and demos: one `sluice-engine worker` per task on
//! 127.0.0.1 (free ports), stopped when the [`LocalCluster`] is dropped.

use super::cluster::{ClusterSpec, TaskName};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Where the `sluice-engine` binary is: `SLUICE_ENGINE_BIN`, else beside this program (or
/// one folder up, for examples and tests under `target/*/`).
pub fn engine_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("SLUICE_ENGINE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut dir = exe.parent().map(PathBuf::from);
    for _ in 0..2 {
        let Some(d) = dir else { break };
        let candidate = d.join("sluice-engine");
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent().map(PathBuf::from);
    }
    Err(format!(
        "no sluice-engine binary beside {}: build it (cargo build --release --bin sluice-engine) or set SLUICE_ENGINE_BIN",
        exe.display()
    ))
}

/// Set for a worker whose standard input is its parent's pipe: it exits when the pipe closes.
pub const EXIT_WITH_PARENT_ENV: &str = "SLUICE_EXIT_WITH_PARENT";

/// Worker processes on loopback, one per task; dropping it kills them all.
pub struct LocalCluster {
    spec: ClusterSpec,
    children: Vec<(TaskName, Child)>,
}

impl LocalCluster {
    /// Starts `count` tasks of each job (`[("worker", 2), ("ps", 1)]`).
    pub fn start(jobs: &[(&str, usize)]) -> Result<LocalCluster, String> {
        let exe = engine_binary()?;
        let mut cluster = LocalCluster {
            spec: ClusterSpec::default(),
            children: Vec::new(),
        };
        for &(job, count) in jobs {
            for index in 0..count {
                let task = TaskName::new(job, index);
                let (child, addr) = start_worker(&exe, &task)?;
                cluster.children.push((task, child));
                cluster
                    .spec
                    .jobs
                    .entry(job.to_string())
                    .or_default()
                    .push(addr);
            }
        }
        Ok(cluster)
    }

    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// Kills one task's process (`kill -9`), as a failure would.
    pub fn kill(&mut self, task: &TaskName) -> bool {
        match self.children.iter_mut().find(|(t, _)| t == task) {
            Some((_, child)) => {
                let _ = child.kill();
                let _ = child.wait();
                true
            }
            None => false,
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_worker(exe: &PathBuf, task: &TaskName) -> Result<(Child, String), String> {
    let mut child = Command::new(exe)
        .args(["worker", "--listen", "127.0.0.1:0", "--task"])
        .arg(format!("{}:{}", task.job, task.index))
        // The worker ends when this pipe closes: when the cluster is dropped, and also when
        // this process dies without dropping it (a notebook's cell process is killed).
        .env(EXIT_WITH_PARENT_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    let line = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(Ok(line))) => line,
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("task {task} did not start"));
        }
    };
    let addr = line
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("task {task}: unexpected first line {line:?}"))?
        .trim()
        .to_string();
    Ok((child, addr))
}
