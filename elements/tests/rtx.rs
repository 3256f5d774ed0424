//! `laminartx`: pass-through of every packet, RTX answers (RFC 4588) to
//! `GstRTPRetransmissionRequest` upstream events for packets sent in any order, requests for
//! packets not kept, requests for SSRCs without a mapping (passed upstream, or ended with
//! `forward-unmapped=false`), the per-second budget and hostile input (the `gst-launch-1.0` /
//! `gst-inspect-1.0` runs are in `rtx_launch.rs`).
//!
//! The harness feeds the element's sink pad and reads its src pad; a request is pushed with
//! `push_upstream_event` (it reaches the element's src pad, as rtpsession's would) and the RTX
//! packet it produces is pushed downstream from the same thread, so it is queued on the harness
//! when `push_upstream_event` returns.

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_rtp::prelude::*;
use gst_rtp::RTPBuffer;

mod support;

#[path = "support/rtx.rs"]
mod rtx_support;

use rtx_support::*;
use support::{hdr, payload, VP8_CAPS};

#[test]
fn packets_pass_through_unchanged_and_a_request_yields_one_rtx_packet() {
    let el = laminartx();
    let mut h = harness(&el);
    // Across the 16-bit wrap, with an unmapped stream interleaved.
    let mut sent = Vec::new();
    for seq in (65530..=65535).chain(0..10) {
        for buf in [packet(SSRC, seq), packet(OTHER_SSRC, seq.wrapping_add(100))] {
            sent.push(buf.clone());
            push_buf(&mut h, buf);
        }
    }
    expect_passed_through(&mut h, &sent);

    let caps = std::iter::from_fn(|| h.try_pull_event())
        .find_map(|e| match e.view() {
            gst::EventView::Caps(c) => Some(c.caps_owned()),
            _ => None,
        })
        .expect("caps forwarded");
    assert_eq!(caps, VP8_CAPS.parse::<gst::Caps>().expect("caps"));
    assert_eq!(counters(&el), [0; 4], "nothing asked yet");

    // Seq 3 has the marker set, 4 not; 65533 is before the wrap.
    let first = expect_answered(&mut h, &[3, 4, 65533]);
    assert!(
        drain_upstream(&mut h).is_empty(),
        "answered requests go no further"
    );
    assert_eq!(counters(&el), [3, 3, 0, 0]);

    // The same packet asked again: a second RTX copy with the next RTX sequence number.
    ask(&mut h, SSRC, 3);
    let out = pull_all(&mut h);
    assert_eq!(out.len(), 1);
    assert_rtx(&out[0], &packet(SSRC, 3), first.wrapping_add(3));
    assert_eq!(counters(&el), [4, 4, 0, 0]);

    // Packets keep passing after the RTX packets.
    push(&mut h, SSRC, 10);
    expect_passed_through(&mut h, &[packet(SSRC, 10)]);

    let s = stats(&el);
    assert_eq!(s.name(), "application/x-lamina-rtx-stats");
    assert_eq!(s.n_fields(), 4, "{s}");
}

#[test]
fn rtx_packet_keeps_the_csrcs_and_an_empty_payload_works() {
    let el = laminartx();
    let mut h = harness(&el);
    let with_csrcs = packet_with(SSRC, PT, 20, &[0xdead_beef, 7, 0x0102_0304]);
    let mut empty = gst::Buffer::new_rtp_with_sizes(0, 0, 0).expect("rtp buffer");
    {
        let b = empty.get_mut().expect("writable");
        let mut r = RTPBuffer::from_buffer_writable(b).expect("rtp");
        r.set_payload_type(PT);
        r.set_ssrc(SSRC);
        r.set_seq(21);
        r.set_timestamp(77);
        r.set_marker(true);
    }
    push_buf(&mut h, with_csrcs.clone());
    push_buf(&mut h, empty.clone());
    expect_passed_through(&mut h, &[with_csrcs.clone(), empty.clone()]);

    ask(&mut h, SSRC, 20);
    ask(&mut h, SSRC, 21);
    let out = pull_all(&mut h);
    assert_eq!(out.len(), 2);
    let first = hdr(&out[0]).seq;
    assert_rtx(&out[0], &with_csrcs, first);
    assert_rtx(&out[1], &empty, first.wrapping_add(1));
    assert_eq!(
        payload(&out[1]),
        vec![0, 21],
        "only the original sequence number"
    );
    assert_eq!(counters(&el), [2, 2, 0, 0]);
}

/// The reason the element exists: `rtprtxsend` (1.22) misses packets that were sent out of
/// order. Every packet sent must be found, whatever order it was sent in.
#[test]
fn packets_sent_out_of_order_are_all_retransmitted() {
    let el = laminartx();
    let mut h = harness(&el);
    let order = [10u16, 11, 13, 14, 12];
    for seq in order {
        push(&mut h, SSRC, seq);
    }
    let sent: Vec<gst::Buffer> = order.iter().map(|&s| packet(SSRC, s)).collect();
    expect_passed_through(&mut h, &sent);

    expect_answered(&mut h, &[10, 11, 12, 13, 14]);
    // And asked in another order.
    expect_answered(&mut h, &[12, 14, 10, 13, 11]);
    assert_eq!(counters(&el), [10, 10, 0, 0]);
    assert!(drain_upstream(&mut h).is_empty());
}

#[test]
fn a_packet_forwarded_hundreds_of_packets_late_is_retransmitted() {
    let el = laminartx();
    let mut h = harness(&el);
    // 1000..1400 with 1100 and 1250 held back, then forwarded late (repaired), in reverse.
    for seq in (1000u16..1400).filter(|s| *s != 1100 && *s != 1250) {
        push(&mut h, SSRC, seq);
    }
    push(&mut h, SSRC, 1250);
    push(&mut h, SSRC, 1100);
    assert_eq!(pull_all(&mut h).len(), 400);
    expect_answered(&mut h, &[1100, 1250, 1000, 1399, 1101, 1249]);
    assert_eq!(counters(&el), [6, 6, 0, 0]);
}

#[test]
fn request_for_a_packet_never_sent_or_overwritten_yields_nothing() {
    let el = laminartx();
    let mut h = harness(&el);
    // Nothing sent on the SSRC yet.
    ask(&mut h, SSRC, 5);
    assert!(pull_all(&mut h).is_empty());
    assert_eq!(counters(&el), [1, 0, 1, 0]);

    for seq in 10..=20 {
        push(&mut h, SSRC, seq);
    }
    pull_all(&mut h);
    // Never sent: an empty slot, and a slot that holds another packet (10 + 512).
    for seq in [25u16, 10 + SLOTS, 9, 65535] {
        ask(&mut h, SSRC, seq);
        assert!(pull_all(&mut h).is_empty(), "nothing for {seq}");
    }
    assert_eq!(counters(&el), [5, 0, 5, 0]);

    // Up to 530: 10..=18 are overwritten by 522..=530, 19 is the oldest kept.
    for seq in 21..=530 {
        push(&mut h, SSRC, seq);
    }
    pull_all(&mut h);
    for seq in [10u16, 11, 18] {
        ask(&mut h, SSRC, seq);
        assert!(pull_all(&mut h).is_empty(), "{seq} was overwritten");
    }
    assert_eq!(counters(&el), [8, 0, 8, 0]);
    expect_answered(&mut h, &[19, 20, 522, 530]);
    assert_eq!(counters(&el), [12, 4, 8, 0]);
    assert!(drain_upstream(&mut h).is_empty(), "not passed upstream");
}

#[test]
fn a_discont_packet_makes_the_packets_before_it_obsolete() {
    let el = laminartx();
    let mut h = harness(&el);
    for seq in 100..=110 {
        push(&mut h, SSRC, seq);
    }
    // The forwarder switched layers: the keyframe of the new one starts at 111.
    let mut first = packet(SSRC, 111);
    first.make_mut().set_flags(gst::BufferFlags::DISCONT);
    push_buf(&mut h, first);
    push(&mut h, SSRC, 112);
    pull_all(&mut h);
    for seq in [100u16, 105, 110] {
        ask(&mut h, SSRC, seq);
        assert!(
            pull_all(&mut h).is_empty(),
            "{seq} is from before the switch"
        );
    }
    assert_eq!(counters(&el), [3, 0, 3, 0]);
    expect_answered(&mut h, &[111, 112]);
    assert_eq!(counters(&el), [5, 2, 3, 0]);
}

#[test]
fn requests_for_packets_before_a_switch_do_not_count_as_loss() {
    let el = laminartx();
    el.set_property("loss-window", 300u32);
    let mut h = harness(&el);
    let start = Instant::now();
    for seq in 0..10 {
        push(&mut h, SSRC, seq);
    }
    // The forwarder switched layers at 10.
    let mut first = packet(SSRC, 10);
    first.make_mut().set_flags(gst::BufferFlags::DISCONT);
    push_buf(&mut h, first);
    for seq in 11..20 {
        push(&mut h, SSRC, seq);
    }
    // 3 and 8 are the old layer's; 10 and 15 the new one's.
    for seq in [3, 8, 10, 15] {
        ask(&mut h, SSRC, seq);
    }
    pull_all(&mut h);
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "the first window closed early: the machine is too slow for this test"
    );
    while start.elapsed() < Duration::from_millis(310) {
        std::thread::sleep(Duration::from_millis(10));
    }
    push(&mut h, SSRC, 20);
    let share: f64 = el.property("loss-fraction");
    assert!(
        (share - 2.0 / 21.0).abs() < 1e-9,
        "2 of 21 first asked since the switch: {share}"
    );
}

#[test]
fn request_for_a_packet_whose_payload_type_has_no_rtx_mapping_yields_nothing() {
    let el = laminartx();
    let mut h = harness(&el);
    push_buf(&mut h, packet_with(SSRC, 100, 10, &[]));
    push(&mut h, SSRC, 11);
    assert_eq!(pull_all(&mut h).len(), 2);
    ask(&mut h, SSRC, 10);
    assert!(pull_all(&mut h).is_empty());
    assert_eq!(counters(&el), [1, 0, 1, 0]);
    expect_answered(&mut h, &[11]);
    assert!(drain_upstream(&mut h).is_empty());
}

/// Requests for SSRCs without a mapping (another SSRC, and the RTX SSRC itself): passed
/// upstream unchanged with `forward-unmapped` (the default), ended here without it; never
/// counted. Other custom upstream events pass either way, and the mapped SSRC is still answered.
fn unmapped_requests(forward: bool) {
    let el = laminartx();
    if !forward {
        el.set_property("forward-unmapped", false);
    }
    let mut h = harness(&el);
    push(&mut h, OTHER_SSRC, 10);
    push(&mut h, SSRC, 10);
    assert_eq!(pull_all(&mut h).len(), 2);
    assert!(drain_upstream(&mut h).is_empty());

    for ssrc in [OTHER_SSRC, RTX_SSRC] {
        ask(&mut h, ssrc, 10);
        assert!(pull_all(&mut h).is_empty(), "no RTX for {ssrc}");
        let passed = if forward {
            vec![request_structure(ssrc, 10)]
        } else {
            Vec::new()
        };
        assert_eq!(drain_upstream(&mut h), passed, "forward-unmapped={forward}");
    }
    assert_eq!(counters(&el), [0; 4]);

    let fku = gst::Structure::builder("GstForceKeyUnit")
        .field("all-headers", true)
        .build();
    assert!(h.push_upstream_event(gst::event::CustomUpstream::new(fku.clone())));
    assert_eq!(drain_upstream(&mut h), vec![fku]);

    expect_answered(&mut h, &[10]);
    assert_eq!(counters(&el), [1, 1, 0, 0]);
}

#[test]
fn request_for_an_unmapped_ssrc_is_passed_upstream_and_not_counted() {
    unmapped_requests(true);
}

#[test]
fn with_forward_unmapped_off_requests_for_an_unmapped_ssrc_end_here() {
    unmapped_requests(false);
}

#[test]
fn requests_beyond_max_requests_per_sec_are_dropped_and_counted() {
    let el = laminartx();
    assert_eq!(el.property::<u32>("max-requests-per-sec"), 1000, "default");
    el.set_property("max-requests-per-sec", 10u32);
    let mut h = harness(&el);
    for seq in 0..100 {
        push(&mut h, SSRC, seq);
    }
    assert_eq!(pull_all(&mut h).len(), 100);

    let start = Instant::now();
    for seq in 0..100 {
        ask(&mut h, SSRC, seq);
    }
    let elapsed = start.elapsed();
    let out = pull_all(&mut h);
    // The bucket refills at 10 per second: exactly 10 unless the burst took 100 ms or more.
    let refilled = (elapsed.as_secs_f64() * 10.0).floor() as usize;
    assert!(
        out.len() >= 10 && out.len() <= 10 + refilled,
        "{} RTX packets for 100 requests in {elapsed:?}",
        out.len()
    );
    if refilled == 0 {
        assert_eq!(out.len(), 10);
        assert_eq!(counters(&el), [100, 10, 0, 90]);
    }
    // The first requests are the ones served.
    let first = hdr(&out[0]).seq;
    for (i, rtx) in out.iter().enumerate() {
        assert_rtx(rtx, &packet(SSRC, i as u16), first.wrapping_add(i as u16));
    }
    assert!(drain_upstream(&mut h).is_empty(), "dropped, not passed on");

    // A quarter of a second later, two tokens at least are back.
    std::thread::sleep(Duration::from_millis(250));
    let [_, rtx_before, _, dropped_before] = counters(&el);
    ask(&mut h, SSRC, 50);
    ask(&mut h, SSRC, 51);
    let out2 = pull_all(&mut h);
    assert_eq!(out2.len(), 2, "budget refilled");
    assert_rtx(
        &out2[0],
        &packet(SSRC, 50),
        first.wrapping_add(out.len() as u16),
    );
    assert_eq!(
        counters(&el),
        [102, rtx_before + 2, 0, dropped_before],
        "{}",
        stats(&el)
    );
}

#[test]
fn setting_the_maps_again_keeps_the_history_and_the_rtx_sequence() {
    let el = laminartx();
    let mut h = harness(&el);
    for seq in 10..15 {
        push(&mut h, SSRC, seq);
    }
    pull_all(&mut h);
    let first = expect_answered(&mut h, &[10]);
    el.set_property("ssrc-map", structure(SSRC_MAP));
    el.set_property("payload-type-map", structure(PT_MAP));
    ask(&mut h, SSRC, 14);
    let out = pull_all(&mut h);
    assert_eq!(out.len(), 1, "history kept");
    assert_rtx(&out[0], &packet(SSRC, 14), first.wrapping_add(1));
}

/// Requests delivered from another thread (rtpsession's RTCP thread) while packets stream: no
/// deadlock, every packet and every RTX packet arrives once, the counters add up.
#[test]
fn requests_from_another_thread_while_streaming() {
    const PACKETS: u16 = 2000;
    let el = laminartx();
    el.set_property("max-requests-per-sec", 1_000_000u32);
    let mut h = harness(&el);
    push(&mut h, SSRC, 0);
    pull_all(&mut h);
    // The last sequence number whose push has returned (so it is kept).
    let last_sent = Arc::new(AtomicU16::new(0));
    // The sequence number of the last answered request: the pusher stays within half the
    // history of it, so a requesting thread descheduled on a loaded machine never asks for a
    // packet the history has already let go (that is another test's subject).
    let last_asked = Arc::new(AtomicU16::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let src = el.static_pad("src").expect("src pad");
    let asker = {
        let (last_sent, last_asked, done) = (last_sent.clone(), last_asked.clone(), done.clone());
        std::thread::spawn(move || {
            let mut asked = 0u64;
            while !done.load(Ordering::Acquire) {
                let seq = last_sent.load(Ordering::Acquire);
                assert!(src.send_event(request(SSRC, u32::from(seq))), "{seq}");
                last_asked.store(seq, Ordering::Release);
                asked += 1;
            }
            asked
        })
    };
    for seq in 1..PACKETS {
        while seq.wrapping_sub(last_asked.load(Ordering::Acquire)) > SLOTS / 2 {
            std::thread::yield_now();
        }
        push(&mut h, SSRC, seq);
        last_sent.store(seq, Ordering::Release);
    }
    done.store(true, Ordering::Release);
    let asked = asker.join().expect("no panic in the requesting thread");
    let out = pull_all(&mut h);
    let (rtx, media): (Vec<_>, Vec<_>) = out.into_iter().partition(|b| hdr(b).ssrc == RTX_SSRC);
    let seqs: Vec<u16> = media.iter().map(|b| hdr(b).seq).collect();
    assert_eq!(
        seqs,
        (1..PACKETS).collect::<Vec<_>>(),
        "every packet once, in order"
    );
    assert!(asked > 0);
    assert_eq!(
        counters(&el),
        [asked, asked, 0, 0],
        "every request answered"
    );
    assert_eq!(rtx.len() as u64, asked);
    let first = hdr(&rtx[0]).seq;
    for (i, b) in rtx.iter().enumerate() {
        let osn = u16::from_be_bytes(payload(b)[..2].try_into().expect("2 bytes"));
        assert_rtx(b, &packet(SSRC, osn), first.wrapping_add(i as u16));
    }
}

#[test]
fn loss_fraction_is_the_share_first_asked_for_in_each_window() {
    let el = laminartx();
    el.set_property("loss-window", 300u32);
    let notified = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = notified.clone();
    el.connect_notify(Some("loss-fraction"), move |_, _| {
        n.fetch_add(1, Ordering::SeqCst);
    });
    let mut h = harness(&el);
    let start = Instant::now();
    for seq in 0..19 {
        push(&mut h, SSRC, seq);
        // Unmapped streams are not counted.
        push(&mut h, OTHER_SSRC, seq);
    }
    // 3, 4, 7 and 9 asked for; repeats and older ones do not count again.
    for seq in [3, 4, 7, 3, 4, 2, 9] {
        ask(&mut h, SSRC, seq);
    }
    pull_all(&mut h);
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "the first window closed early: the machine is too slow for this test"
    );
    assert_eq!(notified.load(Ordering::SeqCst), 0, "window still open");
    // The window closes with the first packet once it has lasted 300 ms.
    while start.elapsed() < Duration::from_millis(310) {
        std::thread::sleep(Duration::from_millis(10));
    }
    push(&mut h, SSRC, 19);
    assert_eq!(notified.load(Ordering::SeqCst), 1);
    let share: f64 = el.property("loss-fraction");
    assert!(
        (share - 4.0 / 20.0).abs() < 1e-9,
        "4 of 20 first asked: {share}"
    );

    // A window without requests reads 0; loss-window 0 stops the measurement.
    let next = Instant::now();
    for seq in 20..40 {
        push(&mut h, SSRC, seq);
    }
    while next.elapsed() < Duration::from_millis(310) {
        std::thread::sleep(Duration::from_millis(10));
    }
    push(&mut h, SSRC, 40);
    assert_eq!(notified.load(Ordering::SeqCst), 2);
    assert_eq!(el.property::<f64>("loss-fraction"), 0.0);
    el.set_property("loss-window", 0u32);
    for seq in 41..100 {
        push(&mut h, SSRC, seq);
    }
    assert_eq!(notified.load(Ordering::SeqCst), 2);
    assert_eq!(el.property::<u32>("loss-window"), 0);
}

/// The caps events pushed downstream since the last call.
fn caps_events(h: &mut gst_check::Harness) -> Vec<gst::Caps> {
    support::drain_events(h)
        .iter()
        .filter_map(|e| match e.view() {
            gst::EventView::Caps(c) => Some(c.caps_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn twcc_ext_id_is_announced_in_the_caps_passed_downstream() {
    let twcc = gstlamina::forwarder::TWCC_URI;
    let el = laminartx();
    el.set_property("twcc-ext-id", 3u32);
    let mut h = harness(&el);
    push(&mut h, SSRC, 1);
    let with = |id: u32| {
        let mut caps: gst::Caps = VP8_CAPS.parse().expect("caps");
        caps.make_mut()
            .structure_mut(0)
            .unwrap()
            .set(format!("extmap-{id}").as_str(), twcc);
        caps
    };
    assert_eq!(caps_events(&mut h), [with(3)]);
    assert_eq!(pull_all(&mut h).len(), 1);

    // Another id: the caps go again before the next packet, once.
    el.set_property("twcc-ext-id", 5u32);
    assert!(caps_events(&mut h).is_empty(), "not before a packet");
    push(&mut h, SSRC, 2);
    push(&mut h, SSRC, 3);
    assert_eq!(caps_events(&mut h), [with(5)]);
    assert_eq!(pull_all(&mut h).len(), 2);

    // Off: upstream's caps as they came.
    el.set_property("twcc-ext-id", 0u32);
    push(&mut h, SSRC, 4);
    assert_eq!(
        caps_events(&mut h),
        [VP8_CAPS.parse::<gst::Caps>().expect("caps")]
    );
    // New caps from upstream while on get the id too.
    el.set_property("twcc-ext-id", 7u32);
    h.set_src_caps_str(&VP8_CAPS.replace("96", "100"));
    let mut expected: gst::Caps = VP8_CAPS.replace("96", "100").parse().expect("caps");
    expected
        .make_mut()
        .structure_mut(0)
        .unwrap()
        .set("extmap-7", twcc);
    push(&mut h, SSRC, 5);
    assert_eq!(caps_events(&mut h).last(), Some(&expected));
}
