//! What runs in evcxr before the first cell: the engine's client crate and the cells'
//! helpers (crate `sluice-cell`) as dependencies, their preludes, a panic hook that tells the
//! frontend, and a graph and a session bound to the engine.

use crate::client_sources::ClientSources;
use std::path::Path;

fn toml_path(dir: &Path) -> String {
    // TOML basic strings take the path; backslashes and quotes escaped.
    dir.to_string_lossy()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

/// The `:dep` lines: the engine's client part (no kernels, no server: quick to link) and the
/// cells' helpers, both from the unpacked client sources.
pub fn dep_commands(sources: &ClientSources) -> [String; 2] {
    [
        format!(
            ":dep sluice = {{ path = \"{}\", default-features = false }}",
            toml_path(&sources.engine_dir())
        ),
        format!(
            ":dep sluice-cell = {{ path = \"{}\" }}",
            toml_path(&sources.cell_dir())
        ),
    ]
}

/// The cells' world: preludes, the panic hook, a graph and a session on the engine named by
/// `SLUICE_ENGINE`, the graph's default device from `SLUICE_DEVICE` (`--device`).
pub fn session_setup() -> &'static str {
    r#"
sluice_cell::__start_relay();
use sluice::prelude::*;
use sluice_cell::prelude::*;
sluice_cell::install_panic_hook();
let graph = Graph::new();
let mut sess = RemoteSession::create(&std::env::var("SLUICE_ENGINE").unwrap_or_default(), &graph)?;
sluice_cell::announce_session(&sess);
sluice_cell::use_default_device(&sess, &graph)?;
"#
}

/// After evcxr restarted its child: the same session again, its graph rebuilt from the
/// engine, so handles come back by name (`graph.get("W")`); the preludes again (evcxr's
/// `:clear` forgets them).
pub fn reattach(addr: &str, handle: &str) -> String {
    format!(
        r#"
sluice_cell::__start_relay();
use sluice::prelude::*;
use sluice_cell::prelude::*;
sluice_cell::install_panic_hook();
let (mut sess, graph) = RemoteSession::attach({addr:?}, {handle:?})?;
sluice_cell::announce_session(&sess);
sluice_cell::use_default_device(&sess, &graph)?;
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_lines_name_the_unpacked_sources() {
        let cache = std::env::temp_dir().join(format!("sluice-prelude-{}", std::process::id()));
        let sources = ClientSources::unpack(&cache).expect("unpacks");
        let [sluice, cell] = dep_commands(&sources);
        assert!(sluice.contains("default-features = false"), "{sluice}");
        assert!(
            sluice.contains(&toml_path(&sources.engine_dir())),
            "{sluice}"
        );
        assert!(cell.starts_with(":dep sluice-cell"), "{cell}");
        assert_eq!(toml_path(Path::new("/a \"b\"")), "/a \\\"b\\\"");
        let _ = std::fs::remove_dir_all(&cache);
    }
}
