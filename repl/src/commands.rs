//! The REPL's own `:` commands. Other `:` lines (`:dep`, `:clear`, `:timing`, ...) go to evcxr.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Help,
    /// The graph as an outline, or drawn to an SVG file.
    Graph {
        svg: Option<PathBuf>,
    },
    /// The graph's summary: layers, shapes, parameters, devices.
    Summary,
    Loss,
    Devices,
    Vars,
    Engine,
    Quit,
}

/// A command line the REPL does not understand (wrong arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct Misuse(pub String);

/// The REPL command `line` is, `Ok(None)` when it is code or an evcxr command.
pub fn parse(line: &str) -> Result<Option<Command>, Misuse> {
    let line = line.trim();
    let Some(rest) = line.strip_prefix(':') else {
        return Ok(None);
    };
    let mut words = rest.split_whitespace();
    let name = words.next().unwrap_or_default();
    let args: Vec<&str> = words.collect();
    let command = match name {
        "help" | "h" | "?" if args.is_empty() => Command::Help,
        "graph" => match args.as_slice() {
            [] => Command::Graph { svg: None },
            ["--svg", file] => Command::Graph {
                svg: Some(PathBuf::from(file)),
            },
            _ => return Err(Misuse("usage: :graph [--svg FILE]".into())),
        },
        "summary" => Command::Summary,
        "loss" => Command::Loss,
        "devices" => Command::Devices,
        "vars" => Command::Vars,
        "engine" => Command::Engine,
        "quit" | "q" | "exit" => Command::Quit,
        _ => return Ok(None),
    };
    Ok(Some(command))
}

pub const HELP: &str = "\
Sluice REPL: type Rust; each entry runs as a cell against the engine.
`graph` (a Graph) and `sess` (its session on the engine) are ready; `use sluice::prelude::*` is in.
An entry with open brackets continues on the next line.

  :help               this help
  :graph              the session's graph as an outline
  :graph --svg FILE   the graph drawn to FILE (SVG)
  :summary            the graph's layers, output shapes, parameters and devices
  :loss               a text chart of the last fit or loop of runs
  :devices            the engine's devices
  :vars               the variables kept between entries, with their types
  :engine             which engine, and this REPL's sessions on it
  :logdir DIR         write TensorBoard runs (graph, step scalars, fits, charts) under DIR
  :trace &mut sess, &[FETCHES], &[FEEDS], &[TARGETS]
                      run one step traced: where its time went, per device and task
  :quit               leave (or Ctrl-D)

Ctrl-C while a cell runs cancels its engine work (twice: stops the cell's process);
at the prompt it clears the line. Other `:` commands are evcxr's (:dep, :clear, :timing, ...).

Example:
  let x = graph.placeholder(\"x\", DType::F32, &[-1, 784]);
  sess.fit(\"mnist-digits\", &FitConfig::new(x, y_, loss, train), &mut |_| {})?;
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse(":help"), Ok(Some(Command::Help)));
        assert_eq!(parse("  :graph "), Ok(Some(Command::Graph { svg: None })));
        assert_eq!(
            parse(":graph --svg g.svg"),
            Ok(Some(Command::Graph {
                svg: Some(PathBuf::from("g.svg"))
            }))
        );
        assert!(parse(":graph --png x").is_err());
        assert_eq!(parse(":quit"), Ok(Some(Command::Quit)));
        assert_eq!(parse(":summary"), Ok(Some(Command::Summary)));
        assert_eq!(parse(":dep foo = \"1\""), Ok(None));
        assert_eq!(parse("let a = 1;"), Ok(None));
    }
}
