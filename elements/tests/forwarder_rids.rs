//! `laminaforwarder` simulcast: layer sink pads `sink_%u` learning their RID from the RFC 8852
//! header extension (one- and two-byte forms, once), RIDs outside the `rids` list or missing
//! dropped and counted, and RIDs set by the application.

use gst::prelude::*;
use gst_check::Harness;

mod support;

#[path = "support/simulcast.rs"]
mod simulcast_support;

use simulcast_support::*;
use support::*;

#[test]
fn rids_are_learned_from_one_and_two_byte_extensions_once() {
    let (el, bus) = simulcast_forwarder("");
    let mut sub = subscriber(&el, "src_0", "l");
    let mut l = Layer::with(&el, "sink_0", "l", SSRC_L, Codec::Vp8, false);
    let mut h = Layer::with(&el, "sink_1", "h", SSRC_H, Codec::Vp8, true);
    assert_eq!(pad(&el, "sink_0").property::<String>("rid"), "");

    l.send(0, true);
    h.send(0, true);
    assert_eq!(pad(&el, "sink_0").property::<String>("rid"), "l");
    assert_eq!(pad(&el, "sink_1").property::<String>("rid"), "h");
    for frame in 1..6 {
        l.send(frame, false);
        h.send(frame, false);
    }
    // Learned once: a later packet with another RID is dropped and counted, the RID stays.
    let other = packet(
        Codec::Vp8,
        (SSRC_L, 5000, 0, 300),
        Rid::One(RID_EXT, "m"),
        false,
        b'x',
    );
    l.push_raw(other);
    assert_eq!(pad(&el, "sink_0").property::<String>("rid"), "l");
    assert_eq!(stat(&el, "dropped-unknown-rid"), 1);

    // The subscriber of "l" got exactly the six l packets, continuous.
    let out = pulled(&mut sub);
    assert_eq!(out.len(), 6, "{out:?}");
    assert!(out.iter().all(|(tag, ..)| *tag == b'l'));
    assert!(out.windows(2).all(|w| w[1].1 == w[0].1.wrapping_add(1)));
    assert_eq!(current_layer(&el, "src_0"), "l");
    assert_eq!(el.property::<String>("active-layers"), "l,h");
    assert_eq!(layers_values(&messages(&bus)), vec!["l", "l,h"]);

    // A sink pad whose packets never carry a RID: everything dropped and counted.
    let mut unknown = Harness::with_element(&el, Some("sink_2"), None);
    unknown.set_src_caps_str(&layer_caps(Codec::Vp8, SSRC_M, "m"));
    for seq in 0..3 {
        let buf = packet(Codec::Vp8, (SSRC_M, seq, 0, 0), Rid::None, true, b'm');
        assert_eq!(unknown.push(buf), Ok(gst::FlowSuccess::Ok));
    }
    assert_eq!(stat(&el, "dropped-unknown-rid"), 4);
    assert_eq!(pad(&el, "sink_2").property::<String>("rid"), "");
}

#[test]
fn rids_outside_the_list_are_dropped_and_counted() {
    let (el, _bus) = simulcast_forwarder("l, h");
    assert_eq!(el.property::<String>("rids"), "l,h");
    let mut sub = subscriber(&el, "src_0", "h");
    let mut x = Harness::with_element(&el, Some("sink_0"), None);
    x.set_src_caps_str(&layer_caps(Codec::Vp8, SSRC_M, "m"));
    for (seq, rid) in [(0u16, "m"), (1, "m"), (2, "bad rid"), (3, "")] {
        let rid = if rid.is_empty() {
            Rid::None
        } else {
            Rid::One(RID_EXT, rid)
        };
        let buf = packet(Codec::Vp8, (SSRC_M, seq, 0, 0), rid, true, b'm');
        assert_eq!(x.push(buf), Ok(gst::FlowSuccess::Ok), "never an error");
    }
    assert_eq!(stat(&el, "dropped-unknown-rid"), 4);
    assert_eq!(pad(&el, "sink_0").property::<String>("rid"), "");
    assert_eq!(el.property::<String>("active-layers"), "");

    // A RID set by the application overrides learning: packets without extension are "h".
    let mut h = Harness::with_element(&el, Some("sink_1"), None);
    h.set_src_caps_str(&layer_caps(Codec::Vp8, SSRC_H, "h"));
    pad(&el, "sink_1").set_property("rid", "h");
    assert_eq!(pad(&el, "sink_1").property::<String>("rid"), "h");
    let buf = packet(Codec::Vp8, (SSRC_H, 9, 0, 0), Rid::None, true, b'h');
    assert_eq!(h.push(buf), Ok(gst::FlowSuccess::Ok));
    assert_eq!(pulled(&mut sub).len(), 1);
    assert_eq!(el.property::<String>("active-layers"), "h");
    // A RID outside the list cannot be set either.
    pad(&el, "sink_0").set_property("rid", "m");
    assert_eq!(pad(&el, "sink_0").property::<String>("rid"), "");
}
