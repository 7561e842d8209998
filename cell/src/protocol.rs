//! The directive lines a cell's process prints for its frontend (the Jupyter kernel or the
//! REPL): `SLUICE_CELL <verb> <words...>`, one per line on stdout. The frontend takes them out
//! of the stream before it reaches the person; words are percent-encoded so that a line holds
//! any text.

/// Every directive line starts with this.
pub const DIRECTIVE_PREFIX: &str = "SLUICE_CELL ";
/// `session ADDR HANDLE`: a session the cells use (cancelled on interrupt).
pub const SESSION: &str = "session";
/// `show_graph ADDR HANDLE`: draw that session's graph.
pub const SHOW_GRAPH: &str = "show_graph";
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
/// `note TEXT`: something the person should know that is not the cell's own output.
pub const NOTE: &str = "note";
/// `result`: what the cell prints from now on is its final value (see [`crate::__result`]).
pub const RESULT: &str = "result";

/// `relay`: from now on, blocks the cell's process prints are outputs (the frontend's
/// prelude says so; evcxr's own start-up output goes to evcxr as it is).
pub const RELAY: &str = "relay";

/// The whole relay-start line.
pub fn relay_line() -> String {
    format!("{DIRECTIVE_PREFIX}{RELAY}")
}

/// The whole result-mark line.
pub fn result_mark_line() -> String {
    format!("{DIRECTIVE_PREFIX}{RESULT}")
}

/// The line announcing that the next `forms` blocks are one output.
pub fn bundle_line(forms: usize) -> String {
    format!("{DIRECTIVE_PREFIX}{BUNDLE} {forms}")
}

/// evcxr reads an input request's prompt as the text between the first two colons of one
/// line: colons, line breaks (and the escape character) in a prompt travel percent-encoded.
pub fn encode_prompt(prompt: &str) -> String {
    prompt
        .replace('%', "%25")
        .replace(':', "%3A")
        .replace('\n', "%0A")
        .replace('\r', "%0D")
}

/// The prompt [`encode_prompt`] encoded.
pub fn decode_prompt(encoded: &str) -> String {
    encoded
        .replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%25", "%")
}

/// A word of a directive: as [`encode_prompt`], spaces and `=` encoded too; the empty word
/// is `%`.
pub fn encode_word(word: &str) -> String {
    if word.is_empty() {
        return "%".into();
    }
    encode_prompt(word).replace(' ', "%20").replace('=', "%3D")
}

/// The word [`encode_word`] encoded.
pub fn decode_word(encoded: &str) -> String {
    if encoded == "%" {
        return String::new();
    }
    decode_prompt(&encoded.replace("%20", " ").replace("%3D", "="))
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
