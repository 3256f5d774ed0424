//! Membership of [`RoomCore`]: a peer connecting (`connected`, `endpointAdded`), its
//! endpoint and track metadata updates, its ICE candidates, and its leaving (tracks removed,
//! `endpointRemoved`, the room closed when the last one goes).

use serde_json::Value;

use lamina_protocol::media_event::{EndpointInfo, ServerEvent, TrackInfo};

use crate::peer::MAX_EARLY_CANDIDATES;
use crate::track::{Announced, Track};
use crate::{error, push, Effect, MediaCommand, PeerId, RoomCore, TrackId, TrackKind};

impl RoomCore {
    pub(crate) fn owned(&self, peer: &PeerId, track: &TrackId) -> bool {
        self.tracks.get(track).is_some_and(|t| &t.owner == peer)
    }

    pub(crate) fn connected_others<'a>(
        &'a self,
        me: &'a PeerId,
    ) -> impl Iterator<Item = PeerId> + 'a {
        self.order
            .iter()
            .filter(move |id| *id != me && self.peers.get(*id).is_some_and(|p| p.connected))
            .cloned()
    }

    pub(crate) fn connect(&mut self, from: &PeerId, metadata: Value, fx: &mut Vec<Effect>) {
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
            let list: Vec<TrackInfo> = tracks.iter().map(|t| t.info()).collect();
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
        fx.push(Effect::Media(MediaCommand::AddPeer(from.clone())));
        fx.push(push(
            from,
            ServerEvent::Connected {
                id: from.to_string(),
                other_endpoints: infos.clone(),
            },
        ));
        // 0.5.3 drops the tracks listed in `connected`: re-announce them (docs/protocol.md §4.3).
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

    pub(crate) fn update_endpoint_metadata(
        &mut self,
        from: &PeerId,
        metadata: Value,
        fx: &mut Vec<Effect>,
    ) {
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

    pub(crate) fn update_track_metadata(
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
        let video = track.kind == TrackKind::Video;
        let ev = ServerEvent::TrackUpdated {
            endpoint_id: from.to_string(),
            track_id: id.to_string(),
            metadata,
        };
        self.tell_subscribers(id, ev, fx);
        if video {
            // A screen share is served first on a short downlink.
            self.select_layers_all(fx);
        }
    }

    /// Sends `event` to every peer that was told about `track` and not told it is gone.
    pub(crate) fn tell_subscribers(
        &self,
        track: &TrackId,
        event: ServerEvent,
        fx: &mut Vec<Effect>,
    ) {
        for p in self.peers() {
            if p.announced.iter().any(|a| &a.track == track && !a.removed) {
                fx.push(push(&p.id, event.clone()));
            }
        }
    }

    pub(crate) fn candidate(
        &mut self,
        from: &PeerId,
        candidate: String,
        mline: u32,
        fx: &mut Vec<Effect>,
    ) {
        let p = self.peers.get_mut(from).expect("caller checked peer");
        if candidate.is_empty() {
            return; // end-of-candidates
        }
        if p.offer_applied() {
            fx.push(Effect::Media(MediaCommand::AddCandidate {
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

    pub(crate) fn leave_into(&mut self, id: &PeerId, fx: &mut Vec<Effect>) {
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
        self.downlinks.remove(id);
        self.metadata_rate.remove(id);
        self.chat_rate.remove(id);
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
            fx.push(Effect::Media(MediaCommand::RemovePeer(id.clone())));
        }
        for q in affected {
            self.try_start_round(&q, fx);
        }
        if self.peers.is_empty() {
            fx.push(Effect::CloseRoom);
        }
    }
}
