//! Where an engine reads data sets that clients name: only under its data roots. A client
//! names files (`arrow:PATH?label=...`), and the engine reads them with its own rights, so a
//! path outside the roots (`arrow:/etc/passwd`) is refused, with the same words whether or not
//! the file exists.

use super::{DataError, DataSource, DEFAULT_FASHION_MNIST_DIR};
use std::path::{Component, Path, PathBuf};

/// Names the engine's own data folder, where `sluice-engine` reads data sets by default.
pub const DATA_DIR_ENV: &str = "SLUICE_DATA_DIR";

/// The folders under which an engine reads the data sets clients name. The embedded sets
/// (`mnist-digits`) need none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRoots {
    /// Absolute, without `.` or `..`; symbolic links resolved where the folder exists.
    roots: Vec<PathBuf>,
}

impl DataRoots {
    /// Data sets under `roots` (relative ones from the current folder).
    pub fn new(roots: impl IntoIterator<Item = PathBuf>) -> DataRoots {
        let roots = roots
            .into_iter()
            .map(|r| std::fs::canonicalize(&r).unwrap_or_else(|_| lexical(&r)))
            .collect();
        DataRoots { roots }
    }

    /// An engine's defaults: its own data folder ([`engine_data_dir`]) and the system's
    /// shared data sets (`/usr/share/datasets`, where Debian puts Fashion-MNIST).
    pub fn engine_default() -> DataRoots {
        let shared = Path::new(DEFAULT_FASHION_MNIST_DIR)
            .parent()
            .map(Path::to_path_buf);
        DataRoots::new(std::iter::once(engine_data_dir()).chain(shared))
    }

    /// The folders, as given after resolving.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Whether every file `source` reads lies under a root; refuses the source otherwise.
    pub fn allow(&self, name: &str, source: &DataSource) -> Result<(), DataError> {
        for path in source.paths() {
            if !self.holds(&path) {
                return Err(DataError::BadSpec {
                    spec: name.to_string(),
                    reason: format!(
                        "{} is not under the engine's data roots ({}); start the engine with \
                         --data-root FOLDER to read data sets from there",
                        path.display(),
                        self.describe()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Whether `path` lies under a root: its resolved form where it exists (so a link cannot
    /// lead out), its lexical form where it does not (a missing file under a root is the
    /// loader's to report; one outside gets the same refusal as an existing one).
    fn holds(&self, path: &Path) -> bool {
        let resolved = match std::fs::canonicalize(path) {
            Ok(real) => real,
            Err(_) => lexical(path),
        };
        self.roots.iter().any(|root| resolved.starts_with(root))
    }

    fn describe(&self) -> String {
        if self.roots.is_empty() {
            return "none: only the embedded data sets".to_string();
        }
        let names: Vec<String> = self.roots.iter().map(|r| r.display().to_string()).collect();
        names.join(", ")
    }
}

/// The engine's own data folder: `SLUICE_DATA_DIR`, else `$XDG_DATA_HOME/sluice`, else
/// `~/.local/share/sluice`.
pub fn engine_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("sluice");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    PathBuf::from(home).join(".local/share/sluice")
}

/// `path` made absolute, with `.` and `..` taken away by the text alone.
fn lexical(path: &Path) -> PathBuf {
    let absolute = match std::path::absolute(path) {
        Ok(p) => p,
        Err(_) => path.to_path_buf(),
    };
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str) -> DataSource {
        name.parse().expect("a data source name")
    }

    #[test]
    fn only_paths_under_a_root_are_read_whether_or_not_they_exist() {
        let dir = std::env::temp_dir().join(format!("sluice-roots-{}", std::process::id()));
        let root = dir.join("data");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("t.arrow"), b"not really arrow").unwrap();
        let roots = DataRoots::new([root.clone()]);
        let inside = format!("arrow:{}?label=y", root.join("t.arrow").display());
        assert!(roots.allow(&inside, &source(&inside)).is_ok());
        let missing = format!("arrow:{}?label=y", root.join("gone.arrow").display());
        assert!(roots.allow(&missing, &source(&missing)).is_ok());
        assert!(roots
            .allow("mnist-digits", &DataSource::MnistDigits)
            .is_ok());

        let refusal = |name: &str| roots.allow(name, &source(name)).unwrap_err().to_string();
        let passwd = refusal("arrow:/etc/passwd?label=y");
        let nothing = refusal("arrow:/etc/no-such-file-here?label=y");
        // The same words for a file that exists and one that does not.
        assert_eq!(
            passwd.replace("/etc/passwd", "X"),
            nothing.replace("/etc/no-such-file-here", "X")
        );
        assert!(
            passwd.contains("not under the engine's data roots"),
            "{passwd}"
        );
        // Neither `..` nor a link leads out.
        let up = format!("arrow:{}/../../../etc/passwd?label=y", root.display());
        assert!(refusal(&up).contains("not under"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
            let linked = format!("arrow:{}?label=y", root.join("etc/passwd").display());
            assert!(refusal(&linked).contains("not under"));
        }
        // A test file must be under a root too.
        let test_out = format!(
            "arrow:{}?label=y&test=/etc/passwd",
            root.join("t.arrow").display()
        );
        assert!(refusal(&test_out).contains("/etc/passwd"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
