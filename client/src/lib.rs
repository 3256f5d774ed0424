//! # A Rust participant of Lamina rooms
//!
//! The real Phoenix + media-event protocol over WebSocket, spoken through `lamina-protocol`'s
//! typed halves (client events out, server events in, Phoenix frames both ways), and a real
//! `webrtcbin` peer that behaves like the Membrane browser client (it always offers, sendonly
//! m-lines for its own tracks, recvonly m-lines as many as `offerData` asks for).
//!
//! Used by the server's media tests, the load generator (`lamina-bench`), the soak test
//! (`lamina-soak`) and `lamina publish` ([`publish`]). Received media is decoded (VP8 → raw
//! frames, Opus → PCM) and counted per remote track, which is what the tests assert on.
//! With [`ParticipantOptions::simulcast`] the camera is published like Chrome's simulcast
//! (three VP8 layers on one m-line); [`Participant::set_target_variant`] picks the layer a
//! subscriber receives.
//! [`Signalling`] alone is the protocol without the media peer.

#![warn(missing_docs)]

mod media;
mod options;
mod participant;
pub mod publish;
mod session;
mod signalling;
#[cfg(test)]
mod simulcast_tests;
mod state;
#[cfg(test)]
mod transport_cc_tests;

pub use lamina_protocol::media_event::{ClientEvent, ServerEvent};
pub use media::CustomSourceError;
pub use options::{
    relay_filter, CandidateDirection, CandidateFilter, ParticipantOptions, RelaySide,
};
pub use participant::{Participant, ParticipantConfig};
pub use signalling::{Signalling, SignallingError};
pub use state::{EncodingSwitch, ParticipantState, RemoteTrack, MAX_STALLS, STALL};
