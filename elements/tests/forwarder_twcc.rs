//! `laminaforwarder` transport-wide congestion control toward subscribers: the src pad property
//! `twcc-ext-id` puts `extmap-<id>` (the TWCC URI) in the pad's caps and makes every packet carry
//! a one-byte TWCC element under that id (renamed in place from the publisher's id, or added),
//! leaving malformed extension blocks alone (counted in `twcc-ext-unrewritable`); with
//! `twcc-in-caps=false` the caps leave the extmap out. A src pad without it forwards no TWCC
//! element: the publisher's becomes padding.

use gst::prelude::*;
use gst_check::Harness;
use gst_rtp::RTPBuffer;
use gstlamina::forwarder::TWCC_URI;

mod support;

use support::*;

/// The publisher's TWCC id in these tests.
const IN_ID: u8 = 5;
/// The subscriber's TWCC id.
const OUT_ID: u8 = 3;
const PAYLOAD: [u8; 6] = [0x10, 0x00, 0xDE, 0xAD, 0xBE, 0xEF];
const ONE_BYTE: u16 = 0xBEDE;

/// VP8 caps whose extmap says TWCC is header extension `IN_ID`.
fn twcc_caps() -> String {
    format!("{VP8_CAPS}, extmap-{IN_ID}=(string)\"{TWCC_URI}\"")
}

/// An RTP packet (SSRC 1111, PT 96, timestamp 3000 * seq) with the extension block `ext`
/// (profile bits, data padded to 32 bits by the caller) and `PAYLOAD`.
fn packet_bytes(seq: u16, ext: Option<(u16, &[u8])>) -> Vec<u8> {
    let x = if ext.is_some() { 0x10 } else { 0 };
    let mut data = vec![0x80 | x, 96];
    data.extend_from_slice(&seq.to_be_bytes());
    data.extend_from_slice(&(3000 * u32::from(seq)).to_be_bytes());
    data.extend_from_slice(&1111u32.to_be_bytes());
    if let Some((bits, block)) = ext {
        assert_eq!(block.len() % 4, 0, "whole words");
        data.extend_from_slice(&bits.to_be_bytes());
        data.extend_from_slice(&u16::try_from(block.len() / 4).unwrap().to_be_bytes());
        data.extend_from_slice(block);
    }
    data.extend_from_slice(&PAYLOAD);
    data
}

fn buffer(bytes: Vec<u8>, pts_ms: u64) -> gst::Buffer {
    let mut buf = gst::Buffer::from_mut_slice(bytes);
    buf.get_mut()
        .expect("new buffer")
        .set_pts(gst::ClockTime::from_mseconds(pts_ms));
    buf
}

fn bytes(buf: &gst::Buffer) -> Vec<u8> {
    buf.map_readable().expect("readable").as_slice().to_vec()
}

/// The extension block of an output packet: (profile bits, data).
fn ext_block(buf: &gst::Buffer) -> Option<(u16, Vec<u8>)> {
    let rtp = RTPBuffer::from_buffer_readable(buf).expect("valid rtp");
    rtp.extension_bytes()
        .map(|(bits, data)| (bits, data.as_ref().to_vec()))
}

/// The one-byte element `id` of an output packet, as rtpsession finds it.
fn one_byte(buf: &gst::Buffer, id: u8) -> Option<Vec<u8>> {
    let rtp = RTPBuffer::from_buffer_readable(buf).expect("valid rtp");
    rtp.extension_onebyte_header(id, 0).map(<[u8]>::to_vec)
}

/// The forwarder, its publisher harness (input caps `caps`) and `src_0` active with
/// `twcc-ext-id` = `out_id`.
fn setup(caps: &str, out_id: u8) -> (gst::Element, Harness) {
    let el = forwarder();
    let h = publisher(&el, caps);
    let src = pad(&el, "src_0");
    src.set_property("twcc-ext-id", u32::from(out_id));
    src.set_property("active", true);
    (el, h)
}

/// Pushes one packet with extension `ext` through `src_0` (twcc-ext-id `OUT_ID`, input TWCC id
/// `IN_ID`) and returns the output buffer.
fn forward_one(ext: Option<(u16, &[u8])>) -> (gst::Element, gst::Buffer) {
    let (el, mut h) = setup(&twcc_caps(), OUT_ID);
    h.push(buffer(packet_bytes(7, ext), 0)).expect("push ok");
    let out = h.pull().expect("buffer");
    assert_eq!(payload(&out), PAYLOAD, "payload intact");
    assert_eq!(
        hdr(&out),
        Hdr {
            pt: 96,
            ssrc: 1111,
            seq: 7,
            ts: 21_000
        }
    );
    (el, out)
}

#[test]
fn twcc_element_is_renamed_in_place_value_kept() {
    let block = [0x51, 0xAB, 0xCD, 0x00];
    let (el, out) = forward_one(Some((ONE_BYTE, &block)));
    assert_eq!(
        ext_block(&out),
        Some((ONE_BYTE, vec![0x31, 0xAB, 0xCD, 0x00])),
        "only the id nibble changed"
    );
    assert_eq!(one_byte(&out, OUT_ID), Some(vec![0xAB, 0xCD]));
    assert_eq!(one_byte(&out, IN_ID), None);
    // Same size: renamed, nothing added.
    assert_eq!(out.size(), packet_bytes(7, Some((ONE_BYTE, &block))).len());
    assert_eq!(stat(&el, "twcc-ext-unrewritable"), 0);
}

#[test]
fn an_output_without_twcc_gets_the_publishers_element_as_padding() {
    // MID under 3, TWCC under 5, audio level under 1.
    let block = [0x30, b'0', 0x51, 0x12, 0x34, 0x10, 0x7F, 0x00];
    let (_, mut h) = setup(&twcc_caps(), 0);
    h.push(buffer(packet_bytes(7, Some((ONE_BYTE, &block))), 0))
        .expect("push ok");
    let out = h.pull().expect("buffer");
    assert_eq!(payload(&out), PAYLOAD, "payload intact");
    assert_eq!(
        ext_block(&out),
        Some((ONE_BYTE, vec![0x30, b'0', 0, 0, 0, 0x10, 0x7F, 0x00])),
        "in place, the others kept"
    );
    assert_eq!(one_byte(&out, IN_ID), None);
    assert_eq!(one_byte(&out, 3), Some(vec![b'0']));
    assert_eq!(one_byte(&out, 1), Some(vec![0x7F]));
    // Without the input's TWCC id known, nothing is touched.
    let (_, mut h) = setup(VP8_CAPS, 0);
    h.push(buffer(packet_bytes(8, Some((ONE_BYTE, &block))), 0))
        .expect("push ok");
    let out = h.pull().expect("buffer");
    assert_eq!(ext_block(&out), Some((ONE_BYTE, block.to_vec())));
}

#[test]
fn element_holding_the_output_id_gets_the_input_id() {
    // MID under 3 (the subscriber's TWCC id), TWCC under 5, audio level under 1.
    let block = [0x30, b'0', 0x51, 0x12, 0x34, 0x10, 0x7F, 0x00];
    let (_, out) = forward_one(Some((ONE_BYTE, &block)));
    assert_eq!(
        ext_block(&out),
        Some((
            ONE_BYTE,
            vec![0x50, b'0', 0x31, 0x12, 0x34, 0x10, 0x7F, 0x00]
        ))
    );
    assert_eq!(one_byte(&out, OUT_ID), Some(vec![0x12, 0x34]));
    assert_eq!(one_byte(&out, IN_ID), Some(vec![b'0']));
    assert_eq!(one_byte(&out, 1), Some(vec![0x7F]));
}

#[test]
fn equal_ids_leave_the_packet_as_it_is() {
    let (_, mut h) = setup(&twcc_caps(), IN_ID);
    let block = [0x30, b'0', 0x51, 0x12, 0x34, 0x00, 0x00, 0x00];
    let input = packet_bytes(9, Some((ONE_BYTE, &block)));
    h.push(buffer(input.clone(), 0)).expect("push ok");
    let out = h.pull().expect("buffer");
    assert_eq!(bytes(&out), input);
}

#[test]
fn element_is_added_to_a_packet_without_extension() {
    let (el, out) = forward_one(None);
    assert_eq!(one_byte(&out, OUT_ID), Some(vec![0, 0]));
    let (bits, block) = ext_block(&out).expect("an extension");
    assert_eq!(bits, ONE_BYTE);
    assert_eq!(block, vec![0x31, 0, 0, 0]);
    assert_eq!(stat(&el, "twcc-ext-unrewritable"), 0);
}

#[test]
fn element_is_added_next_to_other_elements() {
    // No TWCC element: MID under 7, audio level under 1 (with padding between).
    let block = [0x70, b'a', 0x00, 0x10, 0x42, 0x00, 0x00, 0x00];
    let (_, out) = forward_one(Some((ONE_BYTE, &block)));
    assert_eq!(one_byte(&out, OUT_ID), Some(vec![0, 0]));
    assert_eq!(one_byte(&out, 7), Some(vec![b'a']));
    assert_eq!(one_byte(&out, 1), Some(vec![0x42]));
    assert_eq!(one_byte(&out, IN_ID), None);

    // The publisher uses the output id for something else and sends no TWCC: that element
    // moves to the (free) input id.
    let block = [0x30, b'm', 0x70, b'a'];
    let (_, out) = forward_one(Some((ONE_BYTE, &block)));
    assert_eq!(one_byte(&out, OUT_ID), Some(vec![0, 0]));
    assert_eq!(one_byte(&out, IN_ID), Some(vec![b'm']));
    assert_eq!(one_byte(&out, 7), Some(vec![b'a']));

    // A 1-byte element under the input id is not a TWCC element: kept, TWCC added.
    let block = [0x50, b'z', 0x00, 0x00];
    let (_, out) = forward_one(Some((ONE_BYTE, &block)));
    assert_eq!(one_byte(&out, OUT_ID), Some(vec![0, 0]));
    assert_eq!(one_byte(&out, IN_ID), Some(vec![b'z']));
}

#[test]
fn two_byte_blocks_become_one_byte_blocks() {
    // TWCC under 5 (value kept), RID under 9, padding.
    let block = [5, 2, 0xAB, 0xCD, 9, 1, b'h', 0];
    let (el, out) = forward_one(Some((0x1000, &block)));
    let (bits, _) = ext_block(&out).expect("an extension");
    assert_eq!(bits, ONE_BYTE);
    assert_eq!(one_byte(&out, OUT_ID), Some(vec![0xAB, 0xCD]));
    assert_eq!(one_byte(&out, 9), Some(vec![b'h']));
    assert_eq!(one_byte(&out, IN_ID), None);
    assert_eq!(stat(&el, "twcc-ext-unrewritable"), 0);

    // Without TWCC element.
    let block = [9, 1, b'h', 0];
    let (_, out) = forward_one(Some((0x1000, &block)));
    assert_eq!(one_byte(&out, OUT_ID), Some(vec![0, 0]));
    assert_eq!(one_byte(&out, 9), Some(vec![b'h']));
}

#[test]
fn unrewritable_blocks_are_left_alone_and_counted() {
    let cases: [(u16, &[u8]); 5] = [
        // One-byte element running past the end of the block (16 bytes announced).
        (ONE_BYTE, &[0x51, 0x12, 0x34, 0x4F]),
        // Same before the TWCC element: the rename must not happen either.
        (ONE_BYTE, &[0x3F, 0x51, 0x12, 0x34]),
        // Two-byte element running past the end.
        (0x1000, &[5, 2, 0x12, 0x34, 9, 7, 0, 0]),
        // Two-byte element the one-byte form cannot carry (id 20).
        (0x1000, &[20, 1, b'x', 0]),
        // Another profile.
        (0x1234, &[0x51, 0x12, 0x34, 0x00]),
    ];
    let (el, mut h) = setup(&twcc_caps(), OUT_ID);
    for (i, (bits, block)) in cases.into_iter().enumerate() {
        let seq = 100 + u16::try_from(i).unwrap();
        let input = packet_bytes(seq, Some((bits, block)));
        h.push(buffer(input.clone(), 20 * u64::from(seq)))
            .expect("push ok");
        let out = h.pull().expect("forwarded anyway");
        assert_eq!(bytes(&out), input, "case {i} unchanged");
    }
    assert_eq!(stat(&el, "twcc-ext-unrewritable"), 5);
    assert_eq!(stat(&el, "forwarded-packets"), 5);
}

/// The caps `src_0` of `el` carries.
fn src_caps(el: &gst::Element) -> gst::Caps {
    pad(el, "src_0").current_caps().expect("caps on src_0")
}

#[test]
fn caps_carry_the_extmap_and_follow_the_property() {
    let (el, mut h) = setup(&twcc_caps(), OUT_ID);
    let src = pad(&el, "src_0");
    assert_eq!(src.property::<u32>("twcc-ext-id"), u32::from(OUT_ID));
    let mut expected = expected_caps(96, 1111);
    expected
        .make_mut()
        .structure_mut(0)
        .unwrap()
        .set("extmap-3", TWCC_URI);
    assert_eq!(src_caps(&el), expected);
    h.push(buffer(packet_bytes(1, None), 0)).expect("push ok");
    h.pull().expect("buffer");
    assert_eq!(last_caps(&drain_events(&mut h)), Some(expected));

    // Another id: re-stored at once, pushed before the next buffer, and used in the packets.
    src.set_property("twcc-ext-id", 7u32);
    let mut expected = expected_caps(96, 1111);
    expected
        .make_mut()
        .structure_mut(0)
        .unwrap()
        .set("extmap-7", TWCC_URI);
    assert_eq!(src_caps(&el), expected);
    let block = [0x51, 0xAB, 0xCD, 0x00];
    h.push(buffer(packet_bytes(2, Some((ONE_BYTE, &block))), 33))
        .expect("push ok");
    let out = h.pull().expect("buffer");
    assert_eq!(last_caps(&drain_events(&mut h)), Some(expected));
    assert_eq!(one_byte(&out, 7), Some(vec![0xAB, 0xCD]));

    // Off again: today's caps, the publisher's element turned into padding.
    src.set_property("twcc-ext-id", 0u32);
    assert_eq!(src_caps(&el), expected_caps(96, 1111));
    let input = packet_bytes(3, Some((ONE_BYTE, &block)));
    h.push(buffer(input, 66)).expect("push ok");
    assert_eq!(
        bytes(&h.pull().expect("buffer")),
        packet_bytes(3, Some((ONE_BYTE, &[0, 0, 0, 0])))
    );
}

#[test]
fn twcc_in_caps_false_keeps_the_element_out_of_the_caps() {
    let (el, mut h) = setup(&twcc_caps(), OUT_ID);
    let src = pad(&el, "src_0");
    assert!(src.property::<bool>("twcc-in-caps"), "default on");
    src.set_property("twcc-in-caps", false);
    // Re-stored at once, pushed before the next buffer; the packets still carry the element.
    assert_eq!(src_caps(&el), expected_caps(96, 1111));
    let block = [0x51, 0xAB, 0xCD, 0x00];
    h.push(buffer(packet_bytes(1, Some((ONE_BYTE, &block))), 0))
        .expect("push ok");
    let out = h.pull().expect("buffer");
    assert_eq!(
        last_caps(&drain_events(&mut h)),
        Some(expected_caps(96, 1111))
    );
    assert_eq!(one_byte(&out, OUT_ID), Some(vec![0xAB, 0xCD]));
    // Back on: announced again.
    src.set_property("twcc-in-caps", true);
    assert_eq!(
        src_caps(&el)
            .structure(0)
            .and_then(|s| s.get::<&str>(&format!("extmap-{OUT_ID}")).ok()),
        Some(TWCC_URI)
    );
}

#[test]
fn zero_changes_no_caps_and_blanks_the_publishers_element() {
    let (el, mut h) = setup(&twcc_caps(), 0);
    let src = pad(&el, "src_0");
    assert_eq!(src.property::<u32>("twcc-ext-id"), 0);
    let cases = [
        (packet_bytes(1, None), packet_bytes(1, None)),
        (
            packet_bytes(2, Some((ONE_BYTE, &[0x51, 0xAB, 0xCD, 0x00]))),
            packet_bytes(2, Some((ONE_BYTE, &[0, 0, 0, 0]))),
        ),
        (
            packet_bytes(3, Some((0x1000, &[5, 2, 0xAB, 0xCD]))),
            packet_bytes(3, Some((0x1000, &[0, 0, 0, 0]))),
        ),
        // Malformed: left alone.
        (
            packet_bytes(4, Some((ONE_BYTE, &[0x3F, 0, 0, 0]))),
            packet_bytes(4, Some((ONE_BYTE, &[0x3F, 0, 0, 0]))),
        ),
    ];
    for (i, (input, output)) in cases.iter().enumerate() {
        h.push(buffer(input.clone(), 33 * i as u64))
            .expect("push ok");
        assert_eq!(&bytes(&h.pull().expect("buffer")), output, "case {i}");
    }
    assert_eq!(src_caps(&el), expected_caps(96, 1111));
    assert_eq!(stat(&el, "twcc-ext-unrewritable"), 0);
}

#[test]
fn each_subscriber_gets_its_own_id() {
    let el = forwarder();
    let mut a = publisher(&el, &twcc_caps());
    let mut b = Harness::with_element(&el, None, Some("src_1"));
    let mut c = Harness::with_element(&el, None, Some("src_2"));
    pad(&el, "src_0").set_property("twcc-ext-id", u32::from(OUT_ID));
    pad(&el, "src_1").set_property("twcc-ext-id", 9u32);
    for name in ["src_0", "src_1", "src_2"] {
        pad(&el, name).set_property("active", true);
    }
    let block = [0x51, 0xAB, 0xCD, 0x00];
    let input = packet_bytes(1, Some((ONE_BYTE, &block)));
    a.push(buffer(input.clone(), 0)).expect("push ok");
    let out_a = a.pull().expect("buffer");
    let out_b = b.pull().expect("buffer");
    let out_c = c.pull().expect("buffer");
    assert_eq!(one_byte(&out_a, OUT_ID), Some(vec![0xAB, 0xCD]));
    assert_eq!(one_byte(&out_b, 9), Some(vec![0xAB, 0xCD]));
    assert_eq!(
        bytes(&out_c),
        packet_bytes(1, Some((ONE_BYTE, &[0, 0, 0, 0]))),
        "src_2 without twcc-ext-id: the publisher's element is padding"
    );
    assert_eq!(
        one_byte(&out_a, OUT_ID),
        Some(vec![0xAB, 0xCD]),
        "the other copies are their own"
    );
    // Added on two pads' copies: the third still gets the packet as it came.
    let input = packet_bytes(2, None);
    a.push(buffer(input.clone(), 33)).expect("push ok");
    let out_a = a.pull().expect("buffer");
    let out_b = b.pull().expect("buffer");
    let out_c = c.pull().expect("buffer");
    assert_eq!(one_byte(&out_a, OUT_ID), Some(vec![0, 0]));
    assert_eq!(one_byte(&out_b, 9), Some(vec![0, 0]));
    assert_eq!(one_byte(&out_b, OUT_ID), None);
    assert_eq!(
        (payload(&out_a), payload(&out_b)),
        (PAYLOAD.to_vec(), PAYLOAD.to_vec())
    );
    assert_eq!(bytes(&out_c), input);
}

#[test]
fn missing_input_extmap_adds_the_element() {
    // The publisher's caps do not say which id is TWCC: its element under 5 is just another one.
    let (_, mut h) = setup(VP8_CAPS, OUT_ID);
    let block = [0x51, 0xAB, 0xCD, 0x00];
    h.push(buffer(packet_bytes(1, Some((ONE_BYTE, &block))), 0))
        .expect("push ok");
    let out = h.pull().expect("buffer");
    assert_eq!(one_byte(&out, OUT_ID), Some(vec![0, 0]));
    assert_eq!(one_byte(&out, IN_ID), Some(vec![0xAB, 0xCD]));
    assert_eq!(payload(&out), PAYLOAD);
}

#[test]
fn simulcast_layer_outputs_rename_with_the_layer_caps_id() {
    let el = forwarder();
    // The layer's caps name TWCC 6 (the always sink pad has no caps at all).
    let layer_caps = format!(
        "application/x-rtp, media=(string)video, encoding-name=(string)VP8, \
         clock-rate=(int)90000, payload=(int)96, ssrc=(uint)1111, rid=(string)h, \
         extmap-4=(string)urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id, \
         extmap-6=(string)\"{TWCC_URI}\""
    );
    let mut layer = Harness::with_element(&el, Some("sink_0"), None);
    layer.set_src_caps_str(&layer_caps);
    pad(&el, "sink_0").set_property("rid", "h");
    let mut sub = Harness::with_element(&el, None, Some("src_0"));
    let src = pad(&el, "src_0");
    src.set_property("ssrc", 4242u32);
    src.set_property("twcc-ext-id", u32::from(OUT_ID));
    src.set_property("layer", "h");
    src.set_property("active", true);

    // A VP8 keyframe (PAYLOAD starts with S=1, P=0): the pad switches to "h" on it. RID under 4,
    // TWCC under 6, and an element under the output id.
    let block = [0x40, b'h', 0x61, 0xAB, 0xCD, 0x30, b'x', 0x00];
    layer
        .push(buffer(packet_bytes(1, Some((ONE_BYTE, &block))), 0))
        .expect("push ok");
    let out = sub.pull().expect("buffer");
    assert_eq!(hdr(&out).ssrc, 4242);
    assert_eq!(payload(&out), PAYLOAD);
    assert_eq!(
        ext_block(&out),
        Some((
            ONE_BYTE,
            vec![0x40, b'h', 0x31, 0xAB, 0xCD, 0x60, b'x', 0x00]
        ))
    );
    // Without extension: added.
    layer
        .push(buffer(packet_bytes(2, None), 33))
        .expect("push ok");
    let out = sub.pull().expect("buffer");
    assert_eq!(one_byte(&out, OUT_ID), Some(vec![0, 0]));
    assert_eq!(payload(&out), PAYLOAD);

    let caps = src.current_caps().expect("caps on src_0");
    let s = caps.structure(0).expect("structure");
    assert_eq!(s.get::<&str>("extmap-3"), Ok(TWCC_URI));
    assert!(!s.has_field("extmap-6"), "publisher extmaps stay dropped");
    assert!(!s.has_field("extmap-4"));
    assert_eq!(stat(&el, "twcc-ext-unrewritable"), 0);
}
