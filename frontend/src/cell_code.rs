//! A cell's code as evcxr gets it: the frontends' own `:` commands that cells may hold
//! (`:graph`) turned into code, and the final expression, whose value evcxr displays, wrapped
//! so that the cell's process marks where its result starts (see [`crate::relay`]).

use ra_ap_syntax::{ast, AstNode, Edition, SourceFile};

/// The code evcxr runs for `code`; `mark_result` wraps its final expression (see
/// [`mark_final_value`]).
pub fn prepare(code: &str, mark_result: bool) -> String {
    let code = rewrite_commands(code);
    if mark_result {
        mark_final_value(&code)
    } else {
        code
    }
}

/// How many times the cell's leading command lines toggle evcxr's `:types` (which shows the
/// final value's type, and borrows it in a way the result mark cannot be part of).
pub fn types_toggles(code: &str) -> usize {
    code[..code_start(code)]
        .lines()
        .filter(|l| l.trim() == ":types")
        .count()
}

/// The frontends' own commands among a cell's leading command lines: `:graph` draws the
/// session's graph, `:summary` shows the graph's summary, `:logdir DIR` writes TensorBoard
/// runs under DIR, `:trace ARGS` runs one step traced and draws its timeline. Their code
/// goes where the cell's
/// code starts, after evcxr's commands (evcxr takes commands only before any code).
pub fn rewrite_commands(code: &str) -> String {
    let start = code_start(code);
    let (commands, rest) = code.split_at(start);
    let ours = |l: &str| match l.trim() {
        ":graph" => Some("sess.show_graph();".to_string()),
        ":summary" => {
            Some("sluice_cell::SluiceDisplay::evcxr_display(&graph.summary());".to_string())
        }
        line => logdir_command(line).or_else(|| trace_command(line)),
    };
    if !commands.lines().any(|l| ours(l).is_some()) {
        return code.to_string();
    }
    let mut kept = String::new();
    let mut added = String::new();
    for line in commands.split_inclusive('\n') {
        match ours(line) {
            Some(replacement) => {
                added.push_str(&replacement);
                added.push('\n');
            }
            None => kept.push_str(line),
        }
    }
    if !kept.is_empty() && !kept.ends_with('\n') {
        kept.push('\n');
    }
    format!("{kept}{added}{rest}")
}

/// `:logdir DIR` as code: the folder as a string literal (Debug quoting escapes anything).
fn logdir_command(line: &str) -> Option<String> {
    let dir = line.strip_prefix(":logdir")?;
    if !dir.is_empty() && !dir.starts_with(char::is_whitespace) {
        return None;
    }
    let dir = dir.trim();
    if dir.is_empty() {
        return Some(
            "eprintln!(\"`:logdir DIR` names the folder for TensorBoard runs\");".to_string(),
        );
    }
    Some(format!("sluice_cell::logdir({dir:?});"))
}

/// `:trace SESSION, FETCHES, FEEDS, TARGETS` as code: one step run traced and drawn as a
/// timeline (`:trace &mut sess, &[loss], &[(x, xs), (y, ys)], &[train]`); the arguments are
/// Rust, as `sluice_cell::trace` takes them.
fn trace_command(line: &str) -> Option<String> {
    let args = line.strip_prefix(":trace")?;
    if !args.is_empty() && !args.starts_with(char::is_whitespace) {
        return None;
    }
    let args = args.trim();
    if args.is_empty() {
        return Some(
            "eprintln!(\"`:trace &mut SESSION, &[FETCHES], &[FEEDS], &[TARGETS]` runs one step \
             traced and draws its timeline\");"
                .to_string(),
        );
    }
    Some(format!("sluice_cell::trace({args})?;"))
}

/// Wraps the cell's final expression `e` (its last statement, without a semicolon) as
/// `sluice_cell::__result(&(e))`, the expression on lines of its own so that compile errors
/// and panics point at it as the person wrote it. evcxr finds the final expression the same
/// way, with the same parser.
pub fn mark_final_value(code: &str) -> String {
    let start = code_start(code);
    let Some((from, to)) = final_expression(&code[start..]) else {
        return code.to_string();
    };
    let (from, to) = (start + from, start + to);
    format!(
        "{}sluice_cell::__result(&(\n{}\n)){}",
        &code[..from],
        &code[from..to],
        &code[to..]
    )
}

/// Where a cell's code begins: after the leading lines evcxr reads as its own (`:` commands,
/// `!` shell lines, comments and blank lines), as evcxr splits a cell.
fn code_start(code: &str) -> usize {
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let text = line.trim_end_matches(['\n', '\r']);
        let evcxrs = text.starts_with('!')
            || text.trim_start_matches(' ').starts_with(':')
            || text.starts_with("//")
            || text.trim().is_empty();
        if !evcxrs {
            return offset;
        }
        offset += line.len();
    }
    code.len()
}

/// The byte range of the final expression of `code` read as a function body.
fn final_expression(code: &str) -> Option<(usize, usize)> {
    const OPEN: &str = "fn f(){";
    let parsed = SourceFile::parse(&format!("{OPEN}{code}\n}}"), Edition::Edition2024);
    let body = parsed
        .tree()
        .syntax()
        .children()
        .next()
        .and_then(ast::Fn::cast)?
        .body()?
        .stmt_list()?;
    let last = body.syntax().children().last()?;
    if !ast::Expr::can_cast(last.kind()) {
        return None;
    }
    let range = last.text_range();
    let from = usize::from(range.start()).checked_sub(OPEN.len())?;
    let to = usize::from(range.end()).checked_sub(OPEN.len())?;
    (to <= code.len() && from < to && code.is_char_boundary(from) && code.is_char_boundary(to))
        .then_some((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_expressions_are_marked() {
        assert_eq!(
            mark_final_value("1 + 2"),
            "sluice_cell::__result(&(\n1 + 2\n))"
        );
        assert_eq!(
            mark_final_value("let v = vec![1];\nv.len() // count\n"),
            "let v = vec![1];\nsluice_cell::__result(&(\nv.len()\n)) // count\n"
        );
        assert_eq!(
            mark_final_value("for i in 0..3 { println!(\"{i}\"); }"),
            "sluice_cell::__result(&(\nfor i in 0..3 { println!(\"{i}\"); }\n))"
        );
    }

    #[test]
    fn statements_and_commands_are_left_alone() {
        assert_eq!(mark_final_value("let a = 1;"), "let a = 1;");
        assert_eq!(
            mark_final_value("fn f() -> i32 { 1 }"),
            "fn f() -> i32 { 1 }"
        );
        assert_eq!(mark_final_value(":dep foo = \"1\""), ":dep foo = \"1\"");
        assert_eq!(
            mark_final_value(":timing\n// a note\nx * 2"),
            ":timing\n// a note\nsluice_cell::__result(&(\nx * 2\n))"
        );
        assert_eq!(mark_final_value(""), "");
    }

    #[test]
    fn colons_inside_code_are_code() {
        let css = "let style = r#\"\n:root { color: red }\n\"#;\nstyle.len()";
        assert!(mark_final_value(css).ends_with("sluice_cell::__result(&(\nstyle.len()\n))"));
        let turbofish = "let v = (0..3)\n    .collect\n    ::<Vec<u8>>();\nv.len()";
        assert!(mark_final_value(turbofish).contains("__result(&(\nv.len()"));
        let quoted = "let s = \"\n:graph\n\";";
        assert_eq!(rewrite_commands(quoted), quoted);
    }

    #[test]
    fn our_commands_become_code_after_evcxrs() {
        assert_eq!(
            rewrite_commands(":graph\n:dep x = \"1\"\nlet a = 1;"),
            ":dep x = \"1\"\nsess.show_graph();\nlet a = 1;"
        );
        assert_eq!(rewrite_commands(":graph"), "sess.show_graph();\n");
        assert_eq!(
            rewrite_commands(":logdir runs/my \"model\"\nlet a = 1;"),
            "sluice_cell::logdir(\"runs/my \\\"model\\\"\");\nlet a = 1;"
        );
        assert_eq!(rewrite_commands(":logdirx"), ":logdirx");
        assert_eq!(
            rewrite_commands(":trace &mut s, &[loss], &[(x, xs.clone())], &[]\nlet a = 1;"),
            "sluice_cell::trace(&mut s, &[loss], &[(x, xs.clone())], &[])?;\nlet a = 1;"
        );
        assert!(rewrite_commands(":trace").starts_with("eprintln!"));
        assert_eq!(rewrite_commands(":tracer"), ":tracer");
        assert_eq!(rewrite_commands("let a = 1;"), "let a = 1;");
        assert!(prepare(":summary", true).contains("graph.summary()"));
        assert_eq!(prepare("1 + 1", false), "1 + 1");
        assert_eq!(types_toggles(":types\n:types\n:types\n1"), 3);
    }
}
