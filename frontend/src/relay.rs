//! The cell process's standard output, relayed. evcxr reads rich output blocks
//! (`EVCXR_BEGIN_CONTENT mime` ... `EVCXR_END_CONTENT`, what `sluice_cell::display_html` and
//! the evcxr integrations of plotters and other crates print) out of the child's stdout and
//! merges them all into the cell's final result, keeping one per MIME type. A frontend wants
//! each block printed while a cell runs as an output of its own, in order, and only the final
//! value as the result. So the child's stdout goes through a pipe to a thread of the child
//! that turns each block into a `display` directive, except the blocks after the result mark
//! (`sluice_cell::__result`, which the frontend wraps the cell's final expression in): those
//! go to evcxr as before. It also marks an early return through `?` (evcxr's
//! `EVCXR_ERROR_OCCURRED`, which evcxr keeps to itself) with a directive the frontend sees.

use crate::directives::{Directive, DirectiveLine, Directives};
use std::io::{BufRead, Write};
use std::os::fd::AsFd;

/// evcxr's end-of-cell line (its runtime prints it after each cell's code returns).
const EXECUTION_COMPLETE: &str = "EVCXR_EXECUTION_COMPLETE";
/// evcxr's line for a `?` that returned early.
const ERROR_OCCURRED: &str = "EVCXR_ERROR_OCCURRED";
const PANIC_NOTIFICATION: &str = "EVCXR_PANIC_NOTIFICATION";
const BEGIN_CONTENT: &str = "EVCXR_BEGIN_CONTENT ";
const END_CONTENT: &str = "EVCXR_END_CONTENT";
/// A block larger than this is dropped with a note rather than held in memory.
const MAX_BLOCK_BYTES: usize = 32 << 20;

/// Sends the process's stdout through the relay. Call in the cell process only, before
/// evcxr's runtime starts. Returns false (stdout left as it is) when the pipe cannot be made.
pub fn install() -> bool {
    let Ok((reader, writer)) = std::io::pipe() else {
        return false;
    };
    // A copy that programs the cell starts do not inherit (close-on-exec): they get the
    // relay's end as their stdout, like the cell's own code.
    let Ok(real_stdout) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return false;
    };
    if nix::unistd::dup2_stdout(&writer).is_err() {
        return false;
    }
    drop(writer);
    let spawned = std::thread::Builder::new()
        .name("sluice-relay".into())
        .spawn(move || {
            let mut out = std::io::BufWriter::new(std::fs::File::from(real_stdout));
            let mut relay = Relay::new(Directives::of_this_process());
            let mut input = std::io::BufReader::new(reader);
            let mut line = Vec::new();
            loop {
                line.clear();
                match input.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line);
                let text = text.strip_suffix('\n').unwrap_or(&text);
                let text = text.strip_suffix('\r').unwrap_or(text);
                let passed = relay
                    .line(text)
                    .into_iter()
                    .try_for_each(|l| writeln!(out, "{l}"))
                    .and_then(|()| out.flush());
                if passed.is_err() {
                    // The frontend is gone: nobody reads this process any more.
                    std::process::exit(0);
                }
            }
        });
    spawned.is_ok()
}

/// The relay's state between lines.
pub struct Relay {
    /// This process's directive lines.
    directives: Directives,
    /// The frontend's prelude started the relay: until then everything goes to evcxr as it
    /// is (evcxr's own start-up evaluates `42` and waits for its output to be read, before
    /// the frontend reads anything).
    active: bool,
    /// The cell's final value is being displayed: blocks go to evcxr as they are.
    after_result_mark: bool,
    block: Option<Block>,
    /// Forms of one output still to come, and those seen (see `sluice_cell::display`).
    bundle: Option<(usize, Vec<(String, String)>)>,
}

struct Block {
    mime: String,
    content: String,
    /// Passed through to evcxr (the final value) rather than turned into a directive.
    to_evcxr: bool,
    too_large: bool,
}

impl Relay {
    pub fn new(directives: Directives) -> Relay {
        Relay {
            directives,
            active: false,
            after_result_mark: false,
            block: None,
            bundle: None,
        }
    }

    /// The lines to pass on for one line the cell printed.
    pub fn line(&mut self, line: &str) -> Vec<String> {
        if !self.active {
            self.active = line == self.directives.relay_line();
            return if self.active {
                Vec::new()
            } else {
                vec![line.to_string()]
            };
        }
        if let Some(block) = self.block.take() {
            return self.in_block(block, line);
        }
        if line == self.directives.result_mark_line() {
            self.after_result_mark = true;
            return self.end_bundle();
        }
        if let Some(Directive::Bundle(forms)) = self.directives.parse(line) {
            let mut out = self.end_bundle();
            if !self.after_result_mark && forms > 1 {
                self.bundle = Some((forms, Vec::new()));
            }
            out.retain(|l| !l.is_empty());
            return out;
        }
        if let Some(mime) = line.strip_prefix(BEGIN_CONTENT) {
            let to_evcxr = self.after_result_mark;
            self.block = Some(Block {
                mime: mime.trim().to_string(),
                content: String::new(),
                to_evcxr,
                too_large: false,
            });
            return if to_evcxr {
                vec![line.to_string()]
            } else {
                Vec::new()
            };
        }
        let mut out = self.end_bundle();
        match line {
            ERROR_OCCURRED => out.push(self.directives.line(&DirectiveLine::QuestionMark)),
            PANIC_NOTIFICATION => out.push(self.directives.line(&DirectiveLine::Panicked)),
            EXECUTION_COMPLETE => self.after_result_mark = false,
            _ => {}
        }
        out.push(line.to_string());
        out
    }

    /// A line inside a block. A block ends at its end line; a panic or the end of the cell
    /// (a block printed without its end line) cuts it short.
    fn in_block(&mut self, mut block: Block, line: &str) -> Vec<String> {
        let cut_short = line == PANIC_NOTIFICATION || line == EXECUTION_COMPLETE;
        if block.to_evcxr {
            if line == END_CONTENT {
                return vec![line.to_string()];
            }
            if !cut_short {
                self.block = Some(block);
                return vec![line.to_string()];
            }
            // evcxr reads a block to its end line: without one it would wait forever.
            let mut out = vec![END_CONTENT.to_string()];
            out.extend(self.line(line));
            return out;
        }
        if line != END_CONTENT && !cut_short {
            if block.content.len() + line.len() + 1 > MAX_BLOCK_BYTES {
                block.too_large = true;
                block.content = String::new();
            }
            if !block.too_large {
                if !block.content.is_empty() {
                    block.content.push('\n');
                }
                block.content.push_str(line);
            }
            self.block = Some(block);
            return Vec::new();
        }
        let mut out = Vec::new();
        let dropped = if block.too_large {
            Some(format!("more than {} MiB", MAX_BLOCK_BYTES >> 20))
        } else if cut_short {
            Some("cut short".to_string())
        } else {
            None
        };
        match dropped {
            Some(why) => {
                out.extend(self.end_bundle());
                let note = format!("a {} output was dropped ({why})", block.mime);
                out.push(self.directives.line(&DirectiveLine::Note(note)));
            }
            None => {
                let form = (block.mime, block.content);
                match &mut self.bundle {
                    Some((left, forms)) => {
                        forms.push(form);
                        *left = left.saturating_sub(1);
                        if *left == 0 {
                            out.extend(self.end_bundle());
                        }
                    }
                    None => {
                        let display = DirectiveLine::Display { forms: vec![form] };
                        out.push(self.directives.line(&display));
                    }
                }
            }
        }
        if cut_short {
            out.extend(self.line(line));
        }
        out
    }

    /// The bundle so far as one output (a bundle cut short by other output ends there).
    fn end_bundle(&mut self) -> Vec<String> {
        match self.bundle.take() {
            Some((_, forms)) if !forms.is_empty() => {
                vec![self.directives.line(&DirectiveLine::Display { forms })]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Directives {
        Directives::with_token("t0k")
    }

    fn started() -> Relay {
        let mut relay = Relay::new(ours());
        assert!(relay.line(&ours().relay_line()).is_empty());
        relay
    }

    fn relay(lines: &[&str]) -> Vec<String> {
        let mut relay = started();
        lines.iter().flat_map(|l| relay.line(l)).collect()
    }

    #[test]
    fn until_started_everything_goes_to_evcxr() {
        let mut relay = Relay::new(ours());
        let value = ["EVCXR_BEGIN_CONTENT text/plain", "42", "EVCXR_END_CONTENT"];
        let out: Vec<String> = value.iter().flat_map(|l| relay.line(l)).collect();
        assert_eq!(out, value.map(String::from).to_vec());
    }

    fn display(forms: &[(&str, &str)]) -> String {
        let forms = forms
            .iter()
            .map(|(m, c)| (m.to_string(), c.to_string()))
            .collect();
        ours().line(&DirectiveLine::Display { forms })
    }

    #[test]
    fn blocks_printed_by_the_cell_become_outputs_in_order() {
        let out = relay(&[
            "before",
            "EVCXR_BEGIN_CONTENT text/html",
            "<b>one</b>",
            "<i>two lines</i>",
            "EVCXR_END_CONTENT",
            "between",
            "EVCXR_BEGIN_CONTENT image/svg+xml",
            "<svg/>",
            "EVCXR_END_CONTENT",
            "EVCXR_EXECUTION_COMPLETE",
        ]);
        assert_eq!(
            out,
            vec![
                "before".to_string(),
                display(&[("text/html", "<b>one</b>\n<i>two lines</i>")]),
                "between".into(),
                display(&[("image/svg+xml", "<svg/>")]),
                "EVCXR_EXECUTION_COMPLETE".into(),
            ]
        );
    }

    #[test]
    fn the_final_value_goes_to_evcxr_and_the_mark_ends_with_the_cell() {
        let value = [
            "EVCXR_BEGIN_CONTENT text/plain",
            "3",
            "EVCXR_END_CONTENT",
            "EVCXR_EXECUTION_COMPLETE",
        ];
        let mark = ours().result_mark_line();
        let mut lines = vec![mark.as_str()];
        lines.extend(value);
        assert_eq!(relay(&lines), value.map(String::from).to_vec());
        // The next cell's blocks are outputs again.
        let mut relay_ = started();
        lines.iter().for_each(|l| drop(relay_.line(l)));
        let out: Vec<String> = ["EVCXR_BEGIN_CONTENT text/html", "x", "EVCXR_END_CONTENT"]
            .iter()
            .flat_map(|l| relay_.line(l))
            .collect();
        assert_eq!(out, vec![display(&[("text/html", "x")])]);
    }

    #[test]
    fn a_block_without_its_end_does_not_hang_the_cell() {
        let out = relay(&[
            "EVCXR_BEGIN_CONTENT text/html",
            "<b>half",
            "EVCXR_EXECUTION_COMPLETE",
        ]);
        assert_eq!(
            out,
            vec![
                ours().line(&DirectiveLine::Note(
                    "a text/html output was dropped (cut short)".into()
                )),
                "EVCXR_EXECUTION_COMPLETE".to_string(),
            ]
        );
        let mut relay_ = started();
        let mark = ours().result_mark_line();
        let lines = [
            mark.as_str(),
            "EVCXR_BEGIN_CONTENT text/plain",
            "3",
            "EVCXR_PANIC_NOTIFICATION",
        ];
        let out: Vec<String> = lines.iter().flat_map(|l| relay_.line(l)).collect();
        assert_eq!(
            out,
            vec![
                "EVCXR_BEGIN_CONTENT text/plain".to_string(),
                "3".into(),
                "EVCXR_END_CONTENT".into(),
                ours().line(&DirectiveLine::Panicked),
                "EVCXR_PANIC_NOTIFICATION".into(),
            ]
        );
    }

    #[test]
    fn bundles_are_one_output_and_question_marks_are_marked() {
        let out = relay(&[
            "SLUICE_CELL t0k bundle 2",
            "EVCXR_BEGIN_CONTENT text/plain",
            "t",
            "EVCXR_END_CONTENT",
            "EVCXR_BEGIN_CONTENT text/html",
            "h",
            "EVCXR_END_CONTENT",
            "EVCXR_ERROR_OCCURRED",
        ]);
        assert_eq!(
            out,
            vec![
                display(&[("text/plain", "t"), ("text/html", "h")]),
                ours().line(&DirectiveLine::QuestionMark),
                "EVCXR_ERROR_OCCURRED".into(),
            ]
        );
    }
}
