//! A cluster of local processes for tests and demos: one `sluice-engine worker` per task on
//! 127.0.0.1 (free ports), stopped when the [`LocalCluster`] is dropped. A supervised
//! cluster restarts a task whose process dies on the same address, as Kubernetes restarts
//! a pod: the new incarnation registers again when the job asks it to.

use super::cluster::{ClusterSpec, TaskName};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
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

type Children = Arc<Mutex<Vec<(TaskName, Child)>>>;

/// Worker processes on loopback, one per task; dropping it kills them all.
pub struct LocalCluster {
    spec: ClusterSpec,
    /// Arguments every task gets besides its address and name (`--token-file F`).
    args: Vec<String>,
    children: Children,
    supervisor: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

fn lock(children: &Children) -> MutexGuard<'_, Vec<(TaskName, Child)>> {
    children.lock().unwrap_or_else(|e| e.into_inner())
}

impl LocalCluster {
    /// Starts `count` tasks of each job (`[("worker", 2), ("ps", 1)]`).
    pub fn start(jobs: &[(&str, usize)]) -> Result<LocalCluster, String> {
        LocalCluster::start_with(jobs, &[])
    }

    /// As [`start`](Self::start), each task also given `args` (`--token-file F`,
    /// `--max-memory 4GiB`).
    pub fn start_with(jobs: &[(&str, usize)], args: &[&str]) -> Result<LocalCluster, String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let exe = engine_binary()?;
        let mut spec = ClusterSpec::default();
        let mut children = Vec::new();
        for &(job, count) in jobs {
            for index in 0..count {
                let task = TaskName::new(job, index);
                let (child, addr) = match start_worker(&exe, &task, "127.0.0.1:0", &args) {
                    Ok(started) => started,
                    Err(e) => {
                        for (_, mut child) in children {
                            stop(&mut child);
                        }
                        return Err(e);
                    }
                };
                children.push((task, child));
                spec.jobs.entry(job.to_string()).or_default().push(addr);
            }
        }
        Ok(LocalCluster {
            spec,
            args,
            children: Arc::new(Mutex::new(children)),
            supervisor: None,
        })
    }

    /// As [`start`](Self::start), and a task whose process ends is started again on its
    /// address (checked every 100 ms).
    pub fn start_supervised(jobs: &[(&str, usize)]) -> Result<LocalCluster, String> {
        let mut cluster = Self::start(jobs)?;
        let exe = engine_binary()?;
        let stop_flag = Arc::new(AtomicBool::new(false));
        let children = cluster.children.clone();
        let spec = cluster.spec.clone();
        let args = cluster.args.clone();
        let flag = stop_flag.clone();
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let mut children = lock(&children);
                for (task, child) in children.iter_mut() {
                    if !matches!(child.try_wait(), Ok(Some(_))) || flag.load(Ordering::Relaxed) {
                        continue;
                    }
                    let addr = spec.addr(task).unwrap_or_default().to_string();
                    match start_worker(&exe, task, &addr, &args) {
                        Ok((new, _)) => {
                            *child = new;
                            tracing::info!("restarted {task} on {addr}");
                        }
                        // The port may still be held for a moment: the next round tries again.
                        Err(_) => continue,
                    }
                }
            }
        });
        cluster.supervisor = Some((stop_flag, handle));
        Ok(cluster)
    }

    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// The process id of a task's current process.
    pub fn pid(&self, task: &TaskName) -> Option<u32> {
        lock(&self.children)
            .iter()
            .find(|(t, _)| t == task)
            .map(|(_, c)| c.id())
    }

    /// Kills one task's process (`kill -9`), as a failure would. A supervised cluster
    /// starts it again.
    pub fn kill(&mut self, task: &TaskName) -> bool {
        match lock(&self.children).iter_mut().find(|(t, _)| t == task) {
            Some((_, child)) => {
                stop(child);
                true
            }
            None => false,
        }
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Some((flag, handle)) = self.supervisor.take() {
            flag.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
        for (_, child) in lock(&self.children).iter_mut() {
            stop(child);
        }
    }
}

fn start_worker(
    exe: &PathBuf,
    task: &TaskName,
    listen: &str,
    args: &[String],
) -> Result<(Child, String), String> {
    let mut child = Command::new(exe)
        .args(["worker", "--listen", listen, "--task"])
        .arg(format!("{}:{}", task.job, task.index))
        .args(args)
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
    tracing::debug!("started {task} on {addr} (process {})", child.id());
    Ok((child, addr))
}
