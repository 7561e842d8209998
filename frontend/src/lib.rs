//! What Sluice's two frontends, the Jupyter kernel (`sluice-kernel`) and the terminal REPL
//! (`sluice`), share: Rust cells run through evcxr against a persistent engine.
//!
//! - Where cells build: the client sources packed into the binary ([`client_sources`]),
//!   unpacked into the cache; build folders, one per running frontend, seeded from a warm
//!   one ([`build_dir`]); dependencies linked once for all cells ([`shared_linking`]); the
//!   standard library's sources read once ([`std_sources`]).
//! - Running cells: evcxr with the Sluice prelude ([`evaluator`], [`prelude`], [`cell_code`]);
//!   what comes out of the cell's process, relayed there ([`relay`], [`child`]) and read here
//!   ([`directives`], [`output`]) into a [`output::Sink`] each frontend implements; how a cell
//!   ended ([`cell`], [`failure`]).
//! - Typing cells: [`is_complete`], [`completion`].
//! - The engine: embedded or standalone, its sessions and events ([`engine_link`],
//!   [`engine_events`]); live training progress ([`live`]); graphs as the visualizer's data
//!   ([`graph_view`]).

pub mod build_dir;
pub mod cell;
pub mod cell_code;
pub mod child;
pub mod client_sources;
pub mod completion;
pub mod directives;
pub mod engine_events;
pub mod engine_link;
pub mod error;
pub mod evaluator;
pub mod failure;
pub mod graph_view;
pub mod is_complete;
pub mod live;
pub mod logdir;
pub mod output;
pub mod prelude;
pub mod relay;
pub mod shared_linking;
pub mod std_sources;
pub mod timeline_view;

pub use error::{FrontendError, Result};

/// The environment variable naming the engine the cells talk to (`HOST:PORT`).
pub const ENGINE_ENV: &str = "SLUICE_ENGINE";

/// The variable that `--device` sets for the cells' prelude.
pub use sluice_cell::DEVICE_ENV;
