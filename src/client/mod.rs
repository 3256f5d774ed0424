//! A Rust participant of Lamina rooms: the real Phoenix + media-event protocol over WebSocket
//! and a real `webrtcbin` peer that behaves like the Membrane browser client (it always offers,
//! sendonly m-lines for its own tracks, recvonly m-lines as many as `offerData` asks for).
//!
//! Used by the media tests, and meant for the load generator and `publish`-style tools.
//! Received media is decoded (VP8 → raw frames, Opus → PCM) and counted per remote track,
//! which is what the tests assert on.

mod media;
mod options;
mod participant;
pub mod publish;
mod session;
mod signalling;
mod state;

pub use media::CustomSourceError;
pub use options::{CandidateDirection, CandidateFilter, ParticipantOptions};
pub use participant::{Participant, ParticipantConfig};
pub use signalling::{Signalling, SignallingError};
pub use state::{ParticipantState, RemoteTrack};
