//! The transport receive bin's queue, left out of the per-packet path once packets pass it.
//!
//! webrtcbin 1.22 receives each peer's packets through
//! `nicesrc → capsfilter → queue → dtlssrtpdec (sink ghost → dtlssrtpdemux)`. The queue hands
//! every received packet from nicesrc's thread to a thread of its own: a futex wake-up and two
//! context switches per packet, the largest share of the server's context switches in a room
//! of 8 (docs/performance.md §14). It is there because the bin blocks the pad before
//! dtlssrtpdec (the queue's src pad) until ICE is connected, and again whenever ICE leaves the
//! connected state; nicesrc's thread must not stall there, since it also reads the ICE checks
//! that would connect it again.
//!
//! Once a packet reaches the queue with nothing blocked, the capsfilter is linked straight to
//! `dtlssrtpdemux`'s sink pad, past the queue and dtlssrtpdec's sink ghost pad: from then on
//! nicesrc's thread runs the whole receive path, as the queue's thread did. The queue stays
//! linked to the ghost pad, whose inside is unlinked, so the bin's later blocks land on the
//! queue's src pad, where no packet passes any more: packets arriving while ICE is not
//! connected go on to dtlssrtpdec (ready since it has been connected) instead of being held.
//! The relink runs when the queue is empty and its thread is not pushing (inside an IDLE
//! probe on its src pad taken from nicesrc's thread), so no packet is lost or reordered.
//!
//! The queue also kept EOS out of the receive path, and that is kept: when the peer closes its
//! DTLS connection (a browser's `close()` sends close_notify), dtlsdec returns EOS, nicesrc
//! stops and pushes an EOS event; the queue, already stopped by that EOS, dropped the event.
//! Let through, it would travel the publisher's receive path into the forwarders and from
//! there into every subscriber's `rtpfunnel`, which forwards EOS: each subscriber's send path
//! would refuse all media from then on (see [`crate::eos`]). The feeder drops EOS events.

use gst::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// GType name of webrtcbin's transport receive bin.
const RECEIVE_BIN_TYPE: &str = "TransportReceiveBin";

/// Leaves the queue out of every transport receive bin `bin` gets (on `deep-element-added`,
/// so also those of later rounds).
pub(crate) fn skip_queue(bin: &gst::Bin) {
    bin.connect_deep_element_added(|_, _, element| {
        let in_receive_bin = element
            .parent()
            .is_some_and(|p| p.type_().name() == RECEIVE_BIN_TYPE);
        if in_receive_bin && element.type_().name() == "GstQueue" {
            link_past_when_flowing(element);
        }
    });
}

/// Links the queue's feeder past `queue` at the first packet that finds the way clear (see the
/// module docs); until then each packet is checked (webrtcbin's block lasts until ICE is
/// connected).
fn link_past_when_flowing(queue: &gst::Element) {
    let Some(queue_sink) = queue.static_pad("sink") else {
        return;
    };
    let arm = move |feeder: &gst::Pad, queue_sink: &gst::Pad| {
        crate::eos::drop_eos(feeder);
        let queue_sink = queue_sink.clone();
        feeder.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |feeder, _| {
                if try_link_past(feeder, &queue_sink) {
                    gst::PadProbeReturn::Remove
                } else {
                    gst::PadProbeReturn::Ok
                }
            },
        );
    };
    match queue_sink.peer() {
        Some(feeder) => arm(&feeder, &queue_sink),
        None => {
            queue_sink.connect_linked(move |queue_sink, feeder| arm(feeder, queue_sink));
        }
    }
}

/// From a packet probe on `feeder` (so on the thread that pushes into the queue): if nothing
/// after the queue is blocked, the queue is empty and its thread idle, links `feeder` to the
/// real sink pad behind the queue's peer ghost pad. The packet being pushed takes the new link.
fn try_link_past(feeder: &gst::Pad, queue_sink: &gst::Pad) -> bool {
    let Some(queue) = queue_sink.parent_element() else {
        return false;
    };
    let Some(queue_src) = queue.static_pad("src") else {
        return false;
    };
    if queue_src.is_blocked() {
        return false;
    }
    let Some(ghost) = queue_src
        .peer()
        .and_then(|p| p.downcast::<gst::GhostPad>().ok())
    else {
        return false;
    };
    let Some(internal) = ghost.internal().map(|p| p.upcast::<gst::Pad>()) else {
        return false;
    };
    if ghost.is_blocked() || internal.is_blocked() {
        return false;
    }
    let Some(target) = internal.peer() else {
        return false;
    };
    let here = std::thread::current().id();
    let done = Arc::new(AtomicBool::new(false));
    let feeder = feeder.clone();
    let queue_sink = queue_sink.clone();
    let relinked = done.clone();
    // Runs here at once if the queue's thread is not pushing (and keeps it from starting until
    // it returns); otherwise later on that thread, where it does nothing: the next packet
    // tries again.
    queue_src.add_probe(gst::PadProbeType::IDLE, move |_, _| {
        if std::thread::current().id() == here
            && queue.property::<u32>("current-level-buffers") == 0
        {
            relinked.store(
                relink(&feeder, &queue_sink, &internal, &target),
                Ordering::Release,
            );
        }
        gst::PadProbeReturn::Remove
    });
    done.load(Ordering::Acquire)
}

/// `feeder → queue_sink … internal → target` becomes `feeder → target`; on failure the links
/// are put back as they were.
fn relink(
    feeder: &gst::Pad,
    queue_sink: &gst::Pad,
    internal: &gst::Pad,
    target: &gst::Pad,
) -> bool {
    if internal.unlink(target).is_err() {
        return false;
    }
    if feeder.unlink(queue_sink).is_err() {
        let _ = internal.link_full(target, gst::PadLinkCheck::empty());
        return false;
    }
    if feeder
        .link_full(target, gst::PadLinkCheck::empty())
        .is_err()
    {
        let _ = feeder.link_full(queue_sink, gst::PadLinkCheck::empty());
        let _ = internal.link_full(target, gst::PadLinkCheck::empty());
        return false;
    }
    tracing::debug!(
        pad = %feeder.path_string(),
        target = %target.path_string(),
        "receive queue left out"
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_packets::packet;

    /// `appsrc → queue → [bin: ghost → identity] → appsink`, the shape of webrtcbin's
    /// `capsfilter → queue → dtlssrtpdec`.
    struct Receive {
        pipeline: gst::Pipeline,
        appsrc: gst_app::AppSrc,
        queue: gst::Element,
        /// The real sink pad behind the bin's ghost pad.
        identity_sink: gst::Pad,
        appsink: gst_app::AppSink,
    }

    fn receive() -> Receive {
        let pipeline = gst::Pipeline::new();
        let appsrc = gst_app::AppSrc::builder()
            .caps(&gst::Caps::builder("application/x-rtp").build())
            .format(gst::Format::Time)
            .build();
        let queue = gst::ElementFactory::make("queue").build().unwrap();
        let bin = gst::Bin::new();
        let identity = gst::ElementFactory::make("identity").build().unwrap();
        bin.add(&identity).unwrap();
        let identity_sink = identity.static_pad("sink").unwrap();
        bin.add_pad(&gst::GhostPad::with_target(&identity_sink).unwrap())
            .unwrap();
        bin.add_pad(&gst::GhostPad::with_target(&identity.static_pad("src").unwrap()).unwrap())
            .unwrap();
        let appsink = gst_app::AppSink::builder().sync(false).build();
        pipeline
            .add_many([
                appsrc.upcast_ref(),
                &queue,
                bin.upcast_ref(),
                appsink.upcast_ref(),
            ])
            .unwrap();
        gst::Element::link_many([
            appsrc.upcast_ref(),
            &queue,
            bin.upcast_ref(),
            appsink.upcast_ref(),
        ])
        .unwrap();
        link_past_when_flowing(&queue);
        Receive {
            pipeline,
            appsrc,
            queue,
            identity_sink,
            appsink,
        }
    }

    /// Pushes `seqs` one at a time, each once the one before has arrived (as packets come
    /// from the network, with the queue empty in between), and checks that each arrives in
    /// order and unchanged.
    fn pass(r: &Receive, seqs: std::ops::Range<u8>) {
        for seq in seqs {
            r.appsrc.push_buffer(packet(seq)).unwrap();
            let sample = r.appsink.pull_sample().unwrap();
            let got = sample.buffer().unwrap().map_readable().unwrap().to_vec();
            assert_eq!(
                got,
                packet(seq).map_readable().unwrap().to_vec(),
                "packet {seq}"
            );
        }
    }

    fn feeder(r: &Receive) -> gst::Pad {
        r.appsrc.static_pad("src").unwrap()
    }

    /// A playing [`receive`] whose first 200 packets have passed, the feeder relinked past
    /// the queue.
    fn relinked() -> Receive {
        gst::init().unwrap();
        let r = receive();
        r.pipeline.set_state(gst::State::Playing).unwrap();
        pass(&r, 0..200);
        assert_eq!(feeder(&r).peer().as_ref(), Some(&r.identity_sink));
        r
    }

    #[test]
    fn the_feeder_is_linked_past_the_queue_and_no_packet_is_lost_or_reordered() {
        let r = relinked();
        assert!(r.queue.static_pad("sink").unwrap().peer().is_none());
        // The queue stays linked to the ghost pad, where webrtcbin looks for the pad to block.
        assert!(r.queue.static_pad("src").unwrap().peer().is_some());
        r.pipeline.set_state(gst::State::Null).unwrap();
    }

    #[test]
    fn a_blocked_queue_is_kept_until_unblocked_and_its_packets_are_delivered_first() {
        gst::init().unwrap();
        let r = receive();
        let queue_src = r.queue.static_pad("src").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // What webrtcbin's transport receive bin does to packets until ICE is connected.
        let block = queue_src
            .add_probe(
                gst::PadProbeType::BLOCK | gst::PadProbeType::BUFFER,
                move |_, _| {
                    let _ = tx.send(());
                    gst::PadProbeReturn::Ok
                },
            )
            .unwrap();
        r.pipeline.set_state(gst::State::Playing).unwrap();
        for seq in 0..5 {
            r.appsrc.push_buffer(packet(seq)).unwrap();
        }
        rx.recv().unwrap();
        assert_ne!(
            feeder(&r).peer().as_ref(),
            Some(&r.identity_sink),
            "blocked: kept"
        );
        queue_src.remove_probe(block);
        for seq in 0..5 {
            let sample = r.appsink.pull_sample().unwrap();
            assert_eq!(sample.buffer().unwrap().map_readable().unwrap()[3], seq);
        }
        pass(&r, 5..200);
        assert_eq!(feeder(&r).peer().as_ref(), Some(&r.identity_sink));
        r.pipeline.set_state(gst::State::Null).unwrap();
    }

    #[test]
    fn an_eos_from_the_feeder_after_the_relink_goes_no_further() {
        let r = relinked();
        // What nicesrc pushes once dtlsdec has returned EOS (the peer's close_notify); with
        // the queue gone nothing between the feeder and the sink pad runs on another thread,
        // so it has arrived by the time the push returns, unless dropped.
        feeder(&r).push_event(gst::event::Eos::new());
        assert!(r.identity_sink.sticky_event::<gst::event::Eos>(0).is_none());
        assert!(!r.appsink.is_eos());
        r.pipeline.set_state(gst::State::Null).unwrap();
    }

    #[test]
    fn a_block_on_the_queue_after_the_relink_holds_up_nothing() {
        let r = relinked();
        // webrtcbin blocks the peer of the bin's sink pad again when ICE disconnects.
        let sink = r.identity_sink.parent_element().unwrap().parent().unwrap();
        let ghost = sink
            .downcast_ref::<gst::Element>()
            .unwrap()
            .static_pad("sink")
            .unwrap();
        let blocked = ghost.peer().unwrap();
        assert_eq!(blocked, r.queue.static_pad("src").unwrap());
        let _block = blocked.add_probe(
            gst::PadProbeType::BLOCK | gst::PadProbeType::BUFFER,
            |_, _| gst::PadProbeReturn::Ok,
        );
        pass(&r, 200..220);
        r.pipeline.set_state(gst::State::Null).unwrap();
    }
}
