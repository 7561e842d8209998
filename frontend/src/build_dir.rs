//! Where evcxr builds cells. evcxr compiles every cell as a crate in its "tmpdir", with the
//! engine's client code and its dependencies built there once (minutes). Frontends running
//! at the same time each need a folder of their own (a lock per folder); keeping the folders
//! between runs is what makes a restarted kernel start without rebuilding.
//!
//! A frontend that finds no warm folder free (a second notebook opened beside the first)
//! does not rebuild either: the first frontend to finish its prelude for a given version of
//! the client sources leaves a copy of its build products as a template, and a cold folder
//! starts as a copy of it. Cargo's fingerprints hold paths relative to the build folder and
//! the sources stay where they are, so the copy is up to date where it lands.

use crate::client_sources::ClientSources;
use crate::error::{FrontendError, Result};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Environment variable naming the cache root (default `~/.cache/sluice-cells`).
pub const CACHE_ENV: &str = "SLUICE_CELL_CACHE";

/// How many build folders concurrent frontends may use before starting fails.
const SLOTS: usize = 16;

/// What a build folder's build products live in (evcxr's `CARGO_TARGET_DIR`).
const TARGET: &str = "target";

/// A build folder held for the life of this value.
pub struct BuildDir {
    path: PathBuf,
    builds: PathBuf,
    std_link: Option<PathBuf>,
    // Holding the file holds the lock.
    _lock: File,
}

impl BuildDir {
    /// Everything cells need before evcxr starts: the client sources unpacked, a build
    /// folder, evcxr pointed at it with Sluice's settings (see [`crate::shared_linking`]).
    /// Call before any thread starts: it sets environment variables.
    pub fn prepare() -> Result<(ClientSources, BuildDir)> {
        let root = cache_root();
        let sources = ClientSources::unpack(&root)?;
        let mut dir = BuildDir::acquire(&root)?;
        std::env::set_var("EVCXR_TMPDIR", dir.path());
        crate::shared_linking::prepare(&root.join("evcxr-config"), &root.join("std-meta"))?;
        dir.std_link = crate::std_sources::stand_in(&root);
        Ok((sources, dir))
    }

    /// The stand-in for the standard library's sources while evcxr starts (see
    /// [`crate::std_sources`]).
    pub fn std_link(&self) -> Option<&Path> {
        self.std_link.as_deref()
    }

    /// The first build folder no other frontend holds, created if needed; a cold one is
    /// seeded from the template of `sources` if there is one.
    pub fn acquire(cache_root: &Path) -> Result<BuildDir> {
        let builds = cache_root.join("builds");
        std::fs::create_dir_all(&builds)?;
        for slot in 0..SLOTS {
            let lock_path = builds.join(format!("slot-{slot}.lock"));
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)?;
            match lock.try_lock() {
                Ok(()) => {
                    let path = builds.join(format!("slot-{slot}"));
                    std::fs::create_dir_all(&path)?;
                    let dir = BuildDir {
                        path,
                        builds,
                        std_link: None,
                        _lock: lock,
                    };
                    dir.seed_from_template();
                    return Ok(dir);
                }
                Err(std::fs::TryLockError::WouldBlock) => continue,
                Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
            }
        }
        Err(FrontendError::BuildDir(format!(
            "all {SLOTS} build folders under {} are in use by other frontends",
            builds.display()
        )))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the cells' dependencies are built (the child process loads them from here).
    pub fn deps_dir(&self, host: &str) -> PathBuf {
        self.path.join(TARGET).join(host).join("debug").join("deps")
    }

    fn template(&self) -> PathBuf {
        self.builds
            .join(format!("template-{}", ClientSources::version()))
    }

    /// A folder that has built nothing for these sources starts as a copy of the template.
    fn seed_from_template(&self) {
        let template = self.template();
        let built_here = self.path.join(TARGET).join(ClientSources::version());
        if built_here.exists() || !template.join(TARGET).is_dir() {
            return;
        }
        let _ = std::fs::remove_dir_all(self.path.join(TARGET));
        let copied = copy_tree(&template.join(TARGET), &self.path.join(TARGET))
            .and_then(|()| copy_tree(&template.join("Cargo.lock"), &self.path.join("Cargo.lock")));
        match copied {
            Ok(()) => tracing::info!(
                "build folder {} seeded from {}",
                self.path.display(),
                template.display()
            ),
            Err(e) => {
                // A cold build is slower, not wrong.
                tracing::warn!(
                    "cannot seed {} from {}: {e}",
                    self.path.display(),
                    template.display()
                );
                let _ = std::fs::remove_dir_all(self.path.join(TARGET));
            }
        }
    }

    /// After the prelude built everything for these sources: marks the folder as built for
    /// them and, if no template exists yet, leaves a copy of its build products as one (and
    /// removes templates of other versions). Call while no cell is compiling.
    pub fn keep_as_template(&self) {
        let marker = self.path.join(TARGET).join(ClientSources::version());
        if std::fs::write(&marker, "").is_err() {
            return;
        }
        let template = self.template();
        if template.exists() {
            return;
        }
        let staging = self
            .builds
            .join(format!(".template-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        let made = std::fs::create_dir_all(&staging)
            .and_then(|()| copy_tree(&self.path.join(TARGET), &staging.join(TARGET)))
            .and_then(|()| copy_tree(&self.path.join("Cargo.lock"), &staging.join("Cargo.lock")))
            .and_then(|()| std::fs::rename(&staging, &template));
        if let Err(e) = made {
            tracing::warn!(
                "cannot keep a build template in {}: {e}",
                template.display()
            );
            let _ = std::fs::remove_dir_all(&staging);
            return;
        }
        // Templates of other versions of the sources will not be used again.
        if let Ok(entries) = std::fs::read_dir(&self.builds) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with("template-") && entry.path() != template {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
}

/// Copies a file, or a folder with everything in it (incremental-compilation caches left
/// out: they are large and only speed up rebuilds of changed crates).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let kind = std::fs::symlink_metadata(from)?.file_type();
    if kind.is_symlink() {
        let target = std::fs::read_link(from)?;
        return std::os::unix::fs::symlink(target, to);
    }
    if kind.is_file() {
        std::fs::copy(from, to)?;
        // Cargo compares times: the copy keeps the original's.
        let modified = std::fs::metadata(from)?.modified()?;
        return File::options().write(true).open(to)?.set_modified(modified);
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name() == "incremental" {
            continue;
        }
        copy_tree(&entry.path(), &to.join(entry.file_name()))?;
    }
    Ok(())
}

/// The frontends' cache root: `SLUICE_CELL_CACHE`, else `~/.cache/sluice-cells`.
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
    cache.join("sluice-cells")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_frontends_get_two_folders_and_a_cold_one_is_seeded() {
        let root = std::env::temp_dir().join(format!("sluice-builds-{}", std::process::id()));
        let first = BuildDir::acquire(&root).expect("a folder");
        let deps = first.path().join(TARGET).join("debug");
        std::fs::create_dir_all(&deps).expect("a build product folder");
        std::fs::write(deps.join("libx.so"), "built").expect("a build product");
        std::fs::create_dir_all(first.path().join(TARGET).join("incremental")).expect("cache");
        std::fs::write(first.path().join("Cargo.lock"), "lock").expect("a lock file");
        first.keep_as_template();
        let second = BuildDir::acquire(&root).expect("a second folder");
        assert_ne!(first.path(), second.path());
        let copied = second.path().join(TARGET).join("debug").join("libx.so");
        assert_eq!(
            std::fs::read_to_string(copied).ok().as_deref(),
            Some("built")
        );
        assert!(!second.path().join(TARGET).join("incremental").exists());
        drop((first, second));
        let _ = std::fs::remove_dir_all(&root);
    }
}
