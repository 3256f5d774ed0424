//! [`Forwarding`]: the room's published tracks, their forwarders, and the links from each
//! forwarder to its subscribers' m-lines.
//!
//! Owned here: which tracks exist (one forwarder each), who subscribes to which on which
//! m-line, and forwarders kept as a sink of a publisher pad that is not idle yet (`retired`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use gst::prelude::*;

use crate::codecs::Codec;
use crate::forwarder::Forwarder;
use crate::ids::{PeerId, TrackId};
use crate::port::TrackInfo;

/// One forwarded link: forwarder output → subscriber m-line.
#[derive(Debug)]
pub(crate) struct Link {
    /// The forwarded track.
    pub track: TrackId,
    /// The forwarder's output pad.
    pub fwd_pad: gst::Pad,
}

/// A published track.
#[derive(Debug)]
struct Track {
    publisher: PeerId,
    mline: u32,
    codec: Codec,
    fwd: Forwarder,
    /// Subscriber (peer, m-line) → the forwarder output feeding it.
    subscribers: BTreeMap<(PeerId, u32), gst::Pad>,
    /// Simulcast layers (RIDs, low to high); empty for a single stream.
    rids: Vec<String>,
    /// The layer chosen for each subscriber (`MediaCommand::SelectLayer`).
    layers: HashMap<PeerId, String>,
    /// The forwarder's `layer-bytes` at the last measurement, and when.
    last_bytes: Option<(std::time::Instant, HashMap<String, u64>)>,
}

impl Track {
    /// The layer a new or existing output of `peer` forwards: its chosen one, else the highest.
    fn layer_for(&self, peer: &PeerId) -> Option<&str> {
        self.layers
            .get(peer)
            .map(String::as_str)
            .or(self.rids.last().map(String::as_str))
    }
}

/// A track being unpublished, for the caller to finish.
#[derive(Debug)]
pub(crate) struct Unpublished {
    /// Who published it.
    pub publisher: PeerId,
    /// Its m-line on the publisher.
    pub mline: u32,
    /// Its subscribers' (peer, m-line), whose links the caller closes.
    pub subscribers: Vec<(PeerId, u32)>,
    /// The forwarder, for the caller to remove or retire.
    pub fwd: Forwarder,
}

/// The room's tracks and links.
#[derive(Debug, Default)]
pub(crate) struct Forwarding {
    tracks: HashMap<TrackId, Track>,
    /// Forwarders of unpublished tracks whose publisher pad still exists.
    retired: HashMap<TrackId, (PeerId, Forwarder)>,
}

impl Forwarding {
    /// True when `track` has a forwarder (live or retired).
    pub(crate) fn knows(&self, track: &TrackId) -> bool {
        self.tracks.contains_key(track) || self.retired.contains_key(track)
    }

    /// The track's codec and publisher, if it is live.
    pub(crate) fn source(&self, track: &TrackId) -> Option<(&Codec, &PeerId)> {
        self.tracks.get(track).map(|t| (&t.codec, &t.publisher))
    }

    /// Live tracks, for branches.
    pub(crate) fn infos(&self) -> Vec<TrackInfo> {
        self.tracks
            .iter()
            .map(|(id, t)| TrackInfo {
                id: id.clone(),
                kind: t.codec.kind,
                codec: t.codec.encoding_name.clone(),
            })
            .collect()
    }

    /// Live tracks published by `peer`.
    pub(crate) fn published_by(&self, peer: &PeerId) -> Vec<TrackId> {
        self.tracks
            .iter()
            .filter(|(_, t)| &t.publisher == peer)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Creates and starts `fwd-<track>` in `pipeline`; returns its sink pad. `simulcast` is the
    /// track's layers (RIDs, low to high; empty for a single stream) and the id of the RID
    /// header extension the layers carry.
    pub(crate) fn publish(
        &mut self,
        pipeline: &gst::Pipeline,
        track: &TrackId,
        publisher: &PeerId,
        mline: u32,
        codec: Codec,
        simulcast: (&[String], Option<u32>),
    ) -> Result<gst::Pad, String> {
        let (rids, rid_ext) = simulcast;
        let fwd = Forwarder::new(track).map_err(|e| e.to_string())?;
        if let (false, Some(ext)) = (rids.is_empty(), rid_ext) {
            fwd.set_simulcast(rids, ext);
        }
        if pipeline.add(fwd.element()).is_err() || fwd.element().sync_state_with_parent().is_err() {
            let _ = pipeline.remove(fwd.element());
            return Err("cannot start forwarder".into());
        }
        let sink = fwd.sink_pad();
        self.tracks.insert(
            track.clone(),
            Track {
                publisher: publisher.clone(),
                mline,
                codec,
                fwd,
                subscribers: BTreeMap::new(),
                rids: rids.to_vec(),
                layers: HashMap::new(),
                last_bytes: None,
            },
        );
        Ok(sink)
    }

    /// Sends `layer` of simulcast `track` to `peer` from now on (switching on the layer's next
    /// keyframe). False when the track is not a simulcast track or has no such layer.
    pub(crate) fn select_layer(
        &mut self,
        track: &TrackId,
        peer: &PeerId,
        layer: &str,
        urgent: bool,
    ) -> bool {
        let Some(t) = self.tracks.get_mut(track) else {
            return false;
        };
        if !t.rids.iter().any(|r| r == layer) {
            return false;
        }
        t.layers.insert(peer.clone(), layer.to_owned());
        for ((sub, _), pad) in &t.subscribers {
            if sub == peer {
                Forwarder::set_layer(pad, layer, urgent);
            }
        }
        true
    }

    /// Measures the layer bitrates of every simulcast track since the last call: `(track,
    /// [(rid, bit/s)])` for the tracks measured before (a first call only takes the counts).
    pub(crate) fn layer_rates(
        &mut self,
        now: std::time::Instant,
    ) -> Vec<(TrackId, Vec<(String, u64)>)> {
        let mut out = Vec::new();
        for (id, t) in self.tracks.iter_mut().filter(|(_, t)| !t.rids.is_empty()) {
            let bytes = t.fwd.layer_bytes();
            if let Some((at, before)) = &t.last_bytes {
                let secs = now.saturating_duration_since(*at).as_secs_f64();
                if secs > 0.0 {
                    let rates = bytes
                        .iter()
                        .map(|(rid, b)| {
                            let delta = b.saturating_sub(before.get(rid).copied().unwrap_or(*b));
                            (rid.clone(), (delta as f64 * 8.0 / secs) as u64)
                        })
                        .collect();
                    out.push((id.clone(), rates));
                }
            }
            t.last_bytes = Some((now, bytes.into_iter().collect()));
        }
        out
    }

    /// The subscriber fed by output `pad` (by name) of `track`'s forwarder.
    pub(crate) fn subscriber_of(&self, track: &TrackId, pad: &str) -> Option<PeerId> {
        let t = self.tracks.get(track)?;
        t.subscribers
            .iter()
            .find(|(_, p)| p.name() == pad)
            .map(|((peer, _), _)| peer.clone())
    }

    /// Links a new gated output of `track` (rewriting to `pt`/`ssrc`, with the subscriber's
    /// TWCC header extension id if any) to `sink`, which may be inside a peer's bin (the link
    /// checks caps, not the hierarchy).
    pub(crate) fn link(
        &mut self,
        track: &TrackId,
        subscriber: (&PeerId, u32),
        (pt, ssrc, twcc_ext): (u32, u32, Option<u32>),
        sink: &gst::Pad,
    ) -> Result<Link, String> {
        let t = self.tracks.get_mut(track).ok_or("unknown track")?;
        let fwd_pad = t
            .fwd
            .request_src(pt, ssrc)
            .ok_or("forwarder refused a pad")?;
        if let Some(layer) = t.layer_for(subscriber.0) {
            Forwarder::set_layer(&fwd_pad, layer, false);
        }
        if let Some(id) = twcc_ext {
            Forwarder::set_twcc_ext(&fwd_pad, id);
        }
        if let Err(e) = fwd_pad.link_full(sink, gst::PadLinkCheck::CAPS) {
            t.fwd.release_src(&fwd_pad);
            return Err(format!("cannot link forwarder to subscriber: {e:?}"));
        }
        t.subscribers
            .insert((subscriber.0.clone(), subscriber.1), fwd_pad.clone());
        Ok(Link {
            track: track.clone(),
            fwd_pad,
        })
    }

    /// Closes a subscriber link in the safe order.
    pub(crate) fn unlink(&mut self, subscriber: (&PeerId, u32), link: Link) {
        if let Some(t) = self.tracks.get_mut(&link.track) {
            t.subscribers.remove(&(subscriber.0.clone(), subscriber.1));
            if !t.subscribers.keys().any(|(p, _)| p == subscriber.0) {
                t.layers.remove(subscriber.0);
            }
            t.fwd.release_src(&link.fwd_pad);
        }
    }

    /// Opens a link's gate. Returns when to ask for a keyframe again, if the forwarder's
    /// throttle swallowed the request that opening makes.
    pub(crate) fn open(&self, track: &TrackId, pad: &gst::Pad) -> Option<Duration> {
        self.tracks.get(track)?.fwd.open(pad)
    }

    /// Asks the track's publisher for a keyframe (deduplicated by the forwarder).
    pub(crate) fn request_keyframe(&self, track: &TrackId) {
        if let Some(t) = self.tracks.get(track) {
            t.fwd.request_keyframe();
        }
    }

    /// A gated output keeping the publisher's SSRC, and its payload type unless `pt` is set
    /// (branches).
    pub(crate) fn branch_pad(&self, track: &TrackId, pt: u32) -> Option<gst::Pad> {
        self.tracks.get(track)?.fwd.request_src(pt, 0)
    }

    /// Releases a branch output; when the track is gone, unlinks it when idle.
    pub(crate) fn release_branch_pad(&self, track: &TrackId, pad: &gst::Pad) {
        match self.tracks.get(track) {
            Some(t) => t.fwd.release_src(pad),
            None => crate::teardown::unlink_when_idle(pad),
        }
    }

    /// Takes a track out of the live set (its forwarder and subscribers go to the caller).
    pub(crate) fn take(&mut self, track: &TrackId) -> Option<Unpublished> {
        let t = self.tracks.remove(track)?;
        Some(Unpublished {
            publisher: t.publisher,
            mline: t.mline,
            subscribers: t.subscribers.into_keys().collect(),
            fwd: t.fwd,
        })
    }

    /// Keeps a forwarder whose publisher pad is busy until the pad or the publisher goes.
    pub(crate) fn retire(&mut self, track: TrackId, publisher: PeerId, fwd: Forwarder) {
        self.retired.insert(track, (publisher, fwd));
    }

    /// Retired forwarders of `publisher` (it is leaving).
    pub(crate) fn take_retired_of(&mut self, publisher: &PeerId) -> Vec<Forwarder> {
        let ids: Vec<TrackId> = self
            .retired
            .iter()
            .filter(|(_, (p, _))| p == publisher)
            .map(|(t, _)| t.clone())
            .collect();
        ids.iter()
            .filter_map(|t| self.retired.remove(t).map(|(_, f)| f))
            .collect()
    }

    /// Retired forwarders whose element is `element` (its upstream pad went away).
    pub(crate) fn take_retired_element(&mut self, element: &gst::Element) -> Vec<Forwarder> {
        let ids: Vec<TrackId> = self
            .retired
            .iter()
            .filter(|(_, (_, f))| f.element() == element)
            .map(|(t, _)| t.clone())
            .collect();
        ids.iter()
            .filter_map(|t| self.retired.remove(t).map(|(_, f)| f))
            .collect()
    }

    /// Every retired forwarder (the room is closing).
    pub(crate) fn drain_retired(&mut self) -> Vec<Forwarder> {
        self.retired.drain().map(|(_, (_, f))| f).collect()
    }
}
