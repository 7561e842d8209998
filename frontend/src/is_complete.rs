//! Whether a cell is ready to run: brackets balanced outside strings and comments. An
//! unclosed `(`, `[`, `{`, string or block comment is incomplete; a closer without its opener
//! is invalid.

/// The answer for is_complete_request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completeness {
    Complete,
    /// More input is needed; the indent for the next line.
    Incomplete(String),
    Invalid,
}

/// Scans `code` as Rust tokens far enough to balance brackets.
pub fn check(code: &str) -> Completeness {
    let chars: Vec<char> = code.chars().collect();
    let mut stack: Vec<char> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '/' if next == Some('*') => {
                let mut depth = 1;
                i += 2;
                while i < chars.len() && depth > 0 {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 1;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 1;
                    }
                    i += 1;
                }
                if depth > 0 {
                    return Completeness::Incomplete(indent(stack.len()));
                }
                continue;
            }
            'r' if matches!(next, Some('#') | Some('"')) && !ident_before(&chars, i) => {
                // Raw string r#"..."#.
                let mut j = i + 1;
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if chars.get(j) != Some(&'"') {
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    if j >= chars.len() {
                        return Completeness::Incomplete(String::new());
                    }
                    if chars[j] == '"' && (1..=hashes).all(|h| chars.get(j + h) == Some(&'#')) {
                        i = j + 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                continue;
            }
            '"' => {
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Completeness::Incomplete(String::new()),
                        Some('\\') => j += 2,
                        Some('"') => break,
                        Some(_) => j += 1,
                    }
                }
                i = j + 1;
                continue;
            }
            '\'' => {
                // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a): skip the literal.
                if next == Some('\\') {
                    let mut j = i + 2;
                    while j < chars.len() && chars[j] != '\'' {
                        j += 1;
                    }
                    i = j + 1;
                    continue;
                }
                if chars.get(i + 2) == Some(&'\'') {
                    i += 3;
                    continue;
                }
            }
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Completeness::Invalid;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if stack.is_empty() {
        Completeness::Complete
    } else {
        Completeness::Incomplete(indent(stack.len()))
    }
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

fn indent(depth: usize) -> String {
    "    ".repeat(depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_is_complete() {
        assert_eq!(check("let x = vec![1, 2];"), Completeness::Complete);
        assert_eq!(check("fn f() { (1) }"), Completeness::Complete);
        assert_eq!(check(""), Completeness::Complete);
    }

    #[test]
    fn unclosed_is_incomplete() {
        assert_eq!(check("fn f() {"), Completeness::Incomplete("    ".into()));
        assert_eq!(
            check("let x = (1,\n [2,"),
            Completeness::Incomplete("        ".into())
        );
        assert_eq!(
            check("let s = \"abc"),
            Completeness::Incomplete(String::new())
        );
        assert_eq!(check("/* note"), Completeness::Incomplete(String::new()));
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        assert_eq!(check("let s = \"{(\"; // ]"), Completeness::Complete);
        assert_eq!(check("let c = '{';"), Completeness::Complete);
        assert_eq!(check("let r = r#\"{\"#;"), Completeness::Complete);
        assert_eq!(check("fn f<'a>(x: &'a str) {}"), Completeness::Complete);
    }

    #[test]
    fn stray_closer_is_invalid() {
        assert_eq!(check("let x = 1);"), Completeness::Invalid);
        assert_eq!(check("(]"), Completeness::Invalid);
    }
}
