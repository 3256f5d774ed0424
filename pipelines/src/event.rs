//! Events the room pipeline reports to its room actor.

use crate::ids::{PeerId, TrackId, TrackKind};

/// What happened inside a room's media graph. Sent from GStreamer threads with one non-blocking
/// send; the room actor consumes them in order.
#[derive(Debug, Clone, PartialEq)]
pub enum PipelineEvent {
    /// The answer to the peer's last offer is set locally and ready to send.
    AnswerReady {
        /// Whose offer was answered.
        peer: PeerId,
        /// The answer SDP text.
        sdp: String,
    },
    /// The peer's offer could not be applied or answered; the round is over for it.
    NegotiationFailed {
        /// Whose offer failed.
        peer: PeerId,
        /// Human-readable cause.
        reason: String,
    },
    /// A local ICE candidate to trickle to the peer (only emitted after its first answer).
    LocalCandidate {
        /// The peer whose webrtcbin gathered it.
        peer: PeerId,
        /// m-line index (always 0 with max-bundle).
        mline: u32,
        /// The `candidate:` line.
        candidate: String,
    },
    /// Media of a track the peer publishes started arriving; its forwarder exists.
    TrackPublished {
        /// The publishing peer.
        peer: PeerId,
        /// The track.
        track: TrackId,
        /// Audio or video.
        kind: TrackKind,
        /// Encoding name, e.g. `"VP8"` or `"OPUS"`.
        codec: String,
    },
    /// The peer's transport reached `connected` (after the first round, and again after each
    /// ICE restart).
    PeerConnected {
        /// The peer.
        peer: PeerId,
    },
    /// The peer's part of the pipeline failed (ICE/DTLS failure or an element error inside
    /// `peer-<id>`); the room should remove it.
    PeerFailed {
        /// The peer.
        peer: PeerId,
        /// Human-readable cause.
        reason: String,
    },
    /// The room pipeline as a whole failed and must be closed.
    RoomFailed {
        /// Human-readable cause.
        reason: String,
    },
}
