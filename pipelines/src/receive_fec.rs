//! webrtcbin's FEC and RED receive machinery, kept out of the per-packet path.
//!
//! rtpbin 1.22 puts an `rtpstorage` in every session's receive path (between the aux receiver
//! and the SSRC demuxer), and webrtcbin sets it to keep every received packet for the
//! jitterbuffer latency plus 50 ms (`on_rtpbin_new_storage`): a window that only
//! `rtpulpfecdec` reads, to rebuild packets from ULPFEC. Lamina answers one codec per m-line,
//! never ULPFEC or RED (`codecs.rs`), so nothing reads it. Storing cost a buffer map, a
//! lock, a hash lookup and a queue node per received packet, and the reference it kept made
//! the buffer shared, so the `rtpulpfecdec` after the payload demuxer (which makes every
//! packet writable even as a pass-through) copied it (docs/performance.md §20). The storage's
//! `size-time` is set to 0, which makes it pass packets on untouched.
//!
//! Each received packet then still passed, after rtpsession, webrtcbin's aux receiver bin
//! `sink_%u (ghost) → rtprtxreceive → rtpreddec → src_%u (ghost)`, the storage, the SSRC
//! demuxer, `laminarepair`, the payload demuxer, an `rtpulpfecdec` per payload (pass-through)
//! and rtpbin's `recv_rtp_src_%u_%u_%u` ghost pad, then webrtcbin's own src ghost pad. Without
//! RED, ULPFEC or a storage window, `rtpreddec`, the storage and `rtpulpfecdec` only pass
//! packets on, so at each such stretch's first packet the real src pad before it is linked
//! straight to the pad after it ([`crate::ghost_hops`]): `rtprtxreceive` to the SSRC demuxer,
//! each payload demuxer pad to webrtcbin's src ghost pad (whose own pads stay, as the peer's
//! bin links them to the forwarders). The elements left aside stay in place, unlinked on one
//! side; their settings are checked at the relink, which is done only if they pass packets on.

use gst::prelude::*;

use crate::ghost_hops::Rules;

/// GType name of rtpbin's per-session packet storage.
const STORAGE_TYPE: &str = "GstRtpStorage";
/// GType name of the RED decoder in webrtcbin's aux receiver bin.
const RED_DEC_TYPE: &str = "GstRtpRedDec";
/// GType name of the ULPFEC decoder after each payload demuxer pad.
const ULPFEC_DEC_TYPE: &str = "GstRtpUlpFecDec";
/// GType name of the aux receiver's RTX decoder, the first element after rtpsession.
const RTX_RECEIVE_TYPE: &str = "GstRtpRtxReceive";
/// GType name of rtpbin's payload demuxer (one per received SSRC).
const PT_DEMUX_TYPE: &str = "GstRtpPtDemux";

/// How the receive path's stretches are walked: through the three elements when they only
/// pass packets on, up to (not into) webrtcbin's own ghost pads.
const RULES: Rules = Rules {
    through: passes_on,
    stop_at: Some("GstWebRTCBin"),
};

/// Turns off the packet storage of every rtpbin session `bin` gets and links past the
/// elements that only pass packets on (on `deep-element-added`, so also those of later
/// rounds).
pub(crate) fn trim(bin: &gst::Bin) {
    bin.connect_deep_element_added(|_, _, element| match element.type_().name() {
        STORAGE_TYPE => keep_nothing(element),
        RTX_RECEIVE_TYPE => {
            if let Some(src) = element.static_pad("src") {
                crate::ghost_hops::link_past_by_rules_when_flowing(&src, RULES);
            }
        }
        PT_DEMUX_TYPE => {
            element.connect_pad_added(|_, pad| {
                if pad.direction() == gst::PadDirection::Src {
                    crate::ghost_hops::link_past_by_rules_when_flowing(pad, RULES);
                }
            });
        }
        _ => {}
    });
}

/// For a real sink pad: its element's src pad if that element only passes packets on.
fn passes_on(sink: &gst::Pad) -> Option<gst::Pad> {
    let element = sink.parent_element()?;
    let passes = match element.type_().name() {
        // No RED payload type (webrtcbin's setting without RED): each packet is pushed on
        // before it is even mapped.
        RED_DEC_TYPE => {
            element.property::<i32>("pt") == -1
                && element.property::<gst::Array>("payloads").is_empty()
        }
        STORAGE_TYPE => element.property::<u64>("size-time") == 0,
        ULPFEC_DEC_TYPE => element.property::<bool>("passthrough"),
        _ => false,
    };
    if passes {
        element.static_pad("src")
    } else {
        None
    }
}

/// Sets `storage`'s window to 0, now and whenever it is set again (webrtcbin sets it from its
/// `latency` when the storage is made, before rtpbin adds it, and again when `latency` changes).
fn keep_nothing(storage: &gst::Element) {
    storage.set_property("size-time", 0u64);
    storage.connect_notify(Some("size-time"), |storage, _| {
        if storage.property::<u64>("size-time") != 0 {
            storage.set_property("size-time", 0u64);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_packets::packet;

    /// `appsrc → rtpreddec → rtpstorage → appsink`, the storage trimmed, `red` set up first.
    fn chain(red: impl Fn(&gst::Element)) -> (gst::Pipeline, gst_app::AppSrc, gst_app::AppSink) {
        let pipeline = gst::Pipeline::new();
        trim(pipeline.upcast_ref());
        let appsrc = gst_app::AppSrc::builder()
            .caps(&gst::Caps::builder("application/x-rtp").build())
            .format(gst::Format::Time)
            .build();
        let reddec = gst::ElementFactory::make("rtpreddec").build().unwrap();
        red(&reddec);
        let storage = gst::ElementFactory::make("rtpstorage").build().unwrap();
        let appsink = gst_app::AppSink::builder().sync(false).build();
        pipeline
            .add_many([appsrc.upcast_ref(), &reddec, &storage, appsink.upcast_ref()])
            .unwrap();
        gst::Element::link_many([appsrc.upcast_ref(), &reddec, &storage, appsink.upcast_ref()])
            .unwrap();
        let src = appsrc.static_pad("src").unwrap();
        crate::ghost_hops::link_past_by_rules_when_flowing(&src, RULES);
        pipeline.set_state(gst::State::Playing).unwrap();
        (pipeline, appsrc, appsink)
    }

    #[test]
    fn red_decoder_and_storage_are_linked_past_and_packets_pass_unchanged() {
        gst::init().unwrap();
        let (pipeline, appsrc, appsink) = chain(|red| red.set_property("pt", -1i32));
        for seq in 0..3 {
            appsrc.push_buffer(packet(seq)).unwrap();
            let got = appsink.pull_sample().unwrap();
            let got = got.buffer().unwrap().map_readable().unwrap().to_vec();
            assert_eq!(got, packet(seq).map_readable().unwrap().to_vec());
        }
        assert_eq!(
            appsrc.static_pad("src").unwrap().peer(),
            appsink.static_pad("sink")
        );
        pipeline.set_state(gst::State::Null).unwrap();
    }

    #[test]
    fn a_red_decoder_with_a_payload_type_stays() {
        gst::init().unwrap();
        let (pipeline, appsrc, appsink) = chain(|red| red.set_property("pt", 63i32));
        for seq in 0..3 {
            appsrc.push_buffer(packet(seq)).unwrap();
            assert_eq!(appsink.pull_sample().unwrap().buffer().unwrap().size(), 100);
        }
        let peer = appsrc.static_pad("src").unwrap().peer().unwrap();
        assert_eq!(peer.parent_element().unwrap().type_().name(), RED_DEC_TYPE);
        pipeline.set_state(gst::State::Null).unwrap();
    }

    #[test]
    fn an_ulpfec_decoder_passes_on_only_as_a_pass_through() {
        gst::init().unwrap();
        let dec = gst::ElementFactory::make("rtpulpfecdec").build().unwrap();
        let sink = dec.static_pad("sink").unwrap();
        // webrtcbin without ULPFEC: `passthrough` true, `pt` 0.
        dec.set_property("passthrough", true);
        assert_eq!(passes_on(&sink), dec.static_pad("src"));
        dec.set_property("passthrough", false);
        assert_eq!(passes_on(&sink), None);
        let queue = gst::ElementFactory::make("queue").build().unwrap();
        assert_eq!(passes_on(&queue.static_pad("sink").unwrap()), None);
    }

    #[test]
    fn the_storage_keeps_nothing_however_often_its_window_is_set() {
        gst::init().unwrap();
        let bin = gst::Bin::new();
        trim(&bin);
        let storage = gst::ElementFactory::make("rtpstorage").build().unwrap();
        // What webrtcbin does from its `new-storage` handler: 200 ms latency + 50 ms.
        storage.set_property("size-time", 250_000_000u64);
        bin.add(&storage).unwrap();
        assert_eq!(storage.property::<u64>("size-time"), 0);
        // What webrtcbin does when its `latency` is set later.
        storage.set_property("size-time", 250_000_000u64);
        assert_eq!(storage.property::<u64>("size-time"), 0);

        // A packet passes and nothing keeps a reference to it.
        let mut h = gst_check::Harness::with_element(&storage, Some("sink"), Some("src"));
        h.set_src_caps_str("application/x-rtp");
        h.push(packet(1)).unwrap();
        let out = h.pull().unwrap();
        assert!(out.is_writable(), "the storage kept a reference");
    }
}
