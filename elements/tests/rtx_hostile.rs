//! `laminartx` under hostile input: malformed retransmission requests, buffers that are short
//! or not RTP, and RTX maps with garbage fields: no panic, nothing counted that should not be,
//! the stream goes on.

use gst::prelude::*;

#[path = "support/rtx.rs"]
mod rtx_support;
mod support;

use rtx_support::*;
use support::{hdr, init, payload, Hdr};

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
