//! A cell asks for a line (`sluice_notebook::input`): the REPL prints the prompt and reads
//! the answer from the terminal, with echo off for a password.

use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
use std::io::{BufRead, IsTerminal, Write};
use std::os::fd::AsFd;

/// Shows `prompt` and reads one line from standard input, without its newline. Empty at the
/// end of input.
pub fn read_line(prompt: &str, secret: bool) -> String {
    let mut out = std::io::stdout();
    let _ = write!(out, "{prompt}");
    let _ = out.flush();
    let stdin = std::io::stdin();
    let saved = if secret && stdin.is_terminal() {
        tcgetattr(stdin.as_fd()).ok().inspect(|saved| {
            let mut quiet = saved.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &quiet);
        })
    } else {
        None
    };
    let mut line = String::new();
    let _ = stdin.lock().read_line(&mut line);
    if let Some(saved) = saved {
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &saved);
        let _ = writeln!(out);
    }
    line.trim_end_matches(['\n', '\r']).to_string()
}
