//! The participant's negotiation [`Session`], owned by its task: own tracks and their sources,
//! recvonly transceivers, server media events, offers and answers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use gst::prelude::*;
use gst_webrtc::{WebRTCRTPTransceiver, WebRTCRTPTransceiverDirection, WebRTCSDPType};
use lamina_protocol::media_event::{ClientEvent, ServerEvent, TrackBitrates};
use serde_json::Value;

use crate::media;
use crate::options::{self, CandidateDirection, ParticipantOptions};
use crate::signalling::Signalling;
use crate::state::{lock, EncodingSwitch, ParticipantState};

/// A request from the [`crate::Participant`] handle to its task.
pub(crate) enum Command {
    /// A test-source track of this kind.
    AddTrack {
        video: bool,
        metadata: Value,
        id: String,
    },
    /// A source built by the caller (custom description), with its fixed SSRC and track id.
    AddSource {
        video: bool,
        source: gst::Bin,
        ssrc: u32,
        id: String,
        metadata: Value,
    },
    /// Stop publishing the track with this id.
    RemoveTrack(String),
}

/// How the source of an own track sends.
pub(crate) enum Sending {
    /// One stream with this fixed SSRC (announced in the offer's `a=ssrc` lines).
    Single(u32),
    /// Simulcast layers, each its own SSRC, announced only by `a=rid`/`a=simulcast`.
    Simulcast(media::SimulcastSource),
}

/// A track this participant publishes.
pub(crate) struct OwnTrack {
    id: String,
    metadata: Value,
    transceiver: WebRTCRTPTransceiver,
    source: gst::Bin,
    /// The layers of a simulcast track.
    simulcast: Option<media::SimulcastSource>,
    active: bool,
}

/// The participant's negotiation state, owned by its task.
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) sig: Signalling,
    pub(crate) pipeline: gst::Pipeline,
    pub(crate) webrtc: gst::Element,
    pub(crate) state: Arc<Mutex<ParticipantState>>,
    pub(crate) own: Vec<OwnTrack>,
    /// Recvonly transceivers created so far (audio, video).
    pub(crate) recv: (usize, usize),
    /// Whether to add recvonly transceivers at all.
    pub(crate) receive: bool,
    pub(crate) options: ParticipantOptions,
    /// The payloaders of own simulcast layers by SSRC (keyframe requests go to them).
    pub(crate) layer_payloaders: media::LayerPayloaders,
}

impl Session {
    /// Whether m-lines of this kind get loss repair (NACK + RTX): video, unless turned off.
    fn nack(&self, video: bool) -> bool {
        video && !self.options.without_nack
    }

    pub(crate) fn add_track(&mut self, video: bool, metadata: Value, id: String) {
        let pattern = if let Some(pattern) = &self.options.video_pattern {
            pattern.as_str()
        } else if self.own.iter().any(|t| t.metadata["type"] == "camera") {
            "smpte"
        } else {
            "ball"
        };
        if video && self.options.simulcast {
            let ssrcs = [rand_ssrc(), rand_ssrc(), rand_ssrc()];
            match media::simulcast_source(pattern, ssrcs) {
                Ok(layers) => {
                    let source = layers.bin.clone();
                    self.add_source(video, source, Sending::Simulcast(layers), id, metadata);
                }
                Err(e) => tracing::warn!("client cannot build a simulcast source: {e}"),
            }
            return;
        }
        let ssrc = rand_ssrc();
        let Ok(source) = media::source(video, pattern, ssrc) else {
            return;
        };
        self.add_source(video, source, Sending::Single(ssrc), id, metadata);
    }

    /// Links `source` (ending in a payloader sending with `ssrc`, or the funnel of simulcast
    /// layers) to a new sendonly m-line and asks the server for a negotiation round.
    pub(crate) fn add_source(
        &mut self,
        video: bool,
        source: gst::Bin,
        sending: Sending,
        id: String,
        metadata: Value,
    ) {
        let Some(sink) = self.webrtc.request_pad_simple("sink_%u") else {
            tracing::warn!("client webrtcbin refused a sink pad");
            return;
        };
        let Some(transceiver) = sink.property::<Option<WebRTCRTPTransceiver>>("transceiver") else {
            return;
        };
        transceiver.set_direction(WebRTCRTPTransceiverDirection::Sendonly);
        let nack = self.nack(video);
        let mut caps = media::rtp_caps(video, nack);
        match &sending {
            Sending::Single(ssrc) => caps.make_mut().set("ssrc", *ssrc),
            // webrtcbin 1.22 writes the `a=rid`, `a=simulcast` and `a=extmap` lines of these
            // fields into the offer; without an `ssrc` field it writes no `a=ssrc` line (the
            // funnel's caps carry none either), as Chrome announces no layer SSRC.
            Sending::Simulcast(_) => media::simulcast_caps(&mut caps),
        }
        if let (false, Some(level)) = (video, &self.options.audio_level) {
            caps.make_mut().set(
                format!("extmap-{}", media::AUDIO_LEVEL_EXT_ID),
                media::AUDIO_LEVEL_URI,
            );
            media::write_audio_level(&source, level.clone());
        }
        transceiver.set_property("codec-preferences", caps);
        // Resends what the server NACKs (as RTX).
        media::set_nack(&transceiver, nack);
        match &sending {
            Sending::Single(_) if video => {
                let (state, track) = (self.state.clone(), id.clone());
                media::count_keyframes(&source, move || {
                    *lock(&state)
                        .sent_keyframes
                        .entry(track.clone())
                        .or_default() += 1;
                });
            }
            Sending::Single(_) => {}
            Sending::Simulcast(layers) => {
                for (rid, ssrc, payloader, _) in &layers.layers {
                    lock_layers(&self.layer_payloaders).insert(*ssrc, payloader.clone());
                    let (state, track, rid) = (self.state.clone(), id.clone(), *rid);
                    media::count_payloader_keyframes(payloader, move || {
                        let mut s = lock(&state);
                        *s.sent_keyframes.entry(track.clone()).or_default() += 1;
                        *s.sent_layer_keyframes
                            .entry(track.clone())
                            .or_default()
                            .entry(rid.to_owned())
                            .or_default() += 1;
                    });
                }
            }
        }
        let _ = self.pipeline.add(&source);
        if let Some(src) = source.static_pad("src") {
            let _ = src.link(&sink);
        }
        let _ = source.sync_state_with_parent();
        let simulcast = match sending {
            Sending::Simulcast(layers) => Some(layers),
            Sending::Single(_) => None,
        };
        self.own.push(OwnTrack {
            id,
            metadata,
            transceiver,
            source,
            simulcast,
            active: true,
        });
        self.sig.send(&ClientEvent::RenegotiateTracks);
    }

    pub(crate) fn remove_track(&mut self, id: &str) {
        let Some(t) = self.own.iter_mut().find(|t| t.id == id && t.active) else {
            return;
        };
        t.active = false;
        t.transceiver
            .set_direction(WebRTCRTPTransceiverDirection::Inactive);
        if let Some(src) = t.source.static_pad("src") {
            if let Some(peer) = src.peer() {
                let _ = src.unlink(&peer);
                // webrtcbin blocks a sink pad until its transceiver is negotiated: a track
                // removed before that has its streaming thread parked there, and stopping the
                // source would wait for it forever. Deactivating the now unused pad (flushing,
                // local to it) releases the thread.
                let _ = peer.set_active(false);
            }
        }
        if let Some(layers) = &t.simulcast {
            let mut payloaders = lock_layers(&self.layer_payloaders);
            for (_, ssrc, _, _) in &layers.layers {
                payloaders.remove(ssrc);
            }
        }
        let _ = t.source.set_state(gst::State::Null);
        let _ = self.pipeline.remove(&t.source);
        self.sig.send(&ClientEvent::RenegotiateTracks);
    }

    pub(crate) async fn server_event(&mut self, ev: ServerEvent) {
        {
            let mut s = lock(&self.state);
            s.log.push(ev.kind().into());
            match &ev {
                ServerEvent::EndpointAdded { id, metadata }
                | ServerEvent::EndpointUpdated { id, metadata } => {
                    s.endpoints.insert(id.clone(), metadata.clone());
                }
                ServerEvent::EndpointRemoved { id } => {
                    s.endpoints.remove(id);
                    s.tracks.retain(|_, t| t.endpoint != *id);
                }
                ServerEvent::TracksAdded {
                    endpoint_id,
                    tracks,
                } => {
                    for info in tracks {
                        let t = s.tracks.entry(info.id.clone()).or_default();
                        t.endpoint = endpoint_id.clone();
                        t.metadata = info.metadata.clone();
                        t.simulcast = info.simulcast.clone();
                    }
                }
                ServerEvent::TracksRemoved { track_ids, .. } => {
                    for tid in track_ids {
                        s.tracks.remove(tid);
                    }
                }
                ServerEvent::TrackUpdated {
                    track_id, metadata, ..
                } => {
                    if let Some(t) = s.tracks.get_mut(track_id) {
                        t.metadata = metadata.clone();
                    }
                }
                ServerEvent::Error { message } => s.errors.push(message.clone()),
                ServerEvent::VadNotification { track_id, speech } => {
                    s.vad
                        .push((std::time::Instant::now(), track_id.clone(), *speech));
                }
                ServerEvent::EncodingSwitched {
                    track_id,
                    encoding,
                    reason,
                    ..
                } => {
                    s.encoding_switches.push(EncodingSwitch {
                        at: std::time::Instant::now(),
                        track_id: track_id.clone(),
                        encoding: encoding.clone(),
                        reason: reason.clone(),
                    });
                    if let Some(t) = s.tracks.get_mut(track_id) {
                        t.encoding = Some((encoding.clone(), reason.clone()));
                    }
                }
                ServerEvent::BandwidthEstimation { estimation } => {
                    s.bandwidth_estimation = Some(*estimation);
                    // At most one a second; bounded all the same for long runs.
                    if s.bandwidth_estimations.len() < 10_000 {
                        s.bandwidth_estimations
                            .push((std::time::Instant::now(), *estimation));
                    }
                }
                _ => {}
            }
        }
        match ev {
            ServerEvent::OfferData { audio, video, .. } => {
                lock(&self.state).rounds += 1;
                if let Err(e) = self.offer(audio, video).await {
                    lock(&self.state)
                        .errors
                        .push(format!("client offer failed: {e}"));
                }
            }
            ServerEvent::SdpAnswer {
                sdp,
                mid_to_track_id,
            } => {
                if let Err(e) = self.answer(&sdp, mid_to_track_id).await {
                    lock(&self.state)
                        .errors
                        .push(format!("client answer failed: {e}"));
                }
            }
            ServerEvent::Candidate {
                candidate,
                sdp_mline_index,
            } => {
                let filtered = match &self.options.candidate_filter {
                    Some(f) => f(CandidateDirection::FromServer, &candidate),
                    None => Some(candidate),
                };
                if let Some(c) = filtered.as_deref() {
                    self.webrtc
                        .emit_by_name::<()>("add-ice-candidate", &[&sdp_mline_index, &c]);
                }
            }
            _ => {}
        }
    }

    async fn offer(&mut self, audio: usize, video: usize) -> Result<(), String> {
        // The Membrane client adds recvonly transceivers up to the asked counts, audio first.
        let (audio, video) = if self.receive { (audio, video) } else { (0, 0) };
        for (want, is_video) in [(audio, false), (video, true)] {
            let have = if is_video { self.recv.1 } else { self.recv.0 };
            let nack = self.nack(is_video);
            for _ in have..want {
                let mut caps = media::rtp_caps(is_video, nack);
                // Like a browser: TWCC feedback for what arrives (the server's downlink
                // estimate), unless turned off.
                if !self.options.without_transport_cc {
                    media::transport_cc_caps(&mut caps);
                }
                let transceiver = self.webrtc.emit_by_name::<WebRTCRTPTransceiver>(
                    "add-transceiver",
                    &[&WebRTCRTPTransceiverDirection::Recvonly, &caps],
                );
                // NACKs the gaps the jitter buffer sees, takes the server's RTX.
                media::set_nack(&transceiver, nack);
            }
            if is_video {
                self.recv.1 = self.recv.1.max(want);
            } else {
                self.recv.0 = self.recv.0.max(want);
            }
        }
        let (promise, fut) = gst::Promise::new_future();
        self.webrtc
            .emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
        let reply = fut.await.map_err(|e| format!("{e:?}"))?.ok_or("no offer")?;
        let offer = reply
            .value("offer")
            .map_err(|e| e.to_string())?
            .get::<gst_webrtc::WebRTCSessionDescription>()
            .map_err(|e| e.to_string())?;
        let (promise, fut) = gst::Promise::new_future();
        self.webrtc
            .emit_by_name::<()>("set-local-description", &[&offer, &promise]);
        let _ = fut.await;
        let sdp = offer.sdp().as_text().map_err(|e| e.to_string())?;
        tracing::trace!(id = %self.id, %sdp, "client offer");
        let mut mid_to_track_id = BTreeMap::new();
        let mut track_metadata = BTreeMap::new();
        let mut track_bitrates = BTreeMap::new();
        for t in &self.own {
            if !t.active {
                continue;
            }
            track_metadata.insert(t.id.clone(), t.metadata.clone());
            // webrtcbin 1.22 assigns mids only once the answer is applied; in the offer the
            // transceiver is named by its `a=ssrc … msid:<stream> <transceiver name>` line.
            // A simulcast m-line has no `a=ssrc` line: before its first answer it is found by
            // its index (webrtcbin keeps m-lines in transceiver order).
            let mid = mid_of_transceiver(&sdp, t.transceiver.name().as_str())
                .or_else(|| t.transceiver.mid().map(|m| m.to_string()))
                .or_else(|| {
                    t.simulcast.as_ref()?;
                    simulcast_mid_at(&sdp, self.mline_of(&t.transceiver)?)
                });
            if let Some(layers) = &t.simulcast {
                // What membrane-webrtc-js sends for a simulcast track: each layer's bit rate.
                let rates = media::SIMULCAST_LAYERS
                    .iter()
                    .map(|l| (l.rid.to_owned(), u64::from(l.bitrate)))
                    .collect();
                track_bitrates.insert(t.id.clone(), TrackBitrates::Layers(rates));
                if let Some(mid) = &mid {
                    layers.set_mid(mid);
                }
            }
            if let Some(mid) = mid {
                mid_to_track_id.insert(mid, t.id.clone());
            }
        }
        self.sig.send(&ClientEvent::SdpOffer {
            sdp,
            track_metadata,
            mid_to_track_id,
            track_bitrates,
        });
        Ok(())
    }

    async fn answer(
        &mut self,
        sdp: &str,
        mid_to_track: BTreeMap<String, String>,
    ) -> Result<(), String> {
        let filtered = self
            .options
            .candidate_filter
            .as_ref()
            .map(|f| options::filter_sdp(sdp, f));
        let sdp = filtered.as_deref().unwrap_or(sdp);
        tracing::trace!(id = %self.id, %sdp, "client got answer");
        {
            let mut s = lock(&self.state);
            s.answers += 1;
            s.last_answer = Some(sdp.to_owned());
            s.mid_to_track = mid_to_track;
            let map = s.mid_to_track.clone();
            for (mid, tid) in map {
                if let Some(t) = s.tracks.get_mut(&tid) {
                    t.mid = Some(mid);
                }
            }
        }
        let msg = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()).map_err(|e| e.to_string())?;
        let answer = gst_webrtc::WebRTCSessionDescription::new(WebRTCSDPType::Answer, msg);
        let (promise, fut) = gst::Promise::new_future();
        self.webrtc
            .emit_by_name::<()>("set-remote-description", &[&answer, &promise]);
        let _ = fut.await;
        Ok(())
    }

    /// The m-line index of `transceiver`: its `mlineindex` once negotiated, else its position
    /// among webrtcbin's transceivers (which a new offer gives the same m-line order).
    fn mline_of(&self, transceiver: &WebRTCRTPTransceiver) -> Option<usize> {
        let negotiated = transceiver.property::<u32>("mlineindex");
        if negotiated != u32::MAX {
            return usize::try_from(negotiated).ok();
        }
        (0..1024).find_map(|i: i32| {
            let t = self
                .webrtc
                .emit_by_name::<Option<WebRTCRTPTransceiver>>("get-transceiver", &[&i]);
            match t {
                Some(t) if t == *transceiver => Some(usize::try_from(i).ok()),
                Some(_) => None,
                None => Some(None),
            }
        })?
    }
}

/// The mid of the `index`th m-line of `sdp` if it sends simulcast (`a=simulcast:send`).
fn simulcast_mid_at(sdp: &str, index: usize) -> Option<String> {
    let media = sdp.split("\nm=").nth(index + 1)?;
    let lines = || media.lines().map(|l| l.trim_end_matches('\r'));
    lines().find(|l| l.starts_with("a=simulcast:send"))?;
    lines().find_map(|l| l.strip_prefix("a=mid:").map(str::to_owned))
}

/// The mid of the m-line whose `a=ssrc` msid names `transceiver`.
fn mid_of_transceiver(sdp: &str, transceiver: &str) -> Option<String> {
    let mut mid = None;
    let mut found = false;
    for line in sdp.lines().map(|l| l.trim_end_matches('\r')) {
        if line.starts_with("m=") {
            if found {
                return mid;
            }
            mid = None;
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m.to_owned());
        } else if line.starts_with("a=ssrc:")
            && line.contains(" msid:")
            && line.split_whitespace().last() == Some(transceiver)
        {
            found = true;
        }
    }
    if found {
        mid
    } else {
        None
    }
}

/// Locks the SSRC → payloader map of the simulcast layers.
fn lock_layers(
    layers: &media::LayerPayloaders,
) -> std::sync::MutexGuard<'_, std::collections::HashMap<u32, gst::Element>> {
    layers.lock().unwrap_or_else(|e| e.into_inner())
}

/// A random odd SSRC.
pub(crate) fn rand_ssrc() -> u32 {
    let b = *uuid::Uuid::new_v4().as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) | 1
}
