//! Negotiation rounds of [`RoomCore`]: starting a round (`offerData`), planning the answer to
//! an offer (which remote track goes on which m-line), sending the answer and announcing what
//! it published, and unpublishing tracks (`tracksRemoved` now or after the next answer).

use std::collections::BTreeMap;

use serde_json::Value;

use lamina_protocol::media_event::{ClientEvent, ServerEvent, TrackInfo};
use lamina_protocol::sdp::{self, Direction};
use lamina_seam::OfferPlan;

use crate::peer::RoundState;
use crate::simulcast::{single_bps, Layers};
use crate::track::{Announced, Slot, Track};
use crate::ROUND_CONNECT_TIMEOUT;
use crate::{error, push, Effect, MediaCommand, Outcome, PeerId, RoomCore, TrackId, TrackKind};

impl RoomCore {
    /// The media graph refused `cmd` outright (its peer or the graph is gone): an offer's round
    /// fails, any other command fails the peer.
    pub fn media_refused(
        &mut self,
        cmd: &MediaCommand,
        error: lamina_seam::MediaError,
    ) -> Vec<Effect> {
        let reason = error.to_string();
        match cmd {
            MediaCommand::HandleOffer { peer, .. } => {
                let mut fx = vec![Effect::Report(Outcome::Refused)];
                if let Some(p) = self.peers.get_mut(peer) {
                    tracing::warn!(%peer, %reason, "offer refused by the media graph");
                    p.round = RoundState::Idle;
                    p.pending = false;
                    fx.push(crate::error(peer, format!("negotiation failed: {reason}")));
                }
                fx
            }
            MediaCommand::AddPeer(peer)
            | MediaCommand::RemovePeer(peer)
            | MediaCommand::AddCandidate { peer, .. } => {
                let mut fx = Vec::new();
                if self.peers.contains_key(peer) {
                    let message = format!("media connection failed: {reason}");
                    fx.push(crate::error(peer, message.clone()));
                    self.leave_into(peer, &mut fx);
                    fx.push(Effect::Disconnect {
                        peer: peer.clone(),
                        error: Some(message),
                    });
                }
                fx
            }
            // A layer choice the graph could not take: the next decision retries.
            MediaCommand::SelectLayer { peer, track, .. } => {
                tracing::debug!(%peer, %track, %reason, "layer selection refused");
                self.layer_refused(peer, track);
                Vec::new()
            }
            // Estimation goes on from its own value.
            MediaCommand::SeedDownlinkEstimate { peer, .. } => {
                tracing::debug!(%peer, %reason, "estimate seed refused");
                Vec::new()
            }
        }
    }

    /// Starts a round for `id` if one is wanted and none is in flight.
    pub(super) fn try_start_round(&mut self, id: &PeerId, fx: &mut Vec<Effect>) {
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

    /// A client's `sdpOffer` (`offer` is a [`ClientEvent::SdpOffer`]).
    pub(super) fn offer(&mut self, from: &PeerId, offer: ClientEvent, fx: &mut Vec<Effect>) {
        let round = self.peers[from].round;
        if round != RoundState::AwaitingOffer {
            if round == RoundState::Idle {
                fx.push(Effect::Report(Outcome::InvalidOffer));
            }
            fx.push(error(from, "sdpOffer without a pending offerData"));
            return;
        }
        match self.plan_offer(from, offer, fx) {
            Ok(plan) => {
                let p = self.peers.get_mut(from).expect("caller checked peer");
                p.round = RoundState::AwaitingAnswer;
                p.offer_handed = true;
                fx.push(Effect::Media(MediaCommand::HandleOffer {
                    peer: from.clone(),
                    plan,
                }));
                for (candidate, mline) in std::mem::take(&mut p.early_candidates) {
                    fx.push(Effect::Media(MediaCommand::AddCandidate {
                        peer: from.clone(),
                        mline,
                        candidate,
                    }));
                }
            }
            Err(message) => {
                let p = self.peers.get_mut(from).expect("caller checked peer");
                p.round = RoundState::Idle;
                fx.push(Effect::Report(Outcome::InvalidOffer));
                fx.push(error(from, message));
            }
        }
    }

    /// Validates an offer and decides its answer; on success the room state is updated.
    pub(super) fn plan_offer(
        &mut self,
        from: &PeerId,
        offer: ClientEvent,
        fx: &mut Vec<Effect>,
    ) -> Result<OfferPlan, String> {
        let ClientEvent::SdpOffer {
            sdp: sdp_text,
            track_metadata,
            mid_to_track_id,
            track_bitrates,
        } = offer
        else {
            return Err(format!("not an offer: {}", offer.kind()));
        };
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
        for (mid, track) in &mid_to_track_id {
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
            if publish.iter().any(|(_, t, _)| t == &id) {
                return Err(format!(
                    "invalid offer: track {id} is on more than one m-line"
                ));
            }
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

        // Publish new tracks; relay metadata and bit rate changes of existing ones.
        let mut new = Vec::new();
        let mut bitrates_changed = false;
        for (mid, id, kind) in &publish {
            let metadata = track_metadata
                .get(id.as_str())
                .cloned()
                .unwrap_or(Value::Null);
            let declared = track_bitrates.get(id.as_str());
            if let Some(t) = self.tracks.get_mut(id) {
                let bitrate = single_bps(t.kind, declared);
                bitrates_changed |= t.bitrate != bitrate;
                t.bitrate = bitrate;
                if let Some(l) = t.simulcast.as_mut() {
                    bitrates_changed |= l.set_bitrates(declared);
                }
                self.update_track_metadata(from, id, metadata, fx);
                continue;
            }
            // At least two send RIDs on the m-line (`MLine::rids` is empty otherwise).
            let rids = summary
                .mline(mid)
                .map(|m| m.rids.clone())
                .unwrap_or_default();
            let simulcast = (rids.len() >= 2).then(|| {
                let mut l = Layers::new(rids);
                l.set_bitrates(declared);
                l
            });
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
                    simulcast,
                    bitrate: single_bps(*kind, declared),
                },
            );
        }
        if bitrates_changed {
            self.select_layers_all(fx);
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
            summary,
            publish: publish.into_iter().map(|(mid, id, _)| (mid, id)).collect(),
            subscribe,
        })
    }

    pub(super) fn answer_ready(&mut self, id: &PeerId, sdp: String, fx: &mut Vec<Effect>) {
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
        p.round = RoundState::AwaitingConnected;
        p.mapped = p.slots.iter().filter_map(|s| s.track.clone()).collect();
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
            let tracks: Vec<TrackInfo> = list.iter().map(|(t, _)| self.tracks[t].info()).collect();
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

        // The tracks this answer maps are received from now on: their first layer choice.
        self.select_layers(id, fx);
    }

    /// Unpublishes tracks: subscribers that have them mapped are told now, the others after
    /// their next answer. Returns the affected subscribers, each marked as wanting a round
    /// (the caller starts them once its own messages are out).
    pub(super) fn remove_tracks(&mut self, ids: &[TrackId], fx: &mut Vec<Effect>) -> Vec<PeerId> {
        let mut removed = Vec::new();
        for id in ids {
            if let Some(t) = self.tracks.remove(id) {
                self.speakers.forget(id);
                removed.push(t);
            }
        }
        let mut affected = Vec::new();
        if removed.is_empty() {
            return affected;
        }
        self.forget_layers_of(ids);
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
        // Freed downlink share, maybe another active speaker.
        self.select_layers_all(fx);
        affected
    }
}
