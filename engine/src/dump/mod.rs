//! Tensors a step computed, written to a folder as NumPy `.npy` files: every node's outputs
//! or those whose names match a pattern ([`TensorDump`], [`crate::Session::run_dumped`]), and
//! the inputs of a `check_numerics` that failed, so the values that went wrong can be looked
//! at (`numpy.load`) after the step.
//!
//! A node `layer1/MatMul` is written as `layer1/MatMul.npy` (its output 0; output k as
//! `MatMul.out{k}.npy`); `dump.json` lists each file with its node, op, dtype and shape.

pub mod npy;

use crate::tensor::Tensor;
use serde_json::json;
use std::path::{Path, PathBuf};

/// What a dumped step writes.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorDump {
    /// The folder the files go to (made if missing).
    pub dir: PathBuf,
    /// Which nodes: a glob over full names (`layer1/*`, `*MatMul*`); `None` for all.
    pub pattern: Option<String>,
    /// The most bytes of tensors written; past it, the rest are listed as skipped.
    pub max_bytes: u64,
}

impl TensorDump {
    /// Every node's outputs into `dir`, up to 1 GiB.
    pub fn all(dir: impl Into<PathBuf>) -> TensorDump {
        TensorDump {
            dir: dir.into(),
            pattern: None,
            max_bytes: 1 << 30,
        }
    }

    /// The outputs of the nodes whose names match `pattern` (`*` any run, `?` one character).
    pub fn matching(dir: impl Into<PathBuf>, pattern: &str) -> TensorDump {
        TensorDump {
            pattern: Some(pattern.to_string()),
            ..TensorDump::all(dir)
        }
    }

    /// Whether the node named `name` is dumped.
    pub fn wants(&self, name: &str) -> bool {
        self.pattern.as_deref().is_none_or(|p| glob_match(p, name))
    }
}

/// What a dumped step wrote.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DumpReport {
    pub dir: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<PathBuf>,
    pub bytes: u64,
    /// Nodes matched but not written (over `max_bytes`, or after a write failed).
    pub skipped: Vec<String>,
    /// Why writing stopped, if it did.
    pub error: Option<String>,
}

/// The writer of one step's dump.
#[derive(Debug)]
pub(crate) struct StepDump {
    spec: TensorDump,
    report: DumpReport,
    manifest: Vec<serde_json::Value>,
    /// Files written so far: two names that clean up alike (`a:b`, `a_b`) get two files.
    used: std::collections::HashSet<PathBuf>,
}

impl StepDump {
    pub(crate) fn new(spec: &TensorDump) -> StepDump {
        StepDump {
            report: DumpReport {
                dir: spec.dir.clone(),
                ..DumpReport::default()
            },
            spec: spec.clone(),
            manifest: Vec::new(),
            used: Default::default(),
        }
    }

    pub(crate) fn wants(&self, name: &str) -> bool {
        self.spec.wants(name)
    }

    /// Writes output `index` of node `name`. A failure is reported, not returned: the step
    /// goes on, and nothing it computed is lost for a full disk.
    pub(crate) fn write(&mut self, name: &str, op: &str, index: usize, t: &Tensor) {
        let bytes = (t.len() * t.dtype().size()) as u64;
        let over = self.report.bytes.saturating_add(bytes) > self.spec.max_bytes;
        if self.report.error.is_some() || over {
            self.report.skipped.push(format!("{name}:{index}"));
            return;
        }
        let mut file = file_for(name, index);
        for n in 2.. {
            if !self.used.contains(&file) {
                break;
            }
            file = file_for(&format!("{}~{n}", sanitized(name)), index);
        }
        self.used.insert(file.clone());
        let path = self.spec.dir.join(&file);
        let written = (path.parent().map_or(Ok(()), std::fs::create_dir_all))
            .and_then(|()| npy::save_npy(t, &path));
        match written {
            Ok(()) => {
                self.manifest.push(json!({
                    "node": name, "op": op, "output": index, "file": file,
                    "dtype": t.dtype().name(), "shape": t.shape(),
                }));
                self.report.files.push(file);
                self.report.bytes += bytes;
            }
            Err(e) => {
                self.report.error = Some(format!("{}: {e}", path.display()));
                self.report.skipped.push(format!("{name}:{index}"));
            }
        }
    }

    /// Output `index` of node `name` could not be read (off a GPU, say).
    pub(crate) fn failed(&mut self, name: &str, index: usize, why: &str) {
        self.report.skipped.push(format!("{name}:{index}"));
        tracing::warn!("output {index} of '{name}' was not dumped: {why}");
    }

    /// Writes `dump.json` and gives the report.
    pub(crate) fn finish(mut self) -> DumpReport {
        if self.report.error.is_none() {
            let manifest = json!({"tensors": self.manifest, "skipped": self.report.skipped});
            let path = self.spec.dir.join("dump.json");
            let written = std::fs::create_dir_all(&self.spec.dir)
                .and_then(|()| std::fs::write(&path, manifest.to_string()));
            if let Err(e) = written {
                self.report.error = Some(format!("{}: {e}", path.display()));
            }
        }
        self.report
    }
}

/// Where a check that failed puts the inputs of its node: a folder per failure under `dir`,
/// at most `max_failures` of them per session (a loop of failing steps does not fill the
/// disk).
#[derive(Debug)]
pub(crate) struct FailureDumps {
    pub dir: PathBuf,
    left: std::sync::atomic::AtomicUsize,
}

impl FailureDumps {
    pub(crate) fn new(dir: PathBuf, max_failures: usize) -> FailureDumps {
        FailureDumps {
            dir,
            left: max_failures.into(),
        }
    }

    /// Writes the inputs of the failed node `name` (`input0.npy`, ...) to a folder of their
    /// own and returns it, or why not.
    pub(crate) fn write(&self, name: &str, op: &str, inputs: &[Tensor]) -> Result<PathBuf, String> {
        use std::sync::atomic::Ordering;
        // Folder numbers are the process's, so sessions of one process never share one.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        (self.left)
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .map_err(|_| "this session's failure dumps are used up".to_string())?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let folder = format!("{}-{n}", sanitized(name).replace('/', "."));
        let spec = TensorDump {
            dir: self.dir.join(folder),
            pattern: None,
            max_bytes: 256 << 20,
        };
        let mut dump = StepDump::new(&spec);
        for (k, t) in inputs.iter().enumerate() {
            dump.write(&format!("input{k}"), op, 0, t);
        }
        let report = dump.finish();
        match (report.error, report.skipped.is_empty()) {
            (Some(e), _) => Err(e),
            (None, false) => Err(format!(
                "inputs over 256 MiB: {}",
                report.skipped.join(", ")
            )),
            (None, true) => Ok(report.dir),
        }
    }
}

/// The file of output `index` of node `name`, relative to the dump's folder.
fn file_for(name: &str, index: usize) -> PathBuf {
    let base = sanitized(name);
    match index {
        0 => PathBuf::from(format!("{base}.npy")),
        k => PathBuf::from(format!("{base}.out{k}.npy")),
    }
}

/// A node name as a relative path that stays inside the dump's folder: scopes become
/// folders; characters other than letters, digits, `_`, `-` and `.` become `_`; empty,
/// `.` and `..` parts become `_`.
fn sanitized(name: &str) -> String {
    let parts: Vec<String> = (name.split('/'))
        .map(|part| {
            let clean: String = (part.chars())
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            match clean.as_str() {
                "" | "." | ".." => "_".to_string(),
                _ => clean,
            }
        })
        .collect();
    parts.join("/")
}

/// Glob matching with `*` (any run) and `?` (any one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The path of a dump's file for output `index` of node `name` (for programs that read a
/// dump back).
pub fn dumped_file(dir: &Path, name: &str, index: usize) -> PathBuf {
    dir.join(file_for(name, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_folder() {
        assert_eq!(sanitized("layer1/MatMul"), "layer1/MatMul");
        assert_eq!(sanitized("../../etc/x y"), "_/_/etc/x_y");
        assert_eq!(sanitized("a//b"), "a/_/b");
        assert_eq!(file_for("a/b", 2), PathBuf::from("a/b.out2.npy"));
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("layer1/*", "layer1/MatMul"));
        assert!(!glob_match("layer1/*", "gradients/layer1/MatMul"));
        assert!(glob_match(
            "*MatMul*",
            "gradients/layer1/MatMul_grad/MatMul_1"
        ));
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "ac"));
    }

    #[test]
    fn a_dump_stops_at_its_byte_budget_and_lists_the_rest() {
        let dir = std::env::temp_dir().join(format!("sluice-dump-budget-{}", std::process::id()));
        let spec = TensorDump {
            max_bytes: 40,
            ..TensorDump::all(&dir)
        };
        let mut dump = StepDump::new(&spec);
        dump.write("a", "Const", 0, &Tensor::from_vec(vec![1.0f32; 8]));
        dump.write("b", "Const", 0, &Tensor::from_vec(vec![1.0f32; 8]));
        let report = dump.finish();
        assert_eq!(report.files, [PathBuf::from("a.npy")]);
        assert_eq!(report.skipped, ["b:0"]);
        let manifest = std::fs::read_to_string(dir.join("dump.json")).expect("manifest");
        assert!(
            manifest.contains("\"node\":\"a\"") && manifest.contains("b:0"),
            "{manifest}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
