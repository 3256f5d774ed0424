//! # Lamina's wire formats
//!
//! Pure encode/decode, no I/O and no GStreamer, shared by the server, its Rust client and the
//! fuzz targets:
//! - [`phoenix_frame`]: Phoenix Channels v2 frames `[join_ref, ref, topic, event, payload]`.
//! - [`media_event`]: the Membrane media events carried inside `"mediaEvent"` pushes.
//! - [`sdp`]: the small summary of an SDP offer the room logic needs.
//! - [`ids`]: typed peer and track ids and the track kind, shared with the media graph.

pub mod ids;
pub mod media_event;
pub mod phoenix_frame;
pub mod sdp;

pub use ids::{PeerId, TrackId, TrackKind};
