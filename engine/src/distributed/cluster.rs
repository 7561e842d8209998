//! Who is in the cluster: jobs and their tasks' addresses, this process's own task, and device
//! names (`/job:worker/replica:0/task:1/device:CPU:0`, partial specs allowed).
//!
//! The cluster comes from `TF_CONFIG`-style JSON (`{"cluster": {"worker": ["host:port", ...]},
//! "task": {"type": "worker", "index": 0}}`), from torchrun's variables (`RANK`, `WORLD_SIZE`,
//! `MASTER_ADDR`, `MASTER_PORT`: task `r` of job `worker` at `MASTER_ADDR:MASTER_PORT+1+r`), or
//! from Slurm's (`SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_JOB_NODELIST`, `SLURM_TASKS_PER_NODE`:
//! several tasks per node, on ports from `SLUICE_PORT` or the job id; see `slurm`).

pub use super::slurm::{expand_nodelist, SlurmJob};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Why a cluster or a device name could not be understood.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ClusterError {
    #[error("TF_CONFIG: {0}")]
    TfConfig(String),
    #[error("{var}: {message}")]
    Env { var: String, message: String },
    #[error("no cluster in the environment: set TF_CONFIG, or torchrun's RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT, or run under Slurm")]
    NoCluster,
    #[error("device '{device}': {message}")]
    BadDevice { device: String, message: String },
    #[error("node '{node}' asks for device '{device}', but the cluster has no job '{job}' (jobs: {jobs})")]
    UnknownJob {
        node: String,
        device: String,
        job: String,
        jobs: String,
    },
    #[error("node '{node}' asks for device '{device}', but job '{job}' has {count} task(s) (0..{count})")]
    UnknownTask {
        node: String,
        device: String,
        job: String,
        count: usize,
    },
}

/// One task of the cluster: `job` and `index`, written `/job:JOB/task:INDEX`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskName {
    pub job: String,
    pub index: usize,
}

impl TaskName {
    pub fn new(job: &str, index: usize) -> TaskName {
        TaskName {
            job: job.to_string(),
            index,
        }
    }

    /// The task's CPU as a full device name.
    pub fn cpu(&self) -> String {
        format!(
            "/job:{}/replica:0/task:{}/device:CPU:0",
            self.job, self.index
        )
    }

    /// The full name of the task's device: its GPU `gpu`, or its CPU.
    pub fn device(&self, gpu: Option<usize>) -> String {
        match gpu {
            Some(i) => format!(
                "/job:{}/replica:0/task:{}/device:GPU:{i}",
                self.job, self.index
            ),
            None => self.cpu(),
        }
    }

    /// `job:index`, as `sluice-engine worker --task` takes it.
    pub fn parse(text: &str) -> Result<TaskName, ClusterError> {
        let bad = |message: &str| ClusterError::BadDevice {
            device: text.to_string(),
            message: message.to_string(),
        };
        let (job, index) = text.split_once(':').ok_or_else(|| bad("write JOB:INDEX"))?;
        let index = index
            .parse()
            .map_err(|_| bad("the task index is not a number"))?;
        if job.is_empty() {
            return Err(bad("the job name is empty"));
        }
        Ok(TaskName::new(job, index))
    }
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/job:{}/task:{}", self.job, self.index)
    }
}

/// Jobs and the addresses of their tasks, in task order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterSpec {
    pub jobs: BTreeMap<String, Vec<String>>,
}

/// Reads `{"cluster": {JOB: [ADDR, ...]}, "task": {"type": JOB, "index": I}}` (task optional).
fn parse_tf_config(json: &str) -> Result<(ClusterSpec, Option<TaskName>), String> {
    let config: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let cluster = (config.get("cluster").and_then(Value::as_object))
        .ok_or("no \"cluster\" object of jobs")?;
    let mut jobs = BTreeMap::new();
    for (job, addrs) in cluster {
        let addrs = (addrs.as_array().into_iter().flatten())
            .map(|a| a.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .filter(|_| addrs.is_array())
            .ok_or_else(|| format!("job \"{job}\" is not a list of addresses"))?;
        jobs.insert(job.clone(), addrs);
    }
    let task = match config.get("task") {
        None | Some(Value::Null) => None,
        Some(task) => {
            let job = (task.get("type").and_then(Value::as_str))
                .ok_or("the task has no \"type\" (its job's name)")?;
            let index = (task.get("index").and_then(Value::as_u64))
                .and_then(|i| usize::try_from(i).ok())
                .ok_or("the task has no \"index\" (a whole number)")?;
            Some(TaskName::new(job, index))
        }
    };
    Ok((ClusterSpec { jobs }, task))
}

impl ClusterSpec {
    pub fn new(jobs: impl IntoIterator<Item = (String, Vec<String>)>) -> ClusterSpec {
        ClusterSpec {
            jobs: jobs.into_iter().collect(),
        }
    }

    /// Every task, job by job (in name order), then by index.
    pub fn tasks(&self) -> Vec<TaskName> {
        (self.jobs.iter())
            .flat_map(|(job, addrs)| (0..addrs.len()).map(|i| TaskName::new(job, i)))
            .collect()
    }

    pub fn addr(&self, task: &TaskName) -> Option<&str> {
        self.jobs
            .get(&task.job)
            .and_then(|a| a.get(task.index))
            .map(String::as_str)
    }

    /// The cluster and this process's task from `TF_CONFIG`-style JSON.
    pub fn from_tf_config(json: &str) -> Result<(ClusterSpec, Option<TaskName>), ClusterError> {
        let (spec, task) = parse_tf_config(json).map_err(ClusterError::TfConfig)?;
        if spec.jobs.values().all(Vec::is_empty) {
            return Err(ClusterError::TfConfig("the cluster has no task".into()));
        }
        if let Some(t) = &task {
            if spec.addr(t).is_none() {
                return Err(ClusterError::TfConfig(format!(
                    "this task, {t}, is not in the cluster"
                )));
            }
        }
        Ok((spec, task))
    }

    /// `TF_CONFIG`-style JSON for `task` in this cluster: what a launcher hands each task.
    pub fn to_tf_config(&self, task: Option<&TaskName>) -> String {
        let jobs: Vec<String> = (self.jobs.iter())
            .map(|(job, addrs)| {
                let addrs: Vec<String> = addrs.iter().map(|a| format!("{a:?}")).collect();
                format!("{job:?}: [{}]", addrs.join(", "))
            })
            .collect();
        let task = task.map_or(String::new(), |t| {
            format!(
                ", \"task\": {{\"type\": {:?}, \"index\": {}}}",
                t.job, t.index
            )
        });
        format!("{{\"cluster\": {{{}}}{task}}}", jobs.join(", "))
    }

    /// The cluster and this task from the environment: `TF_CONFIG`, else torchrun's
    /// variables, else Slurm's.
    pub fn from_env() -> Result<(ClusterSpec, Option<TaskName>), ClusterError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(json) = var("TF_CONFIG") {
            return ClusterSpec::from_tf_config(&json);
        }
        if let (Some(rank), Some(world)) = (var("RANK"), var("WORLD_SIZE")) {
            let host = var("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into());
            let port = var("MASTER_PORT").unwrap_or_else(|| "29500".into());
            return ClusterSpec::from_torchrun(&rank, &world, &host, &port);
        }
        if let Some(job) = SlurmJob::from_vars(&var)? {
            let addrs = super::slurm::node_addrs(&job);
            let (spec, task) = job.cluster(&addrs);
            return Ok((spec, Some(task)));
        }
        Err(ClusterError::NoCluster)
    }

    /// torchrun's view: `world` tasks of job `worker`, task `r` at `host:port+1+r` (the
    /// master's own port stays torchrun's).
    pub fn from_torchrun(
        rank: &str,
        world: &str,
        host: &str,
        port: &str,
    ) -> Result<(ClusterSpec, Option<TaskName>), ClusterError> {
        let number = |var: &str, v: &str| {
            v.trim().parse::<usize>().map_err(|_| ClusterError::Env {
                var: var.to_string(),
                message: format!("'{v}' is not a number"),
            })
        };
        let (rank, world, port) = (
            number("RANK", rank)?,
            number("WORLD_SIZE", world)?,
            number("MASTER_PORT", port)?,
        );
        if rank >= world {
            return Err(ClusterError::Env {
                var: "RANK".into(),
                message: format!("{rank} is not below WORLD_SIZE {world}"),
            });
        }
        let addrs = (0..world)
            .map(|r| format!("{host}:{}", port + 1 + r))
            .collect();
        Ok((
            ClusterSpec::new([("worker".to_string(), addrs)]),
            Some(TaskName::new("worker", rank)),
        ))
    }

    /// Resolves a node's device constraint: the task it names (`None`: any task), whether
    /// it asks for a device other than a CPU, or an error naming what does not exist.
    pub fn resolve(
        &self,
        node: &str,
        device: &str,
    ) -> Result<(Option<TaskName>, Option<String>), ClusterError> {
        let spec = DeviceSpec::parse(device)?;
        let Some(job) = spec.job else {
            if spec.task.is_some() {
                return Err(ClusterError::BadDevice {
                    device: device.to_string(),
                    message: "a task index needs a job (/job:NAME/task:N)".into(),
                });
            }
            return Ok((None, spec.device_type.filter(|t| t != "CPU")));
        };
        let Some(addrs) = self.jobs.get(&job) else {
            return Err(ClusterError::UnknownJob {
                node: node.to_string(),
                device: device.to_string(),
                job,
                jobs: self.jobs.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        };
        let task = match spec.task {
            Some(i) if i >= addrs.len() => {
                return Err(ClusterError::UnknownTask {
                    node: node.to_string(),
                    device: device.to_string(),
                    job,
                    count: addrs.len(),
                })
            }
            Some(i) => Some(TaskName::new(&job, i)),
            // A job without a task: its first task, unless the placer chooses among them.
            None if addrs.len() == 1 => Some(TaskName::new(&job, 0)),
            None => None,
        };
        let other_device = spec.device_type.filter(|t| t != "CPU");
        Ok((task, other_device))
    }
}

/// A device name's parts; any may be absent (`/job:ps`, `/device:GPU:0`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceSpec {
    pub job: Option<String>,
    pub task: Option<usize>,
    pub device_type: Option<String>,
    pub device_index: Option<usize>,
}

impl DeviceSpec {
    pub fn parse(device: &str) -> Result<DeviceSpec, ClusterError> {
        let bad = |message: String| ClusterError::BadDevice {
            device: device.to_string(),
            message,
        };
        let mut spec = DeviceSpec::default();
        for part in device.split('/').filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once(':').unwrap_or((part, ""));
            let number = |v: &str| {
                v.parse::<usize>()
                    .map_err(|_| bad(format!("'{part}': '{v}' is not a number")))
            };
            match key {
                "job" if !value.is_empty() => spec.job = Some(value.to_string()),
                "task" => spec.task = Some(number(value)?),
                "replica" => {
                    number(value)?;
                }
                "device" => {
                    let (kind, index) = value.split_once(':').unwrap_or((value, "0"));
                    spec.device_type = Some(kind.to_ascii_uppercase());
                    spec.device_index = Some(number(index)?);
                }
                "cpu" | "CPU" | "gpu" | "GPU" => {
                    spec.device_type = Some(key.to_ascii_uppercase());
                    spec.device_index = Some(number(if value.is_empty() { "0" } else { value })?);
                }
                _ => {
                    return Err(bad(format!(
                        "unknown part '{part}': use /job:NAME/task:N/device:CPU:0"
                    )))
                }
            }
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_config_round_trips_and_names_the_task() {
        let spec = ClusterSpec::new([
            ("ps".into(), vec!["h0:1".into()]),
            ("worker".into(), vec!["h1:2".into(), "h2:3".into()]),
        ]);
        let json = spec.to_tf_config(Some(&TaskName::new("worker", 1)));
        let (back, task) = ClusterSpec::from_tf_config(&json).unwrap();
        assert_eq!(back, spec);
        assert_eq!(task, Some(TaskName::new("worker", 1)));
        let err = ClusterSpec::from_tf_config(
            r#"{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("/job:ps/task:0"), "{err}");
    }

    #[test]
    fn torchrun_and_slurm_variables_make_a_worker_job() {
        let (spec, task) = ClusterSpec::from_torchrun("1", "3", "10.0.0.5", "29500").unwrap();
        assert_eq!(
            spec.jobs["worker"],
            ["10.0.0.5:29501", "10.0.0.5:29502", "10.0.0.5:29503"]
        );
        assert_eq!(task, Some(TaskName::new("worker", 1)));
        assert!(ClusterSpec::from_torchrun("3", "3", "h", "1").is_err());
        let vars = [
            ("SLURM_PROCID", "2"),
            ("SLURM_NTASKS", "4"),
            ("SLURM_JOB_NODELIST", "node[01-03],gpu7"),
            ("SLUICE_PORT", "7070"),
        ];
        let var = |name: &str| vars.iter().find(|v| v.0 == name).map(|v| v.1.to_string());
        let job = SlurmJob::from_vars(&var).unwrap().expect("a Slurm job");
        let (spec, task) = job.cluster(&Default::default());
        assert_eq!(
            spec.jobs["worker"],
            ["node01:7070", "node02:7070", "node03:7070", "gpu7:7070"]
        );
        assert_eq!(task, TaskName::new("worker", 2));
    }

    #[test]
    fn device_constraints_resolve_or_name_what_is_missing() {
        let spec = ClusterSpec::new([
            ("ps".into(), vec!["a:1".into()]),
            ("worker".into(), vec!["b:1".into(), "c:1".into()]),
        ]);
        let r = |d: &str| spec.resolve("n", d);
        assert_eq!(r("").unwrap(), (None, None));
        assert_eq!(
            r("/job:worker/task:1").unwrap().0,
            Some(TaskName::new("worker", 1))
        );
        assert_eq!(r("/job:ps").unwrap().0, Some(TaskName::new("ps", 0)));
        assert_eq!(r("/job:worker").unwrap().0, None);
        assert_eq!(
            r("/job:worker/task:0/device:GPU:0").unwrap().1.as_deref(),
            Some("GPU")
        );
        let err = r("/job:chief/task:0").unwrap_err().to_string();
        assert!(
            err.contains("no job 'chief'") && err.contains("ps, worker"),
            "{err}"
        );
        let err = r("/job:worker/task:2").unwrap_err().to_string();
        assert!(err.contains("2 task(s)"), "{err}");
        assert!(r("/job:worker/tusk:1").is_err());
    }
}
