//! `laminaforwarder` header rewriting: sequence numbers and timestamps continuous across gating
//! and input source changes, and retransmission requests translated back to input numbers.

use gst::prelude::*;

mod support;

use support::*;

#[test]
fn seq_and_ts_continue_across_gating() {
    let el = forwarder();
    let mut h = publisher(&el, VP8_CAPS);
    let src = pad(&el, "src_0");
    src.set_property("active", true);
    // 30 fps: 3000 ticks and 33 ms per frame (one packet per frame here).
    for i in 0..5u16 {
        h.push(rtp(
            1111,
            65530 + i,
            1_000 + 3000 * u32::from(i),
            33 * u64::from(i),
        ))
        .expect("push ok");
    }
    let before: Vec<Hdr> = (0..5).map(|_| hdr(&h.pull().expect("buffer"))).collect();
    assert_eq!(before.last().map(|h| (h.seq, h.ts)), Some((65534, 13_000)));

    src.set_property("active", false);
    for i in 5..100u16 {
        h.push(rtp(
            1111,
            65530u16.wrapping_add(i),
            1_000 + 3000 * u32::from(i),
            33 * u64::from(i),
        ))
        .expect("push ok");
    }
    assert!(h.try_pull().is_none());

    src.set_property("active", true);
    // Back after 96 frames: input seq 65530+100 (wrapped), 3168 ms after the last packet out.
    for i in 100..103u16 {
        h.push(rtp(
            1111,
            65530u16.wrapping_add(i),
            1_000 + 3000 * u32::from(i),
            33 * u64::from(i),
        ))
        .expect("push ok");
    }
    let first = h.pull().expect("buffer after gap");
    assert!(first.flags().contains(gst::BufferFlags::DISCONT));
    let gap_ticks = (3300 - 132) * 90;
    assert_eq!(
        hdr(&first),
        Hdr {
            pt: 96,
            ssrc: 1111,
            seq: 65535,
            ts: 13_000 + gap_ticks
        }
    );
    let second = h.pull().expect("buffer");
    assert!(!second.flags().contains(gst::BufferFlags::DISCONT));
    assert_eq!(
        (hdr(&second).seq, hdr(&second).ts),
        (0, 13_000 + gap_ticks + 3000)
    );
    assert_eq!(hdr(&h.pull().expect("buffer")).seq, 1);
}

#[test]
fn seq_and_ts_continue_across_input_source_change() {
    let el = forwarder();
    let mut h = publisher(&el, VP8_CAPS);
    let src = pad(&el, "src_0");
    src.set_property("ssrc", 4242u32);
    src.set_property("active", true);
    for i in 0..3u16 {
        h.push(rtp(
            1111,
            100 + i,
            50_000 + 3000 * u32::from(i),
            1000 + 33 * u64::from(i),
        ))
        .expect("push ok");
    }
    // The publisher restarts: new SSRC, unrelated numbering, 100 ms after the last packet.
    for i in 0..3u16 {
        h.push(rtp(
            2222,
            9 + i,
            7 + 3000 * u32::from(i),
            1166 + 33 * u64::from(i),
        ))
        .expect("push ok");
    }
    // A sequence jump in the same SSRC is treated the same way.
    h.push(rtp(2222, 30_000, 9_000_000, 1300)).expect("push ok");

    let out: Vec<(Hdr, bool)> = (0..7)
        .map(|_| {
            let b = h.pull().expect("buffer");
            (hdr(&b), b.flags().contains(gst::BufferFlags::DISCONT))
        })
        .collect();
    let seqs: Vec<u16> = out.iter().map(|(h, _)| h.seq).collect();
    assert_eq!(seqs, vec![100, 101, 102, 103, 104, 105, 106]);
    assert!(out.iter().all(|(h, _)| h.ssrc == 4242 && h.pt == 96));
    let ts: Vec<u32> = out.iter().map(|(h, _)| h.ts).collect();
    assert_eq!(&ts[..3], &[50_000, 53_000, 56_000]);
    // 1166 ms - 1066 ms = 100 ms = 9000 ticks after the last packet of the old source.
    assert_eq!(&ts[3..6], &[65_000, 68_000, 71_000]);
    // 1300 ms - 1232 ms = 68 ms = 6120 ticks.
    assert_eq!(ts[6], 71_000 + 6120);
    let disconts: Vec<bool> = out.iter().map(|(_, d)| *d).collect();
    assert_eq!(disconts, vec![true, false, false, true, false, false, true]);
}

#[test]
fn retransmission_requests_are_translated_to_input_numbers() {
    let el = forwarder();
    let mut h = publisher(&el, VP8_CAPS);
    let src = pad(&el, "src_0");
    src.set_property("ssrc", 4242u32);
    src.set_property("active", true);
    h.push(rtp(1111, 10, 0, 0)).expect("push ok");
    src.set_property("active", false);
    src.set_property("active", true);
    h.push(rtp(1111, 500, 0, 100)).expect("push ok");
    assert_eq!(hdr(&h.pull().expect("buffer")).seq, 10);
    assert_eq!(hdr(&h.pull().expect("buffer")).seq, 11);
    while h.try_pull_upstream_event().is_some() {}

    let request = gst::event::CustomUpstream::new(
        gst::Structure::builder("GstRTPRetransmissionRequest")
            .field("seqnum", 11u32)
            .field("ssrc", 4242u32)
            .build(),
    );
    assert!(h.push_upstream_event(request));
    let up = h.pull_upstream_event().expect("forwarded request");
    let s = up.structure().expect("structure");
    assert_eq!(s.get::<u32>("seqnum"), Ok(500));
    assert_eq!(s.get::<u32>("ssrc"), Ok(1111));
}

#[test]
fn transport_wide_cc_reports_stay_with_the_subscriber() {
    let el = forwarder();
    let mut h = publisher(&el, VP8_CAPS);
    let src = pad(&el, "src_0");
    src.set_property("active", true);
    h.push(rtp(1111, 10, 0, 0)).expect("push ok");
    h.pull().expect("buffer");
    while h.try_pull_upstream_event().is_some() {}
    // What rtpsession sends upstream for each TWCC feedback packet of a subscriber.
    let twcc = gst::event::CustomUpstream::new(
        gst::Structure::builder("RTPTWCCPackets")
            .field("packets", gst::List::new([1u32, 2, 3]))
            .build(),
    );
    assert!(src.send_event(twcc), "handled");
    assert!(
        h.try_pull_upstream_event().is_none(),
        "not passed to the publisher"
    );
    // Other custom upstream events still reach the publisher.
    let other = gst::event::CustomUpstream::new(gst::Structure::new_empty("x-lamina-other"));
    assert!(src.send_event(other));
    let up = h.try_pull_upstream_event().expect("passed on");
    assert_eq!(
        up.structure().map(|s| s.name().as_str()),
        Some("x-lamina-other")
    );
}

/// The segment event object `src_0` of `el` carries after its publisher pushed `segment`.
fn forwarded_segment(segment: gst::FormattedSegment<gst::ClockTime>) -> gst::Event {
    let el = forwarder();
    let mut h = publisher(&el, VP8_CAPS);
    pad(&el, "src_0").set_property("active", true);
    assert!(h.push_event(gst::event::Segment::new(&segment)));
    h.push(rtp(1111, 10, 0, 0)).expect("push ok");
    h.pull().expect("buffer");
    let mut found = None;
    pad(&el, "src_0").sticky_events_foreach(|e| {
        if e.type_() == gst::EventType::Segment {
            found = Some(e.clone());
        }
        std::ops::ControlFlow::Continue(gst::EventForeachAction::Keep)
    });
    found.expect("a segment on src_0")
}

#[test]
fn plain_segments_are_one_shared_event_across_forwarders() {
    // Two publishers, two segment objects; the subscribers' funnels must see one object, so
    // switching streams does not push the segment down again.
    init();
    let a = forwarded_segment(gst::FormattedSegment::new());
    let b = forwarded_segment(gst::FormattedSegment::new());
    assert_eq!(a.as_ptr(), b.as_ptr(), "the same event object");
    // A segment that maps time differently is passed on as it is.
    let mut shifted = gst::FormattedSegment::<gst::ClockTime>::new();
    shifted.set_base(gst::ClockTime::from_seconds(5));
    let c = forwarded_segment(shifted);
    assert_ne!(c.as_ptr(), a.as_ptr());
    let gst::EventView::Segment(seg) = c.view() else {
        unreachable!()
    };
    let seg = seg.segment().downcast_ref::<gst::ClockTime>().unwrap();
    assert_eq!(seg.base(), Some(gst::ClockTime::from_seconds(5)));
}
