//! The Sluice terminal REPL: Rust cells through evcxr (the kernel's evaluator and prelude)
//! against a persistent engine, with history, completion, live training progress and text
//! plots.
//!
//! [`front`] runs entries (cells and the `:` [`commands`]); [`output`] prints what cells
//! write and draws [`live`] progress from the engine's events ([`watch`]); [`interrupt`]
//! turns Ctrl-C into an engine cancel while a cell runs; [`interactive`] is the prompt on
//! the line [`editor`], [`script`] runs files.

pub mod charts;
pub mod commands;
pub mod editor;
pub mod error;
pub mod front;
pub mod input;
pub mod interactive;
pub mod interrupt;
pub mod live;
pub mod output;
pub mod report;
pub mod script;
pub mod watch;

pub use error::{ReplError, Result};
