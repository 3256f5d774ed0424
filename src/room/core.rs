//! [`RoomCore`]: the sans-IO decision logic of a room.
//!
//! Inputs are client media events (already decoded), pipeline events and timers; outputs are
//! [`Effect`]s the actor executes (push a media event to a peer, command the pipeline,
//! disconnect a peer, start a timer, close the room). Nothing here touches sockets or
//! GStreamer, so every sequence of protocol.md 3.7 is unit-tested in `core_tests.rs`.
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
use std::time::Duration;

use serde_json::Value;

use lamina_pipelines::{OfferPlan, PipelineEvent};

use super::peer::{Peer, RoundState, MAX_EARLY_CANDIDATES};
use super::track::{Announced, Slot, Track};
use super::JoinError;
use crate::media_event::{ClientEvent, EndpointInfo, ServerEvent, TurnServerInfo};
use crate::sdp::{self, Direction};
use crate::{PeerId, TrackId, TrackKind};

/// How long a round may wait for the transport to report `connected` after its answer.
pub const ROUND_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Commands for the room pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum PipelineCommand {
    /// Create the peer's webrtcbin.
    AddPeer(PeerId),
    /// Tear the peer's part of the pipeline down.
    RemovePeer(PeerId),
    /// Apply an offer and produce an answer.
    HandleOffer {
        /// Whose offer.
        peer: PeerId,
        /// What to answer.
        plan: OfferPlan,
    },
    /// A client ICE candidate.
    AddCandidate {
        /// Whose.
        peer: PeerId,
        /// m-line index.
        mline: u32,
        /// The `candidate:` line.
        candidate: String,
    },
}

/// What the actor must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a media event to a peer.
    Push {
        /// Recipient.
        peer: PeerId,
        /// The event.
        event: ServerEvent,
    },
    /// Command the pipeline.
    Pipeline(PipelineCommand),
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

/// The room's state and decisions.
pub struct RoomCore {
    peers: BTreeMap<PeerId, Peer>,
    /// Join order, for stable listings.
    order: Vec<PeerId>,
    tracks: BTreeMap<TrackId, Track>,
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
            peers: BTreeMap::new(),
            order: Vec::new(),
            tracks: BTreeMap::new(),
            limits,
            turn,
        }
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
            ClientEvent::SdpOffer {
                sdp,
                track_metadata,
                mid_to_track_id,
            } => self.offer(from, sdp, track_metadata, mid_to_track_id, &mut fx),
            ClientEvent::Candidate {
                candidate,
                sdp_mline_index,
            } => self.candidate(from, candidate, sdp_mline_index, &mut fx),
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

    /// An event from the room pipeline.
    pub fn pipeline_event(&mut self, event: PipelineEvent) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            PipelineEvent::AnswerReady { peer, sdp } => self.answer_ready(&peer, sdp, &mut fx),
            PipelineEvent::NegotiationFailed { peer, reason } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    tracing::warn!(%peer, %reason, "negotiation failed");
                    p.round = RoundState::Idle;
                    p.pending = false;
                    fx.push(error(&peer, format!("negotiation failed: {reason}")));
                }
            }
            PipelineEvent::LocalCandidate {
                peer,
                mline,
                candidate,
            } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    if p.answered_once {
                        fx.push(push(
                            &peer,
                            ServerEvent::Candidate {
                                candidate,
                                sdp_mline_index: mline,
                            },
                        ));
                    } else {
                        p.local_candidates.push((candidate, mline));
                    }
                }
            }
            PipelineEvent::TrackPublished { peer, track, .. } => {
                tracing::debug!(%peer, %track, "media of track arrived");
            }
            PipelineEvent::PeerConnected { peer } => {
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
            PipelineEvent::PeerFailed { peer, reason } => {
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
            PipelineEvent::RoomFailed { reason } => {
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
                true
            }
            _ => false,
        };
        if ended {
            self.try_start_round(peer, &mut fx);
        }
        fx
    }

    fn owned(&self, peer: &PeerId, track: &TrackId) -> bool {
        self.tracks.get(track).is_some_and(|t| &t.owner == peer)
    }

    fn connected_others<'a>(&'a self, me: &'a PeerId) -> impl Iterator<Item = PeerId> + 'a {
        self.order
            .iter()
            .filter(move |id| *id != me && self.peers.get(*id).is_some_and(|p| p.connected))
            .cloned()
    }

    fn connect(&mut self, from: &PeerId, metadata: Value, fx: &mut Vec<Effect>) {
        if self.peers[from].connected {
            fx.push(error(from, "already connected"));
            return;
        }
        let metadata = self.enforced(from, metadata);
        let others: Vec<PeerId> = self.connected_others(from).collect();
        let mut infos = Vec::new();
        let mut announce = Vec::new();
        for o in &others {
            let tracks: Vec<&Track> = self
                .tracks
                .values()
                .filter(|t| &t.owner == o && t.announced)
                .collect();
            let list: Vec<(String, Value)> = tracks
                .iter()
                .map(|t| (t.id.to_string(), t.metadata.clone()))
                .collect();
            for t in &tracks {
                announce.push(Announced {
                    track: t.id.clone(),
                    owner: o.clone(),
                    kind: t.kind,
                    removed: false,
                });
            }
            infos.push(EndpointInfo {
                id: o.to_string(),
                metadata: self.peers[o].metadata.clone(),
                tracks: list,
            });
        }
        fx.push(Effect::Pipeline(PipelineCommand::AddPeer(from.clone())));
        fx.push(push(
            from,
            ServerEvent::Connected {
                id: from.to_string(),
                other_endpoints: infos.clone(),
            },
        ));
        // 0.5.3 drops the tracks listed in `connected`: re-announce them (protocol.md 4.3).
        for info in infos.into_iter().filter(|i| !i.tracks.is_empty()) {
            fx.push(push(
                from,
                ServerEvent::TracksAdded {
                    endpoint_id: info.id,
                    tracks: info.tracks,
                },
            ));
        }
        for o in &others {
            fx.push(push(
                o,
                ServerEvent::EndpointAdded {
                    id: from.to_string(),
                    metadata: metadata.clone(),
                },
            ));
        }
        let p = self.peers.get_mut(from).expect("peer checked above");
        p.connected = true;
        p.metadata = metadata;
        if !announce.is_empty() {
            p.announced = announce;
            p.pending = true;
        }
        self.try_start_round(from, fx);
    }

    fn update_endpoint_metadata(&mut self, from: &PeerId, metadata: Value, fx: &mut Vec<Effect>) {
        let metadata = self.enforced(from, metadata);
        let p = self.peers.get_mut(from).expect("caller checked peer");
        if p.metadata == metadata {
            return;
        }
        p.metadata = metadata.clone();
        let others: Vec<PeerId> = self.connected_others(from).collect();
        for o in others {
            fx.push(push(
                &o,
                ServerEvent::EndpointUpdated {
                    id: from.to_string(),
                    metadata: metadata.clone(),
                },
            ));
        }
    }

    fn update_track_metadata(
        &mut self,
        from: &PeerId,
        id: &TrackId,
        metadata: Value,
        fx: &mut Vec<Effect>,
    ) {
        let Some(track) = self.tracks.get_mut(id).filter(|t| &t.owner == from) else {
            fx.push(error(from, format!("unknown track {id}")));
            return;
        };
        if track.metadata == metadata {
            return;
        }
        track.metadata = metadata.clone();
        if !track.announced {
            return;
        }
        let ev = ServerEvent::TrackUpdated {
            endpoint_id: from.to_string(),
            track_id: id.to_string(),
            metadata,
        };
        self.tell_subscribers(id, ev, fx);
    }

    /// Sends `event` to every peer that was told about `track` and not told it is gone.
    fn tell_subscribers(&self, track: &TrackId, event: ServerEvent, fx: &mut Vec<Effect>) {
        for p in self.peers() {
            if p.announced.iter().any(|a| &a.track == track && !a.removed) {
                fx.push(push(&p.id, event.clone()));
            }
        }
    }

    fn candidate(&mut self, from: &PeerId, candidate: String, mline: u32, fx: &mut Vec<Effect>) {
        let p = self.peers.get_mut(from).expect("caller checked peer");
        if candidate.is_empty() {
            return; // end-of-candidates
        }
        if p.offer_applied() {
            fx.push(Effect::Pipeline(PipelineCommand::AddCandidate {
                peer: from.clone(),
                mline,
                candidate,
            }));
        } else if p.early_candidates.len() < MAX_EARLY_CANDIDATES {
            p.early_candidates.push((candidate, mline));
        } else {
            fx.push(error(from, "too many candidates before an offer"));
        }
    }

    /// Starts a round for `id` if one is wanted and none is in flight.
    fn try_start_round(&mut self, id: &PeerId, fx: &mut Vec<Effect>) {
        let Some(p) = self.peers.get_mut(id) else {
            return;
        };
        if !p.connected || !p.pending || p.round != RoundState::Idle {
            return;
        }
        // Per kind: m-lines that hold or held a track (never reused, as in Membrane: webrtcbin
        // 1.22 moves a re-activated m-line to a new DTLS transport) plus tracks still waiting
        // for one; never fewer than the client already has.
        let assigned = |t: &TrackId| p.slots.iter().any(|s| s.track.as_ref() == Some(t));
        let need = |kind: TrackKind| {
            let occupied = p
                .slots
                .iter()
                .filter(|s| s.kind == kind && (s.track.is_some() || s.used))
                .count();
            let waiting = p
                .announced
                .iter()
                .filter(|a| a.kind == kind && !assigned(&a.track))
                .count();
            occupied + waiting
        };
        let (audio, video) = (need(TrackKind::Audio), need(TrackKind::Video));
        let audio = audio.max(p.offered.0);
        let video = video.max(p.offered.1);
        p.offered = (audio, video);
        p.pending = false;
        p.round = RoundState::AwaitingOffer;
        p.round_no += 1;
        let turn_servers = self.turn.servers_for(id);
        fx.push(push(
            id,
            ServerEvent::OfferData {
                audio,
                video,
                turn_servers,
            },
        ));
    }

    fn offer(
        &mut self,
        from: &PeerId,
        sdp_text: String,
        track_metadata: BTreeMap<String, Value>,
        mid_to_track_id: BTreeMap<String, String>,
        fx: &mut Vec<Effect>,
    ) {
        if self.peers[from].round != RoundState::AwaitingOffer {
            fx.push(error(from, "sdpOffer without a pending offerData"));
            return;
        }
        match self.plan_offer(from, sdp_text, &track_metadata, &mid_to_track_id, fx) {
            Ok(plan) => {
                let p = self.peers.get_mut(from).expect("caller checked peer");
                p.round = RoundState::AwaitingAnswer;
                fx.push(Effect::Pipeline(PipelineCommand::HandleOffer {
                    peer: from.clone(),
                    plan,
                }));
                for (candidate, mline) in std::mem::take(&mut p.early_candidates) {
                    fx.push(Effect::Pipeline(PipelineCommand::AddCandidate {
                        peer: from.clone(),
                        mline,
                        candidate,
                    }));
                }
            }
            Err(message) => {
                let p = self.peers.get_mut(from).expect("caller checked peer");
                p.round = RoundState::Idle;
                fx.push(error(from, message));
            }
        }
    }

    /// Validates an offer and decides its answer; on success the room state is updated.
    fn plan_offer(
        &mut self,
        from: &PeerId,
        sdp_text: String,
        track_metadata: &BTreeMap<String, Value>,
        mid_to_track_id: &BTreeMap<String, String>,
        fx: &mut Vec<Effect>,
    ) -> Result<OfferPlan, String> {
        let summary = sdp::summarize(&sdp_text).map_err(|e| format!("invalid offer: {e}"))?;
        let p = &self.peers[from];
        let recv = |k| {
            summary
                .mlines
                .iter()
                .filter(|m| m.direction == Direction::RecvOnly && m.kind == Some(k))
                .count()
        };
        if recv(TrackKind::Audio) > p.offered.0 || recv(TrackKind::Video) > p.offered.1 {
            return Err("invalid offer: more recvonly m-lines than offerData asked for".into());
        }
        if mid_to_track_id.len() > self.limits.max_tracks_per_peer {
            return Err(format!(
                "too many tracks (limit {})",
                self.limits.max_tracks_per_peer
            ));
        }
        let prefix = format!("{from}:");
        let mut publish = Vec::new();
        for (mid, track) in mid_to_track_id {
            let mline = summary
                .mline(mid)
                .ok_or_else(|| format!("invalid offer: midToTrackId names unknown mid {mid}"))?;
            let kind = mline
                .kind
                .ok_or_else(|| format!("invalid offer: m-line {mid} is neither audio nor video"))?;
            if mline.direction != Direction::SendOnly {
                return Err(format!(
                    "invalid offer: own track on m-line {mid} is not sendonly"
                ));
            }
            if !track.starts_with(&prefix) || track.len() > 256 {
                return Err(format!(
                    "invalid track id {track}: must start with \"{prefix}\""
                ));
            }
            let id = TrackId::new(track.clone());
            if let Some(t) = self.tracks.get(&id) {
                if &t.owner != from {
                    return Err(format!("track {id} belongs to another endpoint"));
                }
            }
            publish.push((mid.clone(), id, kind));
        }

        // Unpublish what vanished from midToTrackId.
        let vanished: Vec<TrackId> = p
            .published
            .iter()
            .filter(|t| !publish.iter().any(|(_, id, _)| id == *t))
            .cloned()
            .collect();
        for q in self.remove_tracks(&vanished, fx) {
            self.try_start_round(&q, fx);
        }

        // Publish new tracks; relay metadata changes of existing ones.
        let mut new = Vec::new();
        for (mid, id, kind) in &publish {
            let metadata = track_metadata
                .get(id.as_str())
                .cloned()
                .unwrap_or(Value::Null);
            if self.tracks.contains_key(id) {
                self.update_track_metadata(from, id, metadata, fx);
                continue;
            }
            new.push(id.clone());
            self.tracks.insert(
                id.clone(),
                Track {
                    id: id.clone(),
                    owner: from.clone(),
                    kind: *kind,
                    metadata,
                    mid: mid.clone(),
                    announced: false,
                },
            );
        }

        // Assign remote tracks to recvonly m-lines.
        let p = self.peers.get_mut(from).expect("caller checked peer");
        p.published = publish.iter().map(|(_, id, _)| id.clone()).collect();
        p.publishing = new;
        let mut subscribe = Vec::new();
        for m in summary
            .mlines
            .iter()
            .filter(|m| m.direction == Direction::RecvOnly)
        {
            let Some(kind) = m.kind else { continue };
            if p.slot_mut(&m.mid).is_none() {
                p.slots.push(Slot {
                    mid: m.mid.clone(),
                    kind,
                    track: None,
                    removed: false,
                    used: false,
                });
            }
            let free = p
                .announced
                .iter()
                .find(|a| {
                    a.kind == kind && !p.slots.iter().any(|s| s.track.as_ref() == Some(&a.track))
                })
                .map(|a| (a.track.clone(), a.removed));
            let slot = p
                .slots
                .iter_mut()
                .find(|s| s.mid == m.mid)
                .expect("slot ensured");
            if slot.track.is_none() && !slot.used {
                if let Some((track, removed)) = free {
                    slot.track = Some(track);
                    slot.removed = removed;
                    slot.used = true;
                }
            }
            let live = slot.track.clone().filter(|_| !slot.removed);
            subscribe.push((m.mid.clone(), live));
        }
        let mut answer_map: BTreeMap<String, String> = publish
            .iter()
            .map(|(mid, id, _)| (mid.clone(), id.to_string()))
            .collect();
        for s in &p.slots {
            if let Some(t) = &s.track {
                answer_map.insert(s.mid.clone(), t.to_string());
            }
        }
        p.answer_map = answer_map;
        Ok(OfferPlan {
            sdp: sdp_text,
            publish: publish.into_iter().map(|(mid, id, _)| (mid, id)).collect(),
            subscribe,
        })
    }

    fn answer_ready(&mut self, id: &PeerId, sdp: String, fx: &mut Vec<Effect>) {
        let Some(p) = self.peers.get_mut(id) else {
            return;
        };
        if p.round != RoundState::AwaitingAnswer {
            return;
        }
        fx.push(push(
            id,
            ServerEvent::SdpAnswer {
                sdp,
                mid_to_track_id: p.answer_map.clone(),
            },
        ));
        p.answered_once = true;
        p.round = RoundState::AwaitingConnected;
        p.mapped = p.slots.iter().filter_map(|s| s.track.clone()).collect();
        for (candidate, mline) in std::mem::take(&mut p.local_candidates) {
            fx.push(push(
                id,
                ServerEvent::Candidate {
                    candidate,
                    sdp_mline_index: mline,
                },
            ));
        }
        fx.push(Effect::StartTimer {
            peer: id.clone(),
            round: p.round_no,
            after: ROUND_CONNECT_TIMEOUT,
        });

        // Tracks that went away while this round was in flight: mapped (inactive) by this
        // answer, so now the client may be told.
        let mut gone: BTreeMap<PeerId, Vec<String>> = BTreeMap::new();
        for s in p.slots.iter_mut().filter(|s| s.removed) {
            if let Some(t) = s.track.take() {
                s.removed = false;
                p.mapped.remove(&t);
                if let Some(pos) = p.announced.iter().position(|a| a.track == t) {
                    let a = p.announced.remove(pos);
                    gone.entry(a.owner).or_default().push(t.to_string());
                }
            }
        }
        if !gone.is_empty() {
            p.pending = true;
        }
        for (owner, track_ids) in gone {
            fx.push(push(
                id,
                ServerEvent::TracksRemoved {
                    endpoint_id: owner.to_string(),
                    track_ids,
                },
            ));
        }

        // Announce the tracks this round published.
        let new = std::mem::take(&mut p.publishing);
        if !new.is_empty() {
            let mut list = Vec::new();
            for t in &new {
                if let Some(track) = self.tracks.get_mut(t) {
                    track.announced = true;
                    list.push((track.id.clone(), track.kind));
                }
            }
            let tracks: Vec<(String, Value)> = list
                .iter()
                .map(|(t, _)| (t.to_string(), self.tracks[t].metadata.clone()))
                .collect();
            let others: Vec<PeerId> = self.connected_others(id).collect();
            for o in others {
                fx.push(push(
                    &o,
                    ServerEvent::TracksAdded {
                        endpoint_id: id.to_string(),
                        tracks: tracks.clone(),
                    },
                ));
                let q = self.peers.get_mut(&o).expect("listed peer exists");
                for (t, kind) in &list {
                    q.announced.push(Announced {
                        track: t.clone(),
                        owner: id.clone(),
                        kind: *kind,
                        removed: false,
                    });
                }
                q.pending = true;
                self.try_start_round(&o, fx);
            }
        }
    }

    /// Unpublishes tracks: subscribers that have them mapped are told now, the others after
    /// their next answer. Returns the affected subscribers, each marked as wanting a round
    /// (the caller starts them once its own messages are out).
    fn remove_tracks(&mut self, ids: &[TrackId], fx: &mut Vec<Effect>) -> Vec<PeerId> {
        let mut removed = Vec::new();
        for id in ids {
            if let Some(t) = self.tracks.remove(id) {
                removed.push(t);
            }
        }
        let mut affected = Vec::new();
        if removed.is_empty() {
            return affected;
        }
        for owner_id in removed.iter().map(|t| t.owner.clone()) {
            if let Some(owner) = self.peers.get_mut(&owner_id) {
                owner.published.retain(|t| !ids.contains(t));
                owner.publishing.retain(|t| !ids.contains(t));
            }
        }
        let subscribers: Vec<PeerId> = self.order.clone();
        for q_id in subscribers {
            let q = self.peers.get_mut(&q_id).expect("ordered peer exists");
            let mut now: BTreeMap<PeerId, Vec<String>> = BTreeMap::new();
            let mut touched = false;
            for t in &removed {
                let Some(pos) = q.announced.iter().position(|a| a.track == t.id) else {
                    continue;
                };
                touched = true;
                let in_flight = q.round == RoundState::AwaitingAnswer
                    && q.answer_map.values().any(|v| v == t.id.as_str());
                if q.mapped.contains(&t.id) && !in_flight {
                    q.mapped.remove(&t.id);
                    q.announced.remove(pos);
                    if let Some(s) = q.slots.iter_mut().find(|s| s.track.as_ref() == Some(&t.id)) {
                        s.track = None;
                    }
                    now.entry(t.owner.clone())
                        .or_default()
                        .push(t.id.to_string());
                } else {
                    q.announced[pos].removed = true;
                    if let Some(s) = q.slots.iter_mut().find(|s| s.track.as_ref() == Some(&t.id)) {
                        s.removed = true;
                    }
                }
            }
            for (owner, track_ids) in now {
                fx.push(push(
                    &q_id,
                    ServerEvent::TracksRemoved {
                        endpoint_id: owner.to_string(),
                        track_ids,
                    },
                ));
            }
            if touched {
                q.pending = true;
                affected.push(q_id);
            }
        }
        affected
    }

    fn leave_into(&mut self, id: &PeerId, fx: &mut Vec<Effect>) {
        let Some(p) = self.peers.get(id) else {
            return;
        };
        let was_connected = p.connected;
        let own: Vec<TrackId> = self
            .tracks
            .values()
            .filter(|t| &t.owner == id)
            .map(|t| t.id.clone())
            .collect();
        // Remove the peer first so no round is started for it.
        self.peers.remove(id);
        self.order.retain(|o| o != id);
        let affected = self.remove_tracks(&own, fx);
        if was_connected {
            for q in self.peers.values_mut().filter(|q| q.connected) {
                // endpointRemoved drops the endpoint's remaining tracks on the client side, so
                // tracks never mapped need no later tracksRemoved.
                q.announced.retain(|a| &a.owner != id);
                for s in q.slots.iter_mut().filter(|s| s.removed) {
                    if s.track.as_ref().is_some_and(|t| own.contains(t)) {
                        s.track = None;
                        s.removed = false;
                    }
                }
                fx.push(push(
                    &q.id,
                    ServerEvent::EndpointRemoved { id: id.to_string() },
                ));
            }
            fx.push(Effect::Pipeline(PipelineCommand::RemovePeer(id.clone())));
        }
        for q in affected {
            self.try_start_round(&q, fx);
        }
        if self.peers.is_empty() {
            fx.push(Effect::CloseRoom);
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
