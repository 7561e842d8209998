//! The cells run in this and earlier sessions, for history_request, as ipykernel keeps them:
//! a search finds yesterday's cells. They are kept in a JSON-lines file (one cell per line:
//! session, line number, input, text output), appended as cells run; each kernel takes the
//! next session number under a lock, so kernels running at once never share one.

use jupyter_protocol::{HistoryEntry, HistoryRequest};
use serde::{Deserialize, Serialize};
use sluice::dump::glob_match;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Environment variable naming the history file.
pub const HISTORY_ENV: &str = "SLUICE_KERNEL_HISTORY";
/// Entries kept in memory (and in the file when it is compacted).
const KEPT: usize = 10_000;
/// Text output kept per entry.
const OUTPUT_LIMIT: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    session: usize,
    line: usize,
    input: String,
    #[serde(default)]
    output: String,
}

/// The history: earlier sessions' cells and this session's.
pub struct History {
    entries: Vec<Entry>,
    session: usize,
    file: Option<PathBuf>,
}

impl History {
    /// Loads the history file (`SLUICE_KERNEL_HISTORY`, else `sluice/kernel-history.jsonl`
    /// in the user's data folder) and takes the next session number. A file that cannot be
    /// read gives a history of this session only (said in the log).
    pub fn open_default() -> History {
        History::open(default_path())
    }

    pub fn open(path: Option<PathBuf>) -> History {
        let Some(path) = path else {
            return History::in_memory();
        };
        match History::load(&path) {
            Ok(history) => history,
            Err(e) => {
                tracing::warn!(
                    "history {}: {e}; keeping this session's only",
                    path.display()
                );
                History::in_memory()
            }
        }
    }

    /// A history of this session only, kept nowhere.
    pub fn in_memory() -> History {
        History {
            entries: Vec::new(),
            session: 1,
            file: None,
        }
    }

    fn load(path: &Path) -> std::io::Result<History> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // The lock is a file of its own: compacting replaces the history file, and a lock on
        // a replaced file would lock nothing.
        let lock = lock_file(path)?;
        lock.lock()?;
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        // The session number is taken under the lock: two kernels starting together get two.
        let mut entries = read_entries(&file);
        let session = entries.iter().map(|e| e.session).max().unwrap_or(0) + 1;
        // A session with no cells still counts: its start is a line of its own.
        let start = Entry {
            session,
            line: 0,
            input: String::new(),
            output: String::new(),
        };
        append(&file, &start)?;
        if entries.len() > 2 * KEPT {
            entries.drain(..entries.len() - KEPT);
            compact(path, &entries, &start)?;
        }
        lock.unlock()?;
        entries.retain(|e| e.line > 0);
        if entries.len() > KEPT {
            entries.drain(..entries.len() - KEPT);
        }
        Ok(History {
            entries,
            session,
            file: Some(path.to_path_buf()),
        })
    }

    /// This kernel's session number.
    pub fn session(&self) -> usize {
        self.session
    }

    /// Records a cell (and its text output) of this session.
    pub fn record(&mut self, line: usize, input: &str, output: &str) {
        let mut output = output.to_string();
        if output.len() > OUTPUT_LIMIT {
            let mut cut = OUTPUT_LIMIT;
            while !output.is_char_boundary(cut) {
                cut -= 1;
            }
            output.truncate(cut);
        }
        let entry = Entry {
            session: self.session,
            line,
            input: input.to_string(),
            output,
        };
        if let Some(path) = &self.file {
            let written = lock_file(path).and_then(|lock| {
                lock.lock()?;
                let file = OpenOptions::new()
                    .create(true)
                    .read(true)
                    .append(true)
                    .open(path)?;
                append(&file, &entry)
            });
            if let Err(e) = written {
                tracing::warn!("cannot add to the history {}: {e}", path.display());
            }
        }
        self.entries.push(entry);
        if self.entries.len() > KEPT {
            self.entries.remove(0);
        }
    }

    /// Answers a request: `tail`, `range` (session 0 is this one, negative ones count back,
    /// positive ones are absolute) and `search` (glob with `*` and `?`), across sessions.
    pub fn query(&self, request: &HistoryRequest) -> Vec<HistoryEntry> {
        let (picked, output): (Vec<&Entry>, bool) = match request {
            HistoryRequest::Tail { n, output, .. } => {
                let n = usize::try_from(*n).unwrap_or(0);
                let skip = self.entries.len().saturating_sub(n);
                (self.entries.iter().skip(skip).collect(), *output)
            }
            HistoryRequest::Range {
                session,
                start,
                stop,
                output,
                ..
            } => {
                let session = match session.unwrap_or(0) {
                    0 => Some(self.session),
                    back if back < 0 => self.session.checked_sub(back.unsigned_abs() as usize),
                    absolute => usize::try_from(absolute).ok(),
                };
                let start = usize::try_from(*start).unwrap_or(0);
                let stop = match usize::try_from(*stop).unwrap_or(0) {
                    0 => usize::MAX,
                    stop => stop,
                };
                let picked = self
                    .entries
                    .iter()
                    .filter(|e| Some(e.session) == session && e.line >= start && e.line < stop)
                    .collect();
                (picked, *output)
            }
            HistoryRequest::Search {
                pattern,
                unique,
                output,
                n,
                ..
            } => {
                let mut picked: Vec<&Entry> = self
                    .entries
                    .iter()
                    .filter(|e| glob_match(pattern, &e.input))
                    .collect();
                if *unique {
                    // The newest of each input stays.
                    let mut seen = std::collections::HashSet::new();
                    picked.reverse();
                    picked.retain(|e| seen.insert(e.input.clone()));
                    picked.reverse();
                }
                let n = usize::try_from(*n).unwrap_or(0);
                if n > 0 {
                    let skip = picked.len().saturating_sub(n);
                    picked.drain(..skip);
                }
                (picked, *output)
            }
        };
        picked
            .into_iter()
            .map(|e| {
                if output {
                    HistoryEntry::InputOutput(
                        e.session,
                        e.line,
                        (e.input.clone(), e.output.clone()),
                    )
                } else {
                    HistoryEntry::Input(e.session, e.line, e.input.clone())
                }
            })
            .collect()
    }
}

/// The file whose lock guards the history file (`history.jsonl.lock` beside it).
fn lock_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.with_extension("jsonl.lock"))
}

/// The entries of the file; lines that are not entries (a torn last line, another
/// program's text) are skipped.
fn read_entries(file: &File) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return entries,
            Ok(_) => {}
        }
        if let Ok(entry) = serde_json::from_slice::<Entry>(&line) {
            entries.push(entry);
        }
    }
}

/// Appends an entry to a history file opened for reading and appending.
fn append(file: &File, entry: &Entry) -> std::io::Result<()> {
    // A torn last line (a kernel killed mid-write) ends before this entry, not inside it.
    if ends_without_newline(file)? {
        let mut writer = file;
        writer.write_all(b"\n")?;
    }
    write_entry(file, entry)
}

fn write_entry(mut file: &File, entry: &Entry) -> std::io::Result<()> {
    let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
    line.push('\n');
    // One write, under the lock: lines of kernels appending at once do not interleave.
    file.write_all(line.as_bytes())
}

fn ends_without_newline(mut file: &File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Rewrites the file with the entries kept (through a temporary file and a rename).
fn compact(path: &Path, entries: &[Entry], start: &Entry) -> std::io::Result<()> {
    let staging = path.with_extension("jsonl.compacting");
    let file = File::create(&staging)?;
    for entry in entries.iter().chain([start]) {
        write_entry(&file, entry)?;
    }
    file.sync_all()?;
    std::fs::rename(&staging, path)
}

/// `$SLUICE_KERNEL_HISTORY`, else `$XDG_DATA_HOME/sluice/kernel-history.jsonl`, else under
/// `~/.local/share`.
fn default_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(HISTORY_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("sluice").join("kernel-history.jsonl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(pattern: &str) -> HistoryRequest {
        HistoryRequest::Search {
            pattern: pattern.into(),
            unique: false,
            output: true,
            raw: true,
            n: 0,
        }
    }

    #[test]
    fn tail_and_search() {
        let mut h = History::in_memory();
        h.record(1, "let a = 1;", "");
        h.record(2, "a + 1", "2");
        let tail = h.query(&HistoryRequest::Tail {
            n: 1,
            output: false,
            raw: true,
        });
        assert!(matches!(&tail[..], [HistoryEntry::Input(1, 2, s)] if s == "a + 1"));
        assert_eq!(h.query(&search("let*")).len(), 1);
        assert!(glob_match("a?+*", "a + 1"));
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_ended() {
        let path = std::env::temp_dir()
            .join(format!("sluice-history-torn-{}", std::process::id()))
            .join("history.jsonl");
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(&path));
        std::fs::write(
            &path,
            "{\"session\": 1, \"line\": 1, \"input\": \"a\"}\n{\"sess",
        )
        .ok();
        let mut h = History::open(Some(path.clone()));
        assert_eq!(h.session(), 2);
        h.record(1, "let b = 2;", "");
        let again = History::open(Some(path.clone()));
        assert_eq!(again.query(&search("let b*")).len(), 1);
        let _ = std::fs::remove_dir_all(path.parent().unwrap_or(&path));
    }

    #[test]
    fn a_new_kernel_finds_yesterdays_cells() {
        let path = std::env::temp_dir()
            .join(format!("sluice-history-{}", std::process::id()))
            .join("history.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut first = History::open(Some(path.clone()));
        first.record(1, "let yesterday = 42;", "");
        let second = History::open(Some(path.clone()));
        assert_eq!(second.session(), first.session() + 1);
        let found = second.query(&search("*yesterday*"));
        assert!(
            matches!(&found[..], [HistoryEntry::InputOutput(s, 1, _)] if *s == first.session()),
            "{found:?}"
        );
        let previous = second.query(&HistoryRequest::Range {
            session: Some(-1),
            start: 0,
            stop: 0,
            output: false,
            raw: true,
        });
        assert_eq!(previous.len(), 1);
        let _ = std::fs::remove_dir_all(path.parent().unwrap_or(&path));
    }
}
