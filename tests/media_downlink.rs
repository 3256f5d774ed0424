//! Downlink estimation through a real server: a simulcast publisher (layers `l`/`m`/`h` at
//! 100k/250k/600k bit/s; SMPTE bars, so the encoders really send about that) and two
//! subscribers that, like browsers, offer transport-cc on their recvonly m-lines and send TWCC
//! feedback for what they receive. The server runs Google Congestion Control (`rtpgccbwe`) on
//! that feedback per subscriber, tells each its estimate (`bandwidthEstimation`) and picks the
//! layers that fit.
//!
//! Subscriber A's media goes through a shaping UDP relay (`support/shaper.rs`), B's does not.
//! Once both decode the high layer, A's downlink is limited to [`LIMIT_BPS`] (token bucket,
//! 200 ms drop-tail queue): within [`DOWN_TIMEOUT`] the server must switch A to a lower layer
//! (`encodingSwitched`, reason `low_bandwidth`). Then the limit is lifted and A must climb back
//! to `h` within [`UP_TIMEOUT`] (GCC increases by at most ~8 % a second, and without probing
//! only while its estimate is far from the rate of the last congestion). Throughout, A's
//! decoding (browser-like: nothing shown after a loss until a keyframe) must never stall longer
//! than [`MAX_STALL`], and B stays on `h`. Prints the estimates over time, the switch times and
//! A's freezes (`[metric]` lines) before checking.
//!
//! A second test checks `--downlink-estimation false`: no TWCC toward subscribers, no estimates.

#[path = "support/shaper.rs"]
mod shaper;
mod support;

use std::time::{Duration, Instant};

use lamina::server::Server;
use lamina_client::{
    CandidateFilter, Participant, ParticipantConfig, ParticipantOptions, ParticipantState,
};
use shaper::ShapingRelay;

const ROOM: &str = "downlink";
/// Bound on joining and first frames.
const TIMEOUT: Duration = Duration::from_secs(20);
/// A's downlink while limited, bit/s: below `h` (600k), above `l` (100k).
const LIMIT_BPS: u64 = 300_000;
/// Bound on the switch down after the limit starts.
const DOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on the climb back to `h` after the limit is lifted.
const UP_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest A's decoding may stall, from the limit on.
const MAX_STALL: Duration = Duration::from_secs(1);

async fn join(
    server: &Server,
    name: &str,
    publish: bool,
    filter: Option<CandidateFilter>,
) -> Participant {
    let config = ParticipantConfig {
        url: format!("ws://{}/socket/websocket", server.addr),
        room: ROOM.into(),
        name: name.into(),
        audio: false,
        video: publish,
        receive: !publish,
    };
    let options = ParticipantOptions {
        simulcast: publish,
        // SMPTE bars (with their noise strip): each layer is sent at about its target rate
        // (100k/250k/600k), like a busy camera; the default `ball` compresses to a tenth of it,
        // below any limit worth testing.
        video_pattern: publish.then(|| "smpte".to_owned()),
        candidate_filter: filter,
        // Browser-like: after a loss nothing is shown until a keyframe, so a stall is real.
        keyframe_on_loss: true,
        ..Default::default()
    };
    Participant::join_with(config, options)
        .await
        .expect("participant joins")
}

/// The `bandwidthEstimation`s received since `since`: (seconds after `since`, kbit/s).
fn estimates(s: &ParticipantState, since: Instant) -> Vec<(f64, u64)> {
    s.bandwidth_estimations
        .iter()
        .filter(|(at, _)| *at >= since)
        .map(|(at, bps)| {
            let t = at.saturating_duration_since(since).as_secs_f64();
            ((t * 10.0).round() / 10.0, bps / 1000)
        })
        .collect()
}

/// `encodingSwitched` of `track` since `since`: (seconds after `since`, layer, reason).
fn switches(s: &ParticipantState, track: &str, since: Instant) -> Vec<(f64, String, String)> {
    s.encoding_switches
        .iter()
        .filter(|e| e.track_id == track && e.at >= since)
        .map(|e| {
            let t = e.at.saturating_duration_since(since).as_secs_f64();
            (
                (t * 100.0).round() / 100.0,
                e.encoding.clone(),
                e.reason.clone(),
            )
        })
        .collect()
}

/// The longest interval between two decoded frames of `track` that ended in `[from, to]`
/// (only intervals over `lamina_client::STALL` are recorded; below that, `STALL`).
fn longest_stall(s: &ParticipantState, track: &str, from: Instant, to: Instant) -> Duration {
    s.tracks[track]
        .stalls
        .iter()
        .filter(|(at, _)| *at >= from && *at <= to)
        .map(|(_, gap)| *gap)
        .max()
        .unwrap_or(lamina_client::STALL)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_constrained_subscriber_is_switched_down_and_back_up() {
    let server = support::spawn_server(|_| {}).await;
    let start = Instant::now();
    let publisher = join(&server, "publisher", true, None).await;
    let relay = ShapingRelay::start();
    let a = join(&server, "A", false, Some(relay.filter())).await;
    let b = join(&server, "B", false, None).await;
    let pub_id = publisher.id.clone();

    // (a) Both decode the high layer and get estimates of their downlink.
    for p in [&a, &b] {
        p.wait_until("the camera's high layer decoded", TIMEOUT, |s| {
            s.playing(&pub_id, 10) == 1
                && s.tracks
                    .values()
                    .any(|t| t.endpoint == pub_id && t.size.is_some_and(|(w, _)| w == 640))
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", p.id));
    }
    let track = a
        .snapshot()
        .tracks
        .iter()
        .find(|(_, t)| t.endpoint == pub_id)
        .map(|(id, _)| id.clone())
        .unwrap();
    for (name, p) in [("A", &a), ("B", &b)] {
        let s = p
            .wait_until("a bandwidthEstimation", Duration::from_secs(10), |s| {
                !s.bandwidth_estimations.is_empty()
            })
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        println!(
            "[metric] downlink: {name} decodes h after {:.1}s, TWCC feedback sent {}, \
             estimates (s, kbit/s) {:?}",
            (s.tracks[&track].sizes[0].0 - start).as_secs_f64(),
            s.twcc_feedback_sent,
            estimates(&s, start)
        );
        assert!(s.twcc_feedback_sent > 0, "{name} sent no TWCC feedback");
    }
    let a_frames = a.snapshot().tracks[&track].frames;

    // (b) A's downlink is limited: the server switches A down, A decodes on.
    let (_, _, bytes) = relay.to_client.get();
    let measured = Instant::now();
    a.wait_until("A decodes h for a second more", TIMEOUT, |s| {
        s.tracks[&track].frames >= 15 + a_frames
    })
    .await
    .unwrap();
    let (_, _, bytes_now) = relay.to_client.get();
    println!(
        "[metric] downlink: A receives {} kbit/s on h (at the relay)",
        (bytes_now - bytes) * 8 / 1000 * 1000 / measured.elapsed().as_millis().max(1) as u64
    );
    let limited = Instant::now();
    let before = a.snapshot().encoding_switches.len();
    relay.set_limit_bps(LIMIT_BPS);
    let down = a
        .wait_until(
            "encodingSwitched to a lower layer for low_bandwidth",
            DOWN_TIMEOUT,
            |s| {
                s.encoding_switches[before..].iter().any(|e| {
                    e.track_id == track && e.encoding != "h" && e.reason == "low_bandwidth"
                })
            },
        )
        .await;
    let sa = a.snapshot();
    println!(
        "[metric] downlink: A limited to {} kbit/s at {:.1}s; estimates since (s, kbit/s) {:?}; \
         switches {:?}; relay to A (passed, dropped, bytes) {:?}",
        LIMIT_BPS / 1000,
        (limited - start).as_secs_f64(),
        estimates(&sa, limited),
        switches(&sa, &track, limited),
        relay.to_client.get()
    );
    let down = down.unwrap_or_else(|e| panic!("A was not switched down: {e}"));
    let switch_down = down.encoding_switches[before..]
        .iter()
        .find(|e| e.track_id == track && e.encoding != "h")
        .unwrap()
        .clone();
    // Frames of the lower layer's size, then a while of decoding at the limit.
    let small = a
        .wait_until("frames of the lower layer", DOWN_TIMEOUT, |s| {
            let w = s.width(&track);
            w > 0 && w < 640
        })
        .await
        .unwrap_or_else(|e| panic!("A decodes no lower layer: {e}"));
    let first_small = small.tracks[&track]
        .sizes
        .iter()
        .find(|(at, w, _)| *at >= limited && *w < 640)
        .map(|(at, _, _)| *at)
        .unwrap();
    let frames = small.tracks[&track].frames;
    a.wait_until("A decodes on while limited", DOWN_TIMEOUT, |s| {
        s.tracks[&track].frames >= frames + 30
    })
    .await
    .unwrap_or_else(|e| panic!("A stopped decoding while limited: {e}"));
    let sa = a.snapshot();
    let lifted = Instant::now();
    let stall_limited = longest_stall(&sa, &track, limited, lifted);
    println!(
        "[metric] downlink: A switched to {} ({}) {:.2}s after the limit, first {}-wide frame \
         after {:.2}s, longest freeze while limited {:.2}s; relay to A (passed, dropped, bytes) \
         {:?}",
        switch_down.encoding,
        switch_down.reason,
        (switch_down.at - limited).as_secs_f64(),
        small.width(&track),
        (first_small - limited).as_secs_f64(),
        stall_limited.as_secs_f64(),
        relay.to_client.get()
    );

    // (c) The limit is lifted: A climbs back to h.
    relay.set_limit_bps(0);
    let before = sa.encoding_switches.len();
    let up = a
        .wait_until(
            "encodingSwitched back to h and 640-wide frames",
            UP_TIMEOUT,
            |s| {
                s.encoding_switches[before..]
                    .iter()
                    .any(|e| e.track_id == track && e.encoding == "h")
                    && s.width(&track) == 640
            },
        )
        .await;
    let end = Instant::now();
    let (sa, sb) = (a.snapshot(), b.snapshot());
    let stall_total = longest_stall(&sa, &track, limited, end);
    let stalls: Vec<(f64, u128)> = sa.tracks[&track]
        .stalls
        .iter()
        .filter(|(at, _)| *at >= limited)
        .map(|(at, gap)| {
            let t = (*at - limited).as_secs_f64();
            ((t * 100.0).round() / 100.0, gap.as_millis())
        })
        .collect();
    println!(
        "[metric] downlink: limit lifted at {:.1}s; A's estimates since (s, kbit/s) {:?}; \
         switches {:?}",
        (lifted - start).as_secs_f64(),
        estimates(&sa, lifted),
        switches(&sa, &track, lifted)
    );
    println!(
        "[metric] downlink: A's freezes over 200 ms since the limit (s after it, ms) {stalls:?}, \
         longest {:.2}s",
        stall_total.as_secs_f64()
    );
    println!(
        "[metric] downlink: B's estimates (s, kbit/s) {:?}; B's switches {:?}; B's longest gap \
         {:.2}s; TWCC feedback sent A {}, B {}",
        estimates(&sb, start),
        switches(&sb, &track, start),
        sb.tracks[&track].max_gap.as_secs_f64(),
        sa.twcc_feedback_sent,
        sb.twcc_feedback_sent
    );

    // Every check, so that one failing leaves the others' figures above.
    let mut failed = Vec::new();
    match &up {
        Ok(up) => {
            let switch_up = up.encoding_switches[before..]
                .iter()
                .find(|e| e.track_id == track && e.encoding == "h")
                .unwrap();
            println!(
                "[metric] downlink: A back on h {:.2}s after the limit was lifted",
                (switch_up.at - lifted).as_secs_f64()
            );
        }
        Err(_) => failed.push(format!(
            "A not back on h {UP_TIMEOUT:?} after the limit was lifted (last estimate {:?} bit/s, \
             layer {:?})",
            sa.bandwidth_estimation, sa.tracks[&track].encoding
        )),
    }
    if stall_total > MAX_STALL {
        failed.push(format!(
            "A's decoding stalled {stall_total:?} (at most {MAX_STALL:?} allowed)"
        ));
    }
    if sb.width(&track) != 640 {
        failed.push(format!(
            "B left the high layer: {:?}",
            sb.tracks[&track].size
        ));
    }
    if sb
        .encoding_switches
        .iter()
        .any(|e| e.track_id == track && e.encoding != "h")
    {
        failed.push(format!(
            "B was switched: {:?}",
            switches(&sb, &track, start)
        ));
    }
    for (name, s) in [("A", &sa), ("B", &sb)] {
        if !s.errors.is_empty() {
            failed.push(format!("{name}'s errors: {:?}", s.errors));
        }
    }
    for p in [publisher, a, b] {
        p.leave().await;
    }
    server.stop().await;
    assert!(failed.is_empty(), "{failed:#?}");
}

/// `downlink_estimation` through the real server: with the default a subscriber sends TWCC
/// feedback and gets `bandwidthEstimation`s; with it off (`--downlink-estimation false`) the
/// same subscriber decodes the publisher's video as long as the default took to estimate and
/// more, and sends no TWCC feedback and gets no estimate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_estimation_off_media_flows_without_twcc_or_estimates() {
    let mut took = Duration::ZERO;
    for on in [true, false] {
        let server = support::spawn_server(|c| c.downlink_estimation = on).await;
        let publisher = join(&server, "publisher", true, None).await;
        let sub = join(&server, "S", false, None).await;
        let pub_id = publisher.id.clone();
        let decoding = sub
            .wait_until("the publisher's video decoded", TIMEOUT, |s| {
                s.playing(&pub_id, 10) == 1
            })
            .await
            .unwrap_or_else(|e| panic!("on={on}: {e}"));
        let since = Instant::now();
        let frames = decoding.total_frames();
        let s = if on {
            let s = sub
                .wait_until("a bandwidthEstimation", Duration::from_secs(10), |s| {
                    !s.bandwidth_estimations.is_empty()
                })
                .await
                .unwrap_or_else(|e| panic!("on: {e}"));
            took = since.elapsed();
            assert!(s.twcc_feedback_sent > 0, "on: no TWCC feedback sent");
            s
        } else {
            // Decoding goes on for at least as long as the default needed, and two seconds more.
            let s = sub
                .wait_until("decoding for a while", TIMEOUT, |s| {
                    since.elapsed() > took + Duration::from_secs(2)
                        && s.total_frames() > frames + 20
                })
                .await
                .unwrap_or_else(|e| panic!("off: {e}"));
            assert_eq!(s.twcc_feedback_sent, 0, "off: TWCC feedback was sent");
            assert!(
                s.bandwidth_estimations.is_empty(),
                "off: estimates {:?}",
                estimates(&s, since)
            );
            s
        };
        println!(
            "[metric] downlink estimation {}: TWCC feedback sent {}, estimates {}, first after {:.1}s",
            if on { "on" } else { "off" },
            s.twcc_feedback_sent,
            s.bandwidth_estimations.len(),
            took.as_secs_f64()
        );
        assert!(s.errors.is_empty(), "on={on}: {:?}", s.errors);
        for p in [publisher, sub] {
            p.leave().await;
        }
        server.stop().await;
    }
}
