//! A cell asks for a line (`sluice_cell::input`): the REPL prints the prompt and reads
//! the answer from the terminal. The terminal does not turn Ctrl-C into a signal meanwhile
//! (it would end the REPL and the cell's process with it): Ctrl-C gives up the question.

use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg, SpecialCharacterIndices};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::os::fd::AsFd;

const CTRL_C: u8 = 0x03;
const CTRL_D: u8 = 0x04;
const BACKSPACE: [u8; 2] = [0x7f, 0x08];

/// Shows `prompt` and reads one line, without its newline; echo is off for a `secret`.
/// None when Ctrl-C gave up the question; empty at the end of input.
pub fn read_line(prompt: &str, secret: bool) -> Option<String> {
    let mut out = std::io::stdout();
    let _ = write!(out, "{prompt}");
    let _ = out.flush();
    let stdin = std::io::stdin();
    let saved = if stdin.is_terminal() {
        tcgetattr(stdin.as_fd()).ok()
    } else {
        None
    };
    let Some(saved) = saved else {
        let mut line = String::new();
        let _ = stdin.lock().read_line(&mut line);
        return Some(line.trim_end_matches(['\n', '\r']).to_string());
    };
    let mut keys = saved.clone();
    keys.local_flags
        .remove(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG);
    keys.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    keys.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &keys);
    let answer = read_keys(&mut stdin.lock(), &mut out, secret);
    let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &saved);
    let _ = write!(out, "\r\n");
    let _ = out.flush();
    answer
}

/// A line typed key by key: Enter ends it, Backspace takes back a character, Ctrl-D on an
/// empty line ends the input, Ctrl-C gives up.
fn read_keys(keys: &mut impl Read, out: &mut impl Write, secret: bool) -> Option<String> {
    let mut line: Vec<u8> = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match keys.read(&mut byte) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match byte[0] {
            b'\r' | b'\n' => break,
            CTRL_C => {
                let _ = write!(out, "^C");
                return None;
            }
            CTRL_D if line.is_empty() => break,
            b if BACKSPACE.contains(&b) => {
                // A whole character: its continuation bytes, then its first.
                while line.pop().is_some_and(|b| b & 0xC0 == 0x80) {}
                if !secret {
                    let _ = write!(out, "\x08 \x08");
                }
            }
            b => {
                line.push(b);
                if !secret {
                    let _ = out.write_all(&[b]);
                }
            }
        }
        let _ = out.flush();
    }
    Some(String::from_utf8_lossy(&line).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(keys: &[u8], secret: bool) -> (Option<String>, String) {
        let mut echo = Vec::new();
        let line = read_keys(&mut &keys[..], &mut echo, secret);
        (line, String::from_utf8_lossy(&echo).into_owned())
    }

    #[test]
    fn keys_make_a_line() {
        assert_eq!(typed(b"Ada\r", false), (Some("Ada".into()), "Ada".into()));
        let (line, echo) = typed("Zoë!\x7f\x7fe\r".as_bytes(), false);
        assert_eq!(line.as_deref(), Some("Zoe"));
        assert!(echo.starts_with("Zoë!"));
        assert_eq!(
            typed(b"s3cret\r", true),
            (Some("s3cret".into()), String::new())
        );
        assert_eq!(typed(b"half\x03", false).0, None);
        assert_eq!(typed(b"\x04", false).0, Some(String::new()));
    }
}
