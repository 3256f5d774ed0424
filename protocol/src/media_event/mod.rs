//! Membrane media events: the JSON text carried in the `data` string of `"mediaEvent"` pushes.
//!
//! Wire names stay here (`endpoint`, `tracksAdded`, `offerData`…); the rest of the server works
//! with [`ClientEvent`] and [`ServerEvent`]. Client events arrive either at top level
//! (`connect`, `disconnect`, `updateEndpointMetadata`, `updateTrackMetadata`,
//! `enable/disableTrackEncoding`) or wrapped as `{"type":"custom","data":{…}}` (`sdpOffer`,
//! `candidate`, `renegotiateTracks`, …), exactly as `@jellyfish-dev/membrane-webrtc-js`
//! 0.5.x/0.7.x sends them.
//!
//! The code is split by direction: `client.rs` decodes what clients send ([`decode`] into
//! [`ClientEvent`]), `server.rs` encodes what the server sends ([`ServerEvent`]); their public
//! items are re-exported here.

mod client;
mod server;

pub use client::{decode, sdp_offer_event, ClientEvent, DecodeError};
pub use server::{EndpointInfo, ServerEvent, TurnServerInfo};

/// Largest accepted SDP text, in bytes.
pub const MAX_SDP_BYTES: usize = 256 * 1024;

/// Longest accepted ICE candidate line, in bytes (browser candidates are about 150).
pub const MAX_CANDIDATE_BYTES: usize = 512;

/// Largest accepted endpoint or track metadata (as JSON text), in bytes. The server relays
/// metadata to every other peer and lists it to each newcomer, so it must stay small.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

#[cfg(test)]
mod tests;
