//! The sbatch example on a real Slurm: a single-node cluster (Debian's `slurm-wlm` and
//! `munge`; slurmctld, slurmd and munged started here, as root, cgroup plugins off) whose node
//! has a name no resolver knows and its address in `NodeAddr`. A job of two tasks on the one
//! node trains by ring all-reduce (its bytes checked), its workers stop on the SIGTERM the
//! script sends them; two such jobs at once on the node both finish, on ports of their own.

use sluice_tests::{engine_path, figure, require};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The node's name in Slurm: resolvable by nobody, so the workers must use its NodeAddr.
const NODE: &str = "sluicenode";

/// munged, slurmctld and slurmd in a folder of their own, stopped when dropped.
struct Slurm {
    dir: tempfile::TempDir,
    pids: Vec<PathBuf>,
}

impl Drop for Slurm {
    fn drop(&mut self) {
        // Jobs first (their steps outlive slurmd), then the daemons in reverse order.
        let _ = Command::new("scancel")
            .args(["--name=one,first,second"])
            .env("SLURM_CONF", self.conf())
            .status();
        for pid_file in self.pids.iter().rev() {
            if let Ok(pid) = std::fs::read_to_string(pid_file) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(program: &str, args: &[&str], conf: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .env("SLURM_CONF", conf)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

impl Slurm {
    fn start() -> Slurm {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let host = host
            .trim()
            .split('.')
            .next()
            .unwrap_or("localhost")
            .to_string();
        for sub in ["munge", "state", "spool", "log"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let key = d.join("munge/munge.key");
        let bytes: Vec<u8> = (0..1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(&key, bytes).unwrap();
        Command::new("chmod")
            .args(["-R", "go-rwx"])
            .arg(d.join("munge"))
            .status()
            .unwrap();
        let socket = d.join("munge/munge.socket");
        let status = Command::new("munged")
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!(
                "--pid-file={}",
                d.join("munge/munged.pid").display()
            ))
            .arg(format!("--log-file={}", d.join("log/munged.log").display()))
            .arg(format!("--seed-file={}", d.join("munge/seed").display()))
            .arg("--force")
            .status()
            .unwrap();
        assert!(status.success(), "munged did not start");
        let p = |name: &str| d.join(name).display().to_string();
        // Free ports now, so that another Slurm (or another run of this test) does not clash.
        // Both held at once, so that they differ.
        let bind = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (a, b) = (bind(), bind());
        let port = |l: &std::net::TcpListener| l.local_addr().unwrap().port();
        let (ctld_port, d_port) = (port(&a), port(&b));
        drop((a, b));
        let conf = format!(
            "ClusterName=sluicetest\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmctldPort={ctld_port}\n\
             SlurmdPort={d_port}\n\
             AuthType=auth/munge\n\
             AuthInfo=socket={socket}\n\
             CredType=cred/munge\n\
             StateSaveLocation={state}\n\
             SlurmdSpoolDir={spool}\n\
             SlurmctldPidFile={ctld_pid}\n\
             SlurmdPidFile={d_pid}\n\
             SlurmctldLogFile={ctld_log}\n\
             SlurmdLogFile={d_log}\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\n\
             SlurmdParameters=config_overrides\n\
             ReturnToService=2\n\
             MpiDefault=none\n\
             NodeName={NODE} NodeHostname={host} NodeAddr=127.0.0.1 CPUs=8 State=UNKNOWN\n\
             PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP\n",
            socket = socket.display(),
            state = p("state"),
            spool = p("spool"),
            ctld_pid = p("slurmctld.pid"),
            d_pid = p("slurmd.pid"),
            ctld_log = p("log/slurmctld.log"),
            d_log = p("log/slurmd.log"),
        );
        let conf_path = d.join("slurm.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut slurm = Slurm {
            pids: vec![d.join("munge/munged.pid")],
            dir,
        };
        run("slurmctld", &["-i"], &conf_path);
        slurm.pids.push(slurm.dir.path().join("slurmctld.pid"));
        run("slurmd", &["-N", NODE], &conf_path);
        slurm.pids.push(slurm.dir.path().join("slurmd.pid"));
        let started = Instant::now();
        loop {
            let info = run("sinfo", &["-h", "-o", "%t"], &conf_path);
            if info.trim() == "idle" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the node is '{}', not idle, after 30 s",
                info.trim()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        slurm
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// Runs the sbatch example with two tasks on the node (and the trainer's `flags`), waits
    /// for it, and returns its exit code and output.
    fn sbatch(&self, name: &str, flags: &[&str]) -> (bool, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/slurm/sluice-data-parallel.sbatch");
        let bin = engine_path().unwrap().parent().unwrap().to_path_buf();
        let out = self.dir.path().join(format!("{name}.out"));
        let status = Command::new("sbatch")
            .args([
                "--wait",
                "--time=5",
                "--nodes=1",
                "--ntasks-per-node=2",
                "--cpus-per-task=1",
            ])
            .arg(format!("--output={}", out.display()))
            .arg(format!("--job-name={name}"))
            .arg(&script)
            .args(flags)
            .env("SLURM_CONF", self.conf())
            .env("SLUICE_BIN", &bin)
            // The job's own ports and plain text on loopback, whatever the caller has set.
            .env_remove("SLUICE_PORT")
            .env_remove("SLUICE_TLS_CERT")
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        (status.success(), text)
    }
}

fn slurm_present() -> bool {
    let tools = [
        "munged",
        "slurmctld",
        "slurmd",
        "sbatch",
        "scontrol",
        "sinfo",
    ];
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    require(
        tools.iter().all(|t| have(t)) && root,
        "no single-node Slurm (slurm-wlm and munge, started as root)",
        "apt-get install slurm-wlm munge, as .ci/run does, and run the tests as root",
    )
}

fn check_job(ok: bool, out: &str) {
    assert!(ok, "the job failed:\n{out}");
    // Two workers, listening on all addresses, which the trainer reaches at the node's
    // address from Slurm (its name resolves nowhere).
    let listening = out
        .lines()
        .filter(|l| l.starts_with("listening on 0.0.0.0:"))
        .count();
    assert_eq!(listening, 2, "{out}");
    let cluster = out
        .lines()
        .find(|l| l.starts_with("cluster:"))
        .unwrap_or_default();
    assert_eq!(cluster.matches("\"127.0.0.1:").count(), 2, "{out}");
    // The ring moved 2(N-1)/N of the softmax model (7,850 f32) per worker per step.
    let bytes = figure(out, "all-reduce bytes per worker per step:").expect("bytes");
    let model = 4.0 * 7850.0;
    assert!(
        (model..=1.05 * model).contains(&bytes),
        "{bytes} bytes, model {model}\n{out}"
    );
    let accuracy = figure(out, "test accuracy:").expect("an accuracy");
    assert!(accuracy > 0.8, "{out}");
    // The workers stopped on the script's SIGTERM, cleanly.
    assert_eq!(out.matches("shutting down").count(), 2, "{out}");
    assert!(!out.contains("Killed"), "{out}");
}

#[test]
fn the_sbatch_example_runs_two_tasks_on_one_node_and_two_jobs_side_by_side() {
    if !slurm_present() {
        return;
    }
    let slurm = Slurm::start();
    let flags = ["--steps", "200", "--quiet"];
    let (ok, out) = slurm.sbatch("one", &flags);
    check_job(ok, &out);

    // Two jobs at once on the node: each on ports of its own job id.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| slurm.sbatch("first", &flags));
        let b = s.spawn(|| slurm.sbatch("second", &flags));
        (a.join().unwrap(), b.join().unwrap())
    });
    check_job(a.0, &a.1);
    check_job(b.0, &b.1);
    let cluster = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("cluster:"))
            .map(str::to_string)
    };
    assert_ne!(cluster(&a.1), cluster(&b.1), "the two jobs share ports");
}
