//! A Slurm job as a cluster: the nodes (`SLURM_JOB_NODELIST`, expanded as `scontrol show
//! hostnames` does), the tasks on each (`SLURM_TASKS_PER_NODE`, tasks numbered node by node as
//! Slurm's default block distribution numbers them), each task's port (a base, plus the task's
//! index on its node, so several tasks share a node), and each node's address as Slurm has it
//! (`NodeAddr`, read from `scontrol`, where it differs from the node's name).

use super::cluster::{ClusterError, ClusterSpec, TaskName};
use std::collections::HashMap;
use std::time::Duration;

/// Where a job's ports start when `SLUICE_PORT` does not say: 20000 plus 16 ports per job id
/// (modulo 750 jobs), so that two jobs sharing a node do not take the same ports, all below
/// Linux's ephemeral ports (32768 and up), which outgoing connections take.
pub const FIRST_JOB_PORT: u16 = 20_000;
/// Ports each job gets from its id: at most this many tasks per node without `SLUICE_PORT`.
pub const PORTS_PER_JOB: u16 = 16;
const JOB_PORT_SLOTS: u64 = 750;

/// The most hosts a node list may name: far more than any job has, and a bound on what a
/// hostile environment can make the expansion allocate.
pub const MAX_HOSTS: usize = 1 << 16;

/// Expands Slurm's compressed host lists as `scontrol show hostnames` does:
/// `node[01-03,07],gpu5` → node01 node02 node03 node07 gpu5, and several bracket groups in
/// one name, `rack[1-2]-n[1-2]` → rack1-n1 rack1-n2 rack2-n1 rack2-n2.
pub fn expand_nodelist(list: &str) -> Result<Vec<String>, String> {
    let mut hosts = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        // The next host group ends at a comma outside brackets.
        let mut depth = 0;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    _ => {}
                }
                c == ',' && depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        let group = &rest[..end];
        rest = rest[end..].trim_start_matches(',');
        let left = MAX_HOSTS.saturating_sub(hosts.len());
        hosts.extend(expand_group(group, left)?);
    }
    Ok(hosts)
}

/// The hosts of one group (`rack[1-2]-n[01-02]`), at most `limit` of them.
fn expand_group(group: &str, limit: usize) -> Result<Vec<String>, String> {
    let Some(open) = group.find('[') else {
        if group.contains(']') {
            return Err(format!("'{group}': unbalanced brackets"));
        }
        if limit == 0 {
            return Err(format!("the list names more than {MAX_HOSTS} hosts"));
        }
        return Ok(vec![group.to_string()]);
    };
    let close = (group[open..].find(']').map(|i| open + i))
        .ok_or_else(|| format!("'{group}': unbalanced brackets"))?;
    let (prefix, ranges) = (&group[..open], &group[open + 1..close]);
    if prefix.contains(']') || ranges.contains('[') {
        return Err(format!("'{group}': unbalanced brackets"));
    }
    let tails = expand_group(&group[close + 1..], limit)?;
    let too_many = || format!("'{group}' names more than {MAX_HOSTS} hosts");
    let mut out = Vec::new();
    for range in ranges.split(',') {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        let width = lo.len();
        let parse =
            |s: &str| (s.parse::<u64>()).map_err(|_| format!("'{group}': '{s}' is not a number"));
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if hi < lo {
            return Err(format!("'{group}': the range {range} runs backwards"));
        }
        let count = (hi - lo)
            .checked_add(1)
            .and_then(|n| usize::try_from(n).ok());
        let total = count.and_then(|n| n.checked_mul(tails.len()));
        if total.is_none_or(|t| t > limit.saturating_sub(out.len())) {
            return Err(too_many());
        }
        for n in lo..=hi {
            for tail in &tails {
                out.push(format!("{prefix}{n:0width$}{tail}"));
            }
        }
    }
    Ok(out)
}

/// A Slurm job's tasks, and which one this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmJob {
    /// This task (`SLURM_PROCID`).
    pub procid: usize,
    /// The nodes, in order.
    pub hosts: Vec<String>,
    /// The node list as Slurm gave it (compressed: what `scontrol` is asked about).
    pub nodelist: String,
    /// Tasks on each node, in the order of `hosts`; they add up to `SLURM_NTASKS`.
    pub tasks_per_node: Vec<usize>,
    /// The port of each node's first task; the next ones take the ports after it.
    pub base_port: u16,
}

fn env_err(var: &str, message: String) -> ClusterError {
    ClusterError::Env {
        var: var.to_string(),
        message,
    }
}

fn number(var: &str, value: &str) -> Result<usize, ClusterError> {
    (value.trim().parse()).map_err(|_| env_err(var, format!("'{value}' is not a number")))
}

/// Expands `SLURM_TASKS_PER_NODE` (`2(x3),1`: two tasks on each of three nodes, then one)
/// for `nodes` nodes.
pub fn expand_tasks_per_node(list: &str, nodes: usize) -> Result<Vec<usize>, String> {
    let mut counts = Vec::new();
    for part in list.trim().split(',') {
        let (count, times) = match part.split_once("(x") {
            Some((count, rest)) => {
                let times = rest
                    .strip_suffix(')')
                    .ok_or_else(|| format!("'{part}': no ')'"))?;
                (count, times)
            }
            None => (part, "1"),
        };
        let parse = |s: &str| {
            (s.trim().parse::<usize>()).map_err(|_| format!("'{part}': '{s}' is not a number"))
        };
        let (count, times) = (parse(count)?, parse(times)?);
        if times > nodes.saturating_sub(counts.len()) {
            return Err(format!("'{list}' names more than the {nodes} node(s)"));
        }
        counts.extend(std::iter::repeat_n(count, times));
    }
    if counts.len() != nodes {
        return Err(format!(
            "'{list}' names {} node(s), the node list {nodes}",
            counts.len()
        ));
    }
    Ok(counts)
}

/// The port of a job's first task on each node: `SLUICE_PORT` when given, else one derived
/// from the job id ([`FIRST_JOB_PORT`]), else 7070.
pub fn base_port(sluice_port: Option<&str>, job_id: Option<&str>) -> Result<u16, ClusterError> {
    if let Some(port) = sluice_port {
        return (port.trim().parse())
            .map_err(|_| env_err("SLUICE_PORT", format!("'{port}' is not a port number")));
    }
    let Some(job) = job_id else {
        return Ok(7070);
    };
    let job: u64 = (job.trim().parse())
        .map_err(|_| env_err("SLURM_JOB_ID", format!("'{job}' is not a number")))?;
    Ok(FIRST_JOB_PORT + (job % JOB_PORT_SLOTS) as u16 * PORTS_PER_JOB)
}

impl SlurmJob {
    /// The job as Slurm's variables describe it (`var` reads one); `None` outside Slurm.
    pub fn from_vars(
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<SlurmJob>, ClusterError> {
        // In a step, SLURM_NODELIST is the step's nodes (the job's in the batch step).
        let (Some(procid), Some(nodes)) = (
            var("SLURM_PROCID"),
            var("SLURM_NODELIST").or_else(|| var("SLURM_JOB_NODELIST")),
        ) else {
            return Ok(None);
        };
        let procid = number("SLURM_PROCID", &procid)?;
        let hosts = expand_nodelist(&nodes).map_err(|m| env_err("SLURM_NODELIST", m))?;
        let ntasks = var("SLURM_NTASKS")
            .map(|n| number("SLURM_NTASKS", &n))
            .transpose()?;
        // Without SLURM_TASKS_PER_NODE: one task on each of the first nodes.
        let tasks_per_node = match (var("SLURM_TASKS_PER_NODE"), ntasks) {
            (Some(list), _) => (expand_tasks_per_node(&list, hosts.len()))
                .map_err(|m| env_err("SLURM_TASKS_PER_NODE", m))?,
            (None, Some(n)) => (0..hosts.len()).map(|h| usize::from(h < n)).collect(),
            (None, None) => {
                return Err(env_err(
                    "SLURM_NTASKS",
                    "neither it nor SLURM_TASKS_PER_NODE is set: give sbatch --ntasks or \
                     --ntasks-per-node"
                        .into(),
                ))
            }
        };
        let total = (tasks_per_node.iter())
            .try_fold(0usize, |sum, &n| sum.checked_add(n))
            .filter(|&t| t <= MAX_HOSTS.saturating_mul(usize::from(PORTS_PER_JOB)))
            .ok_or_else(|| env_err("SLURM_TASKS_PER_NODE", "too many tasks".into()))?;
        let ntasks = ntasks.unwrap_or(total);
        if total != ntasks {
            return Err(env_err(
                "SLURM_NTASKS",
                format!(
                    "{ntasks} tasks, but {total} over the {} node(s)",
                    hosts.len()
                ),
            ));
        }
        if procid >= ntasks {
            return Err(env_err(
                "SLURM_PROCID",
                format!("{procid} is not below {ntasks}"),
            ));
        }
        let port = var("SLUICE_PORT");
        let derived = port.is_none();
        let base_port = base_port(port.as_deref(), var("SLURM_JOB_ID").as_deref())?;
        let most = tasks_per_node.iter().copied().max().unwrap_or(0);
        if derived && most > usize::from(PORTS_PER_JOB) {
            return Err(env_err(
                "SLURM_TASKS_PER_NODE",
                format!(
                    "{most} tasks on one node, over the {PORTS_PER_JOB} ports a job gets from \
                     its id: set SLUICE_PORT to the first of enough free ports"
                ),
            ));
        }
        if usize::from(base_port) + most > usize::from(u16::MAX) + 1 {
            return Err(env_err(
                "SLUICE_PORT",
                format!("{base_port} + {most} tasks a node runs past port 65535"),
            ));
        }
        let job = SlurmJob {
            procid,
            nodelist: nodes.trim().to_string(),
            hosts,
            tasks_per_node,
            base_port,
        };
        Ok(Some(job))
    }

    /// For a worker task: refuses this task where Slurm placed it otherwise than the block
    /// layout says (`SLURMD_NODENAME`, `SLURM_LOCALID`). Not for the batch step, which may run
    /// on any node of the job.
    pub fn check_this_task(
        &self,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ClusterError> {
        self.check_placement(var("SLURMD_NODENAME"), var("SLURM_LOCALID"))
    }

    /// This task's node and its index there, as the block layout numbers tasks.
    pub fn place(&self) -> Option<(usize, usize)> {
        let mut first = 0;
        for (node, &count) in self.tasks_per_node.iter().enumerate() {
            if self.procid < first + count {
                return Some((node, self.procid - first));
            }
            first += count;
        }
        None
    }

    /// Refuses a task that Slurm put elsewhere than the block layout says (srun `-m cyclic`,
    /// a host file): every task would look for the others at the wrong ports.
    fn check_placement(
        &self,
        node_name: Option<String>,
        local_id: Option<String>,
    ) -> Result<(), ClusterError> {
        let Some((node, local)) = self.place() else {
            return Ok(());
        };
        let expected = &self.hosts[node];
        let wrong_node = node_name.as_ref().is_some_and(|n| n != expected);
        let wrong_index = (local_id.as_deref())
            .and_then(|l| l.trim().parse::<usize>().ok())
            .is_some_and(|l| l != local);
        if wrong_node || wrong_index {
            return Err(env_err(
                "SLURM_PROCID",
                format!(
                    "task {} runs on {} as its task {}, but Slurm's block layout puts it on \
                     {expected} as task {local}: start the workers with srun \
                     --distribution=block",
                    self.procid,
                    node_name.as_deref().unwrap_or("?"),
                    local_id.as_deref().unwrap_or("?"),
                ),
            ));
        }
        Ok(())
    }

    /// The cluster: job `worker`, task `t` on its node's address (`addrs`, by node; the
    /// node's name where it has none) at the base port plus its index on the node.
    pub fn cluster(&self, addrs: &HashMap<String, String>) -> (ClusterSpec, TaskName) {
        let mut tasks = Vec::new();
        for (host, &count) in self.hosts.iter().zip(&self.tasks_per_node) {
            let addr = addrs.get(host).unwrap_or(host);
            // IPv6 addresses take brackets before a port.
            let addr = match addr.contains(':') {
                true => format!("[{addr}]"),
                false => addr.clone(),
            };
            for local in 0..count {
                tasks.push(format!("{addr}:{}", usize::from(self.base_port) + local));
            }
        }
        (
            ClusterSpec::new([("worker".to_string(), tasks)]),
            TaskName::new("worker", self.procid),
        )
    }
}

/// Each node's `NodeAddr` where Slurm's configuration gives one other than its name, from
/// `scontrol -o show node LIST` for the job's nodes (within 10 s); none where `scontrol` is
/// missing or fails (with a warning: then the names are used as they are).
pub fn node_addrs(job: &SlurmJob) -> HashMap<String, String> {
    let hosts = &job.hosts;
    // The compressed list: an expanded one of thousands of nodes may pass the kernel's limit
    // on one argument.
    let args = ["-o", "show", "node", job.nodelist.as_str()];
    let Some(text) = run_with_timeout("scontrol", &args, Duration::from_secs(10)) else {
        tracing::warn!("scontrol could not say the nodes' addresses (NodeAddr); using their names");
        return HashMap::new();
    };
    let wanted: std::collections::HashSet<&String> = hosts.iter().collect();
    parse_node_addrs(&text)
        .into_iter()
        .filter(|(name, addr)| wanted.contains(name) && addr != name)
        .collect()
}

/// (NodeName, NodeAddr) of each line of `scontrol -o show nodes`.
fn parse_node_addrs(text: &str) -> Vec<(String, String)> {
    (text.lines())
        .filter_map(|line| {
            let field = |key: &str| {
                (line.split_whitespace()).find_map(|w| w.strip_prefix(key).map(str::to_string))
            };
            Some((field("NodeName=")?, field("NodeAddr=")?))
        })
        .collect()
}

/// A command's standard output, if it succeeds within `timeout`.
fn run_with_timeout(program: &str, args: &[&str], timeout: Duration) -> Option<String> {
    use std::io::Read;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    // The output is read on a thread of its own, so a full pipe cannot stall the wait.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        // A cluster of a hundred thousand nodes prints well under this.
        let _ = (&mut stdout).take(256 << 20).read_to_string(&mut text);
        text
    });
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let text = reader.join().ok()?;
                return status.success().then_some(text);
            }
            Ok(None) if started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::debug!("{program} did not answer within {timeout:?}");
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(vars: &[(&str, &str)]) -> Result<Option<SlurmJob>, ClusterError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SlurmJob::from_vars(&|name| vars.get(name).cloned())
    }

    #[test]
    fn several_tasks_share_a_node_on_ports_of_their_job() {
        let vars = [
            ("SLURM_PROCID", "3"),
            ("SLURM_NTASKS", "5"),
            ("SLURM_JOB_NODELIST", "n[1-2],gpu"),
            ("SLURM_TASKS_PER_NODE", "2(x2),1"),
            ("SLURM_JOB_ID", "2502"),
        ];
        let five = job(&vars).unwrap().expect("a Slurm job");
        assert_eq!(five.tasks_per_node, [2, 2, 1]);
        // Job 2502 is slot 252: ports 24032 and up.
        assert_eq!(five.base_port, 24_032);
        let addrs = HashMap::from([("gpu".to_string(), "10.1.2.3".to_string())]);
        let (spec, task) = five.cluster(&addrs);
        assert_eq!(
            spec.jobs["worker"],
            [
                "n1:24032",
                "n1:24033",
                "n2:24032",
                "n2:24033",
                "10.1.2.3:24032"
            ]
        );
        assert_eq!(task, TaskName::new("worker", 3));
        // Another job on the same nodes takes other ports; SLUICE_PORT says outright.
        let other = [("SLURM_JOB_ID", "2503"), ("SLURM_PROCID", "0")];
        let mut vars2 = vars.to_vec();
        // Later variables win.
        vars2.extend(other);
        assert_eq!(job_base(&vars2), 24_048);
        let mut fixed = vars.to_vec();
        fixed.push(("SLUICE_PORT", "7070"));
        assert_eq!(job_base(&fixed), 7070);
        // One task per node without SLURM_TASKS_PER_NODE, as before.
        let plain = [
            ("SLURM_PROCID", "1"),
            ("SLURM_NTASKS", "2"),
            ("SLURM_JOB_NODELIST", "a,b,c"),
        ];
        let (spec, _) = job(&plain).unwrap().unwrap().cluster(&HashMap::new());
        assert_eq!(spec.jobs["worker"], ["a:7070", "b:7070"]);
    }

    fn job_base(vars: &[(&str, &str)]) -> u16 {
        job(vars).unwrap().unwrap().base_port
    }

    #[test]
    fn bad_slurm_variables_are_named() {
        let base = [
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "4"),
            ("SLURM_JOB_NODELIST", "n[1-2]"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            job(&v).unwrap_err().to_string()
        };
        let e = with(&[("SLURM_TASKS_PER_NODE", "2(x3)")]);
        assert!(
            e.contains("SLURM_TASKS_PER_NODE") && e.contains("more than the 2"),
            "{e}"
        );
        let e = with(&[("SLURM_TASKS_PER_NODE", "1(x2)")]);
        assert!(e.contains("SLURM_NTASKS") && e.contains("but 2"), "{e}");
        let e = with(&[("SLURM_TASKS_PER_NODE", "x(x2)")]);
        assert!(e.contains("not a number"), "{e}");
        let e = with(&[("SLURM_TASKS_PER_NODE", "2(x2)"), ("SLURM_PROCID", "4")]);
        assert!(e.contains("SLURM_PROCID"), "{e}");
        let e = with(&[("SLURM_TASKS_PER_NODE", "20,0"), ("SLURM_NTASKS", "20")]);
        assert!(e.contains("SLUICE_PORT"), "{e}");
        let e = with(&[("SLURM_TASKS_PER_NODE", "2(x2)"), ("SLUICE_PORT", "65535")]);
        assert!(e.contains("past port 65535"), "{e}");
        assert!(
            job(&base[..2]).unwrap().is_none(),
            "no node list: not Slurm"
        );
        // Sums that overflow are refused, not wrapped.
        let e = with(&[("SLURM_TASKS_PER_NODE", "18446744073709551615,2")]);
        assert!(e.contains("too many tasks"), "{e}");
    }

    #[test]
    fn a_worker_task_sits_where_the_block_layout_puts_it() {
        let vars = |extra: &[(&str, &str)]| -> HashMap<String, String> {
            let base = [
                ("SLURM_PROCID", "0"),
                ("SLURM_JOB_NODELIST", "n[1-2]"),
                ("SLURM_TASKS_PER_NODE", "2(x2)"),
            ];
            (base.iter().chain(extra))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let check = |extra: &[(&str, &str)]| {
            let vars = vars(extra);
            let get = |n: &str| vars.get(n).cloned();
            let job = SlurmJob::from_vars(&get).unwrap().expect("a Slurm job");
            job.check_this_task(&get)
        };
        // No SLURM_NTASKS (sbatch --ntasks-per-node only): the tasks per node say it.
        let job = SlurmJob::from_vars(&|n| vars(&[]).get(n).cloned())
            .unwrap()
            .unwrap();
        assert_eq!(job.cluster(&HashMap::new()).0.jobs["worker"].len(), 4);
        let e = check(&[("SLURM_PROCID", "1"), ("SLURMD_NODENAME", "n2")]).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("block layout puts it on n1") && e.contains("--distribution=block"),
            "{e}"
        );
        let e = check(&[("SLURM_LOCALID", "1")]).unwrap_err().to_string();
        assert!(e.contains("as task 0"), "{e}");
        check(&[
            ("SLURM_PROCID", "3"),
            ("SLURMD_NODENAME", "n2"),
            ("SLURM_LOCALID", "1"),
        ])
        .expect("where the block layout puts it");
    }

    #[test]
    fn node_addresses_come_from_scontrol_lines() {
        let text = "NodeName=n1 Arch=x86_64 NodeAddr=10.0.0.1 NodeHostName=n1\n\
                    NodeName=n2 NodeAddr=n2 NodeHostName=n2\n";
        assert_eq!(
            parse_node_addrs(text),
            [
                ("n1".to_string(), "10.0.0.1".to_string()),
                ("n2".into(), "n2".into())
            ]
        );
    }

    #[test]
    fn node_lists_expand_as_scontrol_show_hostnames_does() {
        let hosts = |list: &str| expand_nodelist(list).unwrap();
        assert_eq!(
            hosts("node[01-03,07],gpu5"),
            ["node01", "node02", "node03", "node07", "gpu5"]
        );
        assert_eq!(
            hosts("rack[1-2]-n[1-2]"),
            ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]
        );
        assert_eq!(hosts("a[9-10]x,b"), ["a9x", "a10x", "b"]);
        assert_eq!(hosts("n[008-010]"), ["n008", "n009", "n010"]);
        assert!(hosts("").is_empty());
        for (bad, why) in [
            ("n[1-3", "unbalanced"),
            ("n1-3]", "unbalanced"),
            ("n[3-1]", "runs backwards"),
            ("n[a-b]", "not a number"),
            ("n[0-99999999999999]", "more than 65536 hosts"),
            ("r[0-999]-n[0-999]", "more than 65536 hosts"),
            ("n[1-65536],x", "more than 65536 hosts"),
        ] {
            let e = expand_nodelist(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
