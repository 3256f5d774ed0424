//! Behaviour tests for `laminaforwarder`, one behaviour per test, driven with `gst_check::Harness`
//! (the publisher harness feeds `sink` and reads `src_0`; further harnesses or plain pads sit on
//! other src pads) and one `gst-launch-1.0` run against the built `libgstlamina.so`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::thread;
use std::time::Duration;

use gst::prelude::*;
use gst_check::Harness;
use gst_rtp::prelude::*;
use gst_rtp::RTPBuffer;

const VP8_CAPS: &str = "application/x-rtp, media=(string)video, encoding-name=(string)VP8, \
     clock-rate=(int)90000, payload=(int)96, ssrc=(uint)1111, rtcp-fb-nack-pli=(boolean)true, \
     extmap-3=(string)urn:ietf:params:rtp-hdrext:sdes:mid, a-framerate=(string)30";
const OPUS_CAPS: &str = "application/x-rtp, media=(string)audio, encoding-name=(string)OPUS, \
     clock-rate=(int)48000, payload=(int)111, encoding-params=(string)2, sprop-stereo=(string)1";
const TIMEOUT: Duration = Duration::from_secs(30);

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("gst init");
        gstlamina::plugin_register_static().expect("register the lamina plugin");
    });
}

fn forwarder() -> gst::Element {
    init();
    gst::ElementFactory::make("laminaforwarder")
        .build()
        .expect("laminaforwarder is registered")
}

/// Harness feeding the forwarder's sink pad and reading `src_0`, with VP8 caps pushed.
fn publisher(el: &gst::Element, caps: &str) -> Harness {
    let mut h = Harness::with_element(el, Some("sink"), Some("src_0"));
    h.set_src_caps_str(caps);
    h
}

fn pad(el: &gst::Element, name: &str) -> gst::Pad {
    el.static_pad(name).expect("pad exists")
}

/// An RTP packet with PT 96 and an 8-byte payload derived from `seq`.
fn rtp(ssrc: u32, seq: u16, ts: u32, pts_ms: u64) -> gst::Buffer {
    let mut buf = gst::Buffer::new_rtp_with_sizes(8, 0, 0).expect("rtp buffer");
    {
        let b = buf.get_mut().expect("new buffer is writable");
        b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
        let mut r = RTPBuffer::from_buffer_writable(b).expect("valid rtp");
        r.set_payload_type(96);
        r.set_ssrc(ssrc);
        r.set_seq(seq);
        r.set_timestamp(ts);
        r.payload_mut()
            .expect("payload")
            .copy_from_slice(&[seq as u8; 8]);
    }
    buf
}

#[derive(Debug, PartialEq, Eq)]
struct Hdr {
    pt: u8,
    ssrc: u32,
    seq: u16,
    ts: u32,
}

fn hdr(buf: &gst::Buffer) -> Hdr {
    let r = RTPBuffer::from_buffer_readable(buf).expect("valid rtp");
    Hdr {
        pt: r.payload_type(),
        ssrc: r.ssrc(),
        seq: r.seq(),
        ts: r.timestamp(),
    }
}

fn payload(buf: &gst::Buffer) -> Vec<u8> {
    RTPBuffer::from_buffer_readable(buf)
        .expect("valid rtp")
        .payload()
        .expect("payload")
        .to_vec()
}

fn stat(el: &gst::Element, name: &str) -> u64 {
    el.property::<u64>(name)
}

/// All queued downstream events of `h`, in order.
fn drain_events(h: &mut Harness) -> Vec<gst::Event> {
    std::iter::from_fn(|| h.try_pull_event()).collect()
}

/// All queued upstream force-key-unit events of `h`.
fn drain_key_unit_requests(h: &mut Harness) -> Vec<gst::Event> {
    std::iter::from_fn(|| h.try_pull_upstream_event())
        .filter(|e| e.structure().is_some_and(|s| s.name() == "GstForceKeyUnit"))
        .collect()
}

fn last_caps(events: &[gst::Event]) -> Option<gst::Caps> {
    events.iter().rev().find_map(|e| match e.view() {
        gst::EventView::Caps(c) => Some(c.caps_owned()),
        _ => None,
    })
}

fn expected_caps(pt: i32, ssrc: u32) -> gst::Caps {
    gst::Caps::builder("application/x-rtp")
        .field("media", "video")
        .field("encoding-name", "VP8")
        .field("clock-rate", 90_000i32)
        .field("payload", pt)
        .field("ssrc", ssrc)
        .build()
}

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

/// A sink pad whose chain always fails with `err`.
fn failing_sink(err: gst::FlowError) -> gst::Pad {
    let p = gst::Pad::builder(gst::PadDirection::Sink)
        .chain_function(move |_, _, _| Err(err))
        .event_function(|_, _, _| true)
        .build();
    p.set_active(true).expect("activate");
    p
}

#[test]
fn failing_subscribers_do_not_affect_others_or_the_publisher() {
    let el = forwarder();
    let mut h = publisher(&el, VP8_CAPS);
    pad(&el, "src_0").set_property("active", true);

    // src_1: downstream refuses its caps, like a webrtcbin negotiated for another PT.
    let mut refusing = Harness::with_element(&el, None, Some("src_1"));
    refusing.set_sink_caps_str("application/x-rtp, payload=(int)99");
    let src_1 = pad(&el, "src_1");
    src_1.set_property("pt", 100u32);
    // src_2..src_4: downstream returns not-negotiated, error and flushing; src_5 is unlinked.
    let mut sinks = Vec::new();
    for err in [
        gst::FlowError::NotNegotiated,
        gst::FlowError::Error,
        gst::FlowError::Flushing,
    ] {
        let p = el.request_pad_simple("src_%u").expect("request pad");
        let sink = failing_sink(err);
        p.link(&sink).expect("link");
        sinks.push(sink);
    }
    let unlinked = el.request_pad_simple("src_%u").expect("request pad");
    assert_eq!(unlinked.name(), "src_5");
    for p in el.src_pads() {
        p.set_property("active", true);
    }

    for seq in 0..20u16 {
        assert_eq!(h.push(rtp(1111, seq, 0, 0)), Ok(gst::FlowSuccess::Ok));
    }
    for seq in 0..20u16 {
        assert_eq!(hdr(&h.pull().expect("src_0 keeps receiving")).seq, seq);
    }
    assert!(refusing.try_pull().is_none());
    assert_eq!(stat(&el, "forwarded-packets"), 20);
}

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
fn releasing_pads_while_buffers_flow_is_safe() {
    let el = forwarder();
    let mut h = publisher(&el, VP8_CAPS);
    pad(&el, "src_0").set_property("active", true);

    let stop = Arc::new(AtomicBool::new(false));
    let (pushed_tx, pushed_rx) = mpsc::channel();
    let pusher = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut seq = 0u16;
            let mut errors = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if h.push(rtp(1111, seq, u32::from(seq) * 90, 0)).is_err() {
                    errors += 1;
                }
                seq = seq.wrapping_add(1);
                // Keep the harness queue small.
                while h.try_pull().is_some() {}
            }
            let _ = pushed_tx.send((seq, errors));
        })
    };

    let (done_tx, done_rx) = mpsc::channel();
    let releaser = {
        let el = el.clone();
        thread::spawn(move || {
            for _ in 0..30 {
                let p = el.request_pad_simple("src_%u").expect("request pad");
                let (got_tx, got_rx) = mpsc::sync_channel(1);
                let sink = gst::Pad::builder(gst::PadDirection::Sink)
                    .chain_function(move |_, _, _| {
                        let _ = got_tx.try_send(());
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .event_function(|_, _, _| true)
                    .build();
                sink.set_active(true).expect("activate");
                p.link(&sink).expect("link");
                p.set_property("active", true);
                got_rx
                    .recv_timeout(TIMEOUT)
                    .expect("buffers reach the new pad");
                let name = p.name();
                el.release_request_pad(&p);
                assert!(el.static_pad(&name).is_none());
            }
            let _ = done_tx.send(());
        })
    };

    done_rx
        .recv_timeout(TIMEOUT)
        .expect("request/release cycles finish (no deadlock)");
    releaser.join().expect("releaser thread");
    assert_eq!(el.src_pads().len(), 1, "only src_0 is left");
    stop.store(true, Ordering::Relaxed);
    let (pushed, errors) = pushed_rx.recv_timeout(TIMEOUT).expect("pusher stops");
    pusher.join().expect("pusher thread");
    assert!(pushed > 30);
    assert_eq!(errors, 0, "the publisher never sees a subscriber's release");
}

/// `libgstlamina.so` as built by this `cargo test` run (next to the test executable).
fn plugin_library() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    [
        deps.to_path_buf(),
        deps.parent().expect("profile dir").to_path_buf(),
    ]
    .into_iter()
    .map(|dir| dir.join("libgstlamina.so"))
    .find(|p| p.exists())
    .unwrap_or_else(|| panic!("libgstlamina.so not found near {}", exe.display()))
}

#[test]
fn gst_launch_forwards_through_the_plugin_to_eos() {
    // A private plugin dir and registry: only this build's plugin, no stale registry cache.
    let dir = std::env::temp_dir().join(format!("lamina-forwarder-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::copy(plugin_library(), dir.join("libgstlamina.so")).expect("copy plugin");

    let pipeline = "videotestsrc num-buffers=60 ! vp8enc deadline=1 ! rtpvp8pay pt=96 ! \
         laminaforwarder name=f src_0::active=true src_0::pt=100 src_0::ssrc=1234 \
         f.src_0 ! queue ! rtpvp8depay ! vp8dec ! fakesink \
         f.src_1 ! queue ! fakesink async=false";
    let output = Command::new("timeout")
        .arg("120")
        .arg("gst-launch-1.0")
        .arg("-v")
        .args(pipeline.split_whitespace())
        .env("GST_PLUGIN_PATH", &dir)
        .env("GST_REGISTRY", dir.join("registry.bin"))
        .output()
        .expect("run timeout(1)");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(
        output.status.code(),
        Some(127),
        "gst-launch-1.0 is missing: install gstreamer1.0-tools (scripts/setup.sh)"
    );
    assert!(
        output.status.success() && stdout.contains("Got EOS from element"),
        "gst-launch failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(
        !stderr.contains("CRITICAL") && !stderr.contains("WARNING"),
        "no GLib criticals or warnings expected:\n{stderr}"
    );
    assert!(
        stdout.contains("GstLaminaForwarderPad:src_0: caps = application/x-rtp")
            && stdout.contains("payload=(int)100, ssrc=(uint)1234"),
        "rewritten caps on src_0 expected in:\n{stdout}"
    );
}
