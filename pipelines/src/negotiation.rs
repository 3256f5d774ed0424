//! Answering a peer's offer (notes Part 1 §4 "Subscriber side", §8.3, Part 2 §3.5).
//!
//! Order, per offer, on the media thread:
//! 1. ICE restart workaround: a new remote ufrag → `nice_agent_restart_stream` first.
//! 2. `set-remote-description(offer)` (creates no transceivers in 1.22).
//! 3. Every m-line in order: client-sendonly → `add-transceiver(recvonly, caps)` plus the
//!    track's forwarder; client-recvonly with a track → `sink_<mline>` requested, sendonly,
//!    `codec-preferences` with the offer's PT and a fixed SSRC, `msid` = publisher id, linked
//!    to a new (inactive) forwarder pad; anything else → answered inactive. m-lines handled in
//!    an earlier round keep their setup unless the plan changed them.
//! 4. `create-answer`, `set-local-description`, `AnswerReady`, then the queued candidates.

use std::sync::mpsc;
use std::time::Duration;

use gst::prelude::*;
use gst_sdp::SDPMediaRef;
use gst_webrtc::{WebRTCRTPTransceiver, WebRTCRTPTransceiverDirection as Dir};

use crate::codecs;
use crate::engine::{Engine, Link, MLine, SubSlot, Track};
use crate::event::PipelineEvent;
use crate::forwarder::Forwarder;
use crate::ids::{PeerId, TrackId, TrackKind};
use crate::peer_bin::PublishSlot;
use crate::room_pipeline::OfferPlan;

/// How long one webrtcbin promise may take before the round is declared failed.
const PROMISE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the plan wants for one m-line of the offer.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    Publish(TrackId),
    Subscribe(TrackId),
    Inactive,
}

fn has_attr(media: &SDPMediaRef, key: &str) -> bool {
    media.attributes().any(|a| a.key() == key)
}

fn want_for(media: &SDPMediaRef, plan: &OfferPlan) -> Want {
    let Some(mid) = media.attribute_val("mid") else {
        return Want::Inactive;
    };
    let client_sends = has_attr(media, "sendonly") || has_attr(media, "sendrecv");
    let client_receives = has_attr(media, "recvonly") || has_attr(media, "sendrecv");
    if client_sends {
        if let Some((_, t)) = plan.publish.iter().find(|(m, _)| m == mid) {
            return Want::Publish(t.clone());
        }
    }
    if client_receives {
        if let Some((_, Some(t))) = plan.subscribe.iter().find(|(m, _)| m == mid) {
            return Want::Subscribe(t.clone());
        }
    }
    Want::Inactive
}

/// Emits a webrtcbin action signal taking a promise and waits (bounded) for its reply.
fn call(
    webrtc: &gst::Element,
    signal: &str,
    arg: Option<&glib::Value>,
) -> Result<Option<gst::Structure>, String> {
    let (tx, rx) = mpsc::sync_channel(1);
    let promise = gst::Promise::with_change_func(move |reply| {
        let _ = tx.send(
            reply
                .map(|s| s.map(|s| s.to_owned()))
                .map_err(|e| format!("{e:?}")),
        );
    });
    match arg {
        Some(a) => webrtc.emit_by_name::<()>(signal, &[a, &promise]),
        None => webrtc.emit_by_name::<()>(signal, &[&None::<gst::Structure>, &promise]),
    }
    let reply = rx
        .recv_timeout(PROMISE_TIMEOUT)
        .map_err(|_| format!("{signal}: no reply"))??;
    if let Some(s) = &reply {
        if let Ok(err) = s.get::<glib::Error>("error") {
            return Err(format!("{signal}: {err}"));
        }
    }
    Ok(reply)
}

impl Engine {
    /// Handles one offer; always ends with `AnswerReady` or `NegotiationFailed`.
    pub(crate) fn offer(&mut self, peer: &PeerId, plan: OfferPlan) {
        match self.try_offer(peer, &plan) {
            Ok((sdp, added_links)) => self.answered(peer, sdp, added_links),
            Err(reason) => {
                tracing::warn!(%peer, %reason, "negotiation failed");
                self.emit(PipelineEvent::NegotiationFailed {
                    peer: peer.clone(),
                    reason,
                });
            }
        }
    }

    fn try_offer(&mut self, peer: &PeerId, plan: &OfferPlan) -> Result<(String, bool), String> {
        let sdp = gst_sdp::SDPMessage::parse_buffer(plan.sdp.as_bytes())
            .map_err(|_| "offer SDP does not parse".to_string())?;
        let fingerprint = crate::dtls::of_offer(&sdp)?;
        let p = self
            .peers
            .get_mut(peer)
            .ok_or_else(|| format!("unknown peer {peer}"))?;
        p.fingerprint = Some(fingerprint);
        p.round += 1;
        let webrtc = p.pb.webrtc.clone();

        // 1. ICE restart workaround.
        let ufrag = crate::ice::ufrag(&sdp);
        let restarted = match (&p.last_ufrag, &ufrag) {
            (Some(old), Some(new)) if old != new => {
                let ok =
                    p.pb.nice.as_ref().is_some_and(|a| {
                        crate::ice::restart_stream(a, crate::ice::BUNDLE_STREAM_ID)
                    });
                tracing::debug!(%peer, ok, "remote ICE restart: nice_agent_restart_stream");
                true
            }
            _ => false,
        };
        if ufrag.is_some() {
            p.last_ufrag = ufrag;
        }
        p.awaiting_connected = false;

        // 2. Remote description.
        let offer = gst_webrtc::WebRTCSessionDescription::new(
            gst_webrtc::WebRTCSDPType::Offer,
            sdp.clone(),
        );
        call(&webrtc, "set-remote-description", Some(&offer.to_value()))?;

        // 3. Every m-line, in order.
        if let Some(p) = self.peers.get(peer) {
            let mut map =
                p.pb.shared
                    .publish
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
            for (idx, media) in sdp.medias().enumerate() {
                for ssrc in announced_ssrcs(media) {
                    map.ssrcs.insert(ssrc, idx as u32);
                }
            }
        }
        let mut added_links = false;
        for (idx, media) in sdp.medias().enumerate() {
            let mline = idx as u32;
            let want = want_for(media, plan);
            added_links |= self.apply_mline(peer, &webrtc, mline, media, &sdp, want);
        }

        // 4. Answer.
        let reply = call(&webrtc, "create-answer", None)?
            .ok_or_else(|| "create-answer: empty reply".to_string())?;
        let mut answer = reply
            .get::<gst_webrtc::WebRTCSessionDescription>("answer")
            .map_err(|_| "create-answer: no answer".to_string())?;
        // Keep each sending stream's RTX SSRC across rounds (see `repair::RtxMaps::stabilise`).
        let created = answer
            .sdp()
            .as_text()
            .map_err(|_| "answer does not serialize".to_string())?;
        if let Some(fixed) = self
            .peers
            .get(peer)
            .and_then(|p| p.pb.rtx_maps.stabilise(&created))
        {
            let sdp = gst_sdp::SDPMessage::parse_buffer(fixed.as_bytes())
                .map_err(|_| "rewritten answer does not parse".to_string())?;
            answer =
                gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, sdp);
        }
        call(&webrtc, "set-local-description", Some(&answer.to_value()))?;
        let text = answer
            .sdp()
            .as_text()
            .map_err(|_| "answer does not serialize".to_string())?;
        self.check_answer(peer, answer.sdp());
        if let Some(p) = self.peers.get(peer) {
            p.pb.rtx_maps.update(&p.pb.bin, answer.sdp());
        }
        if let Some(p) = self.peers.get_mut(peer) {
            p.awaiting_connected =
                restarted || p.conn != gst_webrtc::WebRTCPeerConnectionState::Connected;
        }
        if restarted {
            let round = self.peers.get(peer).map_or(0, |p| p.round);
            self.schedule_restart_grace(peer, round);
        }
        Ok((text, added_links))
    }

    /// AnswerReady, then the candidates gathered so far, then (if the round needs no ICE
    /// work) PeerConnected and, when links were added, their activation shortly after.
    fn answered(&mut self, peer: &PeerId, sdp: String, added_links: bool) {
        self.emit(PipelineEvent::AnswerReady {
            peer: peer.clone(),
            sdp,
        });
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        p.answered = true;
        let queued = std::mem::take(&mut p.queued_candidates);
        let connected_now = !p.awaiting_connected;
        for (mline, candidate) in queued {
            self.emit(PipelineEvent::LocalCandidate {
                peer: peer.clone(),
                mline,
                candidate,
            });
        }
        if connected_now {
            self.emit(PipelineEvent::PeerConnected { peer: peer.clone() });
            if added_links {
                self.schedule_activation(peer);
            }
        }
    }

    /// Sets one m-line up for this round. Returns true when a new link was made.
    fn apply_mline(
        &mut self,
        peer: &PeerId,
        webrtc: &gst::Element,
        mline: u32,
        media: &SDPMediaRef,
        session: &gst_sdp::SDPMessageRef,
        want: Want,
    ) -> bool {
        let current = self
            .peers
            .get_mut(peer)
            .and_then(|p| p.mlines.remove(&mline));
        let (next, linked) = match (current, want) {
            (Some(MLine::Publish { track, transceiver }), Want::Publish(t)) if track == t => {
                (MLine::Publish { track, transceiver }, false)
            }
            (Some(MLine::Publish { track, transceiver }), want) => {
                self.unpublish(&track, false);
                transceiver.set_direction(Dir::Inactive);
                if let Want::Publish(t) = want {
                    tracing::warn!(%peer, mline, %t, "track replaced on a publishing m-line: unsupported, inactive");
                }
                (MLine::Inactive(Some(transceiver)), false)
            }
            (Some(MLine::Subscribe(slot)), want) => {
                let same =
                    matches!((&slot.link, &want), (Some(l), Want::Subscribe(t)) if &l.track == t);
                if same {
                    (MLine::Subscribe(slot), false)
                } else {
                    self.peers
                        .get_mut(peer)
                        .map(|p| p.mlines.insert(mline, MLine::Subscribe(slot)));
                    self.unlink_slot(peer, mline);
                    let Some(MLine::Subscribe(slot)) = self
                        .peers
                        .get_mut(peer)
                        .and_then(|p| p.mlines.remove(&mline))
                    else {
                        unreachable!("slot was just put back");
                    };
                    match want {
                        Want::Subscribe(t) => {
                            self.subscribe(peer, mline, media, t, Some(slot), webrtc)
                        }
                        _ => {
                            slot.transceiver.set_direction(Dir::Inactive);
                            (MLine::Subscribe(slot), false)
                        }
                    }
                }
            }
            (Some(MLine::Inactive(tr)), Want::Inactive) => (MLine::Inactive(tr), false),
            (Some(MLine::Inactive(_)), Want::Subscribe(t)) | (None, Want::Subscribe(t)) => {
                self.subscribe(peer, mline, media, t, None, webrtc)
            }
            (Some(MLine::Inactive(tr)), Want::Publish(t)) => {
                tracing::warn!(%peer, mline, %t, "publishing on a former inactive m-line: unsupported");
                (MLine::Inactive(tr), false)
            }
            (None, Want::Publish(t)) => {
                (self.publish(peer, webrtc, mline, media, session, t), false)
            }
            (None, Want::Inactive) => (MLine::Inactive(add_inactive(webrtc, media)), false),
        };
        if let Some(p) = self.peers.get_mut(peer) {
            p.mlines.insert(mline, next);
        }
        linked
    }

    /// A new client-sendonly m-line: recvonly transceiver + the track's forwarder.
    fn publish(
        &mut self,
        peer: &PeerId,
        webrtc: &gst::Element,
        mline: u32,
        media: &SDPMediaRef,
        session: &gst_sdp::SDPMessageRef,
        track: TrackId,
    ) -> MLine {
        let Some((codec, caps)) = codecs::publisher_caps(media, session) else {
            tracing::warn!(%peer, mline, "no supported codec offered: inactive");
            return MLine::Inactive(add_inactive(webrtc, media));
        };
        if self.tracks.contains_key(&track) || self.retired.contains_key(&track) {
            tracing::warn!(%peer, %track, "track id already published: inactive");
            return MLine::Inactive(add_inactive(webrtc, media));
        }
        let fwd = match Forwarder::new(&track) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(%peer, %track, "{e}");
                return MLine::Inactive(add_inactive(webrtc, media));
            }
        };
        if self.pipeline.add(fwd.element()).is_err()
            || fwd.element().sync_state_with_parent().is_err()
        {
            tracing::error!(%peer, %track, "cannot start forwarder");
            let _ = self.pipeline.remove(fwd.element());
            return MLine::Inactive(add_inactive(webrtc, media));
        }
        let transceiver = webrtc
            .emit_by_name::<WebRTCRTPTransceiver>("add-transceiver", &[&Dir::Recvonly, &caps]);
        // Video is repaired with NACK/RTX: webrtcbin then answers `nack` and the offer's `rtx`
        // payload type, de-wraps RTX, and turns on our receive buffer's requests.
        transceiver.set_property("do-nack", codec.kind == TrackKind::Video);
        let pt = caps
            .structure(0)
            .and_then(|s| s.get::<i32>("payload").ok())
            .unwrap_or(-1) as u32;
        if let Some(p) = self.peers.get(peer) {
            let mut map =
                p.pb.shared
                    .publish
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
            map.slots.insert(
                mline,
                PublishSlot {
                    track: track.clone(),
                    codec: codec.clone(),
                    pt,
                    fwd_sink: fwd.sink_pad(),
                    announced: false,
                },
            );
        }
        self.tracks.insert(
            track.clone(),
            Track {
                publisher: peer.clone(),
                mline,
                codec,
                fwd,
                subscribers: Default::default(),
            },
        );
        MLine::Publish { track, transceiver }
    }

    /// A client-recvonly m-line that must carry `track`: sink pad, sendonly, fixed SSRC, msid,
    /// linked to a new inactive forwarder pad.
    fn subscribe(
        &mut self,
        peer: &PeerId,
        mline: u32,
        media: &SDPMediaRef,
        track: TrackId,
        slot: Option<SubSlot>,
        webrtc: &gst::Element,
    ) -> (MLine, bool) {
        let ssrc = self.next_ssrc();
        let found = self
            .tracks
            .get(&track)
            .map(|t| (t.codec.clone(), t.publisher.clone()));
        let prepared = found
            .as_ref()
            .and_then(|(codec, _)| codecs::subscriber_caps(media, codec, ssrc));
        let Some(((pt, caps), (_, publisher))) = prepared.zip(found) else {
            tracing::warn!(%peer, mline, %track, "unknown track or codec not offered: inactive");
            return match slot {
                Some(s) => {
                    s.transceiver.set_direction(Dir::Inactive);
                    (MLine::Subscribe(s), false)
                }
                None => (MLine::Inactive(add_inactive(webrtc, media)), false),
            };
        };
        let slot = match slot {
            Some(s) => s,
            None => match self.new_sub_slot(peer, webrtc, mline) {
                Some(s) => s,
                None => return (MLine::Inactive(add_inactive(webrtc, media)), false),
            },
        };
        slot.transceiver.set_direction(Dir::Sendonly);
        slot.transceiver.set_codec_preferences(Some(&caps));
        // NACKs are answered from webrtcbin's rtprtxsend, which can only resend as RTX: offer
        // `nack` only to a subscriber that can take RTX (without it, it asks for keyframes).
        slot.transceiver
            .set_property("do-nack", codecs::offers_rtx(media, pt));
        if slot.sink.find_property("msid").is_some() {
            slot.sink.set_property("msid", publisher.as_str());
        }
        let Some(t) = self.tracks.get_mut(&track) else {
            unreachable!("checked above")
        };
        let Some(fwd_pad) = t.fwd.request_src(pt, ssrc) else {
            tracing::error!(%peer, %track, "forwarder refused a pad");
            slot.transceiver.set_direction(Dir::Inactive);
            return (MLine::Subscribe(slot), false);
        };
        if let Err(e) = fwd_pad.link(&slot.ghost) {
            tracing::error!(%peer, %track, "cannot link forwarder to subscriber: {e:?}");
            t.fwd.release_src(&fwd_pad);
            slot.transceiver.set_direction(Dir::Inactive);
            return (MLine::Subscribe(slot), false);
        }
        t.subscribers.insert((peer.clone(), mline));
        tracing::debug!(%peer, mline, %track, pt, ssrc, "subscriber link prepared");
        let mut slot = slot;
        slot.link = Some(Link { track, fwd_pad });
        (MLine::Subscribe(slot), true)
    }

    fn new_sub_slot(&self, peer: &PeerId, webrtc: &gst::Element, mline: u32) -> Option<SubSlot> {
        let bin = &self.peers.get(peer)?.pb.bin;
        let name = format!("sink_{mline}");
        let sink = webrtc.request_pad_simple(&name)?;
        let transceiver = sink.property::<Option<WebRTCRTPTransceiver>>("transceiver")?;
        let ghost = gst::GhostPad::builder_with_target(&sink)
            .ok()?
            .name(name)
            .build();
        let _ = ghost.set_active(true);
        if bin.add_pad(&ghost).is_err() {
            webrtc.release_request_pad(&sink);
            return None;
        }
        Some(SubSlot {
            sink,
            ghost,
            transceiver,
            link: None,
        })
    }

    /// Logs answer m-lines whose direction is not what we prepared (webrtcbin 1.22 answers
    /// `inactive` silently when a transceiver was not matched).
    fn check_answer(&self, peer: &PeerId, answer: &gst_sdp::SDPMessageRef) {
        let Some(p) = self.peers.get(peer) else {
            return;
        };
        for (idx, media) in answer.medias().enumerate() {
            let expected = match p.mlines.get(&(idx as u32)) {
                Some(MLine::Publish { .. }) => "recvonly",
                Some(MLine::Subscribe(SubSlot { link: Some(_), .. })) => "sendonly",
                _ => continue,
            };
            if !has_attr(media, expected) {
                tracing::warn!(%peer, mline = idx, expected, "answer direction differs from the plan");
            }
        }
    }
}

/// SSRCs announced with `a=ssrc:<ssrc> ...` on an m-line.
fn announced_ssrcs(media: &SDPMediaRef) -> Vec<u32> {
    media
        .attributes()
        .filter(|a| a.key() == "ssrc")
        .filter_map(|a| a.value()?.split_whitespace().next()?.parse().ok())
        .collect()
}

/// A transceiver that makes webrtcbin answer an m-line `inactive` (and keeps later unlocked
/// transceivers matched to their own m-lines).
fn add_inactive(webrtc: &gst::Element, media: &SDPMediaRef) -> Option<WebRTCRTPTransceiver> {
    let caps = codecs::inactive_caps(media)?;
    Some(webrtc.emit_by_name::<WebRTCRTPTransceiver>("add-transceiver", &[&Dir::Inactive, &caps]))
}
