//! The directive lines a cell's process prints for its frontend (the Jupyter kernel or the
//! REPL): `SLUICE_CELL <token> <verb> <words...>`, one per line on stdout. The frontend takes
//! them out of the stream before it reaches the person; words are percent-encoded so that a
//! line holds any text. The token is the frontend's secret for this process (in
//! `SLUICE_CELL_TOKEN`): a line a cell merely prints (a log it shows, say) is not a directive.

use std::sync::OnceLock;

/// The environment variable holding the token the frontend gave the cell's process.
pub const TOKEN_ENV: &str = "SLUICE_CELL_TOKEN";

/// The prefix of directive lines of a process whose frontend gave it `token`.
pub fn prefix_with(token: &str) -> String {
    format!("SLUICE_CELL {token} ")
}

/// This process's prefix (`-` as the token outside a Sluice frontend).
pub fn prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let token = std::env::var(TOKEN_ENV).unwrap_or_default();
        let token = token.trim();
        prefix_with(if token.is_empty() { "-" } else { token })
    })
}
/// `session ADDR HANDLE`: a session the cells use (cancelled on interrupt).
pub const SESSION: &str = "session";
/// `show_graph ADDR HANDLE`: draw that session's graph.
pub const SHOW_GRAPH: &str = "show_graph";
/// `logdir DIR`: write TensorBoard runs of the cells' sessions and charts under DIR.
pub const LOGDIR: &str = "logdir";
/// `timeline PATH`: draw the traced step whose Chrome trace is in that file.
pub const TIMELINE: &str = "timeline";
/// `panic FILE LINE MESSAGE`: the cell panicked (LINE 0 when unknown).
pub const PANIC: &str = "panic";
/// `curve NAME STEP SERIES VALUE [SERIES VALUE ...]`: a point of each series of the live
/// chart NAME.
pub const CURVE: &str = "curve";
/// `display MIME CONTENT [MIME CONTENT ...]`: a rich output, in one or more forms (evcxr
/// blocks the cell's process printed; the relay in the cell's process writes this line).
pub const DISPLAY: &str = "display";
/// `bundle N`: the next N evcxr blocks are the forms of one output.
pub const BUNDLE: &str = "bundle";
/// `question_mark`: a `?` in the cell returned an error early (its message is on stderr).
pub const QUESTION_MARK: &str = "question_mark";
/// `panicked`: the cell's code panicked (evcxr caught it; the relay writes this line).
pub const PANICKED: &str = "panicked";
/// `note TEXT`: something the person should know that is not the cell's own output.
pub const NOTE: &str = "note";
/// `result`: what the cell prints from now on is its final value (see [`crate::__result`]).
pub const RESULT: &str = "result";

/// `relay`: from now on, blocks the cell's process prints are outputs (the frontend's
/// prelude says so; evcxr's own start-up output goes to evcxr as it is).
pub const RELAY: &str = "relay";

/// The whole relay-start line.
pub fn relay_line() -> String {
    format!("{}{RELAY}", prefix())
}

/// The whole result-mark line.
pub fn result_mark_line() -> String {
    format!("{}{RESULT}", prefix())
}

/// The line announcing that the next `forms` blocks are one output.
pub fn bundle_line(forms: usize) -> String {
    format!("{}{BUNDLE} {forms}", prefix())
}

/// evcxr reads an input request's prompt as the text between the first two colons of one
/// line: colons, line breaks (and the escape character) in a prompt travel percent-encoded.
pub fn encode_prompt(prompt: &str) -> String {
    encode(prompt, &['%', ':', '\n', '\r'])
}

/// The prompt [`encode_prompt`] encoded.
pub fn decode_prompt(encoded: &str) -> String {
    decode(encoded)
}

/// A word of a directive: as [`encode_prompt`], spaces and `=` encoded too; the empty word
/// is `%`.
pub fn encode_word(word: &str) -> String {
    if word.is_empty() {
        return "%".into();
    }
    encode(word, &['%', ':', '\n', '\r', ' ', '='])
}

/// The word [`encode_word`] encoded.
pub fn decode_word(encoded: &str) -> String {
    if encoded == "%" {
        return String::new();
    }
    decode(encoded)
}

/// `text` with each of `special` as `%XX`, in one pass (outputs can be megabytes).
fn encode(text: &str, special: &[char]) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for c in text.chars() {
        if special.contains(&c) {
            out.push_str(&format!("%{:02X}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Undoes [`encode`]: every `%XX` becomes its character (a `%` not followed by two hex
/// digits stays as it is).
fn decode(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest
            .get(at + 1..at + 3)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match code {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_with_colons_survive_evcxr() {
        let prompt = "Rate (0:100)\n5%3A is 5%: ";
        let line = format!("EVCXR_INPUT_REQUEST:{}", encode_prompt(prompt));
        // What evcxr 0.22 takes of the line.
        let taken = line.split(':').nth(1).unwrap_or_default();
        assert_eq!(decode_prompt(taken), prompt);
    }

    #[test]
    fn words_round_trip() {
        for word in ["", "a b=c", "50% of\nlines", "%20"] {
            let encoded = encode_word(word);
            assert!(!encoded.contains([' ', '\n']), "{encoded}");
            assert_eq!(decode_word(&encoded), word);
        }
    }
}
