//! # lamina-seam: what a room and its media graph say to each other
//!
//! The room core ([`MediaCommand`] out, [`MediaEvent`] in) and the media graph
//! (`lamina-pipelines`, which executes the commands and reports the events) share these types
//! and nothing else. They are plain data: no GStreamer, no channels, no I/O.
//!
//! The order in which the media graph reports events, and what the room may rely on, is the
//! contract written at the top of `lamina-pipelines`.

#![warn(missing_docs)]

mod error;
mod plan;

pub use error::{MediaError, NegotiationError, PeerFailure};
pub use lamina_protocol::ids::{PeerId, TrackId, TrackKind};
pub use lamina_protocol::sdp::{Direction, OfferSummary, SdpError};
pub use plan::{OfferPlan, Want};

/// What the room asks of its media graph.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaCommand {
    /// Create the peer's part of the graph (its `webrtcbin`).
    AddPeer(PeerId),
    /// Tear the peer's part of the graph down, with everything it published or received.
    RemovePeer(PeerId),
    /// Apply an offer and produce an answer ([`MediaEvent::AnswerReady`] or
    /// [`MediaEvent::NegotiationFailed`] follows).
    HandleOffer {
        /// Whose offer.
        peer: PeerId,
        /// What to answer.
        plan: OfferPlan,
    },
    /// A client ICE candidate (after the peer's first offer was handed over).
    AddCandidate {
        /// Whose.
        peer: PeerId,
        /// m-line index.
        mline: u32,
        /// The `candidate:` line.
        candidate: String,
    },
    /// Send the subscriber this simulcast layer (a RID of the track's publisher, e.g. `"l"`)
    /// of the track from now on. The media graph switches on the layer's next keyframe (asking
    /// for one) and reports [`MediaEvent::LayerSwitched`] when it did.
    SelectLayer {
        /// The subscriber.
        peer: PeerId,
        /// The simulcast track.
        track: TrackId,
        /// The layer's RID.
        layer: String,
        /// The subscriber's link is dropping packets: stop sending the current layer while
        /// waiting for the new one's keyframe (it would crowd the keyframe out).
        urgent: bool,
    },
    /// A bandwidth probe showed that the subscriber's link carries `bps` (the layers it was
    /// sent held for the probe's length without loss or a falling estimate): the downlink
    /// estimator continues from there if it estimates less. Its estimates follow as
    /// [`MediaEvent::DownlinkEstimate`].
    SeedDownlinkEstimate {
        /// The subscriber.
        peer: PeerId,
        /// What the probe carried, bit/s.
        bps: u64,
    },
}

/// What happened inside a room's media graph, in the order the room consumes it.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
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
        /// Why.
        error: NegotiationError,
    },
    /// A local ICE candidate to trickle to the peer. Never before the peer's first
    /// [`MediaEvent::AnswerReady`]: the media graph holds earlier ones until then.
    LocalCandidate {
        /// The peer whose `webrtcbin` gathered it.
        peer: PeerId,
        /// m-line index (always 0 with max-bundle).
        mline: u32,
        /// The `candidate:` line.
        candidate: String,
    },
    /// Media of a track the peer publishes started arriving.
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
    /// A published audio track started (`speech`) or stopped being voice, as read from its
    /// audio-level header extension (`laminavad`).
    VoiceActivity {
        /// The audio track.
        track: TrackId,
        /// True when speech started, false when it stopped.
        speech: bool,
    },
    /// The set of simulcast layers of a published track whose packets are arriving changed (a
    /// layer counts as stopped after about a second without packets).
    LayersActive {
        /// The simulcast track.
        track: TrackId,
        /// The RIDs of the layers arriving now, in the order of the publisher's offer.
        layers: Vec<String>,
    },
    /// The bitrates the layers of a simulcast track arrive at, measured over the last second
    /// (reported about once a second while the track exists).
    LayerBitrates {
        /// The simulcast track.
        track: TrackId,
        /// `(rid, bit/s)` of each layer seen so far, in the order of the publisher's offer.
        bitrates: Vec<(String, u64)>,
    },
    /// A subscriber now receives this layer of a simulcast track (after a
    /// [`MediaCommand::SelectLayer`], on the layer's keyframe).
    LayerSwitched {
        /// The subscriber.
        peer: PeerId,
        /// The simulcast track.
        track: TrackId,
        /// The layer's RID.
        layer: String,
    },
    /// A new estimate of the bandwidth available toward a subscriber (its downlink), in bit/s.
    DownlinkEstimate {
        /// The subscriber.
        peer: PeerId,
        /// Estimated bit/s.
        bps: u64,
    },
    /// A subscriber asked for a notable share of the video packets sent to it over the last
    /// fraction of a second (its NACKs, first requests only): the link is dropping packets now,
    /// a round trip after it started, well before the estimate comes down.
    DownlinkLoss {
        /// The subscriber.
        peer: PeerId,
        /// Share of the packets lost, 0.0 to 1.0.
        fraction: f64,
    },
    /// The peer's transport is connected for its current round (after the first round, and
    /// again after each ICE restart).
    PeerConnected {
        /// The peer.
        peer: PeerId,
    },
    /// The peer's part of the graph failed and was already removed; the room should remove
    /// the peer.
    PeerFailed {
        /// The peer.
        peer: PeerId,
        /// Why.
        failure: PeerFailure,
    },
    /// The room's graph as a whole failed and must be closed.
    RoomFailed {
        /// Human-readable cause.
        reason: String,
    },
}
