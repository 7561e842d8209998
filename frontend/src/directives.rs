//! Lines the cell's process prints to tell its frontend something: `SLUICE_CELL <token>
//! <verb> <words...>` on stdout (written by the `sluice-cell` crate, and by the relay in the
//! cell's process; see `sluice_cell::protocol`). The frontend's output thread takes them out
//! of the stream before it reaches the person. Only lines with the process's token are
//! directives: text a cell prints that looks like one is text.

use sluice_cell::protocol::{
    decode_word, encode_word, prefix_with, BUNDLE, CURVE, DISPLAY, LOGDIR, NOTE, PANIC, PANICKED,
    QUESTION_MARK, RELAY, RESULT, SESSION, SHOW_GRAPH, TIMELINE,
};

/// The directive lines of one cell process: those that carry its token.
#[derive(Debug, Clone, PartialEq)]
pub struct Directives {
    prefix: String,
}

impl Directives {
    /// A new secret token for a cell process the frontend starts (given to it in
    /// `SLUICE_CELL_TOKEN`), and its directives.
    pub fn new_token() -> (String, Directives) {
        use std::hash::{BuildHasher, Hasher};
        // A RandomState is seeded from the operating system's randomness.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let token = format!("{:016x}", hasher.finish());
        let directives = Directives::with_token(&token);
        (token, directives)
    }

    pub fn with_token(token: &str) -> Directives {
        Directives {
            prefix: prefix_with(token),
        }
    }

    /// The directives of this process (the relay's, in the cell's process).
    pub fn of_this_process() -> Directives {
        Directives {
            prefix: sluice_cell::protocol::prefix().to_string(),
        }
    }

    /// The line that starts the relay (the relay's business only).
    pub fn relay_line(&self) -> String {
        format!("{}{RELAY}", self.prefix)
    }

    /// The line that marks the start of a cell's final value (the relay's business only).
    pub fn result_mark_line(&self) -> String {
        format!("{}{RESULT}", self.prefix)
    }

    /// A directive the relay writes.
    pub fn line(&self, directive: &DirectiveLine) -> String {
        directive.to_line(&self.prefix)
    }

    /// The directive a stdout line carries, if it is one.
    pub fn parse(&self, line: &str) -> Option<Directive> {
        parse(line.strip_prefix(&self.prefix)?)
    }
}

/// A directive from the cell's process.
#[derive(Debug, Clone, PartialEq)]
pub enum Directive {
    /// A session the cells use (its work is cancelled on interrupt).
    Session { addr: String, handle: String },
    /// Draw this session's graph.
    ShowGraph { addr: String, handle: String },
    /// Write TensorBoard runs of the cells' sessions and charts under this folder.
    Logdir(String),
    /// Draw the traced step whose Chrome trace is in this file.
    Timeline(std::path::PathBuf),
    /// The cell panicked; `line` 0 when the place is unknown.
    Panic {
        message: String,
        file: String,
        line: u32,
    },
    /// Points for the live chart `name` at `step`, one per series.
    Curve {
        name: String,
        step: i64,
        points: Vec<(String, f64)>,
    },
    /// A rich output: its forms, (MIME type, content).
    Display(Vec<(String, String)>),
    /// A `?` returned an error early.
    QuestionMark,
    /// The cell's code panicked (evcxr caught it), as opposed to a panic the cell caught.
    Panicked,
    /// A note for the person.
    Note(String),
    /// The next `n` evcxr blocks are one output (the relay's business only).
    Bundle(usize),
}

/// A directive as the relay writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum DirectiveLine {
    Display { forms: Vec<(String, String)> },
    QuestionMark,
    Panicked,
    Note(String),
}

impl DirectiveLine {
    fn to_line(&self, prefix: &str) -> String {
        let mut line = prefix.to_string();
        match self {
            DirectiveLine::Display { forms } => {
                line.push_str(DISPLAY);
                for (mime, content) in forms {
                    line.push(' ');
                    line.push_str(&encode_word(mime));
                    line.push(' ');
                    line.push_str(&encode_word(content));
                }
            }
            DirectiveLine::QuestionMark => line.push_str(QUESTION_MARK),
            DirectiveLine::Panicked => line.push_str(PANICKED),
            DirectiveLine::Note(text) => {
                line.push_str(NOTE);
                line.push(' ');
                line.push_str(&encode_word(text));
            }
        }
        line
    }
}

/// The directive `rest` (a line after its prefix) is, if it is one.
fn parse(rest: &str) -> Option<Directive> {
    let mut words = rest.split(' ');
    let verb = words.next()?;
    let words: Vec<String> = words.filter(|w| !w.is_empty()).map(decode_word).collect();
    match (verb, words.as_slice()) {
        (SESSION, [addr, handle]) => Some(Directive::Session {
            addr: addr.clone(),
            handle: handle.clone(),
        }),
        (SHOW_GRAPH, [addr, handle]) => Some(Directive::ShowGraph {
            addr: addr.clone(),
            handle: handle.clone(),
        }),
        (LOGDIR, [dir]) => Some(Directive::Logdir(dir.clone())),
        (TIMELINE, [path]) => Some(Directive::Timeline(path.into())),
        (PANIC, [file, line, message]) => Some(Directive::Panic {
            message: message.clone(),
            file: file.clone(),
            line: line.parse().unwrap_or(0),
        }),
        (CURVE, [name, step, pairs @ ..]) if !pairs.is_empty() && pairs.len() % 2 == 0 => {
            let points = pairs
                .chunks(2)
                .map(|p| Some((p[0].clone(), p[1].parse().ok()?)))
                .collect::<Option<Vec<_>>>()?;
            Some(Directive::Curve {
                name: name.clone(),
                step: step.parse().ok()?,
                points,
            })
        }
        (DISPLAY, forms) if !forms.is_empty() && forms.len() % 2 == 0 => Some(Directive::Display(
            forms
                .chunks(2)
                .map(|f| (f[0].clone(), f[1].clone()))
                .collect(),
        )),
        (QUESTION_MARK, []) => Some(Directive::QuestionMark),
        (PANICKED, []) => Some(Directive::Panicked),
        (NOTE, [text]) => Some(Directive::Note(text.clone())),
        (BUNDLE, [n]) => n.parse().ok().map(Directive::Bundle),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Directives {
        Directives::with_token("t0k")
    }

    #[test]
    fn parses_directives_with_the_token_only() {
        let d = ours();
        assert_eq!(
            d.parse("SLUICE_CELL t0k session 127.0.0.1%3A5 s-1"),
            Some(Directive::Session {
                addr: "127.0.0.1:5".into(),
                handle: "s-1".into()
            })
        );
        assert_eq!(d.parse("SLUICE_CELL other session 127.0.0.1%3A5 s-1"), None);
        assert_eq!(d.parse("hello"), None);
        assert_eq!(d.parse("SLUICE_CELL t0k show_graph onlyone"), None);
        assert_eq!(
            d.parse("SLUICE_CELL t0k bundle 2"),
            Some(Directive::Bundle(2))
        );
        let (token, fresh) = Directives::new_token();
        assert_eq!(token.len(), 16);
        assert_ne!(fresh, d);
    }

    #[test]
    fn curve_points_keep_names_with_spaces() {
        let d = ours();
        assert_eq!(
            d.parse("SLUICE_CELL t0k curve sync%20vs%20async 12 sync 0.5 async%20loss 1e-3"),
            Some(Directive::Curve {
                name: "sync vs async".into(),
                step: 12,
                points: vec![("sync".into(), 0.5), ("async loss".into(), 0.001)],
            })
        );
        assert_eq!(d.parse("SLUICE_CELL t0k curve c x a 1"), None);
        assert_eq!(d.parse("SLUICE_CELL t0k curve c 3 a oops"), None);
        assert_eq!(d.parse("SLUICE_CELL t0k curve c 3 a"), None);
    }

    #[test]
    fn displays_and_panics_round_trip() {
        let d = ours();
        let forms = vec![
            (
                "text/plain".to_string(),
                "a table\nof two lines".to_string(),
            ),
            ("text/html".to_string(), "<b>50%</b> = half".to_string()),
        ];
        let line = d.line(&DirectiveLine::Display {
            forms: forms.clone(),
        });
        assert!(!line.contains('\n'));
        assert_eq!(d.parse(&line), Some(Directive::Display(forms)));
        let path = encode_word("/tmp/a b/step-1.trace.json");
        let line = format!("{}timeline {path}", d.prefix);
        assert_eq!(
            d.parse(&line),
            Some(Directive::Timeline("/tmp/a b/step-1.trace.json".into()))
        );
        let panic = format!(
            "SLUICE_CELL t0k panic {} 134 {}",
            encode_word("src/lib.rs"),
            encode_word("boom \"x\"\nline ü")
        );
        assert_eq!(
            d.parse(&panic),
            Some(Directive::Panic {
                message: "boom \"x\"\nline ü".into(),
                file: "src/lib.rs".into(),
                line: 134
            })
        );
        assert_eq!(
            d.parse(&d.line(&DirectiveLine::QuestionMark)),
            Some(Directive::QuestionMark)
        );
    }
}
