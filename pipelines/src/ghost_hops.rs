//! Ghost pads on a peer's send and receive chains, linked past once packets flow through them.
//!
//! webrtcbin nests its send chain in bins (rtpbin, its aux sender bin, the transport send bin,
//! `dtlssrtpenc`), so between the real pads of `rtpfunnel`, `laminartx`, `rtpsession`,
//! `srtpenc` and `dtlssrtpenc`'s funnel each forwarded copy passes seven ghost pads; between
//! `srtpdec` and `rtpsession` each received packet passes three, and one more into the aux
//! receiver bin after rtpsession. Each is one more
//! `gst_pad_push`: a peer and a parent ref and unref, pad locks, probe checks, on cache lines
//! that the publishers' threads share (docs/performance.md §13). Once nothing on such a stretch
//! is blocked (the transport send bin blocks it until the DTLS keys are set), the real src pad
//! is linked straight to the real sink pad at its end, across bins (a link without checks).
//! The ghost pads stay in place, unlinked from the real pads; events and queries take the direct
//! link as packets do. A walk can also be told to pass elements that only pass packets on and
//! to end before a given element's ghost pads ([`Rules`]; `receive_fec.rs` uses that).

use gst::prelude::*;

/// The ghost pads a real src pad's packets pass before they reach a real sink pad.
struct Stretch {
    /// The src pad's peer now (a ghost pad or a ghost pad's internal pad).
    first: gst::Pad,
    /// The real sink pad at the end.
    target: gst::Pad,
}

enum Walk {
    Stretch(Stretch),
    /// A pad on the way is blocked (webrtcbin holds packets there for now), or the way ends
    /// at an unlinked pad (not built yet).
    NotYet,
    /// No ghost pad on the way.
    Direct,
}

/// What a walk may pass besides ghost pads, and where it must end.
#[derive(Clone, Copy)]
pub(crate) struct Rules {
    /// For a real sink pad: the src pad of its element if that element only passes packets on
    /// (the walk goes on from there), else `None` (the walk ends at the sink pad).
    pub through: fn(&gst::Pad) -> Option<gst::Pad>,
    /// GType name of an element whose own ghost pads are not passed: the walk ends at the
    /// first pad of such an element's ghost pad.
    pub stop_at: Option<&'static str>,
}

/// Ghost pads only, wherever they lead.
const GHOSTS: Rules = Rules {
    through: |_| None,
    stop_at: None,
};

/// Whether `ghost` belongs to the element `rules` stops at.
fn stops(rules: &Rules, ghost: &gst::GhostPad) -> bool {
    rules.stop_at.is_some_and(|name| {
        ghost
            .parent_element()
            .is_some_and(|e| e.type_().name() == name)
    })
}

/// Follows `src`'s packets through ghost pads (and the elements `rules` lets it pass) to the
/// first real pad that ends the way.
fn walk(src: &gst::Pad, rules: &Rules) -> Walk {
    let Some(first) = src.peer() else {
        return Walk::NotYet;
    };
    let mut pad = first.clone();
    let mut hops = 0;
    loop {
        if pad.is_blocked() {
            return Walk::NotYet;
        }
        let next = if let Some(ghost) = pad.downcast_ref::<gst::GhostPad>() {
            // A sink ghost pad: packets leave through its internal pad to its target.
            if stops(rules, ghost) {
                break;
            }
            let Some(internal) = ghost.internal() else {
                return Walk::NotYet;
            };
            if internal.is_blocked() {
                return Walk::NotYet;
            }
            internal.peer()
        } else if let Some(ghost) = pad
            .parent()
            .and_then(|p| p.downcast::<gst::GhostPad>().ok())
        {
            // The internal pad of a src ghost pad: packets leave through the ghost pad.
            if stops(rules, &ghost) {
                break;
            }
            if ghost.is_blocked() {
                return Walk::NotYet;
            }
            ghost.peer()
        } else if let Some(out) = (rules.through)(&pad) {
            // A real sink pad of an element that only passes packets on.
            if out.is_blocked() {
                return Walk::NotYet;
            }
            out.peer()
        } else {
            break;
        };
        let Some(next) = next else {
            return Walk::NotYet;
        };
        pad = next;
        hops += 1;
    }
    if hops == 0 {
        return Walk::Direct;
    }
    Walk::Stretch(Stretch { first, target: pad })
}

/// Links `src` straight to the end of `stretch`; on failure puts the links back as they were.
fn link_past(src: &gst::Pad, stretch: &Stretch) -> bool {
    let Some(feeder) = stretch.target.peer() else {
        return false;
    };
    if src.unlink(&stretch.first).is_err() {
        return false;
    }
    if feeder.unlink(&stretch.target).is_err() {
        let _ = src.link_full(&stretch.first, gst::PadLinkCheck::empty());
        return false;
    }
    if src
        .link_full(&stretch.target, gst::PadLinkCheck::empty())
        .is_err()
    {
        let _ = feeder.link_full(&stretch.target, gst::PadLinkCheck::empty());
        let _ = src.link_full(&stretch.first, gst::PadLinkCheck::empty());
        return false;
    }
    true
}

/// Links the send chain's real src pads past the ghost pads after them, for every such chain
/// `bin` gets (on `deep-element-added`, so also those of later rounds).
pub(crate) fn shorten(bin: &gst::Bin) {
    bin.connect_deep_element_added(|_, _, element| match element.type_().name() {
        "GstRtpFunnel" | "GstLaminaRtx" => {
            if let Some(src) = element.static_pad("src") {
                link_past_when_flowing(&src);
            }
        }
        // `dtlssrtpenc`'s funnel of SRTP, SRTCP and DTLS, before its `src` ghost pad.
        "GstFunnel" if in_dtlssrtpenc(element) => {
            if let Some(src) = element.static_pad("src") {
                link_past_when_flowing(&src);
            }
        }
        "GstRtpSession" => {
            // Send: to `srtpenc`; receive: into the aux receiver bin, to `rtprtxreceive`.
            element.connect_pad_added(|_, pad| {
                if matches!(pad.name().as_str(), "send_rtp_src" | "recv_rtp_src") {
                    link_past_when_flowing(pad);
                }
            });
        }
        // Receive chain: decrypted RTP and RTCP on their way to rtpbin's session.
        "GstSrtpDec" => {
            for name in ["rtp_src", "rtcp_src"] {
                if let Some(src) = element.static_pad(name) {
                    link_past_when_flowing(&src);
                }
            }
        }
        _ => {}
    });
}

/// Whether `element` is a child of a `dtlssrtpenc`.
pub(crate) fn in_dtlssrtpenc(element: &gst::Element) -> bool {
    element
        .parent()
        .is_some_and(|p| p.type_().name() == "GstDtlsSrtpEnc")
}

/// Links `src` past the ghost pads after it at its first packet that finds none of them blocked.
/// The check runs per packet until then (webrtcbin's blocks last until the DTLS keys are set);
/// the relink itself runs in an IDLE probe, so no other thread pushes on `src` meanwhile.
fn link_past_when_flowing(src: &gst::Pad) {
    link_past_by_rules_when_flowing(src, GHOSTS);
}

/// [`link_past_when_flowing`] with the walk's `rules`.
pub(crate) fn link_past_by_rules_when_flowing(src: &gst::Pad, rules: Rules) {
    src.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |src, _| match walk(src, &rules) {
            Walk::NotYet => gst::PadProbeReturn::Ok,
            Walk::Direct => gst::PadProbeReturn::Remove,
            Walk::Stretch(_) => {
                src.add_probe(gst::PadProbeType::IDLE, move |src, _| {
                    if let Walk::Stretch(stretch) = walk(src, &rules) {
                        let done = link_past(src, &stretch);
                        tracing::debug!(
                            pad = %src.path_string(),
                            target = %stretch.target.path_string(),
                            done,
                            "ghost pads linked past"
                        );
                    }
                    gst::PadProbeReturn::Remove
                });
                gst::PadProbeReturn::Remove
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_packets::packet;

    /// `appsrc → identity → [outer: ghost → [inner: ghost → appsink]]`.
    struct Nested {
        pipeline: gst::Pipeline,
        appsrc: gst_app::AppSrc,
        /// The real src pad the ghost pads follow.
        identity_src: gst::Pad,
        appsink: gst_app::AppSink,
        /// The inner bin's ghost pad's internal pad.
        internal: gst::Pad,
        /// The inner bin's ghost pad.
        inner_ghost: gst::Pad,
    }

    fn nested() -> Nested {
        nested_in(gst::Bin::new())
    }

    /// [`nested`] with `inner` as the inner bin.
    fn nested_in(inner: gst::Bin) -> Nested {
        let pipeline = gst::Pipeline::new();
        let appsrc = gst_app::AppSrc::builder()
            .caps(&gst::Caps::builder("application/x-rtp").build())
            .format(gst::Format::Time)
            .build();
        let identity = gst::ElementFactory::make("identity").build().unwrap();
        let outer = gst::Bin::new();
        let appsink = gst_app::AppSink::builder().sync(false).build();
        inner.add(&appsink).unwrap();
        let inner_ghost = gst::GhostPad::with_target(&appsink.static_pad("sink").unwrap()).unwrap();
        inner.add_pad(&inner_ghost).unwrap();
        outer.add(&inner).unwrap();
        let outer_ghost = gst::GhostPad::with_target(&inner_ghost).unwrap();
        outer.add_pad(&outer_ghost).unwrap();
        pipeline
            .add_many([appsrc.upcast_ref(), &identity, outer.upcast_ref()])
            .unwrap();
        appsrc.link(&identity).unwrap();
        identity.link(&outer).unwrap();
        Nested {
            pipeline,
            appsrc,
            identity_src: identity.static_pad("src").unwrap(),
            appsink,
            internal: inner_ghost.internal().unwrap().upcast(),
            inner_ghost: inner_ghost.upcast(),
        }
    }

    #[test]
    fn a_src_pad_is_linked_past_nested_ghost_pads_and_packets_pass_unchanged() {
        gst::init().unwrap();
        let n = nested();
        let (appsrc, appsink, src) = (&n.appsrc, &n.appsink, &n.identity_src);
        link_past_when_flowing(src);
        n.pipeline.set_state(gst::State::Playing).unwrap();
        for seq in 0..3 {
            appsrc.push_buffer(packet(seq)).unwrap();
            let sample = appsink.pull_sample().unwrap();
            let got = sample.buffer().unwrap().map_readable().unwrap().to_vec();
            assert_eq!(got, packet(seq).map_readable().unwrap().to_vec());
        }
        assert_eq!(
            src.peer(),
            appsink.static_pad("sink"),
            "linked straight to the real sink pad"
        );
        n.pipeline.set_state(gst::State::Null).unwrap();
    }

    #[test]
    fn a_blocked_stretch_is_left_until_it_is_unblocked() {
        gst::init().unwrap();
        let n = nested();
        let (appsrc, appsink, src) = (&n.appsrc, &n.appsink, &n.identity_src);
        let (tx, rx) = std::sync::mpsc::channel();
        let block = n
            .internal
            .add_probe(gst::PadProbeType::BLOCK_DOWNSTREAM, move |_, _| {
                let _ = tx.send(());
                gst::PadProbeReturn::Ok
            })
            .unwrap();
        link_past_when_flowing(src);
        n.pipeline.set_state(gst::State::Playing).unwrap();
        appsrc.push_buffer(packet(1)).unwrap();
        rx.recv().unwrap();
        assert_ne!(
            src.peer(),
            appsink.static_pad("sink"),
            "not linked past a blocked pad"
        );
        n.internal.remove_probe(block);
        assert_eq!(appsink.pull_sample().unwrap().buffer().unwrap().size(), 100);
        // Packet 2 finds the stretch free; the relink runs when its push ends, on the same
        // streaming thread, so before packet 3 is pushed.
        for seq in [2, 3] {
            appsrc.push_buffer(packet(seq)).unwrap();
            assert_eq!(appsink.pull_sample().unwrap().buffer().unwrap().size(), 100);
        }
        assert_eq!(src.peer(), appsink.static_pad("sink"));
        n.pipeline.set_state(gst::State::Null).unwrap();
    }

    #[test]
    fn a_walk_ends_before_the_ghost_pads_of_the_element_it_stops_at() {
        gst::init().unwrap();
        let inner = gst::Pipeline::new();
        let n = nested_in(inner.upcast());
        let (appsrc, appsink, src) = (&n.appsrc, &n.appsink, &n.identity_src);
        let rules = Rules {
            through: |_| None,
            stop_at: Some("GstPipeline"),
        };
        link_past_by_rules_when_flowing(src, rules);
        n.pipeline.set_state(gst::State::Playing).unwrap();
        for seq in 0..3 {
            appsrc.push_buffer(packet(seq)).unwrap();
            assert_eq!(appsink.pull_sample().unwrap().buffer().unwrap().size(), 100);
        }
        assert_eq!(
            src.peer().as_ref(),
            Some(&n.inner_ghost),
            "past the outer one only"
        );
        n.pipeline.set_state(gst::State::Null).unwrap();
    }
}
