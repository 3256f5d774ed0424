//! `laminarepair`: pass-through of every packet, retransmission requests for sequence gaps
//! (first request, retries up to `max-retries`), loss after `max-age`, duplicate removal,
//! statistics, hostile input, and `gst-launch-1.0` / `gst-inspect-1.0` runs against the
//! `libgstlamina.so` built by this run.
//!
//! The element ages missing packets with the monotonic system time when a packet arrives (not
//! with the pipeline clock), so the timing tests let wall time pass and push packets until the
//! expected condition holds, with a deadline.

use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_check::Harness;

mod support;

use support::{hdr, init, rtp, run_with_plugin, TIMEOUT, VP8_CAPS};

const SSRC: u32 = 1111;
const RETRANSMISSION_REQUEST: &str = "GstRTPRetransmissionRequest";

/// A `laminarepair` with `do-retransmission` set as given (other properties at defaults).
fn repair(do_retransmission: bool) -> gst::Element {
    init();
    gst::ElementFactory::make("laminarepair")
        .property("do-retransmission", do_retransmission)
        .build()
        .expect("laminarepair is registered")
}

/// Harness feeding `el`'s sink pad and reading its src pad, with VP8 RTP caps pushed.
fn harness(el: &gst::Element) -> Harness {
    let mut h = Harness::with_element(el, Some("sink"), Some("src"));
    h.set_src_caps_str(VP8_CAPS);
    h
}

/// A VP8 RTP packet of [`SSRC`] with sequence number `seq`.
fn packet(seq: u16) -> gst::Buffer {
    rtp(SSRC, seq, 3000 * u32::from(seq), 33 * u64::from(seq))
}

fn push(h: &mut Harness, seq: u16) {
    assert_eq!(h.push(packet(seq)), Ok(gst::FlowSuccess::Ok), "push {seq}");
}

/// Sequence numbers of every buffer queued on the harness's sink side, in order.
fn pull_seqs(h: &mut Harness) -> Vec<u16> {
    std::iter::from_fn(|| h.try_pull())
        .map(|b| hdr(&b).seq)
        .collect()
}

/// A retransmission request as the element sends it upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Request {
    seqnum: u32,
    ssrc: u32,
}

/// Drains the harness's upstream event queue; returns the retransmission requests, in order,
/// and the names of the other upstream events.
fn drain_upstream(h: &mut Harness) -> (Vec<Request>, Vec<String>) {
    let mut requests = Vec::new();
    let mut others = Vec::new();
    while let Some(event) = h.try_pull_upstream_event() {
        match event.structure() {
            Some(s) if s.name() == RETRANSMISSION_REQUEST => {
                assert_eq!(event.type_(), gst::EventType::CustomUpstream, "{event:?}");
                for field in ["delay", "deadline", "avg-rtt"] {
                    assert!(s.get::<u32>(field).is_ok(), "uint {field} in {s}");
                }
                requests.push(Request {
                    seqnum: s.get("seqnum").expect("uint seqnum"),
                    ssrc: s.get("ssrc").expect("uint ssrc"),
                });
            }
            _ => others.push(format!("{:?}", event.type_())),
        }
    }
    (requests, others)
}

fn drain_requests(h: &mut Harness) -> Vec<Request> {
    drain_upstream(h).0
}

fn requests_for(seqs: &[u32]) -> Vec<Request> {
    seqs.iter()
        .map(|&seqnum| Request { seqnum, ssrc: SSRC })
        .collect()
}

fn stats(el: &gst::Element) -> gst::Structure {
    el.property::<gst::Structure>("stats")
}

fn stat(el: &gst::Element, field: &str) -> u64 {
    stats(el)
        .get::<u64>(field)
        .unwrap_or_else(|e| panic!("u64 {field} in stats: {e}"))
}

/// Calls `step` every few milliseconds until it returns true or `timeout` has passed; returns
/// whether it returned true.
fn poll_until(timeout: Duration, mut step: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if step() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn in_order_packets_pass_through_unchanged_without_requests() {
    let el = repair(true);
    let mut h = harness(&el);
    // Across the 16-bit wrap.
    let seqs: Vec<u16> = (65530..=65535).chain(0..10).collect();
    for &seq in &seqs {
        push(&mut h, seq);
    }
    for &seq in &seqs {
        let out = h.try_pull().expect("pushed at once");
        let sent = packet(seq);
        assert_eq!(out.pts(), sent.pts(), "seq {seq}");
        assert_eq!(
            out.map_readable().expect("readable").as_slice(),
            sent.map_readable().expect("readable").as_slice(),
            "seq {seq} unchanged"
        );
    }
    assert!(h.try_pull().is_none());

    let caps = std::iter::from_fn(|| h.try_pull_event())
        .find_map(|e| match e.view() {
            gst::EventView::Caps(c) => Some(c.caps_owned()),
            _ => None,
        })
        .expect("caps forwarded");
    assert_eq!(caps, VP8_CAPS.parse::<gst::Caps>().expect("caps"));

    let (requests, others) = drain_upstream(&mut h);
    assert!(requests.is_empty(), "{requests:?}");
    // Linking the harness sends a reconfigure upstream; nothing else is expected.
    assert!(others.iter().all(|t| t == "Reconfigure"), "{others:?}");

    let s = stats(&el);
    for (field, want) in [
        ("num-pushed", 16u64),
        ("num-lost", 0),
        ("num-late", 0),
        ("num-duplicates", 0),
        ("rtx-count", 0),
        ("rtx-success-count", 0),
        ("num-reordered", 0),
        ("num-missing", 0),
    ] {
        assert_eq!(s.get::<u64>(field), Ok(want), "{field} in {s}");
    }
}

#[test]
fn gap_is_requested_upstream_and_the_next_packet_is_not_held() {
    let el = repair(true);
    let mut h = harness(&el);
    push(&mut h, 10);
    assert_eq!(pull_seqs(&mut h), vec![10]);
    drain_upstream(&mut h);

    push(&mut h, 13);
    // Pushed during the push call: nothing waits for 11 and 12.
    assert_eq!(pull_seqs(&mut h), vec![13]);
    assert_eq!(drain_requests(&mut h), requests_for(&[11, 12]));
    assert_eq!(stat(&el, "rtx-count"), 2);
    assert_eq!(stat(&el, "num-missing"), 2);
    assert_eq!(stat(&el, "num-lost"), 0);
}

#[test]
fn gap_without_retransmission_is_counted_lost_after_max_age() {
    let el = repair(false);
    el.set_property("max-age", 50u32);
    let mut h = harness(&el);
    push(&mut h, 10);
    let start = Instant::now();
    push(&mut h, 13);
    assert_eq!(pull_seqs(&mut h), vec![10, 13]);
    assert_eq!(stat(&el, "num-missing"), 2);
    assert_eq!(stat(&el, "num-lost"), 0, "not lost before max-age");

    // The element ages its missing list when a packet arrives: keep the stream going.
    let mut seq = 14u16;
    let lost = poll_until(TIMEOUT, || {
        push(&mut h, seq);
        seq += 1;
        stat(&el, "num-lost") == 2
    });
    assert!(lost, "num-lost never reached 2: {}", stats(&el));
    assert!(
        start.elapsed() >= Duration::from_millis(50),
        "counted lost before max-age"
    );
    assert_eq!(stat(&el, "num-missing"), 0);
    assert_eq!(stat(&el, "rtx-count"), 0);
    assert!(drain_requests(&mut h).is_empty());
    let out = pull_seqs(&mut h);
    assert_eq!(out, (14..seq).collect::<Vec<_>>(), "every packet pushed");
}

#[test]
fn retransmission_fills_the_hole_and_its_second_copy_is_dropped() {
    let el = repair(true);
    let mut h = harness(&el);
    push(&mut h, 10);
    push(&mut h, 12);
    assert_eq!(drain_requests(&mut h), requests_for(&[11]));
    assert_eq!(pull_seqs(&mut h), vec![10, 12]);

    push(&mut h, 11);
    assert_eq!(pull_seqs(&mut h), vec![11], "pushed when it arrives");
    push(&mut h, 11);
    assert!(h.try_pull().is_none(), "second copy dropped");
    assert!(drain_requests(&mut h).is_empty());

    let s = stats(&el);
    for (field, want) in [
        ("num-pushed", 3u64),
        ("rtx-success-count", 1),
        ("num-duplicates", 1),
        ("rtx-count", 1),
        ("num-lost", 0),
        ("num-reordered", 0),
        ("num-missing", 0),
    ] {
        assert_eq!(s.get::<u64>(field), Ok(want), "{field} in {s}");
    }
}

#[test]
fn reordered_packet_without_requests_is_counted_reordered() {
    let el = repair(false);
    let mut h = harness(&el);
    for seq in [10, 12, 11, 12] {
        push(&mut h, seq);
    }
    assert_eq!(pull_seqs(&mut h), vec![10, 12, 11]);
    assert!(drain_requests(&mut h).is_empty());
    let s = stats(&el);
    assert_eq!(s.get::<u64>("num-reordered"), Ok(1), "{s}");
    assert_eq!(s.get::<u64>("rtx-success-count"), Ok(0), "{s}");
    assert_eq!(s.get::<u64>("num-duplicates"), Ok(1), "{s}");
}

#[test]
fn missing_packet_is_requested_again_after_retry_interval_at_most_max_retries_times() {
    const RETRY_MS: u64 = 20;
    const MAX_RETRIES: usize = 3;
    let el = repair(true);
    el.set_property("retry-interval", RETRY_MS as u32);
    el.set_property("max-retries", MAX_RETRIES as u32);
    el.set_property("max-age", 60_000u32);
    let mut h = harness(&el);
    push(&mut h, 10);

    // For each request for 11: (just before, just after) the push that produced it.
    let mut seen: Vec<(Instant, Instant)> = Vec::new();
    let mut all: Vec<Request> = Vec::new();
    let mut seq = 13u16;
    let mut push_and_collect = |h: &mut Harness, seen: &mut Vec<(Instant, Instant)>| {
        let before = Instant::now();
        push(h, seq);
        let after = Instant::now();
        seq += 1;
        for r in drain_requests(h) {
            if r.seqnum == 11 {
                seen.push((before, after));
            }
            all.push(r);
        }
    };
    let done = poll_until(TIMEOUT, || {
        push_and_collect(&mut h, &mut seen);
        seen.len() >= MAX_RETRIES
    });
    assert!(done, "only {} requests for 11: {}", seen.len(), stats(&el));
    for pair in seen.windows(2) {
        // The element's clock readings lie within [before, after] of their push.
        let at_least = pair[1].1 - pair[0].0;
        assert!(
            at_least >= Duration::from_millis(RETRY_MS),
            "retried after less than retry-interval ({at_least:?})"
        );
    }

    // More packets over several retry intervals: no request beyond max-retries.
    let quiet_from = Instant::now();
    let over = poll_until(TIMEOUT, || {
        push_and_collect(&mut h, &mut seen);
        quiet_from.elapsed() >= Duration::from_millis(5 * RETRY_MS)
    });
    assert!(over);
    assert_eq!(
        seen.len(),
        MAX_RETRIES,
        "requests for 11 beyond max-retries"
    );
    let count = |n: u32| all.iter().filter(|r| r.seqnum == n).count();
    assert_eq!(
        (count(11), count(12)),
        (MAX_RETRIES, MAX_RETRIES),
        "{all:?}"
    );
    assert!(all
        .iter()
        .all(|r| r.ssrc == SSRC && (r.seqnum == 11 || r.seqnum == 12)));
    assert_eq!(stat(&el, "rtx-count"), 2 * MAX_RETRIES as u64);
    assert_eq!(
        stat(&el, "num-missing"),
        2,
        "still waited for until max-age"
    );
    assert_eq!(stat(&el, "num-lost"), 0);
    let out = pull_seqs(&mut h);
    assert_eq!(out.first(), Some(&10));
    assert_eq!(out.len(), usize::from(seq - 13) + 1, "every packet pushed");
}

/// Pushes each of `buffers` after packet 10, expects it passed on unchanged, then expects the
/// RTP stream unaffected (11 next, nothing missing or asked for).
fn assert_passed_on(buffers: &[&[u8]]) {
    let el = repair(true);
    let mut h = harness(&el);
    push(&mut h, 10);
    assert_eq!(pull_seqs(&mut h), vec![10]);
    for &bytes in buffers {
        let buf = gst::Buffer::from_slice(bytes.to_vec());
        assert_eq!(h.push(buf), Ok(gst::FlowSuccess::Ok), "{bytes:?}");
        let out = h.try_pull().expect("passed on");
        assert_eq!(out.map_readable().expect("readable").as_slice(), bytes);
    }
    push(&mut h, 11);
    assert_eq!(pull_seqs(&mut h), vec![11]);
    assert!(drain_requests(&mut h).is_empty());
    assert_eq!(stat(&el, "num-missing"), 0);
    assert_eq!(stat(&el, "num-lost"), 0);
}

#[test]
fn buffers_with_rtp_version_other_than_2_pass_without_panic() {
    // Full 12-byte headers claiming seq 12 or 500 (a gap if they were taken for RTP).
    let mut version_0 = [0u8; 20];
    version_0[3] = 12;
    let mut version_1 = version_0;
    version_1[0] = 0x40;
    let mut version_3 = [0xffu8; 12];
    version_3[2..4].copy_from_slice(&500u16.to_be_bytes());
    assert_passed_on(&[&version_0, &version_1, &version_3]);
}

#[test]
fn buffers_shorter_than_an_rtp_header_pass_without_panic() {
    assert_passed_on(&[&[], &[0x80, 0x60, 0x00], &[0x80; 11]]);
}

#[test]
fn huge_sequence_jumps_are_not_requested() {
    for (from, to) in [(1u16, 40_000u16), (1, 30_000), (40_000, 1)] {
        let el = repair(true);
        let mut h = harness(&el);
        push(&mut h, from);
        push(&mut h, to);
        assert_eq!(pull_seqs(&mut h), vec![from, to], "{from} -> {to}");
        let requests = drain_requests(&mut h);
        assert!(
            requests.is_empty(),
            "{from} -> {to}: {} requests",
            requests.len()
        );
        assert_eq!(stat(&el, "rtx-count"), 0, "{from} -> {to}");
        assert_eq!(stat(&el, "num-missing"), 0, "{from} -> {to}");
    }
}

/// A jump of more than half the sequence space forward reads as a step backward; the stream
/// that follows the jump must still be tracked (duplicates dropped, gaps asked for), as after a
/// forward jump.
#[test]
fn stream_is_tracked_again_after_a_huge_jump() {
    let el = repair(true);
    let mut h = harness(&el);
    push(&mut h, 1);
    for seq in [40_000, 40_001, 40_001, 40_003] {
        push(&mut h, seq);
    }
    assert_eq!(pull_seqs(&mut h), vec![1, 40_000, 40_001, 40_003]);
    assert_eq!(drain_requests(&mut h), requests_for(&[40_002]));
    assert_eq!(stat(&el, "num-duplicates"), 1);
}

#[test]
fn gst_launch_runs_the_documented_pipeline_to_eos() {
    // The pipeline of the doc example in elements/src/repair/mod.rs.
    let pipeline = "videotestsrc num-buffers=60 ! vp8enc deadline=1 ! rtpvp8pay ! \
         laminarepair do-retransmission=true ! rtpvp8depay ! vp8dec ! fakesink";
    let args: Vec<&str> = pipeline.split_whitespace().collect();
    let (ok, stdout, stderr) = run_with_plugin("repair", "gst-launch-1.0", &args);
    assert!(
        ok && stdout.contains("Got EOS from element"),
        "gst-launch failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("CRITICAL") && !stderr.contains("WARNING"),
        "no GLib criticals or warnings expected:\n{stderr}"
    );
}

#[test]
fn gst_inspect_describes_the_element() {
    let (ok, stdout, stderr) = run_with_plugin("repair", "gst-inspect-1.0", &["laminarepair"]);
    assert!(
        ok,
        "gst-inspect failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for expected in [
        "GstLaminaRepair",
        "lamina",
        "do-retransmission",
        "max-retries",
        "retry-interval",
        "max-age",
        "latency",
        "do-lost",
        "stats",
        "application/x-rtp",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected} missing in:\n{stdout}"
        );
    }
}
