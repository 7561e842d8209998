//! Lines the cell's process prints to tell its frontend something: `SLUICE_CELL <verb>
//! <words...>` on stdout (written by the `sluice-cell` crate, and by the relay in the cell's
//! process; see `sluice_cell::protocol`). The frontend's output thread takes them out of the
//! stream before it reaches the person.

use sluice_cell::protocol::{
    decode_word, encode_word, CURVE, DIRECTIVE_PREFIX, DISPLAY, NOTE, PANIC, QUESTION_MARK,
    SESSION, SHOW_GRAPH,
};

pub use sluice_cell::protocol::BUNDLE;

/// The line that marks the start of a cell's final value (the relay's business only).
pub const RESULT_MARK_LINE: &str = "SLUICE_CELL result";
/// The line that starts the relay (the relay's business only).
pub const RELAY_LINE: &str = "SLUICE_CELL relay";

/// A directive from the cell's process.
#[derive(Debug, Clone, PartialEq)]
pub enum Directive {
    /// A session the cells use (its work is cancelled on interrupt).
    Session { addr: String, handle: String },
    /// Draw this session's graph.
    ShowGraph { addr: String, handle: String },
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
    Note(String),
}

impl DirectiveLine {
    pub fn to_line(&self) -> String {
        let mut line = DIRECTIVE_PREFIX.to_string();
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
            DirectiveLine::Note(text) => {
                line.push_str(NOTE);
                line.push(' ');
                line.push_str(&encode_word(text));
            }
        }
        line
    }
}

/// The directive a stdout line carries, if it is one.
pub fn parse(line: &str) -> Option<Directive> {
    let rest = line.strip_prefix(DIRECTIVE_PREFIX)?;
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
        (NOTE, [text]) => Some(Directive::Note(text.clone())),
        (BUNDLE, [n]) => n.parse().ok().map(Directive::Bundle),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives() {
        assert_eq!(
            parse("SLUICE_CELL session 127.0.0.1%3A5 s-1"),
            Some(Directive::Session {
                addr: "127.0.0.1:5".into(),
                handle: "s-1".into()
            })
        );
        assert_eq!(parse("hello"), None);
        assert_eq!(parse("SLUICE_CELL show_graph onlyone"), None);
        assert_eq!(parse("SLUICE_CELL bundle 2"), Some(Directive::Bundle(2)));
        assert_eq!(RESULT_MARK_LINE, sluice_cell::protocol::result_mark_line());
        assert_eq!(RELAY_LINE, sluice_cell::protocol::relay_line());
    }

    #[test]
    fn curve_points_keep_names_with_spaces() {
        assert_eq!(
            parse("SLUICE_CELL curve sync%20vs%20async 12 sync 0.5 async%20loss 1e-3"),
            Some(Directive::Curve {
                name: "sync vs async".into(),
                step: 12,
                points: vec![("sync".into(), 0.5), ("async loss".into(), 0.001)],
            })
        );
        assert_eq!(parse("SLUICE_CELL curve c x a 1"), None);
        assert_eq!(parse("SLUICE_CELL curve c 3 a oops"), None);
        assert_eq!(parse("SLUICE_CELL curve c 3 a"), None);
    }

    #[test]
    fn displays_and_panics_round_trip() {
        let forms = vec![
            (
                "text/plain".to_string(),
                "a table\nof two lines".to_string(),
            ),
            ("text/html".to_string(), "<b>50%</b> = half".to_string()),
        ];
        let line = DirectiveLine::Display {
            forms: forms.clone(),
        }
        .to_line();
        assert!(!line.contains('\n'));
        assert_eq!(parse(&line), Some(Directive::Display(forms)));
        let panic = format!(
            "SLUICE_CELL panic {} 134 {}",
            encode_word("src/lib.rs"),
            encode_word("boom \"x\"\nline ü")
        );
        assert_eq!(
            parse(&panic),
            Some(Directive::Panic {
                message: "boom \"x\"\nline ü".into(),
                file: "src/lib.rs".into(),
                line: 134
            })
        );
        assert_eq!(
            parse(&DirectiveLine::QuestionMark.to_line()),
            Some(Directive::QuestionMark)
        );
    }
}
