//! Helpers of the `laminartx` tests (`rtx.rs`, `rtx_hostile.rs`): the mapped SSRC/PT and
//! their RTX counterparts, a configured element and its harness, packets, requests, stats.
#![allow(dead_code)]

use gst::prelude::*;
use gst_check::Harness;
use gst_rtp::prelude::*;
use gst_rtp::RTPBuffer;

use crate::support::{hdr, init, VP8_CAPS};

/// The mapped SSRC and payload type, and their RTX counterparts.
pub const SSRC: u32 = 1111;
pub const RTX_SSRC: u32 = 2222;
pub const PT: u8 = 96;
pub const RTX_PT: u8 = 97;
/// An SSRC without an RTX mapping.
pub const OTHER_SSRC: u32 = 3333;
pub const SSRC_MAP: &str = "application/x-rtp-ssrc-map, 1111=(uint)2222";
pub const PT_MAP: &str = "application/x-rtp-pt-map, 96=(uint)97";
pub const RETRANSMISSION_REQUEST: &str = "GstRTPRetransmissionRequest";
/// Packets kept per SSRC (`laminartx`'s ring).
pub const SLOTS: u16 = 512;

pub fn structure(s: &str) -> gst::Structure {
    s.parse()
        .unwrap_or_else(|e| panic!("valid structure {s}: {e}"))
}

/// A `laminartx` with [`SSRC_MAP`] and [`PT_MAP`] (other properties at defaults).
pub fn laminartx() -> gst::Element {
    init();
    gst::ElementFactory::make("laminartx")
        .property("ssrc-map", structure(SSRC_MAP))
        .property("payload-type-map", structure(PT_MAP))
        .build()
        .expect("laminartx is registered")
}

/// Harness feeding `el`'s sink pad and reading its src pad, with VP8 RTP caps pushed.
pub fn harness(el: &gst::Element) -> Harness {
    let mut h = Harness::with_element(el, Some("sink"), Some("src"));
    h.set_src_caps_str(VP8_CAPS);
    h
}

/// An RTP packet of `ssrc` with PT `pt` and sequence number `seq`: timestamp 3000 * seq, PTS
/// 33 ms * seq, marker on every third, a 5 to 11 byte payload derived from `seq`, and `csrcs`.
pub fn packet_with(ssrc: u32, pt: u8, seq: u16, csrcs: &[u32]) -> gst::Buffer {
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
pub fn packet(ssrc: u32, seq: u16) -> gst::Buffer {
    packet_with(ssrc, PT, seq, &[])
}

pub fn push_buf(h: &mut Harness, buf: gst::Buffer) {
    let what = format!("{buf:?}");
    assert_eq!(h.push(buf), Ok(gst::FlowSuccess::Ok), "push {what}");
}

pub fn push(h: &mut Harness, ssrc: u32, seq: u16) {
    push_buf(h, packet(ssrc, seq));
}

pub fn bytes(buf: &gst::BufferRef) -> Vec<u8> {
    buf.map_readable().expect("readable").as_slice().to_vec()
}

/// Every buffer queued on the harness's sink side, in order.
pub fn pull_all(h: &mut Harness) -> Vec<gst::Buffer> {
    std::iter::from_fn(|| h.try_pull()).collect()
}

/// Pulls the buffers queued on the harness and expects them to be exactly `sent`, unchanged
/// (bytes and PTS).
pub fn expect_passed_through(h: &mut Harness, sent: &[gst::Buffer]) {
    let out = pull_all(h);
    assert_eq!(out.len(), sent.len(), "buffers out");
    for (i, (o, s)) in out.iter().zip(sent).enumerate() {
        assert_eq!(o.pts(), s.pts(), "PTS of buffer {i}");
        assert_eq!(bytes(o), bytes(s), "buffer {i} unchanged");
    }
}

pub fn request_structure(ssrc: u32, seqnum: u32) -> gst::Structure {
    gst::Structure::builder(RETRANSMISSION_REQUEST)
        .field("seqnum", seqnum)
        .field("ssrc", ssrc)
        .build()
}

/// A retransmission request as rtpsession sends it upstream.
pub fn request(ssrc: u32, seqnum: u32) -> gst::Event {
    gst::event::CustomUpstream::new(request_structure(ssrc, seqnum))
}

/// Pushes a request for `seq` of `ssrc` at the element's src pad.
pub fn ask(h: &mut Harness, ssrc: u32, seq: u16) {
    assert!(
        h.push_upstream_event(request(ssrc, u32::from(seq))),
        "request for {seq} of {ssrc} handled"
    );
}

/// Drains the harness's upstream event queue; returns the structures of the custom upstream
/// events that reached it (requests passed on by the element), in order. Linking the harness
/// sends a reconfigure upstream; any other kind of event fails the test.
pub fn drain_upstream(h: &mut Harness) -> Vec<gst::Structure> {
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

pub fn stats(el: &gst::Element) -> gst::Structure {
    el.property::<gst::Structure>("stats")
}

/// `num-requests`, `num-rtx-packets`, `num-not-cached`, `num-dropped`.
pub fn counters(el: &gst::Element) -> [u64; 4] {
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
pub fn assert_rtx(rtx: &gst::Buffer, original: &gst::Buffer, rtx_seq: u16) {
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
pub fn expect_answered(h: &mut Harness, seqs: &[u16]) -> u16 {
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
