//! [`Outcome`]: what the core reports for metrics. The actor counts these; it never inspects
//! the core's state to find out what happened.

/// Something countable that happened in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The room refused a client's offer (unparsable SDP, limits, inconsistent m-lines, out of
    /// round).
    InvalidOffer,
    /// The media graph refused the offer command (peer or graph gone).
    Refused,
    /// The media graph failed to apply the offer or to create the answer.
    AnswerFailed,
    /// The transport did not report `connected` in time after the answer.
    ConnectTimeout,
    /// A client's `setTargetTrackVariant` was dropped (no `error` is sent: a track may vanish
    /// while the request is in flight, and an `error` ends a 0.5.3 session).
    LayerRequestDropped(LayerRequestDrop),
}

/// Why a `setTargetTrackVariant` was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerRequestDrop {
    /// Over the peer's budget ([`crate::LAYER_REQUESTS_PER_SEC`]).
    RateLimited,
    /// No such track in the room (any more).
    UnknownTrack,
    /// The peer was not told about the track (its own track, or not announced to it yet).
    NotAnnounced,
    /// The track has a single encoding.
    NotSimulcast,
    /// The variant is not one of the track's RIDs.
    UnknownVariant,
}

impl LayerRequestDrop {
    /// Every reason, for exporting each label from the start.
    pub const ALL: [LayerRequestDrop; 5] = [
        LayerRequestDrop::RateLimited,
        LayerRequestDrop::UnknownTrack,
        LayerRequestDrop::NotAnnounced,
        LayerRequestDrop::NotSimulcast,
        LayerRequestDrop::UnknownVariant,
    ];

    /// A metrics label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LayerRequestDrop::RateLimited => "rate_limited",
            LayerRequestDrop::UnknownTrack => "unknown_track",
            LayerRequestDrop::NotAnnounced => "not_announced",
            LayerRequestDrop::NotSimulcast => "not_simulcast",
            LayerRequestDrop::UnknownVariant => "unknown_variant",
        }
    }
}
