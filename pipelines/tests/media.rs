//! Media flows between real webrtcbin clients through a RoomPipeline.

mod support;

use std::time::{Duration, Instant};

use lamina_pipelines::TrackId;
use support::{Harness, Watchdog};

const T: Duration = Duration::from_secs(10);

/// A and B publish camera + microphone; each decodes the other's video and gets its audio.
#[test]
fn two_peers_exchange_audio_and_video() {
    let _s = support::serial();
    let _w = Watchdog::new("two_peers_exchange_audio_and_video", 60);
    let mut h = Harness::new("two-peers");
    h.join_mesh("a");
    h.join_mesh("b");
    h.assert_all_receive(15);
    assert!(h.failures.is_empty(), "{:?}", h.failures);

    // The answer to A's last offer: its own m-lines recvonly with TWCC kept, B's sendonly.
    let answer = &h.answers["a"];
    assert!(answer.contains("a=sendonly"), "{answer}");
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(
        answer.contains(support::client::TWCC),
        "TWCC extmap dropped: {answer}"
    );
    assert!(answer.contains("a=ssrc:"), "{answer}");
    for t in h.tracks_of("b") {
        assert!(h.room.forwarded_packets(&t).unwrap() > 0);
    }
    let dot = h.room.dot();
    assert!(dot.contains("fwd-a:video"));
    // Each publisher's receive path skips webrtcbin's RED and ULPFEC decoders and rtpbin's
    // storage (pipelines/src/receive_fec.rs): rtpsession → rtprtxreceive → SSRC demuxer, and
    // each payload demuxer pad straight to webrtcbin's src ghost pad (a proxy pad).
    let links = |from: &str, from_pad: &str, to: &str| {
        dot.lines()
            .filter_map(|l| l.trim().split_once(" -> "))
            .filter(|(a, b)| a.starts_with(from) && a.contains(from_pad) && b.starts_with(to))
            .count()
    };
    assert_eq!(links("rtpsession", "_recv_rtp_src_", "rtprtxreceive"), 2);
    assert_eq!(links("rtprtxreceive", "_src_", "rtpssrcdemux"), 2);
    assert_eq!(
        links("rtpptdemux", "_src_", "_proxypad"),
        4,
        "audio and video of both"
    );
    assert!(h.room.shutdown().blocking_recv().is_ok());
}

/// Three peers, everybody decodes the two others.
#[test]
fn three_peers_each_decode_the_two_others() {
    let _s = support::serial();
    let _w = Watchdog::new("three_peers_each_decode_the_two_others", 90);
    let mut h = Harness::new("three-peers");
    for n in ["a", "b", "c"] {
        h.join_mesh(n);
    }
    h.assert_all_receive(15);
    assert!(h.failures.is_empty(), "{:?}", h.failures);
    assert!(h.room.shutdown().blocking_recv().is_ok());
}

/// C joins a running call and decodes A's video within a second of joining.
#[test]
fn late_joiner_decodes_first_frame_within_a_second() {
    let _s = support::serial();
    let _w = Watchdog::new("late_joiner_decodes_first_frame_within_a_second", 60);
    let mut h = Harness::new("late-joiner");
    h.join_mesh("a");
    h.join_mesh("b");
    h.assert_all_receive(5);

    let started = Instant::now();
    h.join("c", false);
    let want: Vec<TrackId> = {
        let mut v: Vec<TrackId> = h.published.keys().cloned().collect();
        v.sort();
        v
    };
    h.round("c", &want, None, false);
    let answered = started.elapsed();
    let a_video = h
        .tracks_of("a")
        .into_iter()
        .find(|t| h.is_video(t))
        .unwrap();
    assert!(
        h.wait(T, |h| h.received("c", &a_video) > 0),
        "c got no frame"
    );
    let ml = h.mline_of("c", &a_video).unwrap();
    let first = h.members["c"].client.stats(ml).first_at.unwrap() - started;
    println!("late joiner: answer after {answered:?}, first decoded frame after {first:?}");
    // The 1 s goal is asserted (as a median over several joins) by the server-level test
    // tests/media_room.rs; this guard only proves the keyframe request works (the encoder
    // makes no keyframe by itself for minutes) without flaking on a loaded machine.
    assert!(
        first < Duration::from_secs(2),
        "first frame after {first:?}"
    );
    assert!(h.failures.is_empty(), "{:?}", h.failures);
    assert!(h.room.shutdown().blocking_recv().is_ok());
}

/// A adds a screen share (third sendonly m-line) mid-call; B receives it on a new m-line; A
/// stops it (m-line inactive); B's next round answers that m-line inactive while A's camera
/// keeps flowing.
#[test]
fn screen_share_added_then_removed() {
    let _s = support::serial();
    let _w = Watchdog::new("screen_share_added_then_removed", 90);
    let mut h = Harness::new("screen-share");
    h.join_mesh("a");
    h.join_mesh("b");
    h.assert_all_receive(5);

    h.members.get_mut("a").unwrap().client.add_screen();
    let offered = h.round("a", &h.tracks_of("b"), None, true);
    let screen_mid = offered.last().unwrap().mid.clone();
    assert!(offered.last().unwrap().sendonly);
    let screen = Harness::track_id("a", &screen_mid);
    assert!(
        h.wait(T, |h| h.published.contains_key(&screen)),
        "screen not published"
    );

    let mut want: Vec<TrackId> = h.tracks_of("a");
    want.sort();
    // Without an ICE restart the transport stays connected: the new link is opened by the
    // post-answer timer, not by a connection-state change.
    h.round("b", &want, None, false);
    assert!(h.wait_media("b", &screen, 10, T), "b got no screen frames");
    let screen_mline = h.mline_of("b", &screen).unwrap();

    // Stop sharing.
    h.members.get_mut("a").unwrap().client.remove_screen();
    h.round("a", &h.tracks_of("b"), None, true);
    let want: Vec<TrackId> = h
        .tracks_of("a")
        .into_iter()
        .filter(|t| *t != screen)
        .collect();
    h.round("b", &want, None, true);
    let answer = h.answers["b"].clone();
    let sdp = gst_sdp::SDPMessage::parse_buffer(answer.as_bytes()).unwrap();
    let m = sdp.media(screen_mline).unwrap();
    assert!(m.attributes().any(|a| a.key() == "inactive"), "{answer}");
    assert!(
        h.room.forwarded_packets(&screen).is_none(),
        "screen forwarder still there"
    );
    let a_video = h
        .tracks_of("a")
        .into_iter()
        .find(|t| h.is_video(t) && *t != screen)
        .unwrap();
    assert!(
        h.wait_media("b", &a_video, 10, T),
        "b's camera stream stopped"
    );
    assert!(h.failures.is_empty(), "{:?}", h.failures);
    assert!(h.room.shutdown().blocking_recv().is_ok());
}

/// B subscribes to A's tracks right after A's answer, before any of A's media reached the
/// server (forwarders exist from the answer on); B still decodes A.
#[test]
fn subscribing_before_the_publishers_media_arrived() {
    let _s = support::serial();
    let _w = Watchdog::new("subscribing_before_the_publishers_media_arrived", 60);
    let mut h = Harness::new("early-subscribe");
    h.join("a", true);
    h.join("b", false);
    let offered = h.round("a", &[], None, false);
    let a_tracks: Vec<TrackId> = offered
        .iter()
        .filter(|m| m.sendonly)
        .map(|m| Harness::track_id("a", &m.mid))
        .collect();
    let published_before = h.published.len();
    h.round("b", &a_tracks, None, false);
    println!(
        "tracks published when b's round ended: {published_before} before, {} after",
        h.published.len()
    );
    for t in &a_tracks {
        let n = if h.is_video(t) { 10 } else { 20 };
        assert!(h.wait_media("b", t, n, T), "b got no media of {t}");
    }
    assert!(h.failures.is_empty(), "{:?}", h.failures);
    assert!(h.room.shutdown().blocking_recv().is_ok());
}

/// The ICE port range of the config is applied to the server's candidates.
#[test]
fn ice_port_range_is_applied() {
    let _s = support::serial();
    let _w = Watchdog::new("ice_port_range_is_applied", 60);
    support::init();
    let mut config = support::config("port-range");
    config.ice_port_range = (41000, 41050);
    let (room, events) = lamina_pipelines::RoomPipeline::new(config).unwrap();
    let mut h = Harness::with_room(room, events);
    h.join_mesh("a");
    let cands = &h.server_candidates["a"];
    assert!(!cands.is_empty());
    for (_, c) in cands {
        let port: u16 = c.split_whitespace().nth(5).unwrap().parse().unwrap();
        assert!((41000..=41050).contains(&port), "{c}");
    }
    assert!(h.room.shutdown().blocking_recv().is_ok());
}

/// Downlink estimation off (`PipelineConfig::downlink_estimation`): subscriber m-lines are
/// answered without TWCC (no `transport-cc`, no TWCC extension), so subscribers send no TWCC
/// feedback to estimate from; the publishing m-lines keep it (the publishers' own congestion
/// control), and media flows both ways. The same room with it on answers them with TWCC.
#[test]
fn downlink_estimation_off_sends_subscribers_no_twcc() {
    let _s = support::serial();
    let _w = Watchdog::new("downlink_estimation_off_sends_subscribers_no_twcc", 120);
    for on in [true, false] {
        let name = if on { "downlink-on" } else { "downlink-off" };
        let mut h = Harness::with_config(lamina_pipelines::PipelineConfig {
            downlink_estimation: on,
            ..support::config(name)
        });
        h.join_mesh("a");
        h.join_mesh("b");
        h.assert_all_receive(15);
        assert!(h.failures.is_empty(), "{:?}", h.failures);

        let answer = gst_sdp::SDPMessage::parse_buffer(h.answers["a"].as_bytes()).unwrap();
        let (mut sending, mut receiving) = (0, 0);
        for m in answer.medias() {
            let twcc = m.attributes().any(|a| {
                (a.key() == "extmap"
                    && a.value().is_some_and(|v| v.contains(support::client::TWCC)))
                    || (a.key() == "rtcp-fb"
                        && a.value().is_some_and(|v| v.ends_with("transport-cc")))
            });
            if m.attributes().any(|a| a.key() == "sendonly") {
                sending += 1;
                assert_eq!(twcc, on, "{name}: subscriber m-line TWCC: {answer}");
            } else if m.attributes().any(|a| a.key() == "recvonly") {
                receiving += 1;
                assert!(twcc, "{name}: publishing m-line keeps TWCC: {answer}");
            }
        }
        assert_eq!((sending, receiving), (2, 2), "{answer}");

        assert!(h.room.shutdown().blocking_recv().is_ok());
    }
}
