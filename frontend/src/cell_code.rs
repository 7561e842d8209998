//! A cell's code as evcxr gets it: the frontends' own `:` commands that cells may hold
//! (`:graph`) turned into code, and the final expression, whose value evcxr displays, wrapped
//! so that the cell's process marks where its result starts (see [`crate::relay`]).

use ra_ap_syntax::{ast, AstNode, Edition, SourceFile};

/// The code evcxr runs for `code`.
pub fn prepare(code: &str) -> String {
    mark_final_value(&rewrite_commands(code))
}

/// A `:graph` line draws the session's graph; a `:summary` line shows the graph's summary.
pub fn rewrite_commands(code: &str) -> String {
    let ours = |l: &str| matches!(l.trim(), ":graph" | ":summary");
    if !code.lines().any(ours) {
        return code.to_string();
    }
    code.lines()
        .map(|l| match l.trim() {
            ":graph" => "sess.show_graph();",
            ":summary" => "sluice_cell::SluiceDisplay::evcxr_display(&graph.summary());",
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Wraps the cell's final expression `e` (the last statement, without a semicolon, of the
/// code after the last evcxr command line) as `sluice_cell::__result(&(e))`. evcxr finds
/// the final expression the same way, with the same parser.
pub fn mark_final_value(code: &str) -> String {
    let start = last_code_start(code);
    let Some((from, to)) = final_expression(&code[start..]) else {
        return code.to_string();
    };
    let (from, to) = (start + from, start + to);
    format!(
        "{}sluice_cell::__result(&({}\n)){}",
        &code[..from],
        &code[from..to],
        &code[to..]
    )
}

/// Where the code after the last command line (a line starting with `:`) begins.
fn last_code_start(code: &str) -> usize {
    let mut start = 0;
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        offset += line.len();
        if line.trim_start().starts_with(':') {
            start = offset;
        }
    }
    start
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
            "sluice_cell::__result(&(1 + 2\n))"
        );
        assert_eq!(
            mark_final_value("let v = vec![1];\nv.len() // count\n"),
            "let v = vec![1];\nsluice_cell::__result(&(v.len()\n)) // count\n"
        );
        assert_eq!(
            mark_final_value("for i in 0..3 { println!(\"{i}\"); }"),
            "sluice_cell::__result(&(for i in 0..3 { println!(\"{i}\"); }\n))"
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
            mark_final_value(":timing\nx * 2"),
            ":timing\nsluice_cell::__result(&(x * 2\n))"
        );
        assert_eq!(mark_final_value(""), "");
    }

    #[test]
    fn commands_become_code() {
        assert_eq!(
            rewrite_commands("let a = 1;\n:graph"),
            "let a = 1;\nsess.show_graph();"
        );
        assert_eq!(rewrite_commands("let a = 1;"), "let a = 1;");
        assert!(prepare(":summary").contains("graph.summary()"));
    }
}
