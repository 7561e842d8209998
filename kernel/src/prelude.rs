//! What runs in evcxr before the first cell: the engine's client crate and the notebook
//! helpers (crate `sluice-notebook`) as dependencies, their preludes, a panic hook that tells
//! the kernel, and a graph and a session bound to the engine.

use std::path::{Path, PathBuf};

/// Environment variable naming the engine crate's folder (the one with its Cargo.toml).
pub const SOURCE_ENV: &str = "SLUICE_SOURCE";

/// The engine crate's folder: `SLUICE_SOURCE`, else where it was when the kernel was built.
pub fn engine_source_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(SOURCE_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("engine")
}

/// The notebook helpers' folder, beside the engine's: `<repo>/kernel/notebook`.
pub fn notebook_source_dir(engine_dir: &Path) -> PathBuf {
    engine_dir.join("..").join("kernel").join("notebook")
}

fn toml_path(dir: &Path) -> String {
    // TOML basic strings take the path; backslashes and quotes escaped.
    dir.to_string_lossy()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

/// The `:dep` lines: the engine's client part (no kernels, no server: quick to link) and the
/// notebook helpers.
pub fn dep_commands(engine_dir: &Path) -> [String; 2] {
    [
        format!(
            ":dep sluice = {{ path = \"{}\", default-features = false }}",
            toml_path(engine_dir)
        ),
        format!(
            ":dep sluice-notebook = {{ path = \"{}\" }}",
            toml_path(&notebook_source_dir(engine_dir))
        ),
    ]
}

/// The cells' world: preludes, the panic hook, a graph and a session on the engine named by
/// `SLUICE_ENGINE`.
pub fn session_setup() -> &'static str {
    r#"
use sluice::prelude::*;
use sluice_notebook::{SluiceDisplay, SluiceNotebook};
sluice_notebook::install_panic_hook();
let graph = Graph::new();
let mut sess = RemoteSession::create(&std::env::var("SLUICE_ENGINE").unwrap_or_default(), &graph)?;
sluice_notebook::announce_session(&sess);
"#
}

/// After evcxr restarted its child: the same session again, its graph rebuilt from the
/// engine, so handles come back by name (`graph.get("W")`).
pub fn reattach(addr: &str, handle: &str) -> String {
    format!(
        r#"
sluice_notebook::install_panic_hook();
let (mut sess, graph) = RemoteSession::attach({addr:?}, {handle:?})?;
sluice_notebook::announce_session(&sess);
"#
    )
}

/// Rewrites kernel commands evcxr does not know: a `:graph` line draws the session's graph.
pub fn rewrite_commands(code: &str) -> String {
    if !code.lines().any(|l| l.trim() == ":graph") {
        return code.to_string();
    }
    code.lines()
        .map(|l| {
            if l.trim() == ":graph" {
                "sess.show_graph();"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_lines_escape_quotes() {
        let [sluice, notebook] = dep_commands(Path::new("/a \"b\"/engine"));
        assert_eq!(
            sluice,
            ":dep sluice = { path = \"/a \\\"b\\\"/engine\", default-features = false }"
        );
        assert!(notebook.contains("kernel/notebook"));
    }

    #[test]
    fn graph_command_becomes_show_graph() {
        assert_eq!(
            rewrite_commands("let a = 1;\n:graph"),
            "let a = 1;\nsess.show_graph();"
        );
        assert_eq!(rewrite_commands("let a = 1;"), "let a = 1;");
    }
}
