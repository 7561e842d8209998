//! Lines the cell's process prints to tell the kernel something: `SLUICE_KERNEL <verb> ...`
//! on stdout. The pump takes them out of the stream before it reaches the notebook.

pub use sluice_notebook::protocol::{
    decode_word, CURVE, DIRECTIVE_PREFIX, PANIC, SESSION, SHOW_GRAPH,
};

/// A directive from the cell's process.
#[derive(Debug, Clone, PartialEq)]
pub enum Directive {
    Session {
        addr: String,
        handle: String,
    },
    ShowGraph {
        addr: String,
        handle: String,
    },
    Panic(String),
    /// Points for the live chart `name` at `step`, one per series.
    Curve {
        name: String,
        step: i64,
        points: Vec<(String, f64)>,
    },
}

/// The directive a stdout line carries, if it is one.
pub fn parse(line: &str) -> Option<Directive> {
    let rest = line.strip_prefix(DIRECTIVE_PREFIX)?;
    let (verb, args) = rest.split_once(' ').unwrap_or((rest, ""));
    let pair = || {
        let (addr, handle) = args.trim().split_once(' ')?;
        Some((addr.to_string(), handle.trim().to_string()))
    };
    match verb {
        SESSION => pair().map(|(addr, handle)| Directive::Session { addr, handle }),
        SHOW_GRAPH => pair().map(|(addr, handle)| Directive::ShowGraph { addr, handle }),
        PANIC => Some(Directive::Panic(unescape(args))),
        CURVE => {
            let mut words = args.split_whitespace();
            let name = decode_word(words.next()?);
            let step = words.next()?.parse().ok()?;
            let points = words
                .map(|w| {
                    let (series, value) = w.split_once('=')?;
                    Some((decode_word(series), value.parse().ok()?))
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Directive::Curve { name, step, points })
        }
        _ => None,
    }
}

/// Undoes `str::escape_default` (`\n`, `\t`, `\r`, `\\`, `\'`, `\"`, `\u{..}`).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let code: String = chars
                    .by_ref()
                    .skip_while(|&c| c == '{')
                    .take_while(|&c| c != '}')
                    .collect();
                if let Some(ch) = u32::from_str_radix(&code, 16).ok().and_then(char::from_u32) {
                    out.push(ch);
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives() {
        assert_eq!(
            parse("SLUICE_KERNEL session 127.0.0.1:5 s-1"),
            Some(Directive::Session {
                addr: "127.0.0.1:5".into(),
                handle: "s-1".into()
            })
        );
        assert_eq!(parse("hello"), None);
        assert_eq!(parse("SLUICE_KERNEL show_graph onlyone"), None);
    }

    #[test]
    fn curve_points_keep_names_with_spaces() {
        assert_eq!(
            parse("SLUICE_KERNEL curve sync%20vs%20async 12 sync=0.5 async%20loss=1e-3"),
            Some(Directive::Curve {
                name: "sync vs async".into(),
                step: 12,
                points: vec![("sync".into(), 0.5), ("async loss".into(), 0.001)],
            })
        );
        assert_eq!(parse("SLUICE_KERNEL curve c x a=1"), None);
        assert_eq!(parse("SLUICE_KERNEL curve c 3 a=oops"), None);
    }

    #[test]
    fn panic_messages_round_trip() {
        let message = "boom \"x\"\nline ü";
        let line = format!("SLUICE_KERNEL panic {}", message.escape_default());
        assert_eq!(parse(&line), Some(Directive::Panic(message.to_string())));
    }
}
