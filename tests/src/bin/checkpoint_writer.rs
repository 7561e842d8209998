//! Writes checkpoints of a 32 MB variable into a folder as fast as it can, step after step,
//! every element of the variable equal to the step, going on from the newest checkpoint
//! there (restored first): a test kills it with SIGKILL in the middle of a write and checks
//! the newest checkpoint left is whole.
//!
//!     checkpoint_writer DIR

use sluice::checkpoint;
use sluice::prelude::*;
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .ok_or("usage: checkpoint_writer DIR")?;
    let dir = std::path::PathBuf::from(dir);
    let g = Graph::new();
    let v = g.variable("v", &[8 << 20], Initializer::Zeros);
    let mut sess = Session::new(&g);
    sess.init_variables()?;
    let first = match checkpoint::latest(&dir)? {
        Some(newest) => checkpoint::restore(&mut sess, &g, &newest.path)?.step + 1,
        None => 1,
    };
    for step in first.. {
        sess.set_variable(v, Tensor::full(&[8 << 20], step as f32))?;
        checkpoint::save(&sess, &g, &dir, step, 2)?;
        let mut out = std::io::stdout();
        writeln!(out, "saved {step}")?;
        out.flush()?;
    }
    Ok(())
}
