//! Shared helpers of the `laminaforwarder` integration tests: plugin setup, harnesses, RTP packet
//! construction and inspection, event draining and the expected normalised caps.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::Once;
use std::time::Duration;

use gst::prelude::*;
use gst_check::Harness;
use gst_rtp::prelude::*;
use gst_rtp::RTPBuffer;

pub const VP8_CAPS: &str = "application/x-rtp, media=(string)video, encoding-name=(string)VP8, \
     clock-rate=(int)90000, payload=(int)96, ssrc=(uint)1111, rtcp-fb-nack-pli=(boolean)true, \
     extmap-3=(string)urn:ietf:params:rtp-hdrext:sdes:mid, a-framerate=(string)30";
pub const OPUS_CAPS: &str = "application/x-rtp, media=(string)audio, encoding-name=(string)OPUS, \
     clock-rate=(int)48000, payload=(int)111, encoding-params=(string)2, sprop-stereo=(string)1";
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("gst init");
        gstlamina::plugin_register_static().expect("register the lamina plugin");
    });
}

pub fn forwarder() -> gst::Element {
    init();
    gst::ElementFactory::make("laminaforwarder")
        .build()
        .expect("laminaforwarder is registered")
}

/// Harness feeding the forwarder's sink pad and reading `src_0`, with VP8 caps pushed.
pub fn publisher(el: &gst::Element, caps: &str) -> Harness {
    let mut h = Harness::with_element(el, Some("sink"), Some("src_0"));
    h.set_src_caps_str(caps);
    h
}

pub fn pad(el: &gst::Element, name: &str) -> gst::Pad {
    el.static_pad(name).expect("pad exists")
}

/// An RTP packet with PT 96 and an 8-byte payload derived from `seq`.
pub fn rtp(ssrc: u32, seq: u16, ts: u32, pts_ms: u64) -> gst::Buffer {
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
pub struct Hdr {
    pub pt: u8,
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
}

pub fn hdr(buf: &gst::Buffer) -> Hdr {
    let r = RTPBuffer::from_buffer_readable(buf).expect("valid rtp");
    Hdr {
        pt: r.payload_type(),
        ssrc: r.ssrc(),
        seq: r.seq(),
        ts: r.timestamp(),
    }
}

pub fn payload(buf: &gst::Buffer) -> Vec<u8> {
    RTPBuffer::from_buffer_readable(buf)
        .expect("valid rtp")
        .payload()
        .expect("payload")
        .to_vec()
}

pub fn stat(el: &gst::Element, name: &str) -> u64 {
    el.property::<u64>(name)
}

/// All queued downstream events of `h`, in order.
pub fn drain_events(h: &mut Harness) -> Vec<gst::Event> {
    std::iter::from_fn(|| h.try_pull_event()).collect()
}

/// All queued upstream force-key-unit events of `h`.
pub fn drain_key_unit_requests(h: &mut Harness) -> Vec<gst::Event> {
    std::iter::from_fn(|| h.try_pull_upstream_event())
        .filter(|e| e.structure().is_some_and(|s| s.name() == "GstForceKeyUnit"))
        .collect()
}

pub fn last_caps(events: &[gst::Event]) -> Option<gst::Caps> {
    events.iter().rev().find_map(|e| match e.view() {
        gst::EventView::Caps(c) => Some(c.caps_owned()),
        _ => None,
    })
}

pub fn expected_caps(pt: i32, ssrc: u32) -> gst::Caps {
    gst::Caps::builder("application/x-rtp")
        .field("media", "video")
        .field("encoding-name", "VP8")
        .field("clock-rate", 90_000i32)
        .field("payload", pt)
        .field("ssrc", ssrc)
        .build()
}

/// `libgstlamina.so` as built by this `cargo test` run (next to the test executable).
pub fn plugin_library() -> std::path::PathBuf {
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

/// Runs `program` with `args` (under `timeout 120`) against a private plugin dir and registry
/// (named after `tag`) that hold only this build's plugin; returns (success, stdout, stderr).
pub fn run_with_plugin(tag: &str, program: &str, args: &[&str]) -> (bool, String, String) {
    // One directory per (process, tag, program): the tests of one binary run concurrently, and
    // a shared directory would be removed under another test's feet.
    let dir = std::env::temp_dir().join(format!(
        "lamina-elements-test-{}-{tag}-{program}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::copy(plugin_library(), dir.join("libgstlamina.so")).expect("copy plugin");
    let output = std::process::Command::new("timeout")
        .arg("120")
        .arg(program)
        .args(args)
        .env("GST_PLUGIN_PATH", &dir)
        .env("GST_REGISTRY", dir.join("registry.bin"))
        .output()
        .expect("run timeout(1)");
    let _ = std::fs::remove_dir_all(&dir);
    assert_ne!(
        output.status.code(),
        Some(127),
        "{program} {args:?}: a tool is missing (gstreamer1.0-tools, scripts/setup.sh)"
    );
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
