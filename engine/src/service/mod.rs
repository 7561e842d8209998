//! The engine over gRPC: the master service ([`server`]), the remote session that talks to
//! it ([`client`]), and what travels between them ([`wire`], [`chunks`]).
//!
//! The protocol is `engine/proto/sluice.proto` (package `sluice.v1`); its Rust types are in
//! [`proto`]. A graph's version is its number of nodes: a client sends the nodes added since
//! the version it knows (ExtendSession), and catches up with GetGraph when another client
//! extended the graph meanwhile. Tensors travel as raw little-endian bytes in chunks of at
//! most 1 MiB, so no message-size cap applies to them.

pub mod auth;
pub mod chunks;
pub mod client;
pub mod codec;
#[cfg(feature = "engine")]
pub mod embedded;
#[cfg(feature = "engine")]
pub mod server;
pub mod session_runs;
mod status;
pub mod tls;
pub mod wire;
#[cfg(feature = "engine")]
pub mod worker;

/// The generated protobuf types and gRPC stubs.
pub mod proto {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("sluice.v1");
}

pub use client::events::{watch_events, EngineEvent, EventStream};
pub use client::{Device, RemoteCancelToken, RemoteSession};
#[cfg(feature = "engine")]
pub use embedded::EmbeddedEngine;
#[cfg(feature = "engine")]
pub use server::{serve, EngineConfig, MasterServer};
pub use session_runs::SessionRuns;

/// HTTP/2 flow-control windows: large enough that a big tensor streams at memory speed.
pub(crate) const STREAM_WINDOW: u32 = 32 << 20;
pub(crate) const CONNECTION_WINDOW: u32 = 64 << 20;
/// The largest HTTP/2 frame either side accepts: a tensor chunk in a few frames.
pub(crate) const MAX_FRAME: u32 = 1 << 20;

/// Where a standalone engine listens unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7070";

/// The name of the engine's one device.
pub const CPU_DEVICE: &str = "/job:localhost/replica:0/task:0/device:CPU:0";

/// Metadata key of a status whose error kind a client can act on (`stale-version`,
/// `uninitialized`, `missing-feed`), with the node it concerns under [`ERROR_NODE`].
pub const ERROR_KIND: &str = "sluice-error-kind";
pub const ERROR_NODE: &str = "sluice-error-node-bin";
