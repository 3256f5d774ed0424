//! `laminavad`: speech and silence from the RFC 6464 audio levels of an RTP stream (with the
//! extension id from `ext-id` or from the caps), hysteresis against coughs, every packet passed
//! unchanged, a stream without the extension left alone, speech ended by EOS, and the
//! `gst-launch-1.0` / `gst-inspect-1.0` runs against the `libgstlamina.so` of this run.

use gst::prelude::*;
use gst_check::Harness;
use gst_rtp::prelude::*;
use gst_rtp::RTPBuffer;

mod support;

use support::{init, run_with_plugin};

const LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Opus caps; `extmap` is an extra caps field such as `extmap-3=(string)<uri>`.
fn caps(extmap: &str) -> String {
    format!(
        "application/x-rtp, media=(string)audio, encoding-name=(string)OPUS, clock-rate=(int)48000, \
         payload=(int)111{extmap}"
    )
}

/// A 20 ms Opus packet number `n` carrying `level` under extension id `id` (none if 0).
fn packet(n: u32, id: u8, level: u8) -> gst::Buffer {
    let mut buf = gst::Buffer::new_rtp_with_sizes(20, 0, 0).unwrap();
    {
        let b = buf.get_mut().unwrap();
        let mut r = RTPBuffer::from_buffer_writable(b).unwrap();
        r.set_payload_type(111);
        r.set_ssrc(42);
        r.set_seq(n as u16);
        r.set_timestamp(1_000_000u32.wrapping_add(960 * n));
        if id != 0 {
            r.add_extension_onebyte_header(id, &[level]).unwrap();
        }
    }
    buf
}

/// A `laminavad` in a harness with its own bus; the caps carry `extmap`.
fn vad(extmap: &str, props: &[(&str, u32)]) -> (Harness, gst::Bus) {
    init();
    let mut b = gst::ElementFactory::make("laminavad");
    for (k, v) in props {
        b = b.property(k, *v);
    }
    let el = b.build().expect("laminavad is registered");
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    let mut h = Harness::with_element(&el, Some("sink"), Some("src"));
    h.set_src_caps_str(&caps(extmap));
    (h, bus)
}

/// The `lamina-vad` messages so far: (speech, level).
fn changes(bus: &gst::Bus) -> Vec<bool> {
    std::iter::from_fn(|| bus.pop())
        .filter_map(|m| match m.view() {
            gst::MessageView::Element(e) => e
                .structure()
                .filter(|s| s.name() == "lamina-vad")
                .map(|s| s.get::<bool>("speech").unwrap()),
            _ => None,
        })
        .collect()
}

/// Pushes packets `from..to` with `level`; returns the packet numbers after which the state
/// changed, with the new state.
fn push(
    h: &mut Harness,
    bus: &gst::Bus,
    id: u8,
    from: u32,
    to: u32,
    level: u8,
) -> Vec<(u32, bool)> {
    let mut out = Vec::new();
    for n in from..to {
        assert_eq!(h.push(packet(n, id, level)), Ok(gst::FlowSuccess::Ok));
        let got = h.pull().unwrap();
        let r = RTPBuffer::from_buffer_readable(&got).unwrap();
        assert_eq!(r.seq(), n as u16, "passed in order, unchanged");
        out.extend(changes(bus).into_iter().map(|s| (n, s)));
    }
    out
}

#[test]
fn speech_then_silence_with_the_id_from_the_caps() {
    let (mut h, bus) = vad(&format!(", extmap-1=(string){LEVEL_URI}"), &[]);
    let el = h.element().unwrap();
    // 1 s of silence, 2 s of voice (level 30), 2 s of quiet (level 100).
    assert!(push(&mut h, &bus, 1, 0, 50, 127).is_empty());
    // Speech 150 ms (8 packets) after the voice starts: packet 50 + 8 = 58.
    assert_eq!(push(&mut h, &bus, 1, 50, 150, 30), [(58, true)]);
    assert!(el.property::<bool>("speaking"));
    // Silence 800 ms (40 packets) after the last voice packet (149).
    assert_eq!(push(&mut h, &bus, 1, 150, 250, 100), [(189, false)]);
    assert!(!el.property::<bool>("speaking"));
}

#[test]
fn the_id_comes_from_an_extmap_array_or_the_property() {
    // webrtcbin's caps give `<direction, uri, attributes>`.
    let (mut h, bus) = vad(
        &format!(", extmap-4=(string)<\"\", {LEVEL_URI}, \"vad=on\">"),
        &[],
    );
    assert_eq!(push(&mut h, &bus, 4, 0, 20, 20), [(8, true)]);
    let (mut h, bus) = vad("", &[("ext-id", 7)]);
    assert_eq!(push(&mut h, &bus, 7, 0, 20, 20), [(8, true)]);
}

#[test]
fn coughs_are_not_speech_and_pauses_do_not_end_it() {
    let (mut h, bus) = vad(&format!(", extmap-1=(string){LEVEL_URI}"), &[]);
    let mut n = 0;
    for _ in 0..5 {
        // 100 ms cough, 400 ms quiet.
        assert!(push(&mut h, &bus, 1, n, n + 5, 10).is_empty());
        assert!(push(&mut h, &bus, 1, n + 5, n + 25, 110).is_empty());
        n += 25;
    }
    assert_eq!(push(&mut h, &bus, 1, n, n + 20, 35).len(), 1);
    n += 20;
    for _ in 0..5 {
        // Words with 300 ms pauses.
        assert!(push(&mut h, &bus, 1, n, n + 15, 110).is_empty());
        assert!(push(&mut h, &bus, 1, n + 15, n + 30, 35).is_empty());
        n += 30;
    }
    // EOS while speaking ends the speech.
    assert!(h.push_event(gst::event::Eos::new()));
    assert_eq!(changes(&bus), [false]);
}

#[test]
fn without_the_extension_packets_only_pass() {
    let (mut h, bus) = vad("", &[]);
    assert!(push(&mut h, &bus, 0, 0, 100, 0).is_empty());
    // An id set but packets without the extension (or garbage): still passed, no change.
    let (mut h, bus) = vad("", &[("ext-id", 3)]);
    assert!(push(&mut h, &bus, 0, 0, 50, 0).is_empty());
    assert_eq!(
        h.push(gst::Buffer::from_slice([1u8, 2, 3])),
        Ok(gst::FlowSuccess::Ok)
    );
    assert_eq!(h.pull().unwrap().size(), 3);
    assert!(changes(&bus).is_empty());
}

#[test]
fn gst_launch_and_inspect() {
    let args = [
        "-m",
        "audiotestsrc",
        "num-buffers=50",
        "!",
        "opusenc",
        "!",
        "rtpopuspay",
        "!",
        "laminavad",
        "ext-id=1",
        "speech-ms=100",
        "!",
        "fakesink",
    ];
    let (ok, stdout, stderr) = run_with_plugin("vad", "gst-launch-1.0", &args);
    assert!(
        ok && stdout.contains("Got EOS from element"),
        "gst-launch failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let (ok, stdout, _) = run_with_plugin("vad", "gst-inspect-1.0", &["laminavad"]);
    assert!(ok);
    for expected in [
        "GstLaminaVad",
        "threshold",
        "speech-ms",
        "silence-ms",
        "speaking",
        "ext-id",
    ] {
        assert!(
            stdout.contains(expected),
            "gst-inspect shows {expected}:\n{stdout}"
        );
    }
}
