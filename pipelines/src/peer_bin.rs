//! `PeerBin`: one participant's `peer-<id>` bin with its webrtcbin and the signal glue.
//!
//! Callbacks connected here run on GStreamer threads (webrtcbin's pc thread, libnice, streaming
//! threads). They do O(1) work: post a `Cmd` to the room's media thread, or — `pad-added` of a
//! publisher's RTP src pad only — ghost the pad and link it to the track's already existing
//! forwarder, because data flows right after the handler returns and an unlinked pad would stop
//! the stream. They capture the webrtcbin weakly; their handler ids are disconnected on removal.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use gst::prelude::*;
use gst_webrtc::prelude::*;
use tokio::sync::mpsc::UnboundedSender;

use crate::cmd::Cmd;
use crate::codecs::Codec;
use crate::ids::{PeerId, TrackId};
use crate::MediaError;
use crate::MediaEvent;

/// Bin name of a peer: `peer-<id>`.
pub fn bin_name(peer: &PeerId) -> String {
    format!("peer-{peer}")
}

/// Where a publisher's m-line goes: the forwarder sink of its track.
#[derive(Debug)]
pub(crate) struct PublishSlot {
    pub track: TrackId,
    pub codec: Codec,
    /// The payload type the client sends with on this m-line.
    pub pt: u32,
    pub fwd_sink: gst::Pad,
    /// Simulcast layers of the m-line (each stream gets its own forwarder sink).
    pub layers: Layers,
    /// `TrackPublished` was sent.
    pub announced: bool,
}

/// The simulcast side of a published m-line.
#[derive(Debug, Default)]
pub(crate) struct Layers {
    /// The RIDs answered; empty for a single stream.
    pub rids: Vec<String>,
}

/// Most simulcast streams linked to one forwarder at a time (a layer whose SSRC changes gets a
/// new pad before its old one goes away); further ones are discarded.
const MAX_LAYER_STREAMS: usize = 8;

impl Layers {
    /// Layers of an m-line answered with `rids`.
    pub(crate) fn new(rids: Vec<String>) -> Self {
        Self { rids }
    }

    fn simulcast(&self) -> bool {
        !self.rids.is_empty()
    }
}

/// The publishing side of a peer, as seen by `pad-added`.
#[derive(Debug, Default)]
pub(crate) struct PublishMap {
    /// m-line index → slot.
    pub slots: HashMap<u32, PublishSlot>,
    /// SSRCs the offers announced (`a=ssrc`) → m-line index.
    pub ssrcs: HashMap<u32, u32>,
}

impl PublishMap {
    /// The kind of the track an SSRC carries: from the offers' `a=ssrc` lines; an SSRC they did
    /// not announce is taken for video when the peer publishes simulcast (browsers announce no
    /// SSRC for simulcast layers, and announce their audio ones).
    pub(crate) fn kind_of(&self, ssrc: u32) -> Option<crate::ids::TrackKind> {
        match self.ssrcs.get(&ssrc) {
            Some(mline) => Some(self.slots.get(mline)?.codec.kind),
            None => self
                .slots
                .values()
                .any(|s| s.layers.simulcast())
                .then_some(crate::ids::TrackKind::Video),
        }
    }

    /// The m-line a received stream belongs to. webrtcbin 1.22 reports m-line 0 for an SSRC the
    /// offer did not announce, so the transceiver is only the last resort: announced SSRC
    /// first, then a payload type used by exactly one published m-line, or by exactly one
    /// m-line without announced SSRCs (simulcast layers are never announced: a simulcast
    /// camera next to a screen share with the same codec), then the transceiver.
    fn resolve(&self, ssrc: Option<u32>, pt: Option<u32>, transceiver: Option<u32>) -> Option<u32> {
        if let Some(m) = ssrc.and_then(|s| self.ssrcs.get(&s)) {
            return Some(*m);
        }
        if let Some(pt) = pt {
            let unique = |mut it: Box<dyn Iterator<Item = u32> + '_>| match (it.next(), it.next()) {
                (Some(m), None) => Some(m),
                _ => None,
            };
            let by_pt = || self.slots.iter().filter(move |(_, s)| s.pt == pt);
            let found = unique(Box::new(by_pt().map(|(m, _)| *m))).or_else(|| {
                unique(Box::new(
                    by_pt()
                        .map(|(m, _)| *m)
                        .filter(|m| !self.ssrcs.values().any(|x| x == m)),
                ))
            });
            if found.is_some() {
                return found;
            }
        }
        transceiver.filter(|m| {
            self.slots
                .get(m)
                .is_some_and(|s| pt.is_none_or(|pt| s.pt == pt))
        })
    }
}

/// State shared between the media thread and the peer's GStreamer callbacks.
/// Lock order: this is the only lock; never held across a GStreamer call.
#[derive(Debug)]
pub(crate) struct PeerShared {
    /// The room's name, for logs of GStreamer threads.
    pub room: String,
    pub peer: PeerId,
    pub cmd: Sender<Cmd>,
    pub events: UnboundedSender<MediaEvent>,
    /// Where the peer's received streams go.
    pub publish: Mutex<PublishMap>,
}

/// A peer's bin, webrtcbin and ICE objects, as owned by the media thread.
#[derive(Debug)]
pub(crate) struct PeerBin {
    pub bin: gst::Bin,
    pub webrtc: gst::Element,
    /// Kept alive on purpose: webrtcbin misbehaves when its agent's last ref goes (docs/webrtcbin.md §6.1).
    pub _ice: gst_webrtc::WebRTCICE,
    /// The `NiceAgent` behind `ice`, for the ICE-restart workaround.
    pub nice: Option<glib::Object>,
    pub shared: Arc<PeerShared>,
    /// RTX maps of the send path, updated from every answer.
    pub rtx_maps: Arc<crate::repair::RtxMaps>,
    /// The downlink estimator (none when turned off or `rtpgccbwe` is missing): with one, the
    /// peer's subscriber m-lines are answered with `transport-cc`.
    pub estimator: Option<crate::downlink::Estimator>,
    handlers: Vec<glib::SignalHandlerId>,
}

/// What every peer bin of a room is built with (from [`crate::PipelineConfig`]).
#[derive(Debug, Clone)]
pub(crate) struct PeerSettings {
    pub addresses: Vec<IpAddr>,
    pub port_range: (u16, u16),
    pub latency_ms: u32,
    pub downlink_estimation: bool,
}

impl PeerBin {
    /// Builds `peer-<id>` (not yet added to the pipeline) and connects its callbacks.
    pub(crate) fn new(
        room: &str,
        peer: &PeerId,
        settings: &PeerSettings,
        cmd: Sender<Cmd>,
        events: UnboundedSender<MediaEvent>,
    ) -> Result<Self, MediaError> {
        let bin = gst::Bin::builder().name(bin_name(peer)).build();
        let webrtc = gst::ElementFactory::make("webrtcbin")
            .name("webrtcbin")
            .property_from_str("bundle-policy", "max-bundle")
            .property("latency", settings.latency_ms)
            .build()
            .map_err(|_| MediaError::MissingElement("webrtcbin".into()))?;
        bin.add(&webrtc)
            .map_err(|e| MediaError::Gst(e.to_string()))?;

        let agent = webrtc.property::<gst_webrtc::WebRTCICE>("ice-agent");
        for addr in &settings.addresses {
            agent.emit_add_local_ip_address(&addr.to_string());
        }
        let (min, max) = settings.port_range;
        if (min, max) != (0, 0) {
            agent.set_min_rtp_port(u32::from(min));
            agent.set_max_rtp_port(u32::from(max));
        }
        if agent.find_property("ice-tcp").is_some() {
            agent.set_property("ice-tcp", false);
        }
        let nice = crate::ice::nice_agent(&agent);
        if let Some(n) = nice.as_ref() {
            crate::ice::tune_agent(n);
        }

        let shared = Arc::new(PeerShared {
            room: room.to_owned(),
            peer: peer.clone(),
            cmd,
            events,
            publish: Mutex::new(PublishMap::default()),
        });
        let handlers = connect_callbacks(&webrtc, &shared);
        let rtx_maps = Arc::new(crate::repair::RtxMaps::default());
        let sh = shared.clone();
        let kind_of = move |ssrc: u32| {
            sh.publish
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .kind_of(ssrc)
        };
        crate::repair::install(&bin, &webrtc, rtx_maps.clone(), kind_of);
        // The send path's aux sender: laminartx, which feeds the downlink estimator.
        let estimator = crate::downlink::connect_aux_sender(
            &webrtc,
            peer.clone(),
            shared.events.clone(),
            crate::repair::rtx_sender,
            settings.downlink_estimation,
        );
        // RTCP: reports once a second, feedback at once and without SR/RR/SDES, TWCC every
        // 100 ms (issue #14; docs/performance.md §1).
        crate::rtcp::install(&bin);
        crate::send_path::trim(&bin);
        crate::ghost_hops::shorten(&bin);
        crate::receive_path::skip_queue(&bin);
        crate::receive_fec::trim(&bin);
        Ok(Self {
            bin,
            webrtc,
            _ice: agent,
            nice,
            shared,
            rtx_maps,
            estimator,
            handlers,
        })
    }

    /// Disconnects every callback (before teardown, so nothing fires into a dying peer).
    pub(crate) fn disconnect(&mut self) {
        for id in self.handlers.drain(..) {
            self.webrtc.disconnect(id);
        }
    }
}

fn connect_callbacks(
    webrtc: &gst::Element,
    shared: &Arc<PeerShared>,
) -> Vec<glib::SignalHandlerId> {
    let mut ids = Vec::new();

    let sh = shared.clone();
    ids.push(webrtc.connect("on-ice-candidate", false, move |values| {
        let mline = values.get(1).and_then(|v| v.get::<u32>().ok());
        let cand = values.get(2).and_then(|v| v.get::<String>().ok());
        if let (Some(mline), Some(candidate)) = (mline, cand) {
            let _ = sh.cmd.send(Cmd::LocalCandidate {
                peer: sh.peer.clone(),
                mline,
                candidate,
            });
        }
        None
    }));

    let sh = shared.clone();
    ids.push(
        webrtc.connect_notify(Some("connection-state"), move |w, _| {
            let state = w.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
            let _ = sh.cmd.send(Cmd::ConnectionState {
                peer: sh.peer.clone(),
                state,
            });
        }),
    );

    let sh = shared.clone();
    ids.push(
        webrtc.connect_notify(Some("ice-connection-state"), move |w, _| {
            let state = w.property::<gst_webrtc::WebRTCICEConnectionState>("ice-connection-state");
            tracing::debug!(room = %sh.room, peer = %sh.peer, ?state, "ice-connection-state");
        }),
    );

    let sh = shared.clone();
    ids.push(webrtc.connect_pad_added(move |w, pad| on_pad_added(&sh, w, pad)));

    let sh = shared.clone();
    ids.push(webrtc.connect_pad_removed(move |_, pad| {
        if pad.direction() == gst::PadDirection::Src {
            let _ = sh.cmd.send(Cmd::SrcPadRemoved {
                peer: sh.peer.clone(),
                pad: pad.name().to_string(),
            });
        }
    }));
    ids
}

/// Streaming thread: a publisher's RTP src pad appeared. Ghost it and link it to the forwarder
/// of the track published on its m-line (created by the media thread before the answer).
fn on_pad_added(shared: &PeerShared, webrtc: &gst::Element, pad: &gst::Pad) {
    if pad.direction() != gst::PadDirection::Src {
        return;
    }
    let Some(bin) = webrtc.parent().and_then(|p| p.downcast::<gst::Bin>().ok()) else {
        return;
    };
    let transceiver = pad
        .property::<Option<gst_webrtc::WebRTCRTPTransceiver>>("transceiver")
        .map(|t| t.mlineindex());
    let caps = pad.current_caps();
    let field = |name: &str| {
        caps.as_ref().and_then(|c| c.structure(0)).and_then(|s| {
            s.get::<u32>(name)
                .ok()
                .or_else(|| s.get::<i32>(name).ok().map(|v| v as u32))
        })
    };
    let (ssrc, pt) = (field("ssrc"), field("payload"));
    let target = {
        let mut map = shared.publish.lock().unwrap_or_else(|e| e.into_inner());
        let mline = map.resolve(ssrc, pt, transceiver);
        mline.and_then(|m| map.slots.get_mut(&m)).and_then(|slot| {
            let sink = if slot.layers.simulcast() {
                // Each simulcast stream gets a sink of its own; the forwarder tells the
                // layers apart by their RID header extension.
                layer_sink(&slot.fwd_sink)?
            } else if slot.fwd_sink.peer().is_some() {
                // One stream per m-line: a second one (new SSRC) is discarded, never swapped
                // in, so the first one can never end up unlinked.
                return None;
            } else {
                slot.fwd_sink.clone()
            };
            let first = !slot.announced;
            slot.announced = true;
            Some((slot.track.clone(), slot.codec.clone(), sink, first))
        })
    };
    let Some((track, codec, fwd_sink, first)) = target else {
        tracing::warn!(room = %shared.room, peer = %shared.peer, pad = %pad.name(), ?transceiver, ?ssrc, ?pt, "RTP for no free published track: discarding");
        discard(&bin, pad);
        return;
    };
    // Audio passes through `laminavad` first (voice activity from the audio-level extension).
    let out = match codec.kind {
        crate::ids::TrackKind::Audio => {
            voice_activity(&bin, pad, &track).unwrap_or_else(|| pad.clone())
        }
        crate::ids::TrackKind::Video => pad.clone(),
    };
    let ghost = match gst::GhostPad::builder_with_target(&out) {
        Ok(b) => b.name(pad.name()).build(),
        Err(e) => {
            tracing::error!(room = %shared.room, peer = %shared.peer, "cannot ghost {}: {e}", pad.name());
            return;
        }
    };
    let _ = ghost.set_active(true);
    // The publisher's EOS stops here, before the forwarder and its subscribers.
    crate::eos::drop_eos(ghost.upcast_ref());
    if bin.add_pad(&ghost).is_err() {
        tracing::error!(room = %shared.room, peer = %shared.peer, "cannot add ghost pad {}", pad.name());
        return;
    }
    if let Err(e) = ghost.link(&fwd_sink) {
        tracing::error!(room = %shared.room, peer = %shared.peer, %track, "cannot link to forwarder: {e:?}");
        let _ = bin.remove_pad(&ghost);
        release_layer_sink(&fwd_sink);
        discard(&bin, pad);
        return;
    }
    tracing::debug!(room = %shared.room, peer = %shared.peer, %track, pad = %pad.name(), "publisher pad linked");
    if first {
        let codec_name = pad
            .current_caps()
            .and_then(|c| {
                c.structure(0)
                    .and_then(|s| s.get::<String>("encoding-name").ok())
            })
            .unwrap_or(codec.encoding_name);
        let _ = shared.events.send(MediaEvent::TrackPublished {
            peer: shared.peer.clone(),
            track,
            kind: codec.kind,
            codec: codec_name,
        });
    }
}

/// A new `sink_%u` of the forwarder owning `fwd_sink`, for one more simulcast stream; `None`
/// past [`MAX_LAYER_STREAMS`] linked ones.
fn layer_sink(fwd_sink: &gst::Pad) -> Option<gst::Pad> {
    let fwd = fwd_sink.parent_element()?;
    let linked = fwd
        .sink_pads()
        .iter()
        .filter(|p| p.name().starts_with("sink_") && p.peer().is_some())
        .count();
    if linked >= MAX_LAYER_STREAMS {
        return None;
    }
    fwd.request_pad_simple("sink_%u")
}

/// Releases `sink` if it is a simulcast layer's request sink of a forwarder (`sink_%u`).
pub(crate) fn release_layer_sink(sink: &gst::Pad) {
    if sink.name().starts_with("sink_") {
        if let Some(fwd) = sink.parent_element() {
            fwd.release_request_pad(sink);
        }
    }
}

/// Name of the `laminavad` of an audio track (the bus maps its messages back by it).
pub(crate) fn vad_name(track: &TrackId) -> String {
    format!("{VAD_PREFIX}{track}")
}

/// Prefix of [`vad_name`].
pub(crate) const VAD_PREFIX: &str = "vad-";

/// The element message `laminavad` posts on each speech/silence change (its docs:
/// `elements/src/vad/mod.rs`; elements are used by factory name, like `laminaforwarder`).
pub(crate) const VAD_MESSAGE: &str = "lamina-vad";

/// Puts a `laminavad` named [`vad_name`] after `pad` inside the peer's bin; returns its src pad,
/// or `None` (the caller links `pad` itself) when the element cannot be made. A `laminavad` left
/// from an earlier stream of the track is replaced.
fn voice_activity(bin: &gst::Bin, pad: &gst::Pad, track: &TrackId) -> Option<gst::Pad> {
    let name = vad_name(track);
    if let Some(old) = bin.by_name(&name) {
        let _ = old.set_state(gst::State::Null);
        let _ = bin.remove(&old);
    }
    let vad = gst::ElementFactory::make("laminavad")
        .name(&name)
        .build()
        .ok()?;
    bin.add(&vad).ok()?;
    let _ = vad.sync_state_with_parent();
    let linked = vad
        .static_pad("sink")
        .is_some_and(|sink| pad.link(&sink).is_ok());
    if !linked {
        let _ = vad.set_state(gst::State::Null);
        let _ = bin.remove(&vad);
        return None;
    }
    vad.static_pad("src")
}

/// Links an unexpected src pad to a fakesink inside the peer's bin, so that its stream does
/// not return NOT_LINKED into webrtcbin's shared receive path.
fn discard(bin: &gst::Bin, pad: &gst::Pad) {
    let Ok(sink) = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
    else {
        return;
    };
    if bin.add(&sink).is_ok() {
        let _ = sink.sync_state_with_parent();
        if let Some(sinkpad) = sink.static_pad("sink") {
            let _ = pad.link(&sinkpad);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TrackKind;

    fn slot(kind: TrackKind, pt: u32, rids: &[&str]) -> PublishSlot {
        gst::init().unwrap();
        PublishSlot {
            track: TrackId::from(format!("t{pt}").as_str()),
            codec: Codec {
                kind,
                encoding_name: "VP8".into(),
                clock_rate: 90000,
            },
            pt,
            fwd_sink: gst::Pad::builder(gst::PadDirection::Sink).build(),
            layers: Layers::new(rids.iter().map(|r| r.to_string()).collect()),
            announced: false,
        }
    }

    #[test]
    fn unannounced_streams_go_to_the_simulcast_m_line_of_their_payload_type() {
        let mut map = PublishMap::default();
        map.slots.insert(0, slot(TrackKind::Audio, 111, &[]));
        // A simulcast camera and a screen share, both VP8 on 96; the screen's SSRC is known.
        map.slots
            .insert(1, slot(TrackKind::Video, 96, &["l", "m", "h"]));
        map.slots.insert(2, slot(TrackKind::Video, 96, &[]));
        map.ssrcs.insert(10, 0);
        map.ssrcs.insert(20, 2);
        assert_eq!(map.resolve(Some(20), Some(96), Some(0)), Some(2));
        assert_eq!(map.resolve(Some(30), Some(96), Some(0)), Some(1));
        assert_eq!(map.resolve(Some(31), Some(111), Some(0)), Some(0));
        // Kinds: announced, or video for an unannounced SSRC of a simulcast publisher.
        assert_eq!(map.kind_of(10), Some(TrackKind::Audio));
        assert_eq!(map.kind_of(30), Some(TrackKind::Video));
        map.slots.remove(&1);
        assert_eq!(map.kind_of(30), None);
    }
}
