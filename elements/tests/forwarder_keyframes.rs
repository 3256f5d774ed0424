//! `laminaforwarder` keyframe requests: throttling of subscribers' force-key-unit events, the
//! `request-keyframe` action signal, and the request sent when a video pad is activated.

use gst::prelude::*;
use gst_check::Harness;

mod support;

use support::*;

#[test]
fn key_unit_requests_from_two_pads_are_throttled_to_one() {
    let el = forwarder();
    el.set_property("keyframe-min-interval", 60_000u32);
    let mut h0 = publisher(&el, VP8_CAPS);
    let mut h1 = Harness::with_element(&el, None, Some("src_1"));

    // As a subscriber's rtpsession sends it: with its own (rewritten) ssrc and payload.
    let fku = || {
        gst::event::CustomUpstream::new(
            gst::Structure::builder("GstForceKeyUnit")
                .field("running-time", u64::MAX)
                .field("all-headers", true)
                .field("count", 0u32)
                .field("ssrc", 4242u32)
                .field("payload", 100u32)
                .build(),
        )
    };
    assert!(h0.push_upstream_event(fku()));
    assert!(h1.push_upstream_event(fku()));
    let sent = drain_key_unit_requests(&mut h0);
    assert_eq!(sent.len(), 1, "one request per interval: {sent:?}");
    let s = sent[0].structure().expect("structure");
    assert_eq!(s.get::<bool>("all-headers"), Ok(true));
    assert!(!s.has_field("ssrc") && !s.has_field("payload"));
    assert_eq!(stat(&el, "keyframe-requests"), 1);
    assert_eq!(stat(&el, "keyframe-requests-dropped"), 1);

    // Without throttling both go through.
    el.set_property("keyframe-min-interval", 0u32);
    assert!(h0.push_upstream_event(fku()));
    assert!(h1.push_upstream_event(fku()));
    assert_eq!(drain_key_unit_requests(&mut h0).len(), 2);
    assert_eq!(stat(&el, "keyframe-requests"), 3);
}

#[test]
fn request_keyframe_signal_sends_one_throttled_request() {
    let el = forwarder();
    // Far longer than the test, so timing cannot matter.
    el.set_property("keyframe-min-interval", 60_000u32);
    let mut h = publisher(&el, VP8_CAPS);
    el.emit_by_name::<()>("request-keyframe", &[]);
    el.emit_by_name::<()>("request-keyframe", &[]);
    let sent = drain_key_unit_requests(&mut h);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].type_(), gst::EventType::CustomUpstream);
    assert_eq!(stat(&el, "keyframe-requests"), 1);
    assert_eq!(stat(&el, "keyframe-requests-dropped"), 1);
}

#[test]
fn activation_requests_a_keyframe_for_video_only() {
    let el = forwarder();
    el.set_property("keyframe-min-interval", 0u32);
    let mut h = publisher(&el, VP8_CAPS);
    let src = pad(&el, "src_0");
    src.set_property("active", true);
    src.set_property("active", true); // no change, no request
    assert_eq!(drain_key_unit_requests(&mut h).len(), 1);

    let audio = forwarder();
    let mut ha = publisher(&audio, OPUS_CAPS);
    pad(&audio, "src_0").set_property("active", true);
    assert!(drain_key_unit_requests(&mut ha).is_empty());
    assert_eq!(stat(&audio, "keyframe-requests"), 0);
}
