//! Answering a peer's offer (docs/webrtcbin.md §2, in particular §2.3 "Subscriber side",
//! §2.4 "Transceiver matching" and §2.5 "Renegotiation").
//!
//! Order, per offer, on the media thread:
//! 1. [`apply_remote`]: the ICE restart workaround (a new remote ufrag →
//!    `nice_agent_restart_stream` first), then `set-remote-description(offer)` (creates no
//!    transceivers in 1.22).
//! 2. The media thread unpublishes the tracks whose m-line the plan no longer publishes
//!    ([`dropped_publications`]): that involves recordings and taps, which are not ours.
//! 3. [`answer`]: every m-line in order: client-sendonly → `add-transceiver(recvonly, caps)`
//!    plus the track's forwarder; client-recvonly with a track → `sink_<mline>` requested,
//!    sendonly, `codec-preferences` with the offer's PT and a fixed SSRC, `msid` = publisher
//!    id, linked to a new (inactive) forwarder pad; anything else → answered inactive. m-lines
//!    handled in an earlier round keep their setup unless the plan changed them. Then
//!    `create-answer`, `set-local-description`.
//!
//! Everything about the offer's text (mids, directions, SSRCs, ufrag, fingerprint) comes from
//! the plan's summary; GStreamer parses the text only because `webrtcbin` needs an
//! `SDPMessage`, and `codecs.rs` reads the payload formats from it.

use std::sync::mpsc;
use std::time::Duration;

use gst::prelude::*;
use gst_sdp::SDPMediaRef;
use gst_webrtc::{WebRTCRTPTransceiver, WebRTCRTPTransceiverDirection as Dir};

use crate::codecs;
use crate::downlink::Estimator;
use crate::forwarding::Forwarding;
use crate::ids::{PeerId, TrackId, TrackKind};
use crate::peer_bin::PublishSlot;
use crate::peers::{MLine, Peer, SubSlot};
use crate::{NegotiationError, OfferPlan, Want};

/// How long one webrtcbin promise may take before the round is declared failed.
const PROMISE_TIMEOUT: Duration = Duration::from_secs(10);

/// Subscriber SSRCs: distinct, well-spread values per room (splitmix64).
#[derive(Debug)]
pub(crate) struct SsrcSource(u64);

impl SsrcSource {
    /// A source seeded from the room's name and the process's random state.
    pub(crate) fn new(room: &str) -> Self {
        use std::hash::{BuildHasher, RandomState};
        Self(RandomState::new().hash_one(room))
    }

    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) as u32).max(1)
    }
}

/// What an offer may touch besides its peer.
pub(crate) struct Ctx<'a> {
    /// The room pipeline (forwarders are added to it).
    pub pipeline: &'a gst::Pipeline,
    /// The room's tracks and links.
    pub forwarding: &'a mut Forwarding,
    /// Subscriber SSRCs.
    pub ssrcs: &'a mut SsrcSource,
}

/// The plan's wish for m-line `index`.
fn want_at(plan: &OfferPlan, index: usize) -> Want<'_> {
    plan.summary
        .mlines
        .get(index)
        .map_or(Want::Inactive, |m| plan.want(&m.mid))
}

/// Emits a webrtcbin action signal taking a promise and waits (bounded) for its reply.
fn call(
    webrtc: &gst::Element,
    signal: &str,
    arg: Option<&glib::Value>,
) -> Result<Option<gst::Structure>, NegotiationError> {
    let failed = |e: String| NegotiationError::Webrtc(format!("{signal}: {e}"));
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
        .map_err(|_| failed("no reply".into()))?
        .map_err(failed)?;
    if let Some(s) = &reply {
        if let Ok(err) = s.get::<glib::Error>("error") {
            return Err(failed(err.to_string()));
        }
    }
    Ok(reply)
}

/// Step 1: starts the peer's round with this offer (ICE restart workaround, remote
/// description, announced SSRCs). Returns the parsed offer and whether it restarts ICE.
pub(crate) fn apply_remote(
    peer_id: &PeerId,
    peer: &mut Peer,
    plan: &OfferPlan,
) -> Result<(gst_sdp::SDPMessage, bool), NegotiationError> {
    let sdp = gst_sdp::SDPMessage::parse_buffer(plan.sdp.as_bytes())
        .map_err(|_| NegotiationError::Offer("offer SDP does not parse".into()))?;
    let fingerprint = crate::dtls::of_offer(&plan.summary).map_err(NegotiationError::Offer)?;
    let (_, restarted) = peer
        .transport
        .offer(plan.summary.ice_ufrag.as_deref(), fingerprint);
    if restarted {
        let ok = peer
            .pb
            .nice
            .as_ref()
            .is_some_and(|a| crate::ice::restart_stream(a, crate::ice::BUNDLE_STREAM_ID));
        tracing::debug!(peer = %peer_id, ok, "remote ICE restart: nice_agent_restart_stream");
    }
    let offer =
        gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, sdp.clone());
    call(
        &peer.pb.webrtc,
        "set-remote-description",
        Some(&offer.to_value()),
    )?;
    let mut map = peer
        .pb
        .shared
        .publish
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    for (idx, m) in plan.summary.mlines.iter().enumerate() {
        for ssrc in &m.ssrcs {
            map.ssrcs.insert(*ssrc, idx as u32);
        }
    }
    Ok((sdp, restarted))
}

/// Step 2: the publishing m-lines whose track the plan no longer publishes there.
pub(crate) fn dropped_publications(peer: &Peer, plan: &OfferPlan) -> Vec<(u32, TrackId)> {
    peer.mlines
        .iter()
        .filter_map(|(idx, m)| match m {
            MLine::Publish { track, .. } => {
                let kept = want_at(plan, *idx as usize) == Want::Publish(track);
                (!kept).then(|| (*idx, track.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Marks a publishing m-line inactive once its track was unpublished.
pub(crate) fn deactivate(peer: &mut Peer, mline: u32) {
    if let Some(MLine::Publish { transceiver, .. }) = peer.mlines.remove(&mline) {
        transceiver.set_direction(Dir::Inactive);
        peer.mlines
            .insert(mline, MLine::Inactive(Some(transceiver)));
    }
}

/// Step 3: sets every m-line up and answers. Returns the answer text and whether new links
/// were made.
pub(crate) fn answer(
    cx: &mut Ctx<'_>,
    peer_id: &PeerId,
    peer: &mut Peer,
    plan: &OfferPlan,
    sdp: &gst_sdp::SDPMessage,
    restarted: bool,
) -> Result<(String, bool), NegotiationError> {
    let webrtc = peer.pb.webrtc.clone();
    let mut added_links = false;
    for (idx, media) in sdp.medias().enumerate() {
        let want = want_at(plan, idx);
        let rids = plan
            .summary
            .mlines
            .get(idx)
            .map_or(&[][..], |m| &m.rids[..]);
        added_links |= apply_mline(
            cx,
            peer_id,
            peer,
            &webrtc,
            (idx as u32, media, rids),
            sdp,
            want,
        );
    }
    let reply = call(&webrtc, "create-answer", None)?
        .ok_or_else(|| NegotiationError::Webrtc("create-answer: empty reply".into()))?;
    let mut answer = reply
        .get::<gst_webrtc::WebRTCSessionDescription>("answer")
        .map_err(|_| NegotiationError::Webrtc("create-answer: no answer".into()))?;
    let unserializable = || NegotiationError::Webrtc("answer does not serialize".into());
    // Keep each sending stream's RTX SSRC across rounds (see `repair::RtxMaps::stabilise`).
    let created = answer.sdp().as_text().map_err(|_| unserializable())?;
    if let Some(fixed) = peer.pb.rtx_maps.stabilise(&created) {
        let sdp = gst_sdp::SDPMessage::parse_buffer(fixed.as_bytes())
            .map_err(|_| NegotiationError::Webrtc("rewritten answer does not parse".into()))?;
        answer = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, sdp);
    }
    if let Some(with_rsize) = copy_rtcp_rsize(sdp, answer.sdp()) {
        answer = gst_webrtc::WebRTCSessionDescription::new(
            gst_webrtc::WebRTCSDPType::Answer,
            with_rsize,
        );
    }
    if peer.pb.estimator.is_none() {
        if let Some(without) = without_sending_twcc(answer.sdp()) {
            answer = gst_webrtc::WebRTCSessionDescription::new(
                gst_webrtc::WebRTCSDPType::Answer,
                without,
            );
        }
    }
    call(&webrtc, "set-local-description", Some(&answer.to_value()))?;
    let text = answer.sdp().as_text().map_err(|_| unserializable())?;
    check_answer(peer_id, peer, answer.sdp());
    peer.pb.rtx_maps.update(&peer.pb.bin, answer.sdp());
    peer.transport.answer_set(restarted);
    Ok((text, added_links))
}

/// The answer without `transport-cc` feedback on its sending (`sendonly`) m-lines, or `None`
/// when none has it: for a peer whose downlink is not estimated. webrtcbin 1.22 answers with
/// the offer's `rtcp-fb` where the `codec-preferences` do not name it (a caps field left out
/// intersects as "any"); the TWCC extension itself is already left out (`subscribe`).
fn without_sending_twcc(answer: &gst_sdp::SDPMessageRef) -> Option<gst_sdp::SDPMessage> {
    let is_twcc_fb = |a: &gst_sdp::SDPAttribute| {
        a.key() == "rtcp-fb" && a.value().is_some_and(|v| v.ends_with(" transport-cc"))
    };
    let mut fixed = answer.to_owned();
    let mut removed = false;
    for i in 0..fixed.medias_len() {
        let Some(media) = fixed.media_mut(i) else {
            continue;
        };
        if !media.attributes().any(|a| a.key() == "sendonly") {
            continue;
        }
        while let Some(idx) = media.attributes().position(is_twcc_fb) {
            if media.remove_attribute(idx as u32).is_err() {
                break;
            }
            removed = true;
        }
    }
    removed.then_some(fixed)
}

/// The answer with `a=rtcp-rsize` on every m-line whose offered m-line has it (RFC 5506), or
/// `None` when nothing is missing. webrtcbin 1.22 does not copy it into answers, and sets
/// reduced-size RTCP only when both descriptions carry it (docs/webrtcbin.md §9).
fn copy_rtcp_rsize(
    offer: &gst_sdp::SDPMessageRef,
    answer: &gst_sdp::SDPMessageRef,
) -> Option<gst_sdp::SDPMessage> {
    let missing: Vec<u32> = offer
        .medias()
        .zip(answer.medias())
        .enumerate()
        .filter(|(_, (o, _))| o.attributes().any(|x| x.key() == "rtcp-rsize"))
        .filter(|(_, (_, a))| !a.attributes().any(|x| x.key() == "rtcp-rsize"))
        .map(|(i, _)| i as u32)
        .collect();
    if missing.is_empty() {
        return None;
    }
    let mut fixed = answer.to_owned();
    for i in missing {
        if let Some(media) = fixed.media_mut(i) {
            // An empty value, as parsed from `a=rtcp-rsize`: a NULL one crashes
            // `gst_sdp_media_attributes_to_caps` (g_utf8_validate(NULL)) in GStreamer 1.22.
            media.add_attribute("rtcp-rsize", Some(""));
        }
    }
    Some(fixed)
}

/// Sets one m-line up for this round. Returns true when a new link was made.
#[allow(clippy::too_many_arguments)]
fn apply_mline(
    cx: &mut Ctx<'_>,
    peer_id: &PeerId,
    peer: &mut Peer,
    webrtc: &gst::Element,
    (mline, media, rids): (u32, &SDPMediaRef, &[String]),
    session: &gst_sdp::SDPMessageRef,
    want: Want<'_>,
) -> bool {
    // Subscriber m-lines carry TWCC only when the peer's downlink is estimated from it.
    let twcc = peer.pb.estimator.as_ref();
    let (next, linked) = match (peer.mlines.remove(&mline), want) {
        (Some(MLine::Publish { track, transceiver }), _) => {
            // `dropped_publications` took every other case out before.
            (MLine::Publish { track, transceiver }, false)
        }
        (Some(MLine::Subscribe(mut slot)), want) => {
            let same = matches!((&slot.link, want), (Some(l), Want::Subscribe(t)) if &l.track == t);
            if same {
                (MLine::Subscribe(slot), false)
            } else {
                if let Some(link) = slot.link.take() {
                    cx.forwarding.unlink((peer_id, mline), link);
                }
                match want {
                    Want::Subscribe(t) => subscribe(
                        cx,
                        peer_id,
                        mline,
                        (media, session),
                        t,
                        Some(slot),
                        (webrtc, twcc),
                    ),
                    _ => {
                        slot.transceiver.set_direction(Dir::Inactive);
                        (MLine::Subscribe(slot), false)
                    }
                }
            }
        }
        (Some(MLine::Inactive(tr)), Want::Inactive) => (MLine::Inactive(tr), false),
        (Some(MLine::Inactive(_)), Want::Subscribe(t)) | (None, Want::Subscribe(t)) => subscribe(
            cx,
            peer_id,
            mline,
            (media, session),
            t,
            None,
            (webrtc, twcc),
        ),
        (Some(MLine::Inactive(tr)), Want::Publish(t)) => {
            tracing::warn!(peer = %peer_id, mline, track = %t, "publishing on a former inactive m-line: unsupported");
            (MLine::Inactive(tr), false)
        }
        (None, Want::Publish(t)) => (
            publish(cx, peer_id, peer, webrtc, (mline, media, rids), session, t),
            false,
        ),
        (None, Want::Inactive) => (MLine::Inactive(add_inactive(webrtc, media)), false),
    };
    peer.mlines.insert(mline, next);
    linked
}

/// A new client-sendonly m-line: recvonly transceiver + the track's forwarder.
#[allow(clippy::too_many_arguments)]
fn publish(
    cx: &mut Ctx<'_>,
    peer_id: &PeerId,
    peer: &mut Peer,
    webrtc: &gst::Element,
    (mline, media, rids): (u32, &SDPMediaRef, &[String]),
    session: &gst_sdp::SDPMessageRef,
    track: &TrackId,
) -> MLine {
    let Some(codecs::Published {
        codec,
        caps,
        rids,
        rid_ext,
    }) = codecs::publisher_caps(media, session, rids)
    else {
        tracing::warn!(peer = %peer_id, mline, "no supported codec offered: inactive");
        return MLine::Inactive(add_inactive(webrtc, media));
    };
    if cx.forwarding.knows(track) {
        tracing::warn!(peer = %peer_id, %track, "track id already published: inactive");
        return MLine::Inactive(add_inactive(webrtc, media));
    }
    let fwd_sink = match cx.forwarding.publish(
        cx.pipeline,
        track,
        peer_id,
        mline,
        codec.clone(),
        (&rids, rid_ext),
    ) {
        Ok(pad) => pad,
        Err(e) => {
            tracing::error!(peer = %peer_id, %track, "{e}");
            return MLine::Inactive(add_inactive(webrtc, media));
        }
    };
    let transceiver =
        webrtc.emit_by_name::<WebRTCRTPTransceiver>("add-transceiver", &[&Dir::Recvonly, &caps]);
    // Video is repaired with NACK/RTX: webrtcbin then answers `nack` and the offer's `rtx`
    // payload type, de-wraps RTX, and turns on our receive buffer's requests.
    transceiver.set_property("do-nack", codec.kind == TrackKind::Video);
    let pt = caps
        .structure(0)
        .and_then(|s| s.get::<i32>("payload").ok())
        .unwrap_or(-1) as u32;
    peer.pb
        .shared
        .publish
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .slots
        .insert(
            mline,
            PublishSlot {
                track: track.clone(),
                codec,
                pt,
                fwd_sink,
                layers: crate::peer_bin::Layers::new(rids),
                announced: false,
            },
        );
    MLine::Publish {
        track: track.clone(),
        transceiver,
    }
}

/// A client-recvonly m-line that must carry `track`: sink pad, sendonly, fixed SSRC, msid,
/// linked to a new inactive forwarder pad; with an estimator (`twcc`), `transport-cc` and its
/// header extension, which the estimator's aux senders announce to rtpsession.
#[allow(clippy::too_many_arguments)]
fn subscribe(
    cx: &mut Ctx<'_>,
    peer_id: &PeerId,
    mline: u32,
    (media, session): (&SDPMediaRef, &gst_sdp::SDPMessageRef),
    track: &TrackId,
    slot: Option<SubSlot>,
    (webrtc, twcc): (&gst::Element, Option<&Estimator>),
) -> (MLine, bool) {
    let ssrc = cx.ssrcs.next();
    let prepared = cx.forwarding.source(track).and_then(|(codec, publisher)| {
        codecs::subscriber_caps(media, session, codec, ssrc, twcc.is_some())
            .map(|caps| (caps, publisher.clone()))
    });
    let Some((codecs::Subscribed { pt, caps, twcc_ext }, publisher)) = prepared else {
        tracing::warn!(peer = %peer_id, mline, %track, "unknown track or codec not offered: inactive");
        return match slot {
            Some(s) => {
                s.transceiver.set_direction(Dir::Inactive);
                (MLine::Subscribe(s), false)
            }
            None => (MLine::Inactive(add_inactive(webrtc, media)), false),
        };
    };
    let slot = match slot.or_else(|| new_sub_slot(webrtc, mline)) {
        Some(s) => s,
        None => return (MLine::Inactive(add_inactive(webrtc, media)), false),
    };
    if let (Some(estimator), Some(id)) = (twcc, twcc_ext) {
        estimator.announce_twcc(id);
    }
    slot.transceiver.set_direction(Dir::Sendonly);
    slot.transceiver.set_codec_preferences(Some(&caps));
    // NACKs are answered from webrtcbin's rtprtxsend, which can only resend as RTX: offer
    // `nack` only to a subscriber that can take RTX (without it, it asks for keyframes).
    slot.transceiver
        .set_property("do-nack", codecs::offers_rtx(media, pt));
    if slot.sink.find_property("msid").is_some() {
        slot.sink.set_property("msid", publisher.as_str());
    }
    let mut slot = slot;
    match cx
        .forwarding
        .link(track, (peer_id, mline), (pt, ssrc, twcc_ext), &slot.sink)
    {
        Ok(link) => {
            tracing::debug!(peer = %peer_id, mline, %track, pt, ssrc, "subscriber link prepared");
            slot.link = Some(link);
            (MLine::Subscribe(slot), true)
        }
        Err(e) => {
            tracing::error!(peer = %peer_id, %track, "{e}");
            slot.transceiver.set_direction(Dir::Inactive);
            (MLine::Subscribe(slot), false)
        }
    }
}

fn new_sub_slot(webrtc: &gst::Element, mline: u32) -> Option<SubSlot> {
    let sink = webrtc.request_pad_simple(&format!("sink_{mline}"))?;
    let Some(transceiver) = sink.property::<Option<WebRTCRTPTransceiver>>("transceiver") else {
        webrtc.release_request_pad(&sink);
        return None;
    };
    Some(SubSlot {
        sink,
        transceiver,
        link: None,
    })
}

fn has_attr(media: &SDPMediaRef, key: &str) -> bool {
    media.attributes().any(|a| a.key() == key)
}

/// Logs answer m-lines whose direction is not what we prepared (webrtcbin 1.22 answers
/// `inactive` silently when a transceiver was not matched).
fn check_answer(peer_id: &PeerId, peer: &Peer, answer: &gst_sdp::SDPMessageRef) {
    for (idx, media) in answer.medias().enumerate() {
        let expected = match peer.mlines.get(&(idx as u32)) {
            Some(MLine::Publish { .. }) => "recvonly",
            Some(MLine::Subscribe(SubSlot { link: Some(_), .. })) => "sendonly",
            _ => continue,
        };
        if !has_attr(media, expected) {
            tracing::warn!(peer = %peer_id, mline = idx, expected, "answer direction differs from the plan");
        }
    }
}

/// A transceiver that makes webrtcbin answer an m-line `inactive` (and keeps later unlocked
/// transceivers matched to their own m-lines).
fn add_inactive(webrtc: &gst::Element, media: &SDPMediaRef) -> Option<WebRTCRTPTransceiver> {
    let caps = codecs::inactive_caps(media)?;
    Some(webrtc.emit_by_name::<WebRTCRTPTransceiver>("add-transceiver", &[&Dir::Inactive, &caps]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> gst_sdp::SDPMessage {
        gst_sdp::SDPMessage::parse_buffer(text.replace('\n', "\r\n").as_bytes()).unwrap()
    }

    #[test]
    fn sending_m_lines_lose_transport_cc_only() {
        gst::init().unwrap();
        let head = "v=0\no=- 1 0 IN IP4 0.0.0.0\ns=-\nt=0 0\n";
        let fb = "a=rtcp-fb:96 nack\na=rtcp-fb:96 transport-cc\na=rtcp-fb:96 nack pli\n";
        let answer = parse(&format!(
            "{head}m=video 9 UDP/TLS/RTP/SAVPF 96\na=recvonly\n{fb}\
             m=video 9 UDP/TLS/RTP/SAVPF 96\na=sendonly\n{fb}"
        ));
        let fixed = without_sending_twcc(&answer).expect("the sendonly m-line has it");
        let fbs = |i: u32| -> Vec<String> {
            fixed
                .media(i)
                .unwrap()
                .attributes()
                .filter(|a| a.key() == "rtcp-fb")
                .filter_map(|a| a.value().map(str::to_owned))
                .collect()
        };
        assert_eq!(fbs(0), ["96 nack", "96 transport-cc", "96 nack pli"]);
        assert_eq!(fbs(1), ["96 nack", "96 nack pli"]);
        assert!(without_sending_twcc(&fixed).is_none());
    }

    #[test]
    fn answers_get_rtcp_rsize_where_offered() {
        gst::init().unwrap();
        let head = "v=0\no=- 1 0 IN IP4 0.0.0.0\ns=-\nt=0 0\n";
        let offer = parse(&format!(
            "{head}m=video 9 UDP/TLS/RTP/SAVPF 96\na=rtcp-rsize\nm=audio 9 UDP/TLS/RTP/SAVPF 111\n"
        ));
        let answer = parse(&format!(
            "{head}m=video 9 UDP/TLS/RTP/SAVPF 96\na=rtcp-mux\nm=audio 9 UDP/TLS/RTP/SAVPF 111\n"
        ));
        let fixed = copy_rtcp_rsize(&offer, &answer).expect("the video m-line lacks it");
        let text = fixed.as_text().unwrap();
        assert!(
            text.contains("a=rtcp-mux\r\na=rtcp-rsize\r\nm=audio"),
            "{text}"
        );
        assert_eq!(
            text.matches("rtcp-rsize").count(),
            1,
            "not on the audio m-line: {text}"
        );
        assert!(copy_rtcp_rsize(&offer, &fixed).is_none());
        // What webrtcbin reads from it does not crash (a NULL value would).
        let mut caps = gst::Caps::new_empty_simple("application/x-rtp");
        let _ = fixed
            .media(0)
            .unwrap()
            .attributes_to_caps(caps.get_mut().unwrap());
    }
}
