//! `laminartx`: pass-through of every packet, RTX answers (RFC 4588) to
//! `GstRTPRetransmissionRequest` upstream events for packets sent in any order, requests for
//! packets not kept, requests for SSRCs without a mapping (passed upstream), the per-second
//! budget, hostile input, and `gst-launch-1.0` / `gst-inspect-1.0` runs against the
//! `libgstlamina.so` built by this run.
//!
//! The harness feeds the element's sink pad and reads its src pad; a request is pushed with
//! `push_upstream_event` (it reaches the element's src pad, as rtpsession's would) and the RTX
//! packet it produces is pushed downstream from the same thread, so it is queued on the harness
//! when `push_upstream_event` returns.

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_check::Harness;
use gst_rtp::prelude::*;
use gst_rtp::RTPBuffer;

mod support;

use support::{hdr, init, payload, run_with_plugin, Hdr, VP8_CAPS};

/// The mapped SSRC and payload type, and their RTX counterparts.
const SSRC: u32 = 1111;
const RTX_SSRC: u32 = 2222;
const PT: u8 = 96;
const RTX_PT: u8 = 97;
/// An SSRC without an RTX mapping.
const OTHER_SSRC: u32 = 3333;
const SSRC_MAP: &str = "application/x-rtp-ssrc-map, 1111=(uint)2222";
const PT_MAP: &str = "application/x-rtp-pt-map, 96=(uint)97";
const RETRANSMISSION_REQUEST: &str = "GstRTPRetransmissionRequest";
/// Packets kept per SSRC (`laminartx`'s ring).
const SLOTS: u16 = 512;

fn structure(s: &str) -> gst::Structure {
    s.parse()
        .unwrap_or_else(|e| panic!("valid structure {s}: {e}"))
}

/// A `laminartx` with [`SSRC_MAP`] and [`PT_MAP`] (other properties at defaults).
fn laminartx() -> gst::Element {
    init();
    gst::ElementFactory::make("laminartx")
        .property("ssrc-map", structure(SSRC_MAP))
        .property("payload-type-map", structure(PT_MAP))
        .build()
        .expect("laminartx is registered")
}

/// Harness feeding `el`'s sink pad and reading its src pad, with VP8 RTP caps pushed.
fn harness(el: &gst::Element) -> Harness {
    let mut h = Harness::with_element(el, Some("sink"), Some("src"));
    h.set_src_caps_str(VP8_CAPS);
    h
}

/// An RTP packet of `ssrc` with PT `pt` and sequence number `seq`: timestamp 3000 * seq, PTS
/// 33 ms * seq, marker on every third, a 5 to 11 byte payload derived from `seq`, and `csrcs`.
fn packet_with(ssrc: u32, pt: u8, seq: u16, csrcs: &[u32]) -> gst::Buffer {
    let len = 5 + u32::from(seq % 7);
    let mut buf = gst::Buffer::new_rtp_with_sizes(len, 0, csrcs.len() as u8).expect("rtp buffer");
    {
        let b = buf.get_mut().expect("new buffer is writable");
        b.set_pts(gst::ClockTime::from_mseconds(33 * u64::from(seq)));
        let mut r = RTPBuffer::from_buffer_writable(b).expect("valid rtp");
        r.set_payload_type(pt);
        r.set_ssrc(ssrc);
        r.set_seq(seq);
        r.set_timestamp(3000u32.wrapping_mul(u32::from(seq)));
        r.set_marker(seq.is_multiple_of(3));
        for (i, &c) in csrcs.iter().enumerate() {
            r.set_csrc(i as u8, c);
        }
        for (i, byte) in r.payload_mut().expect("payload").iter_mut().enumerate() {
            *byte = (seq as u8).wrapping_add(31u8.wrapping_mul(i as u8)) ^ (seq >> 8) as u8;
        }
    }
    buf
}

/// A packet of `ssrc` with PT [`PT`], no CSRCs.
fn packet(ssrc: u32, seq: u16) -> gst::Buffer {
    packet_with(ssrc, PT, seq, &[])
}

fn push_buf(h: &mut Harness, buf: gst::Buffer) {
    let what = format!("{buf:?}");
    assert_eq!(h.push(buf), Ok(gst::FlowSuccess::Ok), "push {what}");
}

fn push(h: &mut Harness, ssrc: u32, seq: u16) {
    push_buf(h, packet(ssrc, seq));
}

fn bytes(buf: &gst::BufferRef) -> Vec<u8> {
    buf.map_readable().expect("readable").as_slice().to_vec()
}

/// Every buffer queued on the harness's sink side, in order.
fn pull_all(h: &mut Harness) -> Vec<gst::Buffer> {
    std::iter::from_fn(|| h.try_pull()).collect()
}

/// Pulls the buffers queued on the harness and expects them to be exactly `sent`, unchanged
/// (bytes and PTS).
fn expect_passed_through(h: &mut Harness, sent: &[gst::Buffer]) {
    let out = pull_all(h);
    assert_eq!(out.len(), sent.len(), "buffers out");
    for (i, (o, s)) in out.iter().zip(sent).enumerate() {
        assert_eq!(o.pts(), s.pts(), "PTS of buffer {i}");
        assert_eq!(bytes(o), bytes(s), "buffer {i} unchanged");
    }
}

fn request_structure(ssrc: u32, seqnum: u32) -> gst::Structure {
    gst::Structure::builder(RETRANSMISSION_REQUEST)
        .field("seqnum", seqnum)
        .field("ssrc", ssrc)
        .build()
}

/// A retransmission request as rtpsession sends it upstream.
fn request(ssrc: u32, seqnum: u32) -> gst::Event {
    gst::event::CustomUpstream::new(request_structure(ssrc, seqnum))
}

/// Pushes a request for `seq` of `ssrc` at the element's src pad.
fn ask(h: &mut Harness, ssrc: u32, seq: u16) {
    assert!(
        h.push_upstream_event(request(ssrc, u32::from(seq))),
        "request for {seq} of {ssrc} handled"
    );
}

/// Drains the harness's upstream event queue; returns the structures of the custom upstream
/// events that reached it (requests passed on by the element), in order. Linking the harness
/// sends a reconfigure upstream; any other kind of event fails the test.
fn drain_upstream(h: &mut Harness) -> Vec<gst::Structure> {
    let mut custom = Vec::new();
    while let Some(event) = h.try_pull_upstream_event() {
        match event.type_() {
            gst::EventType::Reconfigure => {}
            gst::EventType::CustomUpstream => custom.push(
                event
                    .structure()
                    .expect("custom event structure")
                    .to_owned(),
            ),
            other => panic!("unexpected upstream event {other:?}: {event:?}"),
        }
    }
    custom
}

fn stats(el: &gst::Element) -> gst::Structure {
    el.property::<gst::Structure>("stats")
}

/// `num-requests`, `num-rtx-packets`, `num-not-cached`, `num-dropped`.
fn counters(el: &gst::Element) -> [u64; 4] {
    let s = stats(el);
    [
        "num-requests",
        "num-rtx-packets",
        "num-not-cached",
        "num-dropped",
    ]
    .map(|field| {
        s.get::<u64>(field)
            .unwrap_or_else(|e| panic!("u64 {field} in {s}: {e}"))
    })
}

/// Checks that `rtx` is the RTX packet (RFC 4588 section 4) for `original` with RTX sequence
/// number `rtx_seq`: RTX PT and SSRC, same timestamp, marker and CSRCs, payload = original
/// sequence number (big endian) + original payload, no padding or extension, same PTS.
fn assert_rtx(rtx: &gst::Buffer, original: &gst::Buffer, rtx_seq: u16) {
    let o = RTPBuffer::from_buffer_readable(original).expect("original is rtp");
    let r = RTPBuffer::from_buffer_readable(rtx).expect("rtx is valid rtp");
    let what = format!("RTX for {} of {:08x}", o.seq(), o.ssrc());
    assert_eq!(bytes(rtx)[0] >> 6, 2, "{what}: RTP version");
    assert_eq!(r.payload_type(), RTX_PT, "{what}: PT");
    assert_eq!(r.ssrc(), RTX_SSRC, "{what}: SSRC");
    assert_eq!(r.seq(), rtx_seq, "{what}: RTX sequence number");
    assert_eq!(r.timestamp(), o.timestamp(), "{what}: timestamp");
    assert_eq!(r.is_marker(), o.is_marker(), "{what}: marker");
    assert_eq!(r.csrc_count(), o.csrc_count(), "{what}: CSRC count");
    for i in 0..o.csrc_count() {
        assert_eq!(r.csrc(i), o.csrc(i), "{what}: CSRC {i}");
    }
    assert!(!r.has_padding() && !r.is_extension(), "{what}: flags");
    let mut want = o.seq().to_be_bytes().to_vec();
    want.extend_from_slice(o.payload().expect("original payload"));
    assert_eq!(r.payload().expect("rtx payload"), want.as_slice(), "{what}");
    assert_eq!(rtx.pts(), original.pts(), "{what}: PTS");
}

/// Sends a request for each of `seqs` (of [`SSRC`]) and expects one RTX packet for each, in
/// order, with consecutive RTX sequence numbers; returns the RTX sequence number of the first.
fn expect_answered(h: &mut Harness, seqs: &[u16]) -> u16 {
    let mut first = None;
    for (i, &seq) in seqs.iter().enumerate() {
        ask(h, SSRC, seq);
        let out = pull_all(h);
        assert_eq!(out.len(), 1, "one RTX packet for {seq}");
        let rtx_seq = *first.get_or_insert(hdr(&out[0]).seq);
        assert_rtx(&out[0], &packet(SSRC, seq), rtx_seq.wrapping_add(i as u16));
    }
    first.expect("at least one request")
}

#[test]
fn packets_pass_through_unchanged_and_a_request_yields_one_rtx_packet() {
    let el = laminartx();
    let mut h = harness(&el);
    // Across the 16-bit wrap, with an unmapped stream interleaved.
    let mut sent = Vec::new();
    for seq in (65530..=65535).chain(0..10) {
        for buf in [packet(SSRC, seq), packet(OTHER_SSRC, seq.wrapping_add(100))] {
            sent.push(buf.clone());
            push_buf(&mut h, buf);
        }
    }
    expect_passed_through(&mut h, &sent);

    let caps = std::iter::from_fn(|| h.try_pull_event())
        .find_map(|e| match e.view() {
            gst::EventView::Caps(c) => Some(c.caps_owned()),
            _ => None,
        })
        .expect("caps forwarded");
    assert_eq!(caps, VP8_CAPS.parse::<gst::Caps>().expect("caps"));
    assert_eq!(counters(&el), [0; 4], "nothing asked yet");

    // Seq 3 has the marker set, 4 not; 65533 is before the wrap.
    let first = expect_answered(&mut h, &[3, 4, 65533]);
    assert!(
        drain_upstream(&mut h).is_empty(),
        "answered requests go no further"
    );
    assert_eq!(counters(&el), [3, 3, 0, 0]);

    // The same packet asked again: a second RTX copy with the next RTX sequence number.
    ask(&mut h, SSRC, 3);
    let out = pull_all(&mut h);
    assert_eq!(out.len(), 1);
    assert_rtx(&out[0], &packet(SSRC, 3), first.wrapping_add(3));
    assert_eq!(counters(&el), [4, 4, 0, 0]);

    // Packets keep passing after the RTX packets.
    push(&mut h, SSRC, 10);
    expect_passed_through(&mut h, &[packet(SSRC, 10)]);

    let s = stats(&el);
    assert_eq!(s.name(), "application/x-lamina-rtx-stats");
    assert_eq!(s.n_fields(), 4, "{s}");
}

#[test]
fn rtx_packet_keeps_the_csrcs_and_an_empty_payload_works() {
    let el = laminartx();
    let mut h = harness(&el);
    let with_csrcs = packet_with(SSRC, PT, 20, &[0xdead_beef, 7, 0x0102_0304]);
    let mut empty = gst::Buffer::new_rtp_with_sizes(0, 0, 0).expect("rtp buffer");
    {
        let b = empty.get_mut().expect("writable");
        let mut r = RTPBuffer::from_buffer_writable(b).expect("rtp");
        r.set_payload_type(PT);
        r.set_ssrc(SSRC);
        r.set_seq(21);
        r.set_timestamp(77);
        r.set_marker(true);
    }
    push_buf(&mut h, with_csrcs.clone());
    push_buf(&mut h, empty.clone());
    expect_passed_through(&mut h, &[with_csrcs.clone(), empty.clone()]);

    ask(&mut h, SSRC, 20);
    ask(&mut h, SSRC, 21);
    let out = pull_all(&mut h);
    assert_eq!(out.len(), 2);
    let first = hdr(&out[0]).seq;
    assert_rtx(&out[0], &with_csrcs, first);
    assert_rtx(&out[1], &empty, first.wrapping_add(1));
    assert_eq!(
        payload(&out[1]),
        vec![0, 21],
        "only the original sequence number"
    );
    assert_eq!(counters(&el), [2, 2, 0, 0]);
}

/// The reason the element exists: `rtprtxsend` (1.22) misses packets that were sent out of
/// order. Every packet sent must be found, whatever order it was sent in.
#[test]
fn packets_sent_out_of_order_are_all_retransmitted() {
    let el = laminartx();
    let mut h = harness(&el);
    let order = [10u16, 11, 13, 14, 12];
    for seq in order {
        push(&mut h, SSRC, seq);
    }
    let sent: Vec<gst::Buffer> = order.iter().map(|&s| packet(SSRC, s)).collect();
    expect_passed_through(&mut h, &sent);

    expect_answered(&mut h, &[10, 11, 12, 13, 14]);
    // And asked in another order.
    expect_answered(&mut h, &[12, 14, 10, 13, 11]);
    assert_eq!(counters(&el), [10, 10, 0, 0]);
    assert!(drain_upstream(&mut h).is_empty());
}

#[test]
fn a_packet_forwarded_hundreds_of_packets_late_is_retransmitted() {
    let el = laminartx();
    let mut h = harness(&el);
    // 1000..1400 with 1100 and 1250 held back, then forwarded late (repaired), in reverse.
    for seq in (1000u16..1400).filter(|s| *s != 1100 && *s != 1250) {
        push(&mut h, SSRC, seq);
    }
    push(&mut h, SSRC, 1250);
    push(&mut h, SSRC, 1100);
    assert_eq!(pull_all(&mut h).len(), 400);
    expect_answered(&mut h, &[1100, 1250, 1000, 1399, 1101, 1249]);
    assert_eq!(counters(&el), [6, 6, 0, 0]);
}

#[test]
fn request_for_a_packet_never_sent_or_overwritten_yields_nothing() {
    let el = laminartx();
    let mut h = harness(&el);
    // Nothing sent on the SSRC yet.
    ask(&mut h, SSRC, 5);
    assert!(pull_all(&mut h).is_empty());
    assert_eq!(counters(&el), [1, 0, 1, 0]);

    for seq in 10..=20 {
        push(&mut h, SSRC, seq);
    }
    pull_all(&mut h);
    // Never sent: an empty slot, and a slot that holds another packet (10 + 512).
    for seq in [25u16, 10 + SLOTS, 9, 65535] {
        ask(&mut h, SSRC, seq);
        assert!(pull_all(&mut h).is_empty(), "nothing for {seq}");
    }
    assert_eq!(counters(&el), [5, 0, 5, 0]);

    // Up to 530: 10..=18 are overwritten by 522..=530, 19 is the oldest kept.
    for seq in 21..=530 {
        push(&mut h, SSRC, seq);
    }
    pull_all(&mut h);
    for seq in [10u16, 11, 18] {
        ask(&mut h, SSRC, seq);
        assert!(pull_all(&mut h).is_empty(), "{seq} was overwritten");
    }
    assert_eq!(counters(&el), [8, 0, 8, 0]);
    expect_answered(&mut h, &[19, 20, 522, 530]);
    assert_eq!(counters(&el), [12, 4, 8, 0]);
    assert!(drain_upstream(&mut h).is_empty(), "not passed upstream");
}

#[test]
fn request_for_a_packet_whose_payload_type_has_no_rtx_mapping_yields_nothing() {
    let el = laminartx();
    let mut h = harness(&el);
    push_buf(&mut h, packet_with(SSRC, 100, 10, &[]));
    push(&mut h, SSRC, 11);
    assert_eq!(pull_all(&mut h).len(), 2);
    ask(&mut h, SSRC, 10);
    assert!(pull_all(&mut h).is_empty());
    assert_eq!(counters(&el), [1, 0, 1, 0]);
    expect_answered(&mut h, &[11]);
    assert!(drain_upstream(&mut h).is_empty());
}

#[test]
fn request_for_an_unmapped_ssrc_is_passed_upstream_and_not_counted() {
    let el = laminartx();
    let mut h = harness(&el);
    push(&mut h, OTHER_SSRC, 10);
    push(&mut h, SSRC, 10);
    assert_eq!(pull_all(&mut h).len(), 2);
    assert!(drain_upstream(&mut h).is_empty());

    // Also the RTX SSRC itself: it has no mapping of its own.
    for ssrc in [OTHER_SSRC, RTX_SSRC] {
        ask(&mut h, ssrc, 10);
        assert!(pull_all(&mut h).is_empty(), "no RTX for {ssrc}");
        assert_eq!(
            drain_upstream(&mut h),
            vec![request_structure(ssrc, 10)],
            "passed upstream unchanged"
        );
    }
    assert_eq!(counters(&el), [0; 4]);

    // Other custom upstream events pass too.
    let fku = gst::Structure::builder("GstForceKeyUnit")
        .field("all-headers", true)
        .build();
    assert!(h.push_upstream_event(gst::event::CustomUpstream::new(fku.clone())));
    assert_eq!(drain_upstream(&mut h), vec![fku]);

    // The mapped SSRC is still answered.
    expect_answered(&mut h, &[10]);
    assert_eq!(counters(&el), [1, 1, 0, 0]);
}

#[test]
fn requests_beyond_max_requests_per_sec_are_dropped_and_counted() {
    let el = laminartx();
    assert_eq!(el.property::<u32>("max-requests-per-sec"), 1000, "default");
    el.set_property("max-requests-per-sec", 10u32);
    let mut h = harness(&el);
    for seq in 0..100 {
        push(&mut h, SSRC, seq);
    }
    assert_eq!(pull_all(&mut h).len(), 100);

    let start = Instant::now();
    for seq in 0..100 {
        ask(&mut h, SSRC, seq);
    }
    let elapsed = start.elapsed();
    let out = pull_all(&mut h);
    // The bucket refills at 10 per second: exactly 10 unless the burst took 100 ms or more.
    let refilled = (elapsed.as_secs_f64() * 10.0).floor() as usize;
    assert!(
        out.len() >= 10 && out.len() <= 10 + refilled,
        "{} RTX packets for 100 requests in {elapsed:?}",
        out.len()
    );
    if refilled == 0 {
        assert_eq!(out.len(), 10);
        assert_eq!(counters(&el), [100, 10, 0, 90]);
    }
    // The first requests are the ones served.
    let first = hdr(&out[0]).seq;
    for (i, rtx) in out.iter().enumerate() {
        assert_rtx(rtx, &packet(SSRC, i as u16), first.wrapping_add(i as u16));
    }
    assert!(drain_upstream(&mut h).is_empty(), "dropped, not passed on");

    // A quarter of a second later, two tokens at least are back.
    std::thread::sleep(Duration::from_millis(250));
    let [_, rtx_before, _, dropped_before] = counters(&el);
    ask(&mut h, SSRC, 50);
    ask(&mut h, SSRC, 51);
    let out2 = pull_all(&mut h);
    assert_eq!(out2.len(), 2, "budget refilled");
    assert_rtx(
        &out2[0],
        &packet(SSRC, 50),
        first.wrapping_add(out.len() as u16),
    );
    assert_eq!(
        counters(&el),
        [102, rtx_before + 2, 0, dropped_before],
        "{}",
        stats(&el)
    );
}

#[test]
fn malformed_requests_do_not_panic_and_are_not_counted() {
    let el = laminartx();
    let mut h = harness(&el);
    push(&mut h, SSRC, 10);
    pull_all(&mut h);

    let builder = || gst::Structure::builder(RETRANSMISSION_REQUEST);
    let malformed = [
        builder().build(),
        builder().field("seqnum", 10u32).build(),
        builder().field("ssrc", SSRC).build(),
        builder().field("seqnum", 10i32).field("ssrc", SSRC).build(),
        builder()
            .field("seqnum", 10u32)
            .field("ssrc", SSRC as i32)
            .build(),
        builder().field("seqnum", 10u64).field("ssrc", SSRC).build(),
        builder()
            .field("seqnum", 10u32)
            .field("ssrc", u64::from(SSRC))
            .build(),
        builder()
            .field("seqnum", "10")
            .field("ssrc", "1111")
            .build(),
        builder()
            .field("seqnum", true)
            .field("ssrc", 1.5f64)
            .build(),
        builder()
            .field("seqnum", gst::Structure::new_empty("x"))
            .field("ssrc", gst::Caps::new_any())
            .build(),
        builder().field("Seqnum", 10u32).field("SSRC", SSRC).build(),
        // Right fields, another name.
        gst::Structure::builder("GstRTPRetransmissionRequestX")
            .field("seqnum", 10u32)
            .field("ssrc", SSRC)
            .build(),
    ];
    for s in &malformed {
        assert!(
            h.push_upstream_event(gst::event::CustomUpstream::new(s.clone())),
            "{s}"
        );
        assert!(pull_all(&mut h).is_empty(), "no RTX for {s}");
        // Not a request the element understands: passed on unchanged.
        assert_eq!(drain_upstream(&mut h), vec![s.clone()], "{s}");
    }
    assert_eq!(counters(&el), [0; 4]);

    // Well-formed but out of range: a 32-bit seqnum of a packet never sent.
    assert!(h.push_upstream_event(request(SSRC, u32::MAX)));
    assert!(pull_all(&mut h).is_empty());
    assert_eq!(counters(&el), [1, 0, 1, 0]);

    // Extra fields (rtpsession versions add some) are fine.
    let extra = gst::Structure::builder(RETRANSMISSION_REQUEST)
        .field("seqnum", 10u32)
        .field("ssrc", SSRC)
        .field("running-time", 5u64)
        .field("delay", 3u32)
        .field("deadline", 100u32)
        .field("packet-count", 1u32)
        .build();
    assert!(h.push_upstream_event(gst::event::CustomUpstream::new(extra)));
    let out = pull_all(&mut h);
    assert_eq!(out.len(), 1);
    assert_rtx(&out[0], &packet(SSRC, 10), hdr(&out[0]).seq);
    assert_eq!(counters(&el), [2, 1, 1, 0]);
}

#[test]
fn short_and_non_rtp_buffers_pass_through_without_panic() {
    let el = laminartx();
    let mut h = harness(&el);
    push(&mut h, SSRC, 10);
    pull_all(&mut h);

    let ssrc = SSRC.to_be_bytes();
    let header = |first: u8, seq: u16| {
        let mut b = vec![
            first, PT, 0, 0, 0, 0, 0, 1, ssrc[0], ssrc[1], ssrc[2], ssrc[3],
        ];
        b[2..4].copy_from_slice(&seq.to_be_bytes());
        b
    };
    let mut bad_padding = header(0xa0, 30);
    bad_padding.extend_from_slice(&[1, 2, 3, 200]);
    let mut bad_extension = header(0x90, 31);
    bad_extension.extend_from_slice(&[0xbe, 0xde, 0xff, 0xff]);
    let buffers: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x80, 0x60, 0x00],
        vec![0x80; 11],
        // Full headers of the mapped SSRC with RTP versions 0, 1 and 3.
        header(0x00, 20),
        header(0x40, 21),
        header(0xc0, 22),
        vec![0xff; 64],
        // Version 2 headers of the mapped SSRC that are not valid RTP: 15 CSRCs missing,
        // a padding length beyond the packet, an extension beyond the packet.
        header(0x8f, 23),
        bad_padding,
        bad_extension,
        // A header only, no payload: valid RTP.
        header(0x80, 24),
    ];
    for b in &buffers {
        push_buf(&mut h, gst::Buffer::from_slice(b.clone()));
        let out = h.try_pull().expect("passed on");
        assert_eq!(bytes(&out), *b, "unchanged");
        assert!(h.try_pull().is_none());
    }

    // Requests for the sequence numbers those buffers claimed: no panic, nothing to send for
    // the non-RTP ones; the valid header-only packet is answered.
    for seq in [20u16, 21, 22, 23, 30, 31] {
        ask(&mut h, SSRC, seq);
        assert!(pull_all(&mut h).is_empty(), "nothing for {seq}");
    }
    assert_eq!(counters(&el), [6, 0, 6, 0]);
    ask(&mut h, SSRC, 24);
    let out = pull_all(&mut h);
    assert_eq!(out.len(), 1);
    assert_eq!(payload(&out[0]), vec![0, 24]);
    let rtx_seq = hdr(&out[0]).seq;
    assert_eq!(
        hdr(&out[0]),
        Hdr {
            pt: RTX_PT,
            ssrc: RTX_SSRC,
            seq: rtx_seq,
            ts: 1
        }
    );

    // The stream is unaffected.
    push(&mut h, SSRC, 11);
    expect_passed_through(&mut h, &[packet(SSRC, 11)]);
    expect_answered(&mut h, &[10, 11]);
    assert!(drain_upstream(&mut h).is_empty());
}

#[test]
fn maps_with_garbage_fields_are_ignored() {
    init();
    // Field names that are not SSRCs, values that are not uints: no stream is mapped.
    let garbage_ssrcs = gst::Structure::builder("application/x-rtp-ssrc-map")
        .field("1111", 2222i32)
        .field("abc", 2222u32)
        .field("-1111", 2222u32)
        .field("99999999999", 2222u32)
        .field("", 2222u32)
        .field("1111.0", 2222u32)
        .field("3333", "2222")
        .field("4444", 2222u64)
        .field("5555", gst::Structure::new_empty("x"))
        .build();
    let el = gst::ElementFactory::make("laminartx")
        .property("ssrc-map", garbage_ssrcs.clone())
        .property("payload-type-map", structure(PT_MAP))
        .build()
        .expect("laminartx");
    assert_eq!(el.property::<gst::Structure>("ssrc-map"), garbage_ssrcs);
    let mut h = harness(&el);
    for ssrc in [SSRC, OTHER_SSRC, 4444] {
        push(&mut h, ssrc, 10);
        expect_passed_through(&mut h, &[packet(ssrc, 10)]);
        ask(&mut h, ssrc, 10);
        assert!(pull_all(&mut h).is_empty());
        assert_eq!(drain_upstream(&mut h), vec![request_structure(ssrc, 10)]);
    }
    assert_eq!(counters(&el), [0; 4]);

    // Garbage among valid entries: the valid ones apply.
    let mixed = gst::Structure::builder("application/x-rtp-ssrc-map")
        .field("abc", 1u32)
        .field("1111", RTX_SSRC)
        .field("3333", "x")
        .build();
    el.set_property("ssrc-map", mixed);
    push(&mut h, SSRC, 11);
    pull_all(&mut h);
    expect_answered(&mut h, &[11]);
    assert_eq!(counters(&el), [1, 1, 0, 0]);

    // A payload type map without a usable entry: the stream is mapped, the PT is not.
    let garbage_pts = gst::Structure::builder("application/x-rtp-pt-map")
        .field("96", 97i32)
        .field("abc", 97u32)
        .field("300", 97u32)
        .field("-96", 97u32)
        .field("95", 300u32)
        .field("94", "97")
        .build();
    el.set_property("payload-type-map", garbage_pts);
    push(&mut h, SSRC, 12);
    pull_all(&mut h);
    ask(&mut h, SSRC, 12);
    assert!(pull_all(&mut h).is_empty());
    assert!(drain_upstream(&mut h).is_empty(), "the SSRC is mapped");
    assert_eq!(counters(&el), [2, 1, 1, 0]);

    // Unset maps: nothing mapped, requests passed on.
    el.set_property("ssrc-map", None::<gst::Structure>);
    el.set_property("payload-type-map", None::<gst::Structure>);
    assert_eq!(el.property::<Option<gst::Structure>>("ssrc-map"), None);
    push(&mut h, SSRC, 13);
    pull_all(&mut h);
    ask(&mut h, SSRC, 13);
    assert!(pull_all(&mut h).is_empty());
    assert_eq!(drain_upstream(&mut h), vec![request_structure(SSRC, 13)]);
    assert_eq!(counters(&el), [2, 1, 1, 0]);
}

#[test]
fn setting_the_maps_again_keeps_the_history_and_the_rtx_sequence() {
    let el = laminartx();
    let mut h = harness(&el);
    for seq in 10..15 {
        push(&mut h, SSRC, seq);
    }
    pull_all(&mut h);
    let first = expect_answered(&mut h, &[10]);
    el.set_property("ssrc-map", structure(SSRC_MAP));
    el.set_property("payload-type-map", structure(PT_MAP));
    ask(&mut h, SSRC, 14);
    let out = pull_all(&mut h);
    assert_eq!(out.len(), 1, "history kept");
    assert_rtx(&out[0], &packet(SSRC, 14), first.wrapping_add(1));
}

/// Requests delivered from another thread (rtpsession's RTCP thread) while packets stream: no
/// deadlock, every packet and every RTX packet arrives once, the counters add up.
#[test]
fn requests_from_another_thread_while_streaming() {
    const PACKETS: u16 = 2000;
    let el = laminartx();
    el.set_property("max-requests-per-sec", 1_000_000u32);
    let mut h = harness(&el);
    push(&mut h, SSRC, 0);
    pull_all(&mut h);
    // The last sequence number whose push has returned (so it is kept).
    let last_sent = Arc::new(AtomicU16::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let src = el.static_pad("src").expect("src pad");
    let asker = {
        let (last_sent, done) = (last_sent.clone(), done.clone());
        std::thread::spawn(move || {
            let mut asked = 0u64;
            while !done.load(Ordering::Acquire) {
                let seq = last_sent.load(Ordering::Acquire);
                assert!(src.send_event(request(SSRC, u32::from(seq))), "{seq}");
                asked += 1;
            }
            asked
        })
    };
    for seq in 1..PACKETS {
        push(&mut h, SSRC, seq);
        last_sent.store(seq, Ordering::Release);
    }
    done.store(true, Ordering::Release);
    let asked = asker.join().expect("no panic in the requesting thread");
    let out = pull_all(&mut h);
    let (rtx, media): (Vec<_>, Vec<_>) = out.into_iter().partition(|b| hdr(b).ssrc == RTX_SSRC);
    let seqs: Vec<u16> = media.iter().map(|b| hdr(b).seq).collect();
    assert_eq!(
        seqs,
        (1..PACKETS).collect::<Vec<_>>(),
        "every packet once, in order"
    );
    assert!(asked > 0);
    assert_eq!(
        counters(&el),
        [asked, asked, 0, 0],
        "every request answered"
    );
    assert_eq!(rtx.len() as u64, asked);
    let first = hdr(&rtx[0]).seq;
    for (i, b) in rtx.iter().enumerate() {
        let osn = u16::from_be_bytes(payload(b)[..2].try_into().expect("2 bytes"));
        assert_rtx(b, &packet(SSRC, osn), first.wrapping_add(i as u16));
    }
}

/// The ```text command line of elements/src/rtx/mod.rs's docs, continuation lines joined.
fn documented_command() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/rtx/mod.rs");
    let source = std::fs::read_to_string(path).expect("read mod.rs");
    let doc: Vec<&str> = source
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let start = doc
        .iter()
        .position(|l| *l == "```text")
        .expect("a ```text block in the docs of mod.rs");
    let len = doc[start + 1..]
        .iter()
        .position(|l| *l == "```")
        .expect("end of the ```text block");
    doc[start + 1..start + 1 + len]
        .iter()
        .map(|l| l.trim().trim_end_matches('\\').trim())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn gst_launch_runs_the_documented_pipeline_to_eos() {
    let command = documented_command();
    // The doc sets GST_PLUGIN_PATH=target/debug; this run points it at its own build instead.
    let launch = command
        .split_once("gst-launch-1.0")
        .map(|(env, rest)| {
            assert!(
                env.split_whitespace()
                    .all(|w| w.starts_with("GST_PLUGIN_PATH=")),
                "unexpected prefix {env:?} in {command}"
            );
            format!("gst-launch-1.0{rest}")
        })
        .unwrap_or_else(|| panic!("no gst-launch-1.0 in {command}"));
    assert!(launch.contains("laminartx "), "{launch}");
    // Through sh, so that the doc's quoting is read as a shell would.
    let (ok, stdout, stderr) = run_with_plugin("launch", "sh", &["-c", &launch]);
    assert!(
        ok && stdout.contains("Got EOS from element"),
        "{launch}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("CRITICAL") && !stderr.contains("WARNING"),
        "no GLib criticals or warnings expected:\n{stderr}"
    );
}

#[test]
fn gst_inspect_describes_the_element() {
    let (ok, stdout, stderr) = run_with_plugin("inspect", "gst-inspect-1.0", &["laminartx"]);
    assert!(
        ok,
        "gst-inspect failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for expected in [
        "GstLaminaRtx",
        "lamina",
        "ssrc-map",
        "payload-type-map",
        "max-requests-per-sec",
        "stats",
        "application/x-rtp",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected} missing in:\n{stdout}"
        );
    }
}
