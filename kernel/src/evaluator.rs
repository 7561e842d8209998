//! evcxr, set up for Sluice: cells compiled at `:opt 0` in a kept build folder, against the
//! engine's client crate, after the prelude. Owned by the cell thread: evcxr's context is
//! neither shared nor sent.

use crate::error::{KernelError, Result};
use crate::prelude;
use evcxr::{CommandContext, EvalCallbacks, EvalContext, EvalContextOutputs, EvalOutputs};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};

/// What the evaluator needs to know about its world.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The engine the cells' session talks to.
    pub engine_addr: String,
    /// The engine crate's folder, for `:dep sluice = { path = ... }`.
    pub engine_dir: PathBuf,
    /// evcxr's build folder (also in `EVCXR_TMPDIR`, which evcxr reads).
    pub build_dir: PathBuf,
}

pub struct Evaluator {
    ctx: CommandContext,
}

/// Completions for a cursor: candidates and the byte range they replace.
pub struct Completion {
    pub matches: Vec<String>,
    pub start: usize,
    pub end: usize,
}

impl Evaluator {
    /// Starts evcxr's child process and compiles the engine's client code (once per build
    /// folder; later starts reuse it). The prelude is not run yet: see [`Evaluator::prelude`].
    pub fn start(setup: &Setup) -> Result<(Evaluator, EvalContextOutputs)> {
        seed_lock_file(&setup.engine_dir, &setup.build_dir);
        let exe = std::env::current_exe()?;
        let mut child = std::process::Command::new(exe);
        child.env(crate::engine_link::ENGINE_ENV, &setup.engine_addr);
        if let Some(path) = child_library_path(&setup.build_dir) {
            child.env("LD_LIBRARY_PATH", path);
        }
        let (eval, outputs) = EvalContext::with_subprocess_command(child)?;
        // Cells only build graphs and talk to the engine: they compile at opt-level 0 (set
        // in the kernel's evcxr.toml, with shared-library linking; see workdir).
        let mut ctx = CommandContext::with_eval_context(eval);
        for dep in prelude::dep_commands(&setup.engine_dir) {
            ctx.execute(&dep)?;
        }
        Ok((Evaluator { ctx }, outputs))
    }

    /// Runs the prelude: helpers, then a graph and a session on the engine.
    pub fn prelude(&mut self) -> std::result::Result<EvalOutputs, evcxr::Error> {
        self.ctx.execute(prelude::session_setup())
    }

    /// After evcxr restarted its child: the session again, its graph from the engine.
    pub fn reattach(
        &mut self,
        addr: &str,
        handle: &str,
    ) -> std::result::Result<EvalOutputs, evcxr::Error> {
        self.ctx.execute(&prelude::reattach(addr, handle))
    }

    /// Runs a cell; `input(prompt, secret)` answers what the cell asks the user
    /// (`sluice_notebook::input`).
    pub fn execute(
        &mut self,
        code: &str,
        input: &dyn Fn(&str, bool) -> String,
    ) -> std::result::Result<EvalOutputs, evcxr::Error> {
        let code = prelude::rewrite_commands(code);
        let mut callbacks = EvalCallbacks {
            input_reader: &|asked| {
                let prompt = sluice_notebook::protocol::decode_prompt(&asked.prompt);
                // evcxr passes the answer as one line of its protocol with the child.
                let answer = input(&prompt, asked.is_password);
                answer.lines().next().unwrap_or_default().to_string()
            },
        };
        self.ctx.execute_with_callbacks(&code, &mut callbacks)
    }

    /// The child process running the cells, for the interrupt's last resort.
    pub fn process_handle(&self) -> Arc<Mutex<Child>> {
        self.ctx.process_handle()
    }

    /// Variables that live between cells, with their types.
    pub fn variables(&self) -> Vec<(String, String)> {
        self.ctx
            .variables_and_types()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    }

    /// Completions at byte offset `pos` of `code`.
    pub fn complete(&mut self, code: &str, pos: usize) -> Result<Completion> {
        let pos = floor_char_boundary(code, pos);
        let c = self
            .ctx
            .completions(code, pos)
            .map_err(|e| KernelError::Evcxr(e.to_string()))?;
        let mut matches: Vec<String> = c.completions.into_iter().map(|c| c.code).collect();
        matches.dedup();
        Ok(Completion {
            matches,
            start: c.start_offset,
            end: c.end_offset,
        })
    }

    /// What rust-analyzer knows about the name at byte offset `pos`: (plain text, HTML).
    pub fn inspect(&mut self, code: &str, pos: usize) -> Result<Option<(String, String)>> {
        let pos = floor_char_boundary(code, pos);
        // Hover looks at the end of the text before the cursor: take in the rest of the word.
        let end = code[pos..]
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(code.len(), |(i, _)| pos + i);
        if end == 0 {
            return Ok(None);
        }
        let (plain, html) = self
            .ctx
            .hover_at(code, end)
            .map_err(|e| KernelError::Evcxr(e.to_string()))?;
        if plain.trim().is_empty() || plain == "No documentation found" {
            return Ok(None);
        }
        Ok(Some((plain, html)))
    }
}

/// The variables a restart of evcxr's child loses: all but `sess` and `graph`, which come
/// back attached to the engine.
pub fn lost_variables(before: &[(String, String)]) -> Vec<&str> {
    before
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n != "sess" && *n != "graph")
        .collect()
}

/// The largest char boundary of `s` at or before `pos`.
pub fn floor_char_boundary(s: &str, pos: usize) -> usize {
    let mut pos = pos.min(s.len());
    while !s.is_char_boundary(pos) {
        pos -= 1;
    }
    pos
}

/// Where the child finds Rust's shared standard library and the cells' dependencies: the
/// run paths rustc writes are relative to where cargo built each library, and evcxr moves
/// the cell's library after the build.
fn child_library_path(build_dir: &Path) -> Option<std::ffi::OsString> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = std::process::Command::new(&rustc)
        .args(["--print", "target-libdir"])
        .output()
        .ok()?;
    let std_dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let host = std::process::Command::new(&rustc)
        .arg("-vV")
        .output()
        .ok()?;
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))?;
    let deps = build_dir
        .join("target")
        .join(host)
        .join("debug")
        .join("deps");
    let mut dirs = vec![PathBuf::from(std_dir), deps];
    if let Some(existing) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&existing));
    }
    std::env::join_paths(dirs).ok()
}

/// Gives evcxr's crate the workspace's Cargo.lock the first time, so the engine's client
/// code builds with the versions the workspace tested (and without a registry lookup).
fn seed_lock_file(engine_dir: &Path, build_dir: &Path) {
    let target = build_dir.join("Cargo.lock");
    if target.exists() {
        return;
    }
    let source = engine_dir.join("..").join("Cargo.lock");
    if let Err(e) = std::fs::copy(&source, &target) {
        eprintln!("sluice-kernel: no lock file from {}: {e}", source.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_boundaries() {
        assert_eq!(floor_char_boundary("aé", 2), 1);
        assert_eq!(floor_char_boundary("ab", 10), 2);
    }
}
