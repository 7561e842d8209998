//! evcxr, set up for Sluice: cells compiled at `:opt 0` in a kept build folder, against the
//! client sources, after the prelude. Owned by one thread: evcxr's context is neither shared
//! nor sent.

use crate::build_dir::BuildDir;
use crate::client_sources::ClientSources;
use crate::completion::{self, Completion};
use crate::directives::Directives;
use crate::error::{FrontendError, Result};
use crate::{cell_code, prelude, ENGINE_ENV};
use evcxr::{CommandContext, EvalCallbacks, EvalContext, EvalContextOutputs, EvalOutputs};
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the evaluator needs to know about its world.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The engine the cells' session talks to.
    pub engine_addr: String,
    /// The sources cells compile against.
    pub sources: ClientSources,
    /// evcxr's build folder (also in `EVCXR_TMPDIR`, which evcxr reads).
    pub build_dir: PathBuf,
    /// Where the cells' dependencies are built (see [`BuildDir::deps_dir`]).
    pub deps_dir: PathBuf,
    /// The stand-in for the standard library's sources while evcxr starts.
    pub std_link: Option<PathBuf>,
    /// The secret that marks the cell process's directive lines, and those lines.
    pub token: String,
    pub directives: Directives,
}

impl Setup {
    /// The setup for `engine_addr`, cells building in `build_dir`.
    pub fn new(engine_addr: &str, sources: ClientSources, build_dir: &BuildDir) -> Result<Setup> {
        let host = rustc_output(&["-vV"])?
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
            .ok_or_else(|| FrontendError::Evcxr("rustc -vV names no host".into()))?;
        let (token, directives) = Directives::new_token();
        Ok(Setup {
            engine_addr: engine_addr.to_string(),
            sources,
            build_dir: build_dir.path().to_path_buf(),
            deps_dir: build_dir.deps_dir(&host),
            std_link: build_dir.std_link().map(PathBuf::from),
            token,
            directives,
        })
    }
}

pub struct Evaluator {
    ctx: CommandContext,
    /// evcxr shows final values' types (`:types`): then the result mark stays out.
    types_shown: bool,
    /// Where evcxr writes each cell's crate (panic locations point into it).
    generated: PathBuf,
}

impl Evaluator {
    /// Starts evcxr's child process. The dependencies and the prelude are not set up yet:
    /// see [`Evaluator::prelude`].
    pub fn start(setup: &Setup) -> Result<(Evaluator, EvalContextOutputs)> {
        seed_lock_file(setup);
        let exe = std::env::current_exe()?;
        let mut child = std::process::Command::new(exe);
        child.env(ENGINE_ENV, &setup.engine_addr);
        child.env(sluice_cell::protocol::TOKEN_ENV, &setup.token);
        // The loader drops folders missing when the process starts: make the one the cells'
        // dependencies will be built in before the child starts, or a first build's cells
        // cannot be loaded.
        std::fs::create_dir_all(&setup.deps_dir)?;
        child.env("LD_LIBRARY_PATH", child_library_path(setup)?);
        let started = Instant::now();
        let started_evcxr = EvalContext::with_subprocess_command(child);
        if let Some(link) = &setup.std_link {
            crate::std_sources::use_real(link);
        }
        let (eval, outputs) = started_evcxr?;
        tracing::debug!("evcxr started in {:.2} s", started.elapsed().as_secs_f64());
        // Cells only build graphs and talk to the engine: they compile at opt-level 0 (set
        // in evcxr.toml with shared-library linking; see shared_linking).
        let ctx = CommandContext::with_eval_context(eval);
        let generated = setup.build_dir.join("src").join("lib.rs");
        Ok((
            Evaluator {
                ctx,
                types_shown: false,
                generated,
            },
            outputs,
        ))
    }

    /// The dependencies and the prelude (helpers, then a graph and a session on the engine),
    /// in one evaluation: evcxr reloads its analysis each time the dependencies change.
    pub fn prelude(&mut self, setup: &Setup) -> std::result::Result<EvalOutputs, evcxr::Error> {
        let mut code = prelude::dep_commands(&setup.sources).join("\n");
        code.push('\n');
        code.push_str(prelude::session_setup());
        self.timed("the prelude", &code, &mut EvalCallbacks::default())
    }

    /// After evcxr restarted its child: the session again, its graph from the engine. The
    /// dependencies are given again too (evcxr's `:clear` forgets them; where they are still
    /// there, giving them again changes nothing).
    pub fn reattach(
        &mut self,
        setup: &Setup,
        addr: &str,
        handle: &str,
    ) -> std::result::Result<EvalOutputs, evcxr::Error> {
        let mut code = prelude::dep_commands(&setup.sources).join("\n");
        code.push('\n');
        code.push_str(&prelude::reattach(addr, handle));
        self.timed("reattaching", &code, &mut EvalCallbacks::default())
    }

    /// Runs a cell; `input(prompt, secret)` answers what the cell asks the person
    /// (`sluice_cell::input`).
    pub fn execute(
        &mut self,
        code: &str,
        input: &dyn Fn(&str, bool) -> String,
    ) -> std::result::Result<EvalOutputs, evcxr::Error> {
        if cell_code::types_toggles(code) % 2 == 1 {
            self.types_shown = !self.types_shown;
        }
        let code = cell_code::prepare(code, !self.types_shown);
        let mut callbacks = EvalCallbacks {
            input_reader: &|asked| {
                let prompt = sluice_cell::protocol::decode_prompt(&asked.prompt);
                // evcxr passes the answer as one line of its protocol with the child.
                let answer = input(&prompt, asked.is_password);
                answer.lines().next().unwrap_or_default().to_string()
            },
        };
        self.timed("a cell", &code, &mut callbacks)
    }

    fn timed(
        &mut self,
        what: &str,
        code: &str,
        callbacks: &mut EvalCallbacks,
    ) -> std::result::Result<EvalOutputs, evcxr::Error> {
        let started = Instant::now();
        let result = self.ctx.execute_with_callbacks(code, callbacks);
        if let Ok(out) = &result {
            let phases: Vec<String> = (out.phases.iter())
                .map(|p| format!("{} {:.0} ms", p.name, p.duration.as_secs_f64() * 1e3))
                .collect();
            tracing::debug!(
                "{what} took {:.3} s ({})",
                started.elapsed().as_secs_f64(),
                phases.join(", ")
            );
        }
        result
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

    /// The line of evcxr's generated crate that `line` (1-based) names, for panic locations.
    pub fn generated_line(&self, line: u32) -> Option<String> {
        let text = std::fs::read_to_string(&self.generated).ok()?;
        text.lines()
            .nth(usize::try_from(line).ok()?.checked_sub(1)?)
            .map(str::to_string)
    }

    /// Completions at byte offset `pos` of `code`.
    pub fn complete(&mut self, code: &str, pos: usize) -> Result<Completion> {
        let pos = completion::floor_char_boundary(code, pos);
        let found = self
            .ctx
            .completions(code, pos)
            .map_err(|e| FrontendError::Evcxr(e.to_string()))?;
        Ok(completion::from_evcxr(found))
    }

    /// What rust-analyzer knows about the name at byte offset `pos`: (plain text, HTML).
    pub fn inspect(&mut self, code: &str, pos: usize) -> Result<Option<(String, String)>> {
        let pos = completion::floor_char_boundary(code, pos);
        // Hover looks at the end of the text before the cursor: take in the rest of the word.
        let end = completion::word_end(code, pos);
        if end == 0 {
            return Ok(None);
        }
        let (plain, html) = self
            .ctx
            .hover_at(code, end)
            .map_err(|e| FrontendError::Evcxr(e.to_string()))?;
        if plain.trim().is_empty() || plain == "No documentation found" {
            return Ok(None);
        }
        Ok(Some((plain, html)))
    }
}

fn rustc_output(args: &[&str]) -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = std::process::Command::new(&rustc)
        .args(args)
        .output()
        .map_err(|e| FrontendError::Evcxr(format!("cannot run rustc (cells need it): {e}")))?;
    if !out.status.success() {
        return Err(FrontendError::Evcxr(format!(
            "rustc {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Where the child finds Rust's shared standard library and the cells' dependencies: the
/// run paths rustc writes are relative to where cargo built each library, and evcxr moves
/// the cell's library after the build.
fn child_library_path(setup: &Setup) -> Result<std::ffi::OsString> {
    let std_dir = PathBuf::from(rustc_output(&["--print", "target-libdir"])?);
    let mut dirs = vec![std_dir, setup.deps_dir.clone()];
    if let Some(existing) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&existing));
    }
    std::env::join_paths(dirs).map_err(|e| FrontendError::Evcxr(e.to_string()))
}

/// Gives evcxr's crate the workspace's Cargo.lock the first time, so the client code builds
/// with the versions the workspace tested (and without a registry lookup).
fn seed_lock_file(setup: &Setup) {
    let target = setup.build_dir.join("Cargo.lock");
    if target.exists() {
        return;
    }
    if let Err(e) = std::fs::copy(setup.sources.lock_file(), &target) {
        tracing::warn!("no lock file for the cells' crate: {e}");
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
