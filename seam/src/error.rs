//! Typed errors crossing the seam. Their `Display` texts are what clients are told.

use lamina_protocol::ids::PeerId;

/// A command the media graph refused outright (the command's peer is concerned, no one else).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// A GStreamer element is missing or could not be created.
    #[error("missing GStreamer element: {0}")]
    MissingElement(String),
    /// The peer is unknown to the media graph.
    #[error("unknown peer {0}")]
    UnknownPeer(PeerId),
    /// The peer was already added.
    #[error("peer {0} already exists")]
    DuplicatePeer(PeerId),
    /// The media graph no longer runs.
    #[error("room media is closed")]
    Closed,
    /// This room has no media graph (signalling-only backends of tests).
    #[error("this room has no media pipeline")]
    NoMedia,
    /// Anything else GStreamer refused.
    #[error("{0}")]
    Gst(String),
}

/// Why an offer could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// The peer left (or was never added) before its offer was applied.
    #[error("unknown peer {0}")]
    UnknownPeer(PeerId),
    /// The offer lacks something the server needs (e.g. a usable DTLS fingerprint).
    #[error("{0}")]
    Offer(String),
    /// `webrtcbin` refused or did not reply (set-remote-description, create-answer,
    /// set-local-description).
    #[error("{0}")]
    Webrtc(String),
}

/// Why a peer's part of the media graph failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerFailure {
    /// ICE or DTLS failed.
    #[error("ICE/DTLS connection failed")]
    Transport,
    /// The DTLS certificate does not match the offer's `a=fingerprint`.
    #[error("{0}")]
    Unauthenticated(String),
    /// The peer's `webrtcbin` could not be created or started.
    #[error("{0}")]
    Start(String),
    /// An element inside the peer's part of the graph posted an error.
    #[error("{0}")]
    Element(String),
}
