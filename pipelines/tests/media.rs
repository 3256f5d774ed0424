//! Media flows between real webrtcbin clients through a RoomPipeline.

mod support;

use std::time::{Duration, Instant};

use support::{Harness, Watchdog};

const T: Duration = Duration::from_secs(10);

/// A and B publish camera + microphone; each decodes the other's video and gets its audio.
#[test]
fn two_peers_exchange_audio_and_video() {
    let _s = support::serial();
    let _w = Watchdog::new("two_peers_exchange_audio_and_video", 60);
    let mut h = Harness::new("two-peers");
    h.join("a", true);
    h.round("a", &[], None, false);
    assert!(h.wait(T, |h| h.tracks_of("a").len() == 2), "a's tracks not published");

    h.join("b", true);
    let a_tracks = h.tracks_of("a");
    h.round("b", &a_tracks, None, false);
    assert!(h.wait(T, |h| h.tracks_of("b").len() == 2), "b's tracks not published");
    let b_tracks = h.tracks_of("b");
    h.round("a", &b_tracks, None, true);

    for (who, tracks) in [("a", &b_tracks), ("b", &a_tracks)] {
        for t in tracks.iter() {
            let n = if h.is_video(t) { 15 } else { 20 };
            assert!(h.wait_media(who, t, n, T), "{who} got no media of {t}");
        }
    }
    assert!(h.failures.is_empty(), "{:?}", h.failures);
    let answer = &h.answers["a"];
    assert!(answer.contains("a=sendonly"), "{answer}");
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(answer.contains(support::client::TWCC), "TWCC extmap dropped: {answer}");
    let _ = Instant::now();
    let done = h.room.shutdown();
    assert!(done.blocking_recv().is_ok());
}
