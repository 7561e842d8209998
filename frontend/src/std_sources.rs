//! The standard library's sources, read once instead of twice. rust-analyzer (inside evcxr)
//! reads them for completions and for the types of cells' variables, and reads them again
//! each time the cells' dependencies change. evcxr's own start-up evaluates a cell before the
//! frontend can add any dependency, so its reading (seconds) is thrown away by the prelude's.
//!
//! rust-analyzer takes the sources from `RUST_SRC_PATH` when that folder holds a `core`, and
//! ignores the variable otherwise. So before evcxr starts, `RUST_SRC_PATH` names a link to an
//! empty stand-in library; once evcxr has started the link is removed, and the prelude's
//! reading finds the real sources where rust-analyzer always looks.

use std::path::{Path, PathBuf};

/// Points `RUST_SRC_PATH` at a stand-in under `cache_root`; returns the link to give
/// [`use_real`]. Nothing is done when the person set `RUST_SRC_PATH` themselves. Call before
/// any thread starts: it sets an environment variable.
pub fn stand_in(cache_root: &Path) -> Option<PathBuf> {
    if std::env::var_os("RUST_SRC_PATH").is_some() {
        return None;
    }
    let stand_in = cache_root.join("std-stand-in");
    let links = cache_root.join("std-links");
    let made = make_stand_in(&stand_in).and_then(|()| std::fs::create_dir_all(&links));
    if let Err(e) = made {
        tracing::debug!("no stand-in for the standard library's sources: {e}");
        return None;
    }
    remove_stale_links(&links);
    // Process ids repeat across containers that share a cache: the time makes the name ours.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let link = links.join(format!("{}-{nanos}", std::process::id()));
    if let Err(e) = std::os::unix::fs::symlink(&stand_in, &link) {
        tracing::debug!("no stand-in for the standard library's sources: {e}");
        return None;
    }
    std::env::set_var("RUST_SRC_PATH", &link);
    Some(link)
}

/// From now on rust-analyzer reads the real sources: the link goes, and with it the
/// `core` that made rust-analyzer take `RUST_SRC_PATH`.
pub fn use_real(link: &Path) {
    let _ = std::fs::remove_file(link);
}

/// An empty library with the crates rust-analyzer looks for.
fn make_stand_in(dir: &Path) -> std::io::Result<()> {
    for name in ["core", "alloc", "std"] {
        let src = dir.join(name).join("src");
        std::fs::create_dir_all(&src)?;
        let lib = src.join("lib.rs");
        if !lib.exists() {
            std::fs::write(&lib, "")?;
        }
    }
    Ok(())
}

/// Links left by frontends that crashed before removing their own: a link is only needed
/// while evcxr starts (seconds), so one an hour old is left over.
fn remove_stale_links(links: &Path) {
    let Ok(entries) = std::fs::read_dir(links) else {
        return;
    };
    let hour = std::time::Duration::from_secs(3600);
    for entry in entries.flatten() {
        let old = std::fs::symlink_metadata(entry.path())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > hour);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stand_in_has_a_core_until_the_real_sources_are_used() {
        let cache = std::env::temp_dir().join(format!("sluice-std-{}", std::process::id()));
        let stand_in = make_stand_in(&cache.join("std-stand-in"));
        assert!(stand_in.is_ok());
        let links = cache.join("std-links");
        std::fs::create_dir_all(&links).ok();
        let link = links.join("1");
        std::os::unix::fs::symlink(cache.join("std-stand-in"), &link).ok();
        assert!(link.join("core").is_dir());
        use_real(&link);
        assert!(
            !link.join("core").exists(),
            "rust-analyzer then ignores RUST_SRC_PATH"
        );
        let _ = std::fs::remove_dir_all(&cache);
    }

    #[test]
    fn fresh_links_are_kept() {
        let links = std::env::temp_dir().join(format!("sluice-links-{}", std::process::id()));
        std::fs::create_dir_all(&links).ok();
        let fresh = links.join("1-2");
        std::os::unix::fs::symlink("/nonexistent", &fresh).ok();
        remove_stale_links(&links);
        assert!(std::fs::symlink_metadata(&fresh).is_ok());
        let _ = std::fs::remove_dir_all(&links);
    }
}
