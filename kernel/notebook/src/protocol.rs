//! The directive lines a cell's process prints for the kernel: `SLUICE_KERNEL <verb> ...`.

/// Every directive line starts with this.
pub const DIRECTIVE_PREFIX: &str = "SLUICE_KERNEL ";
/// `session ADDR HANDLE`: a session the cells use (cancelled on interrupt).
pub const SESSION: &str = "session";
/// `show_graph ADDR HANDLE`: draw that session's graph.
pub const SHOW_GRAPH: &str = "show_graph";
/// `panic MESSAGE` (escaped with `escape_default`): the cell panicked.
pub const PANIC: &str = "panic";
/// `curve NAME STEP SERIES=VALUE ...`: a point of each series of the live chart NAME (names
/// percent-encoded as prompts are, so they hold no spaces).
pub const CURVE: &str = "curve";

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

/// A name in a directive's word list: as [`encode_prompt`], spaces and `=` encoded too.
pub fn encode_word(word: &str) -> String {
    encode_prompt(word).replace(' ', "%20").replace('=', "%3D")
}

/// The name [`encode_word`] encoded.
pub fn decode_word(encoded: &str) -> String {
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
}
