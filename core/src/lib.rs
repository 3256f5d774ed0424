//! # lamina-core: the sans-IO decisions of a videoroom
//!
//! [`RoomCore`] takes client media events (already decoded), media events from the room's
//! media graph ([`MediaEvent`]) and timers; it returns [`Effect`]s the room actor executes
//! (push a media event to a peer, command the media graph, disconnect a peer, start a timer,
//! close the room). Nothing here touches sockets, async runtimes or GStreamer, so every
//! sequence of `docs/protocol.md` §3.7 is unit-tested in `tests.rs` in milliseconds.
//!
//! Simulcast decisions are the core's too (`simulcast.rs`, pure, and `layers.rs`): which layer
//! of each simulcast track each subscriber gets (`MediaCommand::SelectLayer`), and the
//! `encodingSwitched` / `bandwidthEstimation` events.
//!
//! The room chat goes through the core too ([`RoomCore::chat`]): who may chat, how often, what
//! text is acceptable, and [`Effect::Chat`] deliveries to every connected peer. Nothing of it is
//! kept: a message exists only in the effects that deliver it.
//!
//! ```text
//!  A (publisher)                 RoomCore                          B (subscriber)
//!  connect ───────────────────▶  connected(A, others) ──▶ A
//!                                endpointAdded(A) ─────────────────▶ B
//!  renegotiateTracks ────────▶  offerData ─────────────▶ A
//!  sdpOffer(mids) ───────────▶  HandleOffer(plan) ─▶ pipeline
//!                    pipeline ─▶ AnswerReady ─▶ sdpAnswer ──▶ A
//!                                tracksAdded(A's tracks) ──────────▶ B, then a round for B
//!                    pipeline ─▶ PeerConnected(A) ─▶ round over, pending round starts
//!  (leave) ──────────────────▶  tracksRemoved, endpointRemoved ────▶ B, then a round for B
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

pub use lamina_protocol::chat::{ChatError, ChatMessage};
pub use lamina_protocol::ids::{PeerId, TrackId, TrackKind};
use lamina_protocol::media_event::{ClientEvent, ServerEvent, TurnServerInfo};
pub use lamina_seam::{MediaCommand, MediaEvent};

mod chat;
mod downlink;
mod layers;
mod membership;
mod outcome;
pub mod peer;
pub mod rate;
mod rounds;
pub mod simulcast;
pub mod speakers;
pub mod track;

pub use downlink::Receiving;
pub use layers::{
    ESTIMATE_REPORT_CHANGE_PERCENT, ESTIMATE_REPORT_INTERVAL, LAYER_REQUESTS_PER_SEC,
};
pub use outcome::{LayerRequestDrop, Outcome};
use rate::{Decision, RateLimiter};

use peer::{Peer, RoundState};
use track::Track;

/// Why a peer could not join a room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The room has reached its peer limit.
    #[error("room_full")]
    RoomFull,
    /// The server has reached its room limit.
    #[error("too_many_rooms")]
    TooManyRooms,
    /// The room could not be started (its pipeline failed to build).
    #[error("failed to start room")]
    StartFailed,
    /// The room is shutting down; try again.
    #[error("room closing")]
    Closing,
}

/// How long a round may wait for the transport to report `connected` after its answer.
pub const ROUND_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the actor must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Deliver a chat message to a peer (a `"chat"` push on its channel, not a media event).
    Chat {
        /// Recipient.
        peer: PeerId,
        /// The message.
        message: ChatMessage,
    },
    /// Send a media event to a peer.
    Push {
        /// Recipient.
        peer: PeerId,
        /// The event.
        event: ServerEvent,
    },
    /// Command the room's media graph.
    Media(MediaCommand),
    /// Close the peer's channel (after it was removed from the room).
    Disconnect {
        /// Who.
        peer: PeerId,
        /// The error it was told, if any.
        error: Option<String>,
    },
    /// Call [`RoomCore::round_timeout`] for this peer and round after a delay.
    StartTimer {
        /// Whose round.
        peer: PeerId,
        /// Which round.
        round: u64,
        /// Delay.
        after: Duration,
    },
    /// The room has no peers left (or failed): stop the actor.
    CloseRoom,
    /// Something metrics count happened (the actor only counts it).
    Report(Outcome),
}

/// Gives each peer the TURN servers (with its own credentials) for `offerData`.
pub trait TurnProvider: Send + Sync {
    /// TURN servers for this peer.
    fn servers_for(&self, peer: &PeerId) -> Vec<TurnServerInfo>;
}

/// Room limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most peers in the room.
    pub max_peers: usize,
    /// Most tracks one peer may publish.
    pub max_tracks_per_peer: usize,
}

/// Metadata updates (endpoint or track) one peer may have relayed per second, sustained
/// (bursts of twice that). Each update goes to every other peer, so beyond this the update is
/// refused with an `error` instead of flooding the room.
pub const METADATA_UPDATES_PER_SEC: u32 = 10;

/// Chat messages one peer may send per second, sustained (bursts of twice that); beyond this a
/// message is refused with [`ChatError::RateLimited`].
pub const CHAT_MESSAGES_PER_SEC: u32 = 5;

/// The room's state and decisions.
pub struct RoomCore {
    /// The time of the input being handled (see [`RoomCore::advance`]).
    now: Instant,
    /// The wall-clock time of the input being handled, in ms since the Unix epoch (chat
    /// timestamps).
    unix_ms: u64,
    /// Each peer's metadata-update budget.
    metadata_rate: BTreeMap<PeerId, RateLimiter>,
    /// Each peer's chat budget.
    chat_rate: BTreeMap<PeerId, RateLimiter>,
    peers: BTreeMap<PeerId, Peer>,
    /// Join order, for stable listings.
    order: Vec<PeerId>,
    tracks: BTreeMap<TrackId, Track>,
    /// Voice activity of the audio tracks.
    speakers: speakers::Speakers,
    /// Each subscriber's simulcast state (wishes, estimate, decisions).
    downlinks: BTreeMap<PeerId, downlink::Downlink>,
    limits: Limits,
    turn: Arc<dyn TurnProvider>,
}

fn push(peer: &PeerId, event: ServerEvent) -> Effect {
    Effect::Push {
        peer: peer.clone(),
        event,
    }
}

/// Longest `error` message sent to a client, in characters: messages quote client input
/// (ids, mids), which must not be echoed back at any size.
pub const MAX_ERROR_CHARS: usize = 300;

fn error(peer: &PeerId, message: impl Into<String>) -> Effect {
    let mut message = message.into();
    if let Some((cut, _)) = message.char_indices().nth(MAX_ERROR_CHARS) {
        message.truncate(cut);
        message.push('…');
    }
    push(peer, ServerEvent::Error { message })
}

impl RoomCore {
    /// An empty room.
    pub fn new(limits: Limits, turn: Arc<dyn TurnProvider>) -> Self {
        Self {
            now: Instant::now(),
            unix_ms: 0,
            metadata_rate: BTreeMap::new(),
            chat_rate: BTreeMap::new(),
            peers: BTreeMap::new(),
            order: Vec::new(),
            tracks: BTreeMap::new(),
            speakers: speakers::Speakers::default(),
            downlinks: BTreeMap::new(),
            limits,
            turn,
        }
    }

    /// Sets the time of the next inputs (the core never reads a clock): `now` is what rate
    /// limits count in, `wall` what chat messages are stamped with. The actor calls it before
    /// each input; tests move it as they like.
    pub fn advance(&mut self, now: Instant, wall: SystemTime) {
        self.now = self.now.max(now);
        self.unix_ms = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    }

    /// Takes a token of the peer's metadata-update budget.
    fn metadata_allowed(&mut self, peer: &PeerId) -> bool {
        let now = self.now;
        self.metadata_rate
            .entry(peer.clone())
            .or_insert_with(|| RateLimiter::new(METADATA_UPDATES_PER_SEC, now))
            .check(now)
            == Decision::Allow
    }

    /// Number of peers (joined channels).
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Peer state, for inspection.
    pub fn peer(&self, id: &PeerId) -> Option<&Peer> {
        self.peers.get(id)
    }

    /// Published tracks.
    pub fn tracks(&self) -> impl Iterator<Item = &Track> {
        self.tracks.values()
    }

    /// Peers in join order.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.order.iter().filter_map(|id| self.peers.get(id))
    }

    /// A channel joined.
    pub fn join(&mut self, peer: PeerId) -> Result<(), JoinError> {
        if self.peers.len() >= self.limits.max_peers {
            return Err(JoinError::RoomFull);
        }
        self.order.push(peer.clone());
        self.peers.insert(peer.clone(), Peer::new(peer));
        Ok(())
    }

    /// Enforces `name` as the `displayName` of the peer's endpoint metadata: whatever the
    /// client sends in `connect` or `updateEndpointMetadata`, others see this name (other
    /// metadata fields pass unchanged; metadata that is not an object becomes
    /// `{"displayName": name}`).
    pub fn enforce_display_name(&mut self, peer: &PeerId, name: String) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.display_name = Some(name);
        }
    }

    /// The metadata with the peer's enforced display name, if it has one.
    fn enforced(&self, peer: &PeerId, metadata: Value) -> Value {
        let Some(name) = self.peers.get(peer).and_then(|p| p.display_name.clone()) else {
            return metadata;
        };
        let mut map = match metadata {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        map.insert("displayName".into(), Value::String(name));
        Value::Object(map)
    }

    /// A media event that could not be decoded.
    pub fn reject(&mut self, peer: &PeerId, message: String) -> Vec<Effect> {
        if self.peers.contains_key(peer) {
            vec![error(peer, message)]
        } else {
            Vec::new()
        }
    }

    /// A decoded media event from a peer.
    pub fn client_event(&mut self, from: &PeerId, event: ClientEvent) -> Vec<Effect> {
        let Some(peer) = self.peers.get(from) else {
            return Vec::new();
        };
        let connected = peer.connected;
        let mut fx = Vec::new();
        match event {
            ClientEvent::Connect { metadata } => self.connect(from, metadata, &mut fx),
            ClientEvent::Disconnect => {
                self.leave_into(from, &mut fx);
                fx.push(Effect::Disconnect {
                    peer: from.clone(),
                    error: None,
                });
            }
            _ if !connected => fx.push(error(from, "send \"connect\" first")),
            ClientEvent::UpdateEndpointMetadata { .. } | ClientEvent::UpdateTrackMetadata { .. }
                if !self.metadata_allowed(from) =>
            {
                fx.push(error(
                    from,
                    format!(
                        "metadata updates too frequent (at most {METADATA_UPDATES_PER_SEC} per second)"
                    ),
                ))
            }
            ClientEvent::UpdateEndpointMetadata { metadata } => {
                self.update_endpoint_metadata(from, metadata, &mut fx)
            }
            ClientEvent::UpdateTrackMetadata { track_id, metadata } => {
                self.update_track_metadata(from, &TrackId::new(track_id), metadata, &mut fx)
            }
            ClientEvent::TrackEncoding {
                track_id,
                encoding,
                enabled,
            } => {
                let id = TrackId::new(track_id);
                if self.owned(from, &id) {
                    let ev = ServerEvent::TrackEncoding {
                        endpoint_id: from.to_string(),
                        track_id: id.to_string(),
                        encoding,
                        enabled,
                    };
                    self.tell_subscribers(&id, ev, &mut fx);
                } else {
                    fx.push(error(from, format!("unknown track {id}")));
                }
            }
            ClientEvent::RenegotiateTracks => {
                if let Some(p) = self.peers.get_mut(from) {
                    p.pending = true;
                }
                self.try_start_round(from, &mut fx);
            }
            offer @ ClientEvent::SdpOffer { .. } => self.offer(from, offer, &mut fx),
            ClientEvent::Candidate {
                candidate,
                sdp_mline_index,
            } => self.candidate(from, candidate, sdp_mline_index, &mut fx),
            ClientEvent::SetTargetTrackVariant { track_id, variant } => {
                self.set_target_variant(from, track_id, variant, &mut fx)
            }
            ClientEvent::Ignored { .. } => {}
        }
        fx
    }

    /// The peer's channel is gone (leave, socket closed).
    pub fn leave(&mut self, peer: &PeerId) -> Vec<Effect> {
        let mut fx = Vec::new();
        self.leave_into(peer, &mut fx);
        fx
    }

    /// An event from the room's media graph.
    pub fn media_event(&mut self, event: MediaEvent) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            MediaEvent::AnswerReady { peer, sdp } => self.answer_ready(&peer, sdp, &mut fx),
            MediaEvent::NegotiationFailed {
                peer,
                error: reason,
            } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    tracing::warn!(%peer, %reason, "negotiation failed");
                    p.round = RoundState::Idle;
                    p.pending = false;
                    fx.push(Effect::Report(Outcome::AnswerFailed));
                    fx.push(error(&peer, format!("negotiation failed: {reason}")));
                }
            }
            MediaEvent::LocalCandidate {
                peer,
                mline,
                candidate,
            } => {
                if self.peers.contains_key(&peer) {
                    fx.push(push(
                        &peer,
                        ServerEvent::Candidate {
                            candidate,
                            sdp_mline_index: mline,
                        },
                    ));
                }
            }
            e @ (MediaEvent::LayersActive { .. }
            | MediaEvent::LayerSwitched { .. }
            | MediaEvent::DownlinkEstimate { .. }
            | MediaEvent::DownlinkLoss { .. }
            | MediaEvent::LayerBitrates { .. }) => self.layer_event(e, &mut fx),
            MediaEvent::VoiceActivity { track, speech } => {
                self.voice_activity(&track, speech, &mut fx)
            }
            MediaEvent::TrackPublished { peer, track, .. } => {
                tracing::debug!(%peer, %track, "media of track arrived");
            }
            MediaEvent::PeerConnected { peer } => {
                let ended = match self.peers.get_mut(&peer) {
                    Some(p) if p.round == RoundState::AwaitingConnected => {
                        p.round = RoundState::Idle;
                        true
                    }
                    _ => false,
                };
                if ended {
                    self.try_start_round(&peer, &mut fx);
                }
            }
            MediaEvent::PeerFailed {
                peer,
                failure: reason,
            } => {
                if self.peers.contains_key(&peer) {
                    let message = format!("media connection failed: {reason}");
                    fx.push(error(&peer, message.clone()));
                    self.leave_into(&peer, &mut fx);
                    fx.push(Effect::Disconnect {
                        peer,
                        error: Some(message),
                    });
                }
            }
            MediaEvent::RoomFailed { reason } => {
                let message = format!("room failed: {reason}");
                for id in self.order.drain(..) {
                    fx.push(error(&id, message.clone()));
                    fx.push(Effect::Disconnect {
                        peer: id,
                        error: Some(message.clone()),
                    });
                }
                self.peers.clear();
                self.tracks.clear();
                self.downlinks.clear();
                self.metadata_rate.clear();
                self.chat_rate.clear();
                fx.push(Effect::CloseRoom);
            }
        }
        fx
    }

    /// A round timer fired: if that round still waits for its transport, end it anyway.
    pub fn round_timeout(&mut self, peer: &PeerId, round: u64) -> Vec<Effect> {
        let mut fx = Vec::new();
        let ended = match self.peers.get_mut(peer) {
            Some(p) if p.round_no == round && p.round == RoundState::AwaitingConnected => {
                tracing::warn!(%peer, round, "no connected state after answer; ending round");
                p.round = RoundState::Idle;
                fx.push(Effect::Report(Outcome::ConnectTimeout));
                true
            }
            _ => false,
        };
        if ended {
            self.try_start_round(peer, &mut fx);
        }
        fx
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod limits_tests;

#[cfg(test)]
mod chat_tests;

#[cfg(test)]
mod vad_tests;

#[cfg(test)]
mod simulcast_tests;

#[cfg(test)]
mod loss_tests;

#[cfg(test)]
mod estimate_tests;
