//! Simulcast in [`RoomCore`]: each subscriber's wishes (`setTargetTrackVariant`) and downlink
//! estimate, the layer decisions ([`crate::simulcast::decide`]) sent to the media graph as
//! `MediaCommand::SelectLayer` whenever they change, and what the clients are told
//! (`encodingSwitched`, `bandwidthEstimation`).
//!
//! A subscriber *receives* a track once an answer sent to it maps the track (`Peer::mapped`):
//! its first decision goes out right after that answer (the media graph keeps the choice for
//! the link it opens when the transport connects; until a choice it forwards the highest
//! layer). Decisions are taken again on every input they depend on: the track's active layers,
//! the wish, the estimate, the active speaker, track metadata, bit rates, tracks going away.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use lamina_protocol::media_event::ServerEvent;

use crate::downlink::Receiving;
use crate::outcome::LayerRequestDrop;
use crate::peer::Peer;
use crate::rate::{Decision, RateLimiter};
use crate::simulcast::{decide, Choice, Layers, Received, SwitchReason};
use crate::track::Track;
use crate::{push, Effect, MediaCommand, MediaEvent, Outcome, PeerId, RoomCore, TrackId};

/// `setTargetTrackVariant` requests one peer may make per second, sustained (bursts of twice
/// that); the excess is dropped and counted.
pub const LAYER_REQUESTS_PER_SEC: u32 = 10;

/// Least time between two `bandwidthEstimation`s to one peer.
pub const ESTIMATE_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Least change of the estimate, in percent of the last one sent, worth a new
/// `bandwidthEstimation`.
pub const ESTIMATE_REPORT_CHANGE_PERCENT: u64 = 10;

/// Whether track metadata says screen share (`{"type": "screensharing"}`).
fn is_screen_share(metadata: &Value) -> bool {
    metadata.get("type").and_then(Value::as_str) == Some("screensharing")
}

/// Whether `bps` differs enough from the last reported value to be reported.
fn notable(last: u64, bps: u64) -> bool {
    let diff = last.abs_diff(bps);
    diff > 0 && diff.saturating_mul(100) >= last.saturating_mul(ESTIMATE_REPORT_CHANGE_PERCENT)
}

impl RoomCore {
    /// `LayersActive`, `LayerSwitched`, `DownlinkEstimate`, `DownlinkLoss` and `LayerBitrates`
    /// from the media graph.
    pub(crate) fn layer_event(&mut self, event: MediaEvent, fx: &mut Vec<Effect>) {
        match event {
            MediaEvent::LayersActive { track, layers } => self.layers_active(&track, layers, fx),
            MediaEvent::LayerSwitched { peer, track, layer } => {
                self.layer_switched(&peer, &track, layer, fx)
            }
            MediaEvent::DownlinkEstimate { peer, bps } => self.downlink_estimate(&peer, bps, fx),
            MediaEvent::DownlinkLoss { peer, fraction } => self.downlink_loss(&peer, fraction, fx),
            MediaEvent::LayerBitrates { track, bitrates } => {
                self.layer_bitrates(&track, &bitrates, fx)
            }
            _ => {}
        }
    }

    /// `setTargetTrackVariant`: records the wish and decides again. Dropped (debug log and
    /// [`Outcome::LayerRequestDropped`], never an `error`) over the rate limit, for a track
    /// that is unknown, not announced to the peer or not simulcast, and for a variant that is
    /// not one of its RIDs.
    pub(crate) fn set_target_variant(
        &mut self,
        from: &PeerId,
        track: String,
        variant: String,
        fx: &mut Vec<Effect>,
    ) {
        let now = self.now;
        let track = TrackId::new(track);
        let downlink = self.downlinks.entry(from.clone()).or_default();
        let budget = downlink
            .requests
            .get_or_insert_with(|| RateLimiter::new(LAYER_REQUESTS_PER_SEC, now));
        let told = self
            .peers
            .get(from)
            .is_some_and(|p| p.announced.iter().any(|a| a.track == track && !a.removed));
        let drop = if budget.check(now) != Decision::Allow {
            Some(LayerRequestDrop::RateLimited)
        } else {
            match self.tracks.get(&track) {
                None => Some(LayerRequestDrop::UnknownTrack),
                Some(_) if !told => Some(LayerRequestDrop::NotAnnounced),
                Some(t) => match &t.simulcast {
                    None => Some(LayerRequestDrop::NotSimulcast),
                    Some(l) if l.index(&variant).is_none() => {
                        Some(LayerRequestDrop::UnknownVariant)
                    }
                    Some(_) => None,
                },
            }
        };
        if let Some(why) = drop {
            tracing::debug!(peer = %from, %track, %variant, reason = why.as_str(),
                "setTargetTrackVariant dropped");
            fx.push(Effect::Report(Outcome::LayerRequestDropped(why)));
            return;
        }
        let receiving = downlink.tracks.entry(track).or_default();
        if receiving.wish.as_deref() != Some(variant.as_str()) {
            receiving.wish = Some(variant);
            self.select_layers(from, fx);
        }
    }

    /// `LayersActive`: the track's arriving layers changed; its subscribers' layers are decided
    /// again.
    pub(crate) fn layers_active(
        &mut self,
        track: &TrackId,
        layers: Vec<String>,
        fx: &mut Vec<Effect>,
    ) {
        let Some(l) = self.layers_mut(track) else {
            return;
        };
        let active: Vec<String> = l
            .rids
            .iter()
            .filter(|r| layers.contains(r))
            .cloned()
            .collect();
        if l.active.as_ref() == Some(&active) {
            return;
        }
        tracing::debug!(%track, ?active, "simulcast layers arriving");
        l.active = Some(active);
        self.select_layers_of(track, false, fx);
    }

    /// `LayerBitrates`: the measured rates of a track's layers; its subscribers with a
    /// downlink budget are decided again when a rate moved notably.
    pub(crate) fn layer_bitrates(
        &mut self,
        track: &TrackId,
        bitrates: &[(String, u64)],
        fx: &mut Vec<Effect>,
    ) {
        let Some(l) = self.layers_mut(track) else {
            return;
        };
        if !l.set_measured(bitrates) {
            return;
        }
        tracing::debug!(%track, ?bitrates, "layer rates measured");
        self.select_layers_of(track, true, fx);
    }

    /// The layers of a simulcast track.
    fn layers_mut(&mut self, track: &TrackId) -> Option<&mut Layers> {
        self.tracks.get_mut(track)?.simulcast.as_mut()
    }

    /// [`RoomCore::select_layers`] for every subscriber of `track` (with `budgeted`, only
    /// those with a downlink budget: the others' choice does not depend on bit rates).
    fn select_layers_of(&mut self, track: &TrackId, budgeted: bool, fx: &mut Vec<Effect>) {
        let now = self.now;
        let subscribers: Vec<PeerId> = self
            .peers()
            .filter(|p| p.mapped.contains(track))
            .map(|p| p.id.clone())
            .filter(|p| {
                !budgeted
                    || self
                        .downlinks
                        .get(p)
                        .is_some_and(|d| d.budget(now).is_some())
            })
            .collect();
        for peer in subscribers {
            self.select_layers(&peer, fx);
        }
    }

    /// `LayerSwitched`: `encodingSwitched` to the subscriber, with the reason of the decision
    /// that chose the layer (`"other"` if none did), if it was told about the track.
    pub(crate) fn layer_switched(
        &mut self,
        peer: &PeerId,
        track: &TrackId,
        layer: String,
        fx: &mut Vec<Effect>,
    ) {
        tracing::debug!(%peer, %track, layer, "layer switched");
        let Some(t) = self.tracks.get(track) else {
            return;
        };
        let known_layer = t
            .simulcast
            .as_ref()
            .is_some_and(|l| l.index(&layer).is_some());
        let told = self
            .peers
            .get(peer)
            .is_some_and(|p| p.announced.iter().any(|a| &a.track == track && !a.removed));
        if !known_layer || !told {
            return;
        }
        let receiving = self
            .downlinks
            .entry(peer.clone())
            .or_default()
            .tracks
            .entry(track.clone())
            .or_default();
        receiving.switched = Some(layer.clone());
        let reason = receiving
            .chosen
            .as_ref()
            .filter(|c| c.layer == layer)
            .map_or(SwitchReason::Other, |c| c.reason);
        fx.push(push(
            peer,
            ServerEvent::EncodingSwitched {
                endpoint_id: t.owner.to_string(),
                track_id: track.to_string(),
                encoding: layer,
                reason: reason.as_str().into(),
            },
        ));
    }

    /// `DownlinkEstimate`: stored, layers decided again, and `bandwidthEstimation` to the peer
    /// on the first estimate or a change of at least [`ESTIMATE_REPORT_CHANGE_PERCENT`] since
    /// the last one sent, at most once per [`ESTIMATE_REPORT_INTERVAL`].
    pub(crate) fn downlink_estimate(&mut self, peer: &PeerId, bps: u64, fx: &mut Vec<Effect>) {
        if !self.peers.get(peer).is_some_and(|p| p.connected) {
            return;
        }
        tracing::debug!(%peer, bps, "downlink estimate");
        let now = self.now;
        let downlink = self.downlinks.entry(peer.clone()).or_default();
        let changed = downlink.take_estimate(now, bps);
        let report = match downlink.reported {
            None => true,
            Some((last, at)) => {
                now.saturating_duration_since(at) >= ESTIMATE_REPORT_INTERVAL && notable(last, bps)
            }
        };
        if report {
            downlink.reported = Some((bps, now));
            fx.push(push(
                peer,
                ServerEvent::BandwidthEstimation { estimation: bps },
            ));
        }
        if changed {
            self.select_layers(peer, fx);
        }
    }

    /// `DownlinkLoss`: a loss cut ([`crate::downlink::Downlink::loss_cut`]) and the layers
    /// decided again. The estimator's loss controller takes a second or more to come down; a
    /// policed link drops nearly every packet of the high layers until then, and the picture
    /// freezes.
    pub(crate) fn downlink_loss(&mut self, peer: &PeerId, fraction: f64, fx: &mut Vec<Effect>) {
        if !self.peers.get(peer).is_some_and(|p| p.connected) {
            return;
        }
        let now = self.now;
        let sent = self.sent_bps(peer);
        tracing::debug!(%peer, fraction, sent, "downlink loss");
        let cut = self
            .downlinks
            .entry(peer.clone())
            .or_default()
            .loss_cut(now, fraction, sent);
        if cut {
            tracing::debug!(%peer, "layers cut for loss");
            self.select_layers(peer, fx);
        }
    }

    /// What `peer` is being sent, as layer decisions cost it: the chosen layer of each
    /// simulcast track, the bit rate of the others.
    fn sent_bps(&self, peer: &PeerId) -> u64 {
        let downlink = self.downlinks.get(peer);
        Self::received_tracks(&self.peers, &self.tracks, peer)
            .iter()
            .map(|t| {
                let chosen = downlink
                    .and_then(|d| d.tracks.get(&t.id))
                    .and_then(|r| r.chosen.as_ref());
                match (&t.simulcast, chosen) {
                    (Some(layers), Some(c)) => layers.index(&c.layer).map_or(0, |i| layers.cost(i)),
                    (Some(layers), None) => layers
                        .rids
                        .len()
                        .checked_sub(1)
                        .map_or(0, |i| layers.cost(i)),
                    (None, _) => t.bitrate,
                }
            })
            .sum()
    }

    /// The tracks `peer` receives (mapped by an answer, not removed), from the room's `peers`
    /// and `tracks` (fields, so the caller may still change the others).
    fn received_tracks<'a>(
        peers: &'a BTreeMap<PeerId, Peer>,
        tracks: &'a BTreeMap<TrackId, Track>,
        peer: &PeerId,
    ) -> Vec<&'a Track> {
        let Some(p) = peers.get(peer) else {
            return Vec::new();
        };
        p.slots
            .iter()
            .filter(|s| !s.removed)
            .filter_map(|s| s.track.as_ref())
            .filter(|t| p.mapped.contains(*t))
            .filter_map(|t| tracks.get(t))
            .collect()
    }

    /// Decides the layer of every simulcast track `peer` receives; a `SelectLayer` for each
    /// whose layer differs from the last one sent (or was never sent).
    pub(crate) fn select_layers(&mut self, peer: &PeerId, fx: &mut Vec<Effect>) {
        let received = Self::received_tracks(&self.peers, &self.tracks, peer);
        if received.iter().all(|t| t.simulcast.is_none()) {
            return;
        }
        let speaker = self
            .speakers
            .active()
            .and_then(|t| self.tracks.get(t))
            .map(|t| &t.owner);
        let now = self.now;
        let sent = self.sent_bps(peer);
        let (probed, seed) = self
            .downlinks
            .get_mut(peer)
            .map(|d| (d.probe_track(now, &received, sent), d.take_seed()))
            .unwrap_or_default();
        if let Some(bps) = seed {
            fx.push(Effect::Media(MediaCommand::SeedDownlinkEstimate {
                peer: peer.clone(),
                bps,
            }));
        }
        let downlink = self.downlinks.get(peer);
        let inputs: Vec<Received<'_>> = received
            .iter()
            .map(|t| {
                let receiving = downlink.and_then(|d| d.tracks.get(&t.id));
                Received {
                    kind: t.kind,
                    layers: t.simulcast.as_ref(),
                    bps: t.bitrate,
                    wish: receiving.and_then(|r| r.wish.as_deref()),
                    priority: is_screen_share(&t.metadata) || speaker == Some(&t.owner),
                    current: receiving
                        .and_then(|r| r.chosen.as_ref())
                        .zip(t.simulcast.as_ref())
                        .and_then(|(c, l)| l.index(&c.layer)),
                    probe: probed
                        .as_ref()
                        .and_then(|(id, layer)| (id == &t.id).then_some(*layer)),
                }
            })
            .collect();
        let budget = downlink.and_then(|d| d.budget(now));
        // A link dropping packets now (loss cut, sharp drop): a switch down stops the current
        // layer at once instead of crowding out the new layer's keyframe.
        let congested = downlink.is_some_and(|d| d.congested(now));
        let choices = decide(budget, &inputs);
        // Per decided track: its id, the choice, and whether it is lower than the last one.
        let decided: Vec<(TrackId, Choice, bool)> = received
            .iter()
            .zip(inputs.iter())
            .zip(choices)
            .filter_map(|((t, input), c)| {
                let c = c?;
                let lower = t
                    .simulcast
                    .as_ref()
                    .and_then(|l| l.index(&c.layer))
                    .zip(input.current)
                    .is_some_and(|(new, old)| new < old);
                Some((t.id.clone(), c, lower))
            })
            .collect();
        let downlink = self.downlinks.entry(peer.clone()).or_default();
        for (track, choice, lower) in decided {
            let receiving = downlink.tracks.entry(track.clone()).or_default();
            if receiving.chosen.as_ref().map(|c| &c.layer) != Some(&choice.layer) {
                let urgent = congested && lower;
                tracing::debug!(%peer, %track, layer = %choice.layer, urgent,
                    reason = choice.reason.as_str(), "simulcast layer chosen");
                fx.push(Effect::Media(MediaCommand::SelectLayer {
                    peer: peer.clone(),
                    track,
                    layer: choice.layer.clone(),
                    urgent,
                }));
            }
            receiving.chosen = Some(choice);
        }
    }

    /// Re-decides the layers of the subscribers whose bandwidth probe may start or end now
    /// (the actor calls it a few times a second; see `Downlink::probe_due`).
    pub fn tick(&mut self) -> Vec<Effect> {
        let now = self.now;
        let due: Vec<PeerId> = self
            .downlinks
            .iter()
            .filter(|(_, d)| d.probe_due(now))
            .map(|(p, _)| p.clone())
            .collect();
        let mut fx = Vec::new();
        for peer in due {
            self.select_layers(&peer, &mut fx);
        }
        fx
    }

    /// [`RoomCore::select_layers`] for every peer.
    pub(crate) fn select_layers_all(&mut self, fx: &mut Vec<Effect>) {
        let peers: Vec<PeerId> = self.order.clone();
        for peer in peers {
            self.select_layers(&peer, fx);
        }
    }

    /// The media graph refused a `SelectLayer`: forget the choice so the next decision sends
    /// it again.
    pub(crate) fn layer_refused(&mut self, peer: &PeerId, track: &TrackId) {
        if let Some(r) = self
            .downlinks
            .get_mut(peer)
            .and_then(|d| d.tracks.get_mut(track))
        {
            r.chosen = None;
        }
    }

    /// Forgets the simulcast state of tracks that are gone.
    pub(crate) fn forget_layers_of(&mut self, tracks: &[TrackId]) {
        for d in self.downlinks.values_mut() {
            d.tracks.retain(|t, _| !tracks.contains(t));
        }
    }

    /// Each simulcast track `peer` was told about or receives: its wish, the chosen layer and
    /// reason, the layer the media graph reported (for `/debug/rooms`).
    pub fn receiving(&self, peer: &PeerId) -> impl Iterator<Item = (&TrackId, &Receiving)> {
        self.downlinks
            .get(peer)
            .into_iter()
            .flat_map(|d| d.tracks.iter())
    }

    /// The media graph's latest estimate of the peer's downlink, bit/s.
    pub fn downlink(&self, peer: &PeerId) -> Option<u64> {
        self.downlinks.get(peer).and_then(|d| d.estimate)
    }

    /// The simulcast part of a peer's `/debug/rooms` entry: `{"downlinkEstimate": bps|null,
    /// "layers": [{"track", "wish", "layer", "reason", "switched"}]}`.
    pub fn describe_layers(&self, peer: &PeerId) -> Value {
        let layers: Vec<Value> = self
            .receiving(peer)
            .map(|(t, r)| {
                json!({
                    "track": t.as_str(),
                    "wish": r.wish,
                    "layer": r.chosen.as_ref().map(|c| c.layer.as_str()),
                    "reason": r.chosen.as_ref().map(|c| c.reason.as_str()),
                    "switched": r.switched,
                })
            })
            .collect();
        json!({"downlinkEstimate": self.downlink(peer), "layers": layers})
    }
}
