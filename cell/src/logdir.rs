//! TensorBoard runs of what the cells train: `:logdir DIR` (or [`logdir`]) asks the frontend
//! to write, under DIR, a run per session the cells use (its graph, the scalars its steps
//! fetch, its fits) and a run `charts` for what cells [`plot`](crate::plot). The frontend
//! writes them from the engine's events, so loops in cells need no code of their own.

use crate::directive;
use crate::protocol::LOGDIR;

/// Writes TensorBoard runs under `dir` from now on (a relative folder is the frontend's:
/// next to the notebook, or where the REPL started); `tensorboard --logdir DIR` shows them.
pub fn logdir(dir: &str) {
    directive(LOGDIR, &[dir]);
}
