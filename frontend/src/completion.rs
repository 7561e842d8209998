//! Completions: what rust-analyzer (through evcxr) offers, cleaned for a notebook or a
//! prompt (names, not call snippets), and what a frontend can offer while evcxr is busy
//! running a cell (the variables of the last cell and the prelude's names).

/// Completions for a cursor: candidates and the byte range they replace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Completion {
    pub matches: Vec<Candidate>,
    pub start: usize,
    pub end: usize,
}

/// One completion: the text it inserts and what it is (`function`, `module`, `struct`, ...,
/// as Jupyter's experimental completion types name them).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub text: String,
    pub kind: String,
}

/// Names every cell can use, for completions while evcxr is busy.
pub const KNOWN_NAMES: &[&str] = &[
    "sess",
    "graph",
    "Graph",
    "Tensor",
    "DType",
    "Initializer",
    "RemoteSession",
    "FitConfig",
    "LabelFormat",
    "GradientDescent",
    "Momentum",
    "Adam",
    "Optimizer",
    "matmul",
    "softmax",
    "log",
    "exp",
    "relu",
    "sigmoid",
    "tanh",
    "reduce_sum",
    "reduce_mean",
    "argmax",
    "gradients",
    "placeholder",
    "variable",
    "constant",
    "show_graph",
    "summary",
    "display_html",
    "display_svg",
    "display_png",
    "display_markdown",
    "plot",
    "input",
    "println",
    "format",
    "let",
    "mut",
    "fn",
    "for",
    "while",
    "loop",
    "match",
    "if",
    "else",
    "struct",
    "impl",
];

/// evcxr's completions, as names to insert: rust-analyzer fills in a function's parameters
/// (`swap(x, y)`) and a macro's brackets, which a notebook would insert as they are.
pub fn from_evcxr(found: evcxr::Completions) -> Completion {
    let mut matches: Vec<Candidate> = Vec::new();
    for c in found.completions {
        let text = insert_text(&c.code, c.kind);
        if text.is_empty() || matches.iter().any(|m| m.text == text) {
            continue;
        }
        matches.push(Candidate {
            text,
            kind: c.kind.to_string(),
        });
    }
    Completion {
        matches,
        start: found.start_offset,
        end: found.end_offset,
    }
}

/// The name part of a completion's code: up to a call's or a macro's bracket.
fn insert_text(code: &str, kind: &str) -> String {
    let callable =
        matches!(kind, "function" | "method") || code.contains("!(") || code.contains("![");
    if !callable {
        return code.to_string();
    }
    let end = code.find(['(', '[', '{', '<']).unwrap_or(code.len());
    code[..end].trim_end().to_string()
}

/// Names the frontend knows (the last cell's `variables` and [`KNOWN_NAMES`]) that start
/// with the word before byte `pos`.
pub fn known(code: &str, pos: usize, variables: &[(String, String)]) -> Completion {
    let pos = floor_char_boundary(code, pos);
    let start = word_start(code, pos);
    let prefix = &code[start..pos];
    let mut names: Vec<(String, &str)> = variables
        .iter()
        .map(|(name, _)| (name.clone(), "instance"))
        .chain(KNOWN_NAMES.iter().map(|s| (s.to_string(), "keyword")))
        .filter(|(n, _)| n.starts_with(prefix))
        .collect();
    names.sort();
    names.dedup_by(|a, b| a.0 == b.0);
    Completion {
        matches: names
            .into_iter()
            .map(|(text, kind)| Candidate {
                text,
                kind: kind.to_string(),
            })
            .collect(),
        start,
        end: pos,
    }
}

/// A variable's type from the last cell's state (`name: Type`), for the word at byte `pos`.
pub fn variable_type(code: &str, pos: usize, variables: &[(String, String)]) -> Option<String> {
    let pos = floor_char_boundary(code, pos);
    let word = &code[word_start(code, pos)..word_end(code, pos)];
    variables
        .iter()
        .find(|(name, _)| name == word)
        .map(|(name, ty)| format!("{name}: {ty}"))
}

/// The largest char boundary of `s` at or before `pos`.
pub fn floor_char_boundary(s: &str, pos: usize) -> usize {
    let mut pos = pos.min(s.len());
    while !s.is_char_boundary(pos) {
        pos -= 1;
    }
    pos
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Where the word that ends at byte `pos` starts.
pub fn word_start(code: &str, pos: usize) -> usize {
    code[..pos]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map_or(pos, |(i, _)| i)
}

/// Where the word around byte `pos` ends.
pub fn word_end(code: &str, pos: usize) -> usize {
    code[pos..]
        .char_indices()
        .find(|(_, c)| !is_word(*c))
        .map_or(code.len(), |(i, _)| pos + i)
}

/// Byte offset of character `chars` in `s` (the end when past it): Jupyter counts cursor
/// positions in characters, evcxr in bytes.
pub fn char_to_byte(s: &str, chars: usize) -> usize {
    s.char_indices().nth(chars).map_or(s.len(), |(i, _)| i)
}

/// Character count of `s` before byte offset `byte`.
pub fn byte_to_char(s: &str, byte: usize) -> usize {
    s.char_indices().take_while(|(i, _)| *i < byte).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_complete_to_their_names() {
        assert_eq!(insert_text("swap(x, y)", "function"), "swap");
        assert_eq!(insert_text("println!()", "function"), "println!");
        assert_eq!(insert_text("vec![]", "function"), "vec!");
        assert_eq!(insert_text("mem::", "module"), "mem::");
        assert_eq!(insert_text("HashMap", "struct"), "HashMap");
    }

    #[test]
    fn known_names_and_types() {
        let vars = vec![("zebra_count".to_string(), "i32".to_string())];
        let c = known("let a = zeb", 11, &vars);
        assert_eq!(
            c.matches.first().map(|m| m.text.as_str()),
            Some("zebra_count")
        );
        assert_eq!((c.start, c.end), (8, 11));
        assert_eq!(
            variable_type("zebra_count + 1", 3, &vars).as_deref(),
            Some("zebra_count: i32")
        );
    }

    #[test]
    fn offsets_between_chars_and_bytes() {
        let s = "é = x";
        assert_eq!(char_to_byte(s, 1), 2);
        assert_eq!(byte_to_char(s, 2), 1);
        assert_eq!(char_to_byte(s, 99), s.len());
        assert_eq!(word_start("let abc", 7), 4);
        assert_eq!(word_start("x.", 2), 2);
        assert_eq!(floor_char_boundary("aé", 2), 1);
        assert_eq!(word_end("abc def", 1), 3);
    }
}
