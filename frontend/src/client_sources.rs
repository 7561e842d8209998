//! The sources cells compile against, carried inside the frontend's binary (see build.rs):
//! the engine's light client (crate `sluice`, `engine/`), the cells' helpers (crate
//! `sluice-cell`, `cell/`) and the workspace's Cargo.lock. They are unpacked once into the
//! cache, in a folder named by the version and a fingerprint of their content, so an
//! installed kernel works from any folder, with or without a checkout, and a newer binary
//! never builds cells against older sources.

use crate::error::{FrontendError, Result};
use std::path::{Path, PathBuf};

const ARCHIVE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/client-sources.tar.gz"));
const FINGERPRINT: &str = include_str!(concat!(env!("OUT_DIR"), "/client-sources.fingerprint"));
/// Written last into an unpacked folder: a folder without it is incomplete.
const COMPLETE: &str = ".complete";

/// Unpacked client sources.
#[derive(Debug, Clone)]
pub struct ClientSources {
    root: PathBuf,
}

impl ClientSources {
    /// `<version>-<fingerprint>`: what names the unpacked folder and the build templates.
    pub fn version() -> String {
        format!("{}-{}", env!("CARGO_PKG_VERSION"), FINGERPRINT.trim())
    }

    /// The sources under `cache_root/client/<version>`, unpacked there first if needed.
    /// Safe when several frontends start at once: each unpacks into a folder of its own and
    /// renames it into place; the first rename wins.
    pub fn unpack(cache_root: &Path) -> Result<ClientSources> {
        let parent = cache_root.join("client");
        let root = parent.join(Self::version());
        if root.join(COMPLETE).is_file() {
            return Ok(ClientSources { root });
        }
        let failed = |message: String| FrontendError::ClientSources {
            path: root.display().to_string(),
            message,
        };
        std::fs::create_dir_all(&parent).map_err(|e| failed(e.to_string()))?;
        let staging = tempfile::Builder::new()
            .prefix(".unpacking-")
            .tempdir_in(&parent)
            .map_err(|e| failed(e.to_string()))?
            .keep();
        let archive = flate2::read::GzDecoder::new(ARCHIVE);
        tar::Archive::new(archive)
            .unpack(&staging)
            .map_err(|e| failed(format!("cannot unpack: {e}")))?;
        std::fs::write(staging.join(COMPLETE), Self::version())
            .map_err(|e| failed(e.to_string()))?;
        if root.exists() && !root.join(COMPLETE).is_file() {
            // A half-written folder from a frontend that died while unpacking.
            let _ = std::fs::remove_dir_all(&root);
        }
        if std::fs::rename(&staging, &root).is_err() {
            // Another frontend renamed its copy first.
            let _ = std::fs::remove_dir_all(&staging);
            if !root.join(COMPLETE).is_file() {
                return Err(failed("cannot move the unpacked sources into place".into()));
            }
        }
        Ok(ClientSources { root })
    }

    /// The engine crate's folder (`:dep sluice = { path = ... }`).
    pub fn engine_dir(&self) -> PathBuf {
        self.root.join("engine")
    }

    /// The cells' helpers crate's folder.
    pub fn cell_dir(&self) -> PathBuf {
        self.root.join("cell")
    }

    /// The workspace's Cargo.lock: cells build with the versions the workspace tested.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("Cargo.lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacks_standalone_crates_once() {
        let cache = std::env::temp_dir().join(format!("sluice-sources-{}", std::process::id()));
        let sources = ClientSources::unpack(&cache).expect("unpacks");
        let manifest = std::fs::read_to_string(sources.engine_dir().join("Cargo.toml"))
            .expect("the engine's manifest");
        assert!(!manifest.contains("workspace"), "{manifest}");
        assert!(!manifest.contains("[[example]]"), "{manifest}");
        assert!(sources.engine_dir().join("src/lib.rs").is_file());
        assert!(!sources.engine_dir().join("src/bin").exists());
        assert!(sources.cell_dir().join("src/lib.rs").is_file());
        assert!(sources.lock_file().is_file());
        // A second start finds them in place.
        let again = ClientSources::unpack(&cache).expect("finds them");
        assert_eq!(again.engine_dir(), sources.engine_dir());
        let _ = std::fs::remove_dir_all(&cache);
    }
}
