//! `laminaforwarder` isolation: failing subscribers never affect other pads or the publisher, and
//! pads can be released while buffers flow.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use gst::prelude::*;
use gst_check::Harness;

mod support;

use support::*;

/// A sink pad whose chain always fails with `err`.
fn failing_sink(err: gst::FlowError) -> gst::Pad {
    let p = gst::Pad::builder(gst::PadDirection::Sink)
        .chain_function(move |_, _, _| Err(err))
        .event_function(|_, _, _| true)
        .build();
    p.set_active(true).expect("activate");
    p
}

#[test]
fn failing_subscribers_do_not_affect_others_or_the_publisher() {
    let el = forwarder();
    let mut h = publisher(&el, VP8_CAPS);
    pad(&el, "src_0").set_property("active", true);

    // src_1: downstream refuses its caps, like a webrtcbin negotiated for another PT.
    let mut refusing = Harness::with_element(&el, None, Some("src_1"));
    refusing.set_sink_caps_str("application/x-rtp, payload=(int)99");
    let src_1 = pad(&el, "src_1");
    src_1.set_property("pt", 100u32);
    // src_2..src_4: downstream returns not-negotiated, error and flushing; src_5 is unlinked.
    let mut sinks = Vec::new();
    for err in [
        gst::FlowError::NotNegotiated,
        gst::FlowError::Error,
        gst::FlowError::Flushing,
    ] {
        let p = el.request_pad_simple("src_%u").expect("request pad");
        let sink = failing_sink(err);
        p.link(&sink).expect("link");
        sinks.push(sink);
    }
    let unlinked = el.request_pad_simple("src_%u").expect("request pad");
    assert_eq!(unlinked.name(), "src_5");
    for p in el.src_pads() {
        p.set_property("active", true);
    }

    for seq in 0..20u16 {
        assert_eq!(h.push(rtp(1111, seq, 0, 0)), Ok(gst::FlowSuccess::Ok));
    }
    for seq in 0..20u16 {
        assert_eq!(hdr(&h.pull().expect("src_0 keeps receiving")).seq, seq);
    }
    assert!(refusing.try_pull().is_none());
    assert_eq!(stat(&el, "forwarded-packets"), 20);
}

#[test]
fn releasing_pads_while_buffers_flow_is_safe() {
    let el = forwarder();
    let mut h = publisher(&el, VP8_CAPS);
    pad(&el, "src_0").set_property("active", true);

    let stop = Arc::new(AtomicBool::new(false));
    let (pushed_tx, pushed_rx) = mpsc::channel();
    let pusher = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut seq = 0u16;
            let mut errors = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if h.push(rtp(1111, seq, u32::from(seq) * 90, 0)).is_err() {
                    errors += 1;
                }
                seq = seq.wrapping_add(1);
                // Keep the harness queue small.
                while h.try_pull().is_some() {}
            }
            let _ = pushed_tx.send((seq, errors));
        })
    };

    let (done_tx, done_rx) = mpsc::channel();
    let releaser = {
        let el = el.clone();
        thread::spawn(move || {
            for _ in 0..30 {
                let p = el.request_pad_simple("src_%u").expect("request pad");
                let (got_tx, got_rx) = mpsc::sync_channel(1);
                let sink = gst::Pad::builder(gst::PadDirection::Sink)
                    .chain_function(move |_, _, _| {
                        let _ = got_tx.try_send(());
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .event_function(|_, _, _| true)
                    .build();
                sink.set_active(true).expect("activate");
                p.link(&sink).expect("link");
                p.set_property("active", true);
                got_rx
                    .recv_timeout(TIMEOUT)
                    .expect("buffers reach the new pad");
                let name = p.name();
                el.release_request_pad(&p);
                assert!(el.static_pad(&name).is_none());
            }
            let _ = done_tx.send(());
        })
    };

    done_rx
        .recv_timeout(TIMEOUT)
        .expect("request/release cycles finish (no deadlock)");
    releaser.join().expect("releaser thread");
    assert_eq!(el.src_pads().len(), 1, "only src_0 is left");
    stop.store(true, Ordering::Relaxed);
    let (pushed, errors) = pushed_rx.recv_timeout(TIMEOUT).expect("pusher stops");
    pusher.join().expect("pusher thread");
    assert!(pushed > 30);
    assert_eq!(errors, 0, "the publisher never sees a subscriber's release");
}
