//! Where evcxr builds cells. evcxr compiles every cell as a crate in its "tmpdir", with the
//! engine's client code and its dependencies built there once. Keeping that folder between
//! kernel runs is what makes a restarted kernel start without rebuilding the client code; a
//! lock per folder lets kernels that run at the same time each have their own.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Environment variable naming the cache root (default `~/.cache/sluice-kernel`).
pub const CACHE_ENV: &str = "SLUICE_KERNEL_CACHE";

/// How many build folders concurrent kernels may use before sharing fails.
const SLOTS: usize = 16;

/// A build folder held for the life of this value.
pub struct WorkDir {
    path: PathBuf,
    // Holding the file holds the lock.
    _lock: File,
}

impl WorkDir {
    /// The first build folder no other kernel holds, created if needed.
    pub fn acquire() -> std::io::Result<WorkDir> {
        let root = cache_root().join("evcxr-builds");
        std::fs::create_dir_all(&root)?;
        for slot in 0..SLOTS {
            let lock_path = root.join(format!("slot-{slot}.lock"));
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)?;
            match lock.try_lock() {
                Ok(()) => {
                    let path = root.join(format!("slot-{slot}"));
                    std::fs::create_dir_all(&path)?;
                    return Ok(WorkDir { path, _lock: lock });
                }
                Err(std::fs::TryLockError::WouldBlock) => continue,
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
        Err(std::io::Error::other(format!(
            "all {SLOTS} evcxr build folders under {} are in use",
            root.display()
        )))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Cells link their dependencies as shared libraries (see [`crate::shared_linking`]): those
/// builds live in a cache of their own (`shared-linking` under the default root), apart from
/// the statically linked builds of earlier kernels, which would otherwise be taken as up to
/// date. Used by the kernel and the REPL alike; an explicit `SLUICE_KERNEL_CACHE` is kept as
/// given. Call before any thread starts: it sets an environment variable.
pub fn default_to_shared_cache() {
    if std::env::var_os(CACHE_ENV).is_none_or(|d| d.is_empty()) {
        std::env::set_var(CACHE_ENV, cache_root().join("shared-linking"));
    }
}

/// The kernel's cache root.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("sluice-kernel")
}
