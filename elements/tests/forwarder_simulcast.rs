//! `laminaforwarder` simulcast: src pads forwarding one layer and switching on a keyframe, paused
//! layers, layer activity messages, RID takeover by a newer pad, upstream events per layer, and
//! releasing layer sinks while packets flow (RID learning: `forwarder_rids.rs`). Packets are built by hand (VP8 and H264 payloads,
//! one packet per frame, the RID extension in the first packets of each SSRC).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_check::Harness;

mod support;

#[path = "support/simulcast.rs"]
mod simulcast_support;

use simulcast_support::*;
use support::*;

#[test]
fn switch_happens_exactly_at_the_first_keyframe_of_the_wanted_layer() {
    let (el, bus) = simulcast_forwarder("l,m,h");
    let mut sub = subscriber(&el, "src_0", "l");
    let mut l = Layer::new(&el, "sink_0", "l", SSRC_L);
    let mut h = Layer::new(&el, "sink_1", "h", SSRC_H);

    // No current layer yet: the pad starts on l's first keyframe, which is asked for.
    l.send(0, false);
    h.send(0, false);
    assert!(sub.try_pull().is_none());
    assert_eq!(current_layer(&el, "src_0"), "");
    assert_eq!(l.key_unit_requests(), 1, "keyframe of l asked for");
    assert_eq!(h.key_unit_requests(), 0);
    for frame in 1..4 {
        l.send(frame, frame == 1);
        h.send(frame, false);
    }
    let out = pulled(&mut sub);
    assert_eq!(out.iter().map(|o| o.0).collect::<Vec<_>>(), b"lll");
    assert_eq!(current_layer(&el, "src_0"), "l");
    assert_eq!(
        last_caps(&drain_events(&mut sub)),
        Some(
            gst::Caps::builder("application/x-rtp")
                .field("media", "video")
                .field("encoding-name", "VP8")
                .field("clock-rate", 90_000i32)
                .field("payload", 96i32)
                .field("ssrc", 4242u32)
                .build()
        )
    );
    let switched = named(&messages(&bus), "lamina-layer-switched").len();
    assert_eq!(switched, 1, "the start on l is a switch too");

    // Wanting h asks h's sink pad for a keyframe, and only it: with a packet of h once 320 ms
    // have passed since the request for l (Chrome drops requests that come sooner).
    pad(&el, "src_0").set_property("layer", "h");
    assert_eq!(pad(&el, "src_0").property::<String>("layer"), "h");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut asked = 0;
    while asked == 0 {
        assert!(Instant::now() < deadline, "no force-key-unit upstream on h");
        h.send(3, false);
        asked = h.key_unit_requests();
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(asked, 1, "one force-key-unit upstream on h");
    assert_eq!(l.key_unit_requests(), 0);

    // Delta frames of h: the pad stays on l.
    for frame in 4..7 {
        h.send(frame, false);
        l.send(frame, frame == 5);
    }
    let before = pulled(&mut sub);
    assert_eq!(before.iter().map(|o| o.0).collect::<Vec<_>>(), b"lll");
    assert_eq!(current_layer(&el, "src_0"), "l");
    assert!(named(&messages(&bus), "lamina-layer-switched").is_empty());

    // h's keyframe: switched with that packet; l is not forwarded anymore.
    h.send(7, true);
    l.send(7, false);
    h.send(8, false);
    l.send(8, false);
    let after = pulled(&mut sub);
    assert_eq!(after.iter().map(|o| o.0).collect::<Vec<_>>(), b"hh");
    let last_l = out
        .iter()
        .chain(&before)
        .last()
        .copied()
        .expect("l packets");
    // Sequence continues at +1; the timestamp follows the 33 ms between l's frame 6 and h's 7.
    assert_eq!(after[0].1, last_l.1.wrapping_add(1));
    assert_eq!(after[0].2, last_l.2.wrapping_add(TICKS_PER_FRAME));
    assert!(after[0].3, "DISCONT on the first switched packet");
    assert_eq!(after[1].1, after[0].1.wrapping_add(1));
    assert_eq!(after[1].2, after[0].2.wrapping_add(TICKS_PER_FRAME));
    assert!(!after[1].3);
    assert_eq!(current_layer(&el, "src_0"), "h");
    let msgs = messages(&bus);
    let switched = named(&msgs, "lamina-layer-switched");
    assert_eq!(switched.len(), 1);
    assert_eq!(switched[0].get::<String>("pad").as_deref(), Ok("src_0"));
    assert_eq!(switched[0].get::<String>("layer").as_deref(), Ok("h"));
    assert_eq!(stat(&el, "layer-switches"), 2);
    // No more requests: the switch is done.
    assert_eq!(h.key_unit_requests(), 0);
}

#[test]
fn h264_layers_switch_on_an_idr_start() {
    let (el, _bus) = simulcast_forwarder("l,h");
    let mut sub = subscriber(&el, "src_0", "l");
    let mut l = Layer::with(&el, "sink_0", "l", SSRC_L, Codec::H264, false);
    let mut h = Layer::with(&el, "sink_1", "h", SSRC_H, Codec::H264, false);
    l.send(0, true);
    h.send(0, true);
    pad(&el, "src_0").set_property("layer", "h");
    h.send(1, false);
    l.send(1, false);
    h.send(2, true);
    l.send(2, false);
    let tags: Vec<u8> = pulled(&mut sub).iter().map(|o| o.0).collect();
    assert_eq!(tags, b"llh");
    assert_eq!(current_layer(&el, "src_0"), "h");
}

#[test]
fn a_layer_nobody_wants_is_paused_and_resumes_when_wanted() {
    let (el, _bus) = simulcast_forwarder("l,m,h");
    let mut sub = subscriber(&el, "src_0", "l");
    let mut l = Layer::new(&el, "sink_0", "l", SSRC_L);
    let mut m = Layer::new(&el, "sink_1", "m", SSRC_M);
    for frame in 0..4 {
        l.send(frame, frame == 0);
        m.send(frame, true);
    }
    assert_eq!(stat(&el, "forwarded-packets"), 4, "only l is forwarded");
    assert_eq!(m.key_unit_requests(), 0, "nobody asked m for anything");
    // m is still active (its packets are counted as arriving).
    assert_eq!(el.property::<String>("active-layers"), "l,m");

    // A second subscriber wants m: forwarded from m's next keyframe on.
    let mut sub2 = subscriber(&el, "src_1", "m");
    assert_eq!(m.key_unit_requests(), 1);
    m.send(4, false);
    m.send(5, true);
    m.send(6, false);
    l.send(4, false);
    let tags: Vec<u8> = pulled(&mut sub2).iter().map(|o| o.0).collect();
    assert_eq!(tags, b"mm");
    assert_eq!(pulled(&mut sub).iter().filter(|o| o.0 == b'm').count(), 0);

    // The second subscriber goes back to "" (the always sink pad): m pauses again.
    pad(&el, "src_1").set_property("layer", "");
    assert_eq!(current_layer(&el, "src_1"), "");
    let forwarded = stat(&el, "forwarded-packets");
    m.send(7, true);
    assert_eq!(stat(&el, "forwarded-packets"), forwarded);
    assert!(sub2.try_pull().is_none());
}

/// Pushes a packet of `layer` every few ms until `done(messages so far)`; panics after 10 s.
fn send_until(
    layer: &mut Layer,
    frame: &mut u32,
    bus: &gst::Bus,
    mut done: impl FnMut(&[gst::Structure]) -> bool,
) -> Vec<gst::Structure> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        *frame += 1;
        layer.send(*frame, false);
        seen.extend(messages(bus));
        if done(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met; messages: {seen:?}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn layers_message_when_a_layer_stops_and_comes_back() {
    let (el, bus) = simulcast_forwarder("l,m,h");
    el.set_property("layer-timeout", 50u32);
    let _sub = subscriber(&el, "src_0", "l");
    let mut l = Layer::new(&el, "sink_0", "l", SSRC_L);
    let mut h = Layer::new(&el, "sink_1", "h", SSRC_H);
    // h is learned first, but the order is the one of `rids`.
    h.send(0, true);
    l.send(0, true);
    assert_eq!(layers_values(&messages(&bus)), vec!["h", "l,h"]);

    // h stops; l goes on: h is noticed inactive after about 50 ms.
    let mut frame = 0;
    let seen = send_until(&mut l, &mut frame, &bus, |m| !layers_values(m).is_empty());
    assert_eq!(layers_values(&seen), vec!["l"]);
    assert_eq!(el.property::<String>("active-layers"), "l");
    // The subscriber's layer is untouched (the application decides).
    assert_eq!(current_layer(&el, "src_0"), "l");

    // h is back with its next packet.
    h.send(frame + 1, false);
    assert_eq!(layers_values(&messages(&bus)), vec!["l,h"]);
    assert_eq!(el.property::<String>("active-layers"), "l,h");
}

#[test]
fn a_newer_sink_pad_with_the_same_rid_takes_over() {
    let (el, bus) = simulcast_forwarder("l,h");
    let mut sub = subscriber(&el, "src_0", "h");
    let mut old = Layer::new(&el, "sink_0", "h", SSRC_H);
    old.send(0, true);
    old.send(1, false);
    // The layer's SSRC changed: a new webrtcbin pad, a new sink pad, the same RID.
    let (mut new, sink_1) = Layer::plain(&el, "h", 0x4444);
    assert_eq!(sink_1.name(), "sink_1");
    new.send(2, true);
    old.send(2, false);
    new.send(3, false);
    old.send(3, false);
    let out = pulled(&mut sub);
    let seqs: Vec<u16> = out.iter().map(|o| o.1).collect();
    assert_eq!(out.len(), 4, "{out:?}");
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    assert!(out[2].3, "DISCONT where the new SSRC starts");
    // Both pads say "h"; the old pad's packets are dropped (not counted as unknown).
    assert_eq!(pad(&el, "sink_0").property::<String>("rid"), "h");
    assert_eq!(pad(&el, "sink_1").property::<String>("rid"), "h");
    assert_eq!(stat(&el, "dropped-unknown-rid"), 0);
    assert_eq!(el.property::<String>("active-layers"), "h");
    // Same layer all along: one switch (the start), no layer change.
    assert_eq!(named(&messages(&bus), "lamina-layer-switched").len(), 1);

    // Releasing the newer pad hands the layer back to the older one.
    el.release_request_pad(&sink_1);
    old.send(4, false);
    let back = pulled(&mut sub);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].1, out[3].1.wrapping_add(1));
    assert!(back[0].3, "DISCONT where the old SSRC comes back");
}

#[test]
fn upstream_events_of_a_layer_pad_go_to_its_layer_sink() {
    let (el, _bus) = simulcast_forwarder("l,h");
    el.set_property("keyframe-min-interval", 0u32);
    let mut sub = subscriber(&el, "src_0", "h");
    let mut l = Layer::new(&el, "sink_0", "l", SSRC_L);
    let mut h = Layer::new(&el, "sink_1", "h", SSRC_H);
    for frame in 0..3 {
        l.send(frame, true);
        h.send(frame, frame == 0);
    }
    let out = pulled(&mut sub);
    assert_eq!(out.len(), 3);
    l.key_unit_requests();
    h.key_unit_requests();

    // A subscriber's PLI: to h only.
    let fku = gst::event::CustomUpstream::new(
        gst::Structure::builder("GstForceKeyUnit")
            .field("running-time", u64::MAX)
            .field("all-headers", true)
            .field("count", 0u32)
            .build(),
    );
    assert!(sub.push_upstream_event(fku));
    assert_eq!(h.key_unit_requests(), 1);
    assert_eq!(l.key_unit_requests(), 0);

    // A NACK of the second output packet: h's input SSRC and sequence number, on h's pad.
    while h.h().try_pull_upstream_event().is_some() {}
    let request = gst::event::CustomUpstream::new(
        gst::Structure::builder("GstRTPRetransmissionRequest")
            .field("seqnum", u32::from(out[1].1))
            .field("ssrc", 4242u32)
            .build(),
    );
    assert!(sub.push_upstream_event(request));
    let up = h
        .h()
        .try_pull_upstream_event()
        .expect("request on h's sink pad");
    let s = up.structure().expect("structure");
    assert_eq!(s.get::<u32>("ssrc"), Ok(SSRC_H));
    assert_eq!(
        s.get::<u32>("seqnum"),
        Ok(u32::from((SSRC_H as u16).wrapping_mul(7).wrapping_add(1)))
    );
    assert!(l.h().try_pull_upstream_event().is_none());
}

#[test]
fn layer_sticky_events_reach_late_pads_and_eos_waits_for_all_layers() {
    let (el, _bus) = simulcast_forwarder("l,h");
    let mut l = Layer::new(&el, "sink_0", "l", SSRC_L);
    let mut h = Layer::new(&el, "sink_1", "h", SSRC_H);
    l.send(0, true);
    h.send(0, true);

    // Requested after the layers' events, with only layer sinks carrying data.
    let mut late = Harness::with_element(&el, None, Some("src_0"));
    let src = pad(&el, "src_0");
    src.set_property("pt", 100u32);
    // Layer caps without the layer's ssrc and publisher fields, with the pad's pt.
    let caps: gst::Caps = "application/x-rtp, media=(string)video, encoding-name=(string)VP8, \
         clock-rate=(int)90000, payload=(int)100"
        .parse()
        .expect("caps");
    assert_eq!(src.current_caps(), Some(caps));
    src.set_property("layer", "l");
    src.set_property("active", true);
    l.send(1, true);
    assert_eq!(hdr(&late.pull().expect("l packet")).pt, 100);
    // The stored sticky events went out before the first buffer, once each.
    let types: Vec<gst::EventType> = drain_events(&mut late).iter().map(|e| e.type_()).collect();
    assert_eq!(
        types,
        vec![
            gst::EventType::StreamStart,
            gst::EventType::Caps,
            gst::EventType::Segment
        ]
    );

    // EOS of one layer is not the end of the subscriber's stream.
    assert!(l.h().push_event(gst::event::Eos::new()));
    assert!(drain_events(&mut late)
        .iter()
        .all(|e| e.type_() != gst::EventType::Eos));
    assert!(h.h().push_event(gst::event::Eos::new()));
    let eos = drain_events(&mut late)
        .iter()
        .filter(|e| e.type_() == gst::EventType::Eos)
        .count();
    assert_eq!(eos, 1);
}

#[test]
fn gated_pads_do_not_switch_and_activation_asks_for_their_layer() {
    let (el, bus) = simulcast_forwarder("l,h");
    let mut sub = Harness::with_element(&el, None, Some("src_0"));
    let src = pad(&el, "src_0");
    src.set_property("layer", "h");
    let mut h = Layer::new(&el, "sink_0", "h", SSRC_H);
    h.send(0, true);
    assert_eq!(h.key_unit_requests(), 0, "a gated pad asks for nothing");
    assert_eq!(current_layer(&el, "src_0"), "");
    src.set_property("active", true);
    assert_eq!(h.key_unit_requests(), 1, "activation asks h for a keyframe");
    h.send(1, false);
    assert!(sub.try_pull().is_none());
    h.send(2, true);
    assert!(sub.try_pull().is_some());
    assert_eq!(current_layer(&el, "src_0"), "h");
    assert_eq!(named(&messages(&bus), "lamina-layer-switched").len(), 1);
}

#[test]
fn the_request_keyframe_action_asks_the_layers_outputs_forward() {
    let (el, _bus) = simulcast_forwarder("l,h");
    el.set_property("keyframe-min-interval", 0u32);
    let mut sub = subscriber(&el, "src_0", "h");
    let mut l = Layer::new(&el, "sink_0", "l", SSRC_L);
    let mut h = Layer::new(&el, "sink_1", "h", SSRC_H);
    l.send(0, true);
    h.send(0, true);
    assert_eq!(pulled(&mut sub).len(), 1);
    l.key_unit_requests();
    h.key_unit_requests();
    let before = stat(&el, "keyframe-requests");
    el.emit_by_name::<()>("request-keyframe", &[]);
    assert_eq!(h.key_unit_requests(), 1, "the forwarded layer is asked");
    assert_eq!(l.key_unit_requests(), 0, "a layer nobody gets is not");
    assert_eq!(stat(&el, "keyframe-requests"), before + 1);
    // Bytes are counted per layer, watched or not.
    let bytes = el.property::<String>("layer-bytes");
    let pairs: Vec<(&str, u64)> = bytes
        .split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(r, b)| (r, b.parse().unwrap()))
        .collect();
    assert_eq!(
        pairs.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        ["l", "h"]
    );
    assert!(pairs.iter().all(|(_, b)| *b > 12), "{bytes}");
}

#[test]
fn a_throttled_keyframe_request_is_retried_while_the_switch_is_pending() {
    let (el, _bus) = simulcast_forwarder("l,h");
    el.set_property("keyframe-min-interval", 100u32);
    let _sub = subscriber(&el, "src_0", "h");
    let mut h = Layer::new(&el, "sink_0", "h", SSRC_H);
    // The first packet asks (nothing could be sent before the pad knew its RID).
    h.send(0, false);
    assert_eq!(h.key_unit_requests(), 1);
    // A subscriber PLI within the interval is throttled ...
    let p = pad(&el, "src_0");
    let fku = gst::event::CustomUpstream::new(gst::Structure::new_empty("GstForceKeyUnit"));
    assert!(p.send_event(fku));
    assert_eq!(h.key_unit_requests(), 0);
    assert_eq!(stat(&el, "keyframe-requests-dropped"), 1);
    // ... and retried on a packet of h once the interval has passed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut frame = 0;
    while h.key_unit_requests() == 0 {
        assert!(Instant::now() < deadline, "no retry");
        frame += 1;
        h.send(frame, false);
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(current_layer(&el, "src_0"), "");
}

#[test]
fn a_layer_wanted_right_after_a_request_for_another_is_asked_once_the_publishers_gap_passed() {
    let (el, _bus) = simulcast_forwarder("l,h");
    el.set_property("keyframe-min-interval", 100u32);
    let _sub = subscriber(&el, "src_0", "h");
    let mut l = Layer::new(&el, "sink_0", "l", SSRC_L);
    let mut h = Layer::new(&el, "sink_1", "h", SSRC_H);
    l.send(0, false);
    h.send(0, false);
    let asked_h = Instant::now();
    assert_eq!(h.key_unit_requests(), 1, "the first packet of h asks");
    assert_eq!(l.key_unit_requests(), 0, "nobody waits for l");
    // The subscriber is cut to l at once: Chrome would drop a request now (within 300 ms of
    // the last), so it is held back ...
    pad(&el, "src_0").set_property("layer", "l");
    l.send(1, false);
    assert_eq!(l.key_unit_requests(), 0);
    // ... and goes out with a packet of l once the gap has passed.
    let deadline = asked_h + Duration::from_secs(5);
    let mut frame = 1;
    while l.key_unit_requests() == 0 {
        assert!(Instant::now() < deadline, "l never asked");
        frame += 1;
        l.send(frame, false);
        thread::sleep(Duration::from_millis(5));
    }
    assert!(
        asked_h.elapsed() >= Duration::from_millis(300),
        "{:?}",
        asked_h.elapsed()
    );
    assert_eq!(h.key_unit_requests(), 0, "h is not asked again");
}

#[test]
fn releasing_layer_sinks_while_packets_flow_does_not_deadlock() {
    let (el, _bus) = simulcast_forwarder("h");
    let mut sub = subscriber(&el, "src_0", "h");
    let forwarded = Arc::new(AtomicU64::new(0));

    for cycle in 0..10u32 {
        let (src, sink) = plain_feed(
            &el,
            &format!("layer-{cycle}"),
            &layer_caps(Codec::Vp8, SSRC_H + cycle, "h"),
        );
        sink.set_property("rid", "h");

        let stop = Arc::new(AtomicBool::new(false));
        let pusher = {
            let stop = stop.clone();
            let src = src.clone();
            thread::spawn(move || {
                let mut seq = 0u16;
                while !stop.load(Ordering::Relaxed) {
                    let ssrc = SSRC_H + cycle;
                    let buf = packet(
                        Codec::Vp8,
                        (ssrc, seq, u32::from(seq) * 90, u64::from(seq)),
                        Rid::None,
                        true,
                        b'h',
                    );
                    // Errors once the pad is released (not linked, flushing).
                    let _ = src.push(buf);
                    seq = seq.wrapping_add(1);
                }
            })
        };

        // Wait until this pad's packets come out, then release it while they flow.
        let deadline = Instant::now() + TIMEOUT;
        let start = forwarded.load(Ordering::Relaxed);
        while forwarded.load(Ordering::Relaxed) < start + 5 {
            assert!(
                Instant::now() < deadline,
                "packets of cycle {cycle} not forwarded"
            );
            if sub.try_pull().is_some() {
                forwarded.fetch_add(1, Ordering::Relaxed);
            } else {
                thread::sleep(Duration::from_millis(1));
            }
        }
        let (done_tx, done_rx) = mpsc::channel();
        let releaser = {
            let el = el.clone();
            let sink = sink.clone();
            thread::spawn(move || {
                el.release_request_pad(&sink);
                let _ = done_tx.send(());
            })
        };
        done_rx
            .recv_timeout(TIMEOUT)
            .expect("release finishes while packets flow (no deadlock)");
        releaser.join().expect("releaser");
        assert!(sink.parent().is_none());
        stop.store(true, Ordering::Relaxed);
        pusher.join().expect("pusher");
        while sub.try_pull().is_some() {}
    }
    assert_eq!(el.sink_pads().len(), 1, "only the always sink pad is left");
}

#[test]
fn gst_launch_switches_to_the_wanted_layer_to_eos() {
    init();
    // The pipeline of the module docs.
    let pipeline = "laminaforwarder name=f rids=l,h sink_0::rid=h sink_1::rid=l \
         src_0::active=true src_0::layer=h src_0::ssrc=1234 \
         videotestsrc num-buffers=30 ! vp8enc deadline=1 ! rtpvp8pay pt=96 ! f.sink_0 \
         videotestsrc num-buffers=30 ! video/x-raw,width=160,height=120 ! vp8enc deadline=1 ! \
         rtpvp8pay pt=96 ! f.sink_1 \
         f.src_0 ! queue ! rtpvp8depay ! vp8dec ! fakesink";
    let mut args = vec!["-m"];
    args.extend(pipeline.split_whitespace());
    let (ok, stdout, stderr) = run_with_plugin("simulcast", "gst-launch-1.0", &args);
    assert!(
        ok && stdout.contains("Got EOS from element"),
        "gst-launch failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("CRITICAL") && !stderr.contains("WARNING"),
        "no GLib criticals or warnings expected:\n{stderr}"
    );
    assert!(
        stdout.contains("lamina-layer-switched, pad=(string)src_0, layer=(string)h"),
        "switch message expected in:\n{stdout}"
    );
    assert!(
        stdout.contains("lamina-layers, layers=(string)\"l\\,h\""),
        "layers message expected in:\n{stdout}"
    );
}
