//! [`Peer`]: one participant's state inside a room: metadata, negotiation, subscriptions.
//!
//! Negotiation facts this module owns (the media graph owns the transport's: ICE ufrag and
//! restarts, local candidates until the first answer, connection state, DTLS identity):
//! - **the round**: which round is in flight and where it stands ([`RoundState`], `round_no`),
//!   and how long it may wait for its transport (`ROUND_CONNECT_TIMEOUT`); one in flight, at
//!   most one more wanted (`pending`);
//! - **the client's candidates before its first offer** (`early_candidates`): the only buffer
//!   of remote candidates; after the first offer they go straight to the media graph;
//! - **the m-line ↔ track mapping** (`slots`, `answer_map`, `mapped`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::track::{Announced, Slot};
use crate::{PeerId, TrackId};

/// Where a peer's negotiation round stands (docs/protocol.md §3.5: one round in flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundState {
    /// No round in flight.
    Idle,
    /// `offerData` sent; waiting for the client's `sdpOffer`.
    AwaitingOffer,
    /// Offer handed to the pipeline; waiting for the answer.
    AwaitingAnswer,
    /// Answer sent; waiting for the transport to be (re)connected.
    AwaitingConnected,
}

/// Most ICE candidates buffered for a peer before its first offer.
pub const MAX_EARLY_CANDIDATES: usize = 64;

/// One participant.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Server-chosen endpoint id.
    pub id: PeerId,
    /// Endpoint metadata from `connect` / `updateEndpointMetadata`.
    pub metadata: Value,
    /// The client sent `connect` (it is an endpoint others can see).
    pub connected: bool,
    /// Negotiation state.
    pub round: RoundState,
    /// Counter of started rounds (for round timers).
    pub round_no: u64,
    /// Another round is wanted once the current one ends.
    pub pending: bool,
    /// An offer of this peer was handed to the media graph (its candidates may follow).
    pub offer_handed: bool,
    /// Last `tracksTypes` sent (audio, video); never decreases.
    pub offered: (usize, usize),
    /// Recvonly m-lines of this peer.
    pub slots: Vec<Slot>,
    /// Remote tracks announced to this peer, in announce order.
    pub announced: Vec<Announced>,
    /// Remote tracks mapped in the last answer sent.
    pub mapped: BTreeSet<TrackId>,
    /// Tracks this peer publishes.
    pub published: Vec<TrackId>,
    /// Tracks first published in the round in flight (announced to others after its answer).
    pub publishing: Vec<TrackId>,
    /// midToTrackId of the round in flight.
    pub answer_map: BTreeMap<String, String>,
    /// Client candidates received before its first offer.
    pub early_candidates: Vec<(String, u32)>,
    /// `displayName` enforced in this peer's metadata (from its room access token).
    pub display_name: Option<String>,
}

impl Peer {
    /// A peer that joined the channel but has not sent `connect` yet.
    pub fn new(id: PeerId) -> Self {
        Self {
            id,
            metadata: Value::Null,
            connected: false,
            round: RoundState::Idle,
            round_no: 0,
            pending: false,
            offer_handed: false,
            offered: (0, 0),
            slots: Vec::new(),
            announced: Vec::new(),
            mapped: BTreeSet::new(),
            published: Vec::new(),
            publishing: Vec::new(),
            answer_map: BTreeMap::new(),
            early_candidates: Vec::new(),
            display_name: None,
        }
    }

    /// The slot with this mid.
    pub fn slot_mut(&mut self, mid: &str) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.mid == mid)
    }

    /// True when an offer of this peer has reached the media graph (candidates may follow).
    pub fn offer_applied(&self) -> bool {
        self.offer_handed
    }
}
