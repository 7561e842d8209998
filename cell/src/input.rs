//! Questions to the person at the notebook (an input box under the cell) or the terminal.

use crate::protocol;

/// Asks the person for a line, after showing `prompt`; the line comes back without its
/// newline. Empty when the frontend takes no input or the cell is interrupted.
pub fn input(prompt: &str) -> String {
    ask(evcxr_input::GET_CMD, prompt)
}

/// As [`input`], for a secret: what is typed is not shown.
pub fn password(prompt: &str) -> String {
    ask(evcxr_input::GET_CMD_PASSWORD, prompt)
}

/// evcxr_input's request line, with the prompt encoded so that colons survive evcxr.
fn ask(command: &str, prompt: &str) -> String {
    // evcxr sees the request only at the start of a line: end whatever `print!` left open
    // (the frontend drops the empty line this makes otherwise).
    println!();
    println!("{command}:{}", protocol::encode_prompt(prompt));
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(_) => line.trim_end_matches(['\n', '\r']).to_string(),
        Err(_) => String::new(),
    }
}
