//! # Lamina: a multi-party video-room server (SFU) on GStreamer
//!
//! Layers, outside in:
//! - [`http`]: warp routes (WebSocket, static client, health, metrics, debug).
//! - [`phoenix`]: the Phoenix Channels v2 wire protocol; one channel per room (`room:<id>`).
//! - [`media_event`]: the Membrane media events carried inside `"mediaEvent"` pushes.
//! - [`room`]: the rooms registry, one actor per room, and the sans-IO [`room::core::RoomCore`].
//! - [`turn`]: the embedded TURN server the relay-only browser client needs.
//! - [`cluster`]: with `--redis-url`, many nodes behind one Redis (placement, relays, drains).
//!
//! The media graph lives in the `lamina-pipelines` crate, the GStreamer elements in
//! `lamina-elements`, the pure wire formats in `lamina-protocol`.

pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod http;
pub mod metrics;
pub mod phoenix;
pub mod room;
pub mod server;
pub mod turn;
pub mod turn_grant;

pub use lamina_pipelines::{PeerId, TrackId, TrackKind};
/// Membrane media events (defined in `lamina-protocol`).
pub use lamina_protocol::media_event;
/// The SDP offer summary (defined in `lamina-protocol`).
pub use lamina_protocol::sdp;
