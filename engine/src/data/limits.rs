//! What bounds a data load: a check that says the load is no longer wanted (its fit was
//! cancelled, its client went away), and the most bytes the loaded set may take. An engine
//! loads files a client names, so a huge table or a small gzip file that inflates to
//! gigabytes ends in a clear error instead of an aborted process or a session held for
//! minutes.

use super::DataError;
use std::cell::Cell;
use std::path::Path;

/// Bounds on one load; the bytes it has taken so far add up across its files.
pub struct LoadLimits<'a> {
    stop: &'a dyn Fn() -> bool,
    max_bytes: u64,
    taken: Cell<u64>,
}

fn never() -> bool {
    false
}

impl<'a> LoadLimits<'a> {
    /// A load that stops when `stop` says so and takes at most `max_bytes`.
    pub fn new(stop: &'a dyn Fn() -> bool, max_bytes: u64) -> LoadLimits<'a> {
        LoadLimits {
            stop,
            max_bytes,
            taken: Cell::new(0),
        }
    }

    /// No bound: for programs loading their own files.
    pub fn none() -> LoadLimits<'static> {
        LoadLimits::new(&never, u64::MAX)
    }

    /// Whether to go on: `Cancelled` once the load is no longer wanted.
    pub(crate) fn check(&self) -> Result<(), DataError> {
        if (self.stop)() {
            return Err(DataError::Cancelled);
        }
        Ok(())
    }

    /// The bytes still allowed.
    pub(crate) fn room(&self) -> u64 {
        self.max_bytes.saturating_sub(self.taken.get())
    }

    /// Counts `bytes` more for `path`, if they fit; also checks for a stop.
    pub(crate) fn take(&self, path: &Path, bytes: u64) -> Result<(), DataError> {
        self.check()?;
        let total = self.taken.get().saturating_add(bytes);
        if total > self.max_bytes {
            return Err(self.too_large(path, total));
        }
        self.taken.set(total);
        Ok(())
    }

    /// The error for a load that would take `bytes` in all.
    pub(crate) fn too_large(&self, path: &Path, bytes: u64) -> DataError {
        DataError::TooLarge {
            path: path.to_path_buf(),
            bytes,
            limit: self.max_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_add_up_across_files_and_a_stop_is_seen() {
        let limits = LoadLimits::new(&never, 100);
        limits.take(Path::new("a"), 60).unwrap();
        assert_eq!(limits.room(), 40);
        let err = limits.take(Path::new("b"), 41).unwrap_err().to_string();
        assert!(err.contains("b: ") && err.contains("101 bytes"), "{err}");
        let stopped = LoadLimits::new(&|| true, 100);
        assert!(matches!(
            stopped.take(Path::new("a"), 1),
            Err(DataError::Cancelled)
        ));
    }
}
