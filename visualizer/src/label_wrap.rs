//! Breaking a node's label into lines that fit its box: op names such as
//! `SparseSoftmaxCrossEntropyWithLogits` and long node names are wrapped rather than cut,
//! so that the drawing shows them whole.

/// The width of `text` in pixels as the caller draws it (font size and boldness).
pub(crate) type Measure<'a> = &'a dyn Fn(&str) -> f32;

/// `text` in lines of at most `max_width` pixels, broken where a reader expects a name to
/// break: after `/`, `_`, `-`, `.`, `:` or a space, and between the words of a camel-case
/// name (`Softmax|Cross`, `HTTP|Server`); a piece wider than a line on its own is broken
/// between characters. Past `max_lines` the last line ends in `…`, so that an absurdly long
/// name cannot make an absurdly tall box (the tooltip still has it whole). Spaces at the
/// ends of lines are dropped.
pub(crate) fn wrap_label(
    text: &str,
    measure: Measure,
    max_width: f32,
    max_lines: usize,
) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut line_width = 0.0;
    let max_lines = max_lines.max(1);
    // Pushes the current line; false once no further line may start.
    let finish = |line: &mut String, line_width: &mut f32, lines: &mut Vec<String>| {
        lines.push(line.trim_end().to_string());
        line.clear();
        *line_width = 0.0;
        lines.len() < max_lines
    };
    for piece in pieces(text) {
        let piece_width = measure(piece);
        if line_width + piece_width <= max_width {
            line.push_str(piece);
            line_width += piece_width;
            continue;
        }
        if piece_width <= max_width {
            if line.trim().is_empty() {
                line.clear();
            } else if !finish(&mut line, &mut line_width, &mut lines) {
                return with_ellipsis(lines, measure, max_width);
            }
            line.push_str(piece.trim_start());
            line_width = measure(&line);
            continue;
        }
        // Too wide for any line: fill the current line, then break between characters.
        for c in piece.chars() {
            let c_width = measure(c.encode_utf8(&mut [0; 4]));
            if line_width + c_width > max_width
                && !line.is_empty()
                && !finish(&mut line, &mut line_width, &mut lines)
            {
                return with_ellipsis(lines, measure, max_width);
            }
            line.push(c);
            line_width += c_width;
        }
    }
    if !line.trim().is_empty() || lines.is_empty() {
        lines.push(line.trim_end().to_string());
    }
    lines
}

/// The last of `lines` cut so that it ends in `…` within `max_width`: more text followed.
fn with_ellipsis(mut lines: Vec<String>, measure: Measure, max_width: f32) -> Vec<String> {
    if let Some(last) = lines.last_mut() {
        let room = max_width - measure("…");
        while !last.is_empty() && measure(last) > room {
            last.pop();
        }
        last.push('…');
    }
    lines
}

/// `text` split into the pieces between break opportunities; joined, they are `text`.
fn pieces(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let cut = first_break(rest).unwrap_or(rest.len());
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

/// The byte offset of the first break opportunity in `text` after its first character.
fn first_break(text: &str) -> Option<usize> {
    let chars: Vec<(usize, char)> = text.char_indices().take(256).collect();
    for i in 1..chars.len() {
        let (previous, (at, c)) = (chars[i - 1].1, chars[i]);
        let next = chars.get(i + 1).map(|&(_, n)| n);
        let after_separator = matches!(previous, '/' | '_' | '-' | '.' | ':' | ',' | ' ');
        let camel = previous.is_lowercase() && c.is_uppercase();
        // The last capital of an acronym starts the next word: `HTTP|Server`.
        let acronym_end =
            previous.is_uppercase() && c.is_uppercase() && next.is_some_and(|n| n.is_lowercase());
        if after_separator || camel || acronym_end {
            return Some(at);
        }
    }
    // No break in the first 256 characters: cut there, so that a name with no breaks at
    // all is not scanned again for every piece.
    chars.get(255).map(|&(at, _)| at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character 1 pixel wide.
    fn count(text: &str) -> f32 {
        text.chars().count() as f32
    }

    #[test]
    fn short_text_is_one_line() {
        assert_eq!(wrap_label("MatMul", &count, 20.0, 4), ["MatMul"]);
        assert_eq!(wrap_label("", &count, 20.0, 4), [""]);
    }

    #[test]
    fn camel_case_and_separators_are_break_points() {
        assert_eq!(
            wrap_label("SparseSoftmaxCrossEntropyWithLogits", &count, 20.0, 4),
            ["SparseSoftmaxCross", "EntropyWithLogits"]
        );
        assert_eq!(
            wrap_label("loss/sparse_softmax_cross_entropy", &count, 16.0, 4),
            ["loss/sparse_", "softmax_cross_", "entropy"]
        );
        assert_eq!(wrap_label("HTTPServer", &count, 6.0, 4), ["HTTP", "Server"]);
        assert_eq!(wrap_label("13 nodes", &count, 5.0, 4), ["13", "nodes"]);
    }

    #[test]
    fn unbreakable_text_breaks_between_characters_and_is_capped() {
        assert_eq!(
            wrap_label("abcdefghij", &count, 4.0, 4),
            ["abcd", "efgh", "ij"]
        );
        let capped = wrap_label(&"n".repeat(200_000), &count, 10.0, 3);
        assert_eq!(capped, ["nnnnnnnnnn", "nnnnnnnnnn", "nnnnnnnnn…"]);
    }

    #[test]
    fn wrapped_lines_join_back_to_the_text() {
        let text = "gradients/SparseSoftmaxCrossEntropyWithLogits_grad/PreventGradient";
        for width in [8.0, 13.0, 21.0, 40.0] {
            let lines = wrap_label(text, &count, width, 20);
            assert_eq!(lines.concat(), text, "at width {width}");
            assert!(lines.iter().all(|l| count(l) <= width), "{lines:?}");
        }
    }
}
