//! # Lamina's wire formats
//!
//! Pure encode/decode, no I/O and no GStreamer, shared by the server (`lamina`), its Rust
//! client (`lamina-client`) and the fuzz targets. Each format has both halves, so the server
//! and the client speak the same typed protocol:
//! - [`phoenix_frame`]: Phoenix Channels v2 frames `[join_ref, ref, topic, event, payload]`,
//!   with the constructors of both sides (replies and pushes; joins, requests, heartbeats).
//! - [`media_event`]: the Membrane media events carried inside `"mediaEvent"` pushes:
//!   [`media_event::ClientEvent`] and [`media_event::ServerEvent`], each encoded and decoded.
//! - [`sdp`]: the small summary of an SDP offer the room logic needs.
//! - [`ids`]: typed peer and track ids and the track kind, shared with the media graph.
//! - [`chat`]: the room chat's `"chat"` channel event (not a media event), both directions.

#![warn(missing_docs)]

pub mod chat;
pub mod ids;
pub mod media_event;
pub mod phoenix_frame;
pub mod sdp;

pub use ids::{PeerId, TrackId, TrackKind};
