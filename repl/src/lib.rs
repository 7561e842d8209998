//! The Sluice terminal REPL: Rust cells through evcxr against a persistent engine, with
//! history, completion, live training progress and text plots. What it shares with the
//! Jupyter kernel (evcxr with the Sluice prelude, the engine link, cell outputs) is
//! `sluice_frontend`; this crate is the terminal side.
//!
//! [`front`] runs entries (cells and the `:` [`commands`]); [`terminal_sink`] prints what
//! cells put out and draws [`live`] progress; [`interrupt`] turns Ctrl-C into an engine
//! cancel while a cell runs; [`interactive`] is the prompt on the line [`editor`], [`script`]
//! runs files.

pub mod charts;
pub mod commands;
pub mod editor;
pub mod error;
pub mod front;
pub mod input;
pub mod interactive;
pub mod interrupt;
pub mod live;
pub mod report;
pub mod script;
pub mod terminal_sink;

pub use error::{ReplError, Result};
