//! `laminaforwarder` src pads: gating, per-pad PT/SSRC and normalised caps, pads requested while
//! playing, and the sink pad's caps query (driven with `gst_check::Harness`; the publisher
//! harness feeds `sink` and reads `src_0`).

use gst::prelude::*;
use gst_check::Harness;

mod support;

use support::*;

#[test]
fn gated_pad_gets_events_but_no_buffers() {
    let el = forwarder();
    let mut h = publisher(&el, VP8_CAPS);
    for seq in 0..5 {
        assert_eq!(h.push(rtp(1111, seq, 0, 0)), Ok(gst::FlowSuccess::Ok));
    }
    assert!(h.try_pull().is_none(), "a gated pad must not get buffers");
    let events = drain_events(&mut h);
    assert!(
        last_caps(&events).is_some(),
        "a gated pad still gets the stream's events: {events:?}"
    );
    assert_eq!(stat(&el, "forwarded-packets"), 0);
}

#[test]
fn active_pad_gets_rewritten_packets_and_normalised_caps() {
    let el = forwarder();
    let mut h = publisher(&el, VP8_CAPS);
    let src = pad(&el, "src_0");
    src.set_property("pt", 100u32);
    src.set_property("ssrc", 0xABCDu32);
    src.set_property("active", true);

    for seq in 500..503u16 {
        h.push(rtp(1111, seq, u32::from(seq) * 3000, 0))
            .expect("push ok");
    }
    let events = drain_events(&mut h);
    assert_eq!(last_caps(&events), Some(expected_caps(100, 0xABCD)));
    assert_eq!(src.current_caps(), Some(expected_caps(100, 0xABCD)));

    for seq in 500..503u16 {
        let out = h.pull().expect("forwarded buffer");
        // First mapping of a pad is transparent for seq/ts.
        assert_eq!(
            hdr(&out),
            Hdr {
                pt: 100,
                ssrc: 0xABCD,
                seq,
                ts: u32::from(seq) * 3000
            }
        );
        assert_eq!(payload(&out), vec![seq as u8; 8]);
        assert_eq!(out.flags().contains(gst::BufferFlags::DISCONT), seq == 500);
    }
    assert_eq!(stat(&el, "forwarded-packets"), 3);
    assert_eq!(stat(&el, "forwarded-bytes"), 3 * (12 + 8));
}

#[test]
fn two_pads_get_their_own_pt_and_ssrc() {
    let el = forwarder();
    let mut h0 = publisher(&el, VP8_CAPS);
    let mut h1 = Harness::with_element(&el, None, Some("src_1"));
    for (name, pt, ssrc) in [("src_0", 100u32, 10u32), ("src_1", 101, 11)] {
        let p = pad(&el, name);
        p.set_property("pt", pt);
        p.set_property("ssrc", ssrc);
        p.set_property("active", true);
    }
    for seq in 0..3u16 {
        h0.push(rtp(1111, seq, 90 * u32::from(seq), 0))
            .expect("push ok");
    }
    for seq in 0..3u16 {
        let a = h0.pull().expect("src_0 buffer");
        let b = h1.pull().expect("src_1 buffer");
        assert_eq!((hdr(&a).pt, hdr(&a).ssrc, hdr(&a).seq), (100, 10, seq));
        assert_eq!((hdr(&b).pt, hdr(&b).ssrc, hdr(&b).seq), (101, 11, seq));
        assert_eq!(payload(&a), payload(&b));
    }
    assert_eq!(
        last_caps(&drain_events(&mut h0)),
        Some(expected_caps(100, 10))
    );
    assert_eq!(
        last_caps(&drain_events(&mut h1)),
        Some(expected_caps(101, 11))
    );
    assert_eq!(stat(&el, "forwarded-packets"), 6);
}

#[test]
fn pad_requested_while_playing_gets_sticky_events_and_caps_follow_pt() {
    let el = forwarder();
    let mut h0 = publisher(&el, OPUS_CAPS);
    h0.push(rtp(1111, 1, 0, 0)).expect("push ok");

    let mut h1 = Harness::with_element(&el, None, Some("src_1"));
    let src = pad(&el, "src_1");
    let opus = |pt: i32| {
        gst::Caps::builder("application/x-rtp")
            .field("media", "audio")
            .field("encoding-name", "OPUS")
            .field("clock-rate", 48_000i32)
            .field("encoding-params", "2")
            .field("payload", pt)
            .build()
    };
    // Replayed at request time, publisher fields dropped.
    assert_eq!(src.current_caps(), Some(opus(111)));
    // Re-stored as soon as pt changes.
    src.set_property("pt", 109u32);
    assert_eq!(src.current_caps(), Some(opus(109)));

    src.set_property("active", true);
    h0.push(rtp(1111, 2, 960, 20)).expect("push ok");
    let out = h1.pull().expect("buffer on the new pad");
    assert_eq!(hdr(&out).pt, 109);
    let types: Vec<gst::EventType> = drain_events(&mut h1).iter().map(|e| e.type_()).collect();
    assert_eq!(
        types,
        vec![
            gst::EventType::StreamStart,
            gst::EventType::Caps,
            gst::EventType::Segment
        ]
    );

    // Mid-stream change: new caps before the next buffer, which carries the new PT.
    src.set_property("pt", 120u32);
    h0.push(rtp(1111, 3, 1920, 40)).expect("push ok");
    assert_eq!(last_caps(&drain_events(&mut h1)), Some(opus(120)));
    assert_eq!(hdr(&h1.pull().expect("buffer")).pt, 120);
}

#[test]
fn sink_caps_query_answers_the_template() {
    let el = forwarder();
    let _h = publisher(&el, VP8_CAPS);
    let src = pad(&el, "src_0");
    src.set_property("pt", 100u32);
    let sink = pad(&el, "sink");
    let rtp_any = gst::Caps::new_empty_simple("application/x-rtp");
    assert_eq!(sink.query_caps(None), rtp_any);
    let other_pt: gst::Caps = "application/x-rtp, payload=(int)97".parse().expect("caps");
    assert!(sink.query_accept_caps(&other_pt));
    assert!(!sink.query_accept_caps(&gst::Caps::new_empty_simple("video/x-raw")));
}
