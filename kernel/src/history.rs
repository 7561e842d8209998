//! The cells run this session, for history_request.

use jupyter_protocol::{HistoryEntry, HistoryRequest};

/// Inputs (and text outputs) of the cells that asked to be stored, in order.
#[derive(Default)]
pub struct History {
    entries: Vec<(usize, String, String)>,
}

impl History {
    pub fn record(&mut self, execution_count: usize, input: &str, output: &str) {
        self.entries
            .push((execution_count, input.to_string(), output.to_string()));
    }

    /// Answers a request: `tail`, `range` and `search` (glob with `*` and `?`).
    pub fn query(&self, request: &HistoryRequest) -> Vec<HistoryEntry> {
        let (picked, output): (Vec<&(usize, String, String)>, bool) = match request {
            HistoryRequest::Tail { n, output, .. } => {
                let n = usize::try_from(*n).unwrap_or(0);
                let skip = self.entries.len().saturating_sub(n);
                (self.entries.iter().skip(skip).collect(), *output)
            }
            // Earlier sessions' history is not kept.
            HistoryRequest::Range {
                session: Some(session),
                output,
                ..
            } if *session < 0 => (Vec::new(), *output),
            HistoryRequest::Range {
                start,
                stop,
                output,
                ..
            } => {
                let start = usize::try_from(*start).unwrap_or(0);
                let stop = usize::try_from(*stop).unwrap_or(usize::MAX);
                let stop = if stop == 0 { usize::MAX } else { stop };
                let picked = self
                    .entries
                    .iter()
                    .filter(|(count, _, _)| *count >= start && *count < stop)
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
                let mut picked: Vec<_> = self
                    .entries
                    .iter()
                    .filter(|(_, input, _)| glob_match(pattern, input))
                    .collect();
                if *unique {
                    let mut seen = std::collections::HashSet::new();
                    picked.retain(|(_, input, _)| seen.insert(input.clone()));
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
            .map(|(count, input, out)| {
                if output {
                    HistoryEntry::InputOutput(0, *count, (input.clone(), out.clone()))
                } else {
                    HistoryEntry::Input(0, *count, input.clone())
                }
            })
            .collect()
    }
}

/// Glob matching with `*` (any run) and `?` (any one character).
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_and_search() {
        let mut h = History::default();
        h.record(1, "let a = 1;", "");
        h.record(2, "a + 1", "2");
        let tail = h.query(&HistoryRequest::Tail {
            n: 1,
            output: false,
            raw: true,
        });
        assert!(matches!(&tail[..], [HistoryEntry::Input(0, 2, s)] if s == "a + 1"));
        let found = h.query(&HistoryRequest::Search {
            pattern: "let*".into(),
            unique: true,
            output: true,
            raw: true,
            n: 10,
        });
        assert_eq!(found.len(), 1);
        assert!(glob_match("a?+*", "a + 1"));
    }
}
