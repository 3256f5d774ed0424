//! `laminaforwarder`'s `drop-while-switching` pad property: while a switch waits for the new
//! layer's keyframe, the pad forwards nothing of its current layer (a subscriber whose link is
//! dropping packets gets the link free for the keyframe); off, the current layer flows until
//! the switch.

use gst::prelude::*;
use gst_check::Harness;

mod support;

#[path = "support/simulcast.rs"]
mod simulcast_support;

use simulcast_support::*;
use support::*;

/// A subscriber on `h` (switched), with layers l and h flowing.
fn on_h(drop_while_switching: bool) -> (gst::Element, gst::Bus, gst::Pad, Harness, [Layer; 2]) {
    let (el, bus) = simulcast_forwarder("l,h");
    let mut sub = subscriber(&el, "src_0", "h");
    let src = pad(&el, "src_0");
    src.set_property("drop-while-switching", drop_while_switching);
    assert_eq!(
        src.property::<bool>("drop-while-switching"),
        drop_while_switching
    );
    let mut l = Layer::new(&el, "sink_0", "l", SSRC_L);
    let mut h = Layer::new(&el, "sink_1", "h", SSRC_H);
    l.send(0, true);
    h.send(0, true);
    assert_eq!(current_layer(&el, "src_0"), "h");
    assert_eq!(pulled(&mut sub).len(), 1, "h's keyframe");
    (el, bus, src, sub, [l, h])
}

#[test]
fn with_it_nothing_flows_until_the_new_layers_keyframe() {
    let (el, bus, src, mut sub, [mut l, mut h]) = on_h(true);
    let forwarded = stat(&el, "forwarded-packets");

    src.set_property("layer", "l");
    for frame in 1..4 {
        h.send(frame, false);
        l.send(frame, false);
    }
    assert!(
        pulled(&mut sub).is_empty(),
        "h is dropped while waiting for l"
    );
    assert_eq!(stat(&el, "forwarded-packets"), forwarded);
    assert_eq!(current_layer(&el, "src_0"), "h");

    // l's keyframe: switched; l flows, continuous after the last h packet.
    l.send(4, true);
    h.send(4, false);
    l.send(5, false);
    let out = pulled(&mut sub);
    assert_eq!(out.iter().map(|o| o.0).collect::<Vec<_>>(), b"ll");
    assert!(out[0].3, "DISCONT on the switch");
    assert_eq!(out[1].1, out[0].1.wrapping_add(1));
    assert_eq!(current_layer(&el, "src_0"), "l");
    assert_eq!(named(&messages(&bus), "lamina-layer-switched").len(), 2);

    // Switched, the property changes nothing: l keeps flowing.
    l.send(6, false);
    assert_eq!(pulled(&mut sub).len(), 1);
}

#[test]
fn without_it_the_current_layer_flows_until_the_switch() {
    let (_el, _bus, src, mut sub, [mut l, mut h]) = on_h(false);
    src.set_property("layer", "l");
    for frame in 1..4 {
        h.send(frame, false);
        l.send(frame, false);
    }
    assert_eq!(
        pulled(&mut sub).iter().map(|o| o.0).collect::<Vec<_>>(),
        b"hhh"
    );
    l.send(4, true);
    h.send(4, false);
    assert_eq!(
        pulled(&mut sub).iter().map(|o| o.0).collect::<Vec<_>>(),
        b"l"
    );
}

#[test]
fn turned_off_mid_wait_the_current_layer_flows_again() {
    let (_el, _bus, src, mut sub, [mut l, mut h]) = on_h(true);
    src.set_property("layer", "l");
    h.send(1, false);
    l.send(1, false);
    assert!(pulled(&mut sub).is_empty());
    src.set_property("drop-while-switching", false);
    h.send(2, false);
    l.send(2, false);
    assert_eq!(
        pulled(&mut sub).iter().map(|o| o.0).collect::<Vec<_>>(),
        b"h"
    );
}
