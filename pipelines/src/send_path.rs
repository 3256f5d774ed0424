//! What Lamina trims from the send paths webrtcbin builds for each of a peer's sink pads.
//!
//! webrtcbin 1.22 (`_connect_input_stream`) builds, per sink pad:
//! `sink_%u (ghost) → clocksync → FEC encoder bin (rtpulpfecenc → rtpredenc) → rtpfunnel
//! sink_%u`, and points the ghost pad at the clocksync last. Lamina answers one codec per m-line
//! (never RED or ULPFEC), so the FEC bin only passes packets on, and the clocksync only waits on
//! the clock (`sync=true`). Once the ghost pad points at the clocksync, it is pointed at the
//! funnel's sink pad instead: each forwarded copy skips three elements and two ghost pads
//! (docs/performance.md §10). If the FEC bin is not a pure pass-through (FEC or RED
//! negotiated) the path stays as built, with the clocksync trimmed.
//!
//! Each peer's send session also has webrtcbin's aux sender bin (`request-aux-sender`):
//! `sink_%u (ghost) → rtprtxsend → laminartx → src_%u (ghost)`. `laminartx` answers every
//! retransmission request from its own history (`repair.rs`, docs/loss-repair.md), so
//! `rtprtxsend` only kept each packet for nothing; its sink ghost pad is pointed at `laminartx`
//! (docs/performance.md §12).
//!
//! `dtlssrtpenc` has one more clocksync per RTP sink pad, between `srtpenc` and its funnel, a
//! pass-through unless its `rtp-sync` is set: `srtpenc` is linked to the funnel past it
//! (docs/performance.md §13). The ghost pads between these elements are `ghost_hops.rs`'s.
//!
//! That funnel merges SRTP, SRTCP and DTLS into nicesink and, by default, forwards the sticky
//! events of whichever pad a packet comes from whenever it differs from the previous packet's:
//! with every RTCP packet sent, twice, a stream-start, caps and a segment reach nicesink, which
//! posts a stream-start message through four bins to the pipeline's bus. nicesink needs them
//! once (it neither reads caps nor syncs), so the funnel forwards only its first pad's
//! (`forward-sticky-events=false`, set while `dtlssrtpenc` is still in NULL; docs/performance.md
//! §14).

use gst::prelude::*;

/// Name of the sticky event webrtcbin sends into each of its sink pads (the transceiver's mid).
const TOS_EVENT: &str = "GstWebRtcBinUpdateTos";

/// GType name of `laminartx`, the aux sender `rtprtxsend` is bypassed for.
const LAMINA_RTX_TYPE: &str = "GstLaminaRtx";

/// Trims every send path `bin` gets (on `deep-element-added`, so also those of later rounds).
pub(crate) fn trim(bin: &gst::Bin) {
    bin.connect_deep_element_added(|_, _, element| match element.type_().name() {
        "GstClockSync" if crate::ghost_hops::in_dtlssrtpenc(element) => {
            bypass_srtp_clocksync(element)
        }
        "GstFunnel" if crate::ghost_hops::in_dtlssrtpenc(element) => {
            element.set_property("forward-sticky-events", false);
        }
        "GstClockSync" => {
            trim_clocksync(element);
            bypass_once_targeted(element);
        }
        "GstRtpRtxSend" => bypass_rtxsend(element),
        _ => {}
    });
}

/// Points the aux sender bin's sink ghost pad past `rtxsend` at the `laminartx` after it, and
/// leaves `rtxsend` unlinked (see the module docs). Per forwarded copy that saves rtprtxsend's
/// work (a buffer map, its object lock, two hash lookups, a history node allocated and one
/// freed) and a pad push. rtpbin announces the aux bin (`deep-element-added`) when it adds it,
/// fully built and before linking it to anything: no packet is flowing yet. Any other
/// neighbour (no aux sender of ours) keeps the path as built.
fn bypass_rtxsend(rtxsend: &gst::Element) {
    let (Some(sink), Some(src)) = (rtxsend.static_pad("sink"), rtxsend.static_pad("src")) else {
        return;
    };
    let Some(next) = src.peer().filter(|p| {
        p.parent_element()
            .is_some_and(|e| e.type_().name() == LAMINA_RTX_TYPE)
    }) else {
        tracing::debug!(element = %rtxsend.name(), "aux sender kept: rtprtxsend not followed by laminartx");
        return;
    };
    let Some(ghost) = sink
        .peer()
        .and_then(|internal| internal.parent())
        .and_then(|p| p.downcast::<gst::GhostPad>().ok())
    else {
        tracing::debug!(element = %rtxsend.name(), "aux sender kept: rtprtxsend not behind a ghost pad");
        return;
    };
    tracing::debug!(pad = %ghost.name(), "aux sender: rtprtxsend bypassed");
    // rtprtxsend ended every request it was given; laminartx passes those it has no mapping
    // for upstream, where the forwarder would turn them into NACKs to the publisher.
    if let Some(laminartx) = next.parent_element() {
        laminartx.set_property("forward-unmapped", false);
    }
    if src.unlink(&next).is_err() || ghost.set_target(Some(&next)).is_err() {
        tracing::warn!(pad = %ghost.name(), "aux sender: bypass of rtprtxsend failed");
    }
}

/// - `sync=false`: with `sync=true` the clocksync waits on the clock for each packet's
///   timestamp: pacing for file-like sources, only delay and clock reads for forwarded live
///   RTP. (For a path that keeps its clocksync.)
/// - webrtcbin's TOS event stops here ([`drop_tos_events`]).
fn trim_clocksync(clocksync: &gst::Element) {
    clocksync.set_property("sync", false);
    if let Some(pad) = clocksync.static_pad("sink") {
        drop_tos_events(&pad);
    }
}

/// webrtcbin's per-mid `GstWebRtcBinUpdateTos` sticky event stops at `pad`. Only webrtcbin's
/// DSCP probe on nicesink reads it, and that is attached only once a sender or data channel
/// priority is set, which Lamina never does. In a bundle, rtpfunnel re-pushes the custom
/// sticky events of the stream a packet comes from whenever it differs from the previous
/// packet's: with a per-mid event that is nearly every forwarded packet, each time stored and
/// forwarded down the whole send chain to nicesink (9 % of the server's CPU in a room of 8,
/// docs/performance.md §7).
fn drop_tos_events(pad: &gst::Pad) {
    crate::event_drop::drop_downstream_events(pad, |e| {
        e.type_() == gst::EventType::CustomDownstreamSticky
            && e.structure().is_some_and(|s| s.name() == TOS_EVENT)
    });
}

/// `dtlssrtpenc` puts a clocksync between `srtpenc` and its funnel for each RTP sink pad, with
/// `sync` bound to its `rtp-sync` property (false unless set; webrtcbin never sets it): a pure
/// pass-through. `srtpenc`'s src pad is linked to the funnel instead, once the clocksync is
/// linked on both sides: at once if it is (webrtcbin adds the transport send bin fully built,
/// before any packet), else when `dtlssrtpenc` links it to the funnel (the last link of its
/// `request_new_pad`; no lock held in `linked`). The clocksync stays in the bin, unlinked
/// (dtlssrtpenc never releases these pads).
fn bypass_srtp_clocksync(clocksync: &gst::Element) {
    let Some(src) = clocksync.static_pad("src") else {
        return;
    };
    match src.peer() {
        Some(funnel_sink) => link_past_srtp_clocksync(&src, &funnel_sink),
        None => {
            src.connect_linked(link_past_srtp_clocksync);
        }
    }
}

fn link_past_srtp_clocksync(src: &gst::Pad, funnel_sink: &gst::Pad) {
    let Some(clocksync) = src.parent_element() else {
        return;
    };
    if clocksync.property::<bool>("sync") {
        return;
    }
    let Some(sink) = clocksync.static_pad("sink") else {
        return;
    };
    let Some(srtp_src) = sink.peer() else {
        tracing::debug!("dtlssrtpenc: clocksync linked to the funnel before srtpenc: kept");
        return;
    };
    let bypassed = srtp_src.unlink(&sink).is_ok()
        && src.unlink(funnel_sink).is_ok()
        && srtp_src.link(funnel_sink).is_ok();
    if bypassed {
        tracing::debug!(pad = %srtp_src.name(), "dtlssrtpenc: clocksync bypassed");
    } else {
        tracing::warn!(pad = %srtp_src.name(), "dtlssrtpenc: bypass of its clocksync failed");
    }
}

/// When a ghost pad is pointed at `clocksync`'s sink pad, points it past the clocksync and
/// the FEC bin (see the module docs). Runs inside that `set_target`, on webrtcbin's thread,
/// after the link and with no lock held (`gst_pad_link_full` emits `linked` last).
fn bypass_once_targeted(clocksync: &gst::Element) {
    let Some(sink) = clocksync.static_pad("sink") else {
        return;
    };
    sink.connect_linked(|sink, internal| {
        let Some(ghost) = internal
            .parent()
            .and_then(|p| p.downcast::<gst::GhostPad>().ok())
        else {
            tracing::debug!(peer = ?internal, "send path: clocksync linked to no ghost pad");
            return;
        };
        let Some((fec_src, target)) = sink.parent_element().and_then(|c| bypass_target(&c)) else {
            tracing::debug!(pad = %ghost.name(), "send path kept: FEC bin not a pass-through");
            return;
        };
        tracing::debug!(pad = %ghost.name(), target = %target.name(), "send path: bypass");
        drop_tos_events(&target);
        if fec_src.unlink(&target).is_err() || ghost.set_target(Some(&target)).is_err() {
            tracing::warn!(pad = %ghost.name(), "send path: bypass of clocksync and FEC bin failed");
        }
    });
}

/// The FEC bin's src pad after `clocksync` and its peer (the funnel's sink pad), if that bin
/// only passes packets on: `rtpulpfecenc` and `rtpredenc` without a payload type (what
/// webrtcbin sets when neither ULPFEC nor RED is negotiated), and nothing else.
fn bypass_target(clocksync: &gst::Element) -> Option<(gst::Pad, gst::Pad)> {
    let fec = clocksync
        .static_pad("src")?
        .peer()?
        .parent_element()?
        .downcast::<gst::Bin>()
        .ok()?;
    let children = fec.children();
    let passes_on = !children.is_empty()
        && children.iter().all(|child| {
            let factory = child.factory().map(|f| f.name().to_string());
            match factory.as_deref() {
                // 255: no FEC payload type, whatever the percentage (webrtcbin sets the
                // transceiver's `fec-percentage`, 100 by default).
                Some("rtpulpfecenc") => child.property::<u32>("pt") == 255,
                Some("rtpredenc") => child.property::<i32>("pt") == 0,
                _ => false,
            }
        });
    if !passes_on {
        return None;
    }
    let fec_src = fec.static_pad("src")?;
    let target = fec_src.peer()?;
    Some((fec_src, target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Custom sticky events that reach the element after a trimmed `clocksync`, by name.
    fn sticky_names_through_a_send_path_start(events: Vec<gst::Event>) -> Vec<String> {
        let clocksync = gst::ElementFactory::make("clocksync").build().unwrap();
        trim_clocksync(&clocksync);
        assert!(!clocksync.property::<bool>("sync"));
        let mut h = gst_check::Harness::with_element(&clocksync, Some("sink"), Some("src"));
        h.set_src_caps_str("application/x-rtp");
        let criticals = Arc::new(AtomicUsize::new(0));
        let seen = criticals.clone();
        let handler = glib::log_set_handler(
            Some("GStreamer"),
            glib::LogLevels::LEVEL_CRITICAL,
            false,
            false,
            move |_, _, _| {
                seen.fetch_add(1, Ordering::SeqCst);
            },
        );
        for e in events {
            h.push_event(e);
        }
        glib::log_remove_handler(Some("GStreamer"), handler);
        assert_eq!(criticals.load(Ordering::SeqCst), 0, "GStreamer criticals");
        h.push(gst::Buffer::with_size(12).unwrap()).unwrap();
        let mut names = Vec::new();
        while let Some(e) = h.try_pull_event() {
            if e.type_() == gst::EventType::CustomDownstreamSticky {
                names.extend(e.structure().map(|s| s.name().to_string()));
            }
        }
        names
    }

    #[test]
    fn webrtcbins_tos_event_stops_where_a_send_path_starts_and_other_sticky_events_pass() {
        gst::init().unwrap();
        let tos = |mid: &str| {
            gst::event::CustomDownstreamSticky::new(
                gst::Structure::builder(TOS_EVENT).field("mid", mid).build(),
            )
        };
        let other = gst::event::CustomDownstreamSticky::new(gst::Structure::new_empty("Other"));
        assert_eq!(
            sticky_names_through_a_send_path_start(vec![tos("0"), other, tos("1")]),
            ["Other"]
        );
    }

    /// Builds a send path the way webrtcbin 1.22 does (`_connect_input_stream`): clocksync and
    /// FEC bin added and linked to the funnel, the ghost pad pointed at the clocksync last.
    /// `red_pt` is what webrtcbin would set on `rtpredenc` (0: RED not negotiated). Returns the
    /// outer bin, its ghost sink pad and the funnel's sink pad.
    fn webrtcbin_like_send_path(red_pt: i32) -> (gst::Bin, gst::GhostPad, gst::Pad) {
        let bin = gst::Bin::new();
        trim(&bin);
        let make = |name: &str| gst::ElementFactory::make(name).build().unwrap();
        let ghost = gst::GhostPad::builder(gst::PadDirection::Sink)
            .name("sink_0")
            .build();
        bin.add_pad(&ghost).unwrap();
        let clocksync = make("clocksync");
        bin.add(&clocksync).unwrap();
        let fec = gst::Bin::new();
        let (ulpfec, red) = (make("rtpulpfecenc"), make("rtpredenc"));
        red.set_property("pt", red_pt);
        fec.add_many([&ulpfec, &red]).unwrap();
        ulpfec.link(&red).unwrap();
        let fec_sink = gst::GhostPad::with_target(&ulpfec.static_pad("sink").unwrap()).unwrap();
        let fec_src = gst::GhostPad::with_target(&red.static_pad("src").unwrap()).unwrap();
        fec.add_pad(&fec_sink).unwrap();
        fec.add_pad(&fec_src).unwrap();
        bin.add(&fec).unwrap();
        let funnel = make("rtpfunnel");
        bin.add(&funnel).unwrap();
        clocksync.link(&fec).unwrap();
        let funnel_sink = funnel.request_pad_simple("sink_%u").unwrap();
        fec_src.link(&funnel_sink).unwrap();
        ghost
            .set_target(Some(&clocksync.static_pad("sink").unwrap()))
            .unwrap();
        let src = gst::GhostPad::with_target(&funnel.static_pad("src").unwrap()).unwrap();
        bin.add_pad(&src).unwrap();
        (bin, ghost, funnel_sink)
    }

    #[test]
    fn a_send_path_without_fec_goes_from_the_ghost_pad_straight_to_the_funnel() {
        gst::init().unwrap();
        let (bin, ghost, funnel_sink) = webrtcbin_like_send_path(0);
        assert_eq!(ghost.target().as_ref(), Some(&funnel_sink));
        let mut h = gst_check::Harness::with_element(&bin, Some("sink_0"), Some("src"));
        h.set_src_caps_str("application/x-rtp,media=video,clock-rate=90000,payload=96");
        h.push_event(gst::event::CustomDownstreamSticky::new(
            gst::Structure::builder(TOS_EVENT).field("mid", "0").build(),
        ));
        let mut packet = vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        packet.resize(112, 0);
        h.push(gst::Buffer::from_slice(packet)).unwrap();
        let out = h.pull().unwrap();
        assert_eq!(out.size(), 112, "the packet passed unchanged");
        while let Some(e) = h.try_pull_event() {
            let name = e.structure().map(|s| s.name().to_string());
            assert_ne!(
                name.as_deref(),
                Some(TOS_EVENT),
                "the TOS event stops at the funnel"
            );
        }
    }

    /// An aux sender bin as webrtcbin 1.22 builds it (`on_rtpbin_request_aux_sender`):
    /// `rtprtxsend` linked to `aux`, ghost pads `src_0` (on `aux`) and `sink_0` (on
    /// `rtprtxsend`), then added to `outer` as rtpbin adds it. Returns the bin and `sink_0`.
    fn webrtcbin_like_aux_sender(
        outer: &gst::Bin,
        aux: &gst::Element,
    ) -> (gst::Bin, gst::GhostPad) {
        let bin = gst::Bin::new();
        let rtxsend = gst::ElementFactory::make("rtprtxsend").build().unwrap();
        bin.add_many([&rtxsend, aux]).unwrap();
        rtxsend.link(aux).unwrap();
        let src = gst::GhostPad::builder_with_target(&aux.static_pad("src").unwrap())
            .unwrap()
            .name("src_0")
            .build();
        bin.add_pad(&src).unwrap();
        let sink = gst::GhostPad::builder_with_target(&rtxsend.static_pad("sink").unwrap())
            .unwrap()
            .name("sink_0")
            .build();
        bin.add_pad(&sink).unwrap();
        outer.add(&bin).unwrap();
        (bin, sink)
    }

    #[test]
    fn the_aux_sender_goes_from_its_ghost_pad_straight_to_laminartx() {
        gst::init().unwrap();
        gstlamina::plugin_register_static().unwrap();
        let outer = gst::Bin::new();
        trim(&outer);
        let laminartx = gst::ElementFactory::make("laminartx").build().unwrap();
        let (bin, sink) = webrtcbin_like_aux_sender(&outer, &laminartx);
        assert_eq!(sink.target(), laminartx.static_pad("sink"));
        assert!(!laminartx.property::<bool>("forward-unmapped"));
        let rtxsend = bin
            .children()
            .into_iter()
            .find(|e| e.type_().name() == "GstRtpRtxSend")
            .unwrap();
        assert!(
            !rtxsend.static_pad("src").unwrap().is_linked(),
            "rtprtxsend left out"
        );
        let mut h = gst_check::Harness::with_element(&bin, Some("sink_0"), Some("src_0"));
        h.set_src_caps_str("application/x-rtp,media=video,clock-rate=90000,payload=96");
        let mut packet = vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        packet.resize(112, 7);
        h.push(gst::Buffer::from_slice(packet.clone())).unwrap();
        let out = h.pull().unwrap();
        assert_eq!(
            out.map_readable().unwrap().as_slice(),
            &packet[..],
            "passed unchanged"
        );
    }

    #[test]
    fn an_aux_sender_of_another_kind_keeps_rtprtxsend() {
        gst::init().unwrap();
        let outer = gst::Bin::new();
        trim(&outer);
        let identity = gst::ElementFactory::make("identity").build().unwrap();
        let (_bin, sink) = webrtcbin_like_aux_sender(&outer, &identity);
        let target = sink.target().unwrap().parent_element().unwrap();
        assert_eq!(target.type_().name(), "GstRtpRtxSend");
    }

    /// `srtpenc`'s `rtp_src_0` and what it is linked to in a `dtlssrtpenc` in a trimmed bin,
    /// its RTP sink pad requested before or after the bin gets it.
    fn srtp_src_peer_in_dtlssrtpenc(request_first: bool, sync: bool) -> (gst::Pad, gst::Element) {
        let bin = gst::Bin::new();
        trim(&bin);
        let enc = gst::ElementFactory::make("dtlssrtpenc")
            .property("rtp-sync", sync)
            .build()
            .unwrap();
        let request = || enc.request_pad_simple("rtp_sink_0").unwrap();
        if request_first {
            request();
        }
        bin.add(&enc).unwrap();
        if !request_first {
            request();
        }
        let children = enc.downcast_ref::<gst::Bin>().unwrap().children();
        let srtpenc = children
            .iter()
            .find(|e| e.type_().name() == "GstSrtpEnc")
            .unwrap();
        let peer = srtpenc.static_pad("rtp_src_0").unwrap().peer().unwrap();
        (peer, enc)
    }

    #[test]
    fn dtlssrtpencs_clocksync_is_left_out_whichever_comes_first() {
        gst::init().unwrap();
        for request_first in [true, false] {
            let (peer, _enc) = srtp_src_peer_in_dtlssrtpenc(request_first, false);
            let next = peer.parent_element().unwrap();
            assert_eq!(
                next.type_().name(),
                "GstFunnel",
                "request first: {request_first}"
            );
        }
        let (peer, _enc) = srtp_src_peer_in_dtlssrtpenc(false, true);
        let next = peer.parent_element().unwrap();
        assert_eq!(
            next.type_().name(),
            "GstClockSync",
            "rtp-sync=true keeps it"
        );
    }

    #[test]
    fn dtlssrtpencs_funnel_forwards_only_its_first_pads_sticky_events() {
        gst::init().unwrap();
        let (_peer, enc) = srtp_src_peer_in_dtlssrtpenc(false, false);
        let children = enc.downcast_ref::<gst::Bin>().unwrap().children();
        let funnel = children
            .iter()
            .find(|e| e.type_().name() == "GstFunnel")
            .unwrap();
        assert!(!funnel.property::<bool>("forward-sticky-events"));
        // Any other funnel keeps the default.
        let bin = gst::Bin::new();
        trim(&bin);
        let other = gst::ElementFactory::make("funnel").build().unwrap();
        bin.add(&other).unwrap();
        assert!(other.property::<bool>("forward-sticky-events"));
    }

    #[test]
    fn a_send_path_with_red_keeps_its_clocksync_and_fec_bin() {
        gst::init().unwrap();
        let (_bin, ghost, funnel_sink) = webrtcbin_like_send_path(100);
        let target = ghost.target().unwrap();
        assert_ne!(target, funnel_sink);
        let clocksync = target.parent_element().unwrap();
        assert_eq!(clocksync.type_().name(), "GstClockSync");
        assert!(!clocksync.property::<bool>("sync"), "trimmed all the same");
    }
}
