//! Speaker detection through a real server: a webrtcbin participant sends the RFC 6464
//! audio-level extension like a browser; the server's `laminavad` turns its levels into
//! `vadNotification`s for the other participant (speech within 300 ms of the voice starting,
//! silence after the pause, nothing for a cough), and `/debug/rooms/<id>` names the active
//! speaker. Prints the delays.

mod support;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lamina_client::{Participant, ParticipantConfig, ParticipantOptions};
use serde_json::Value;
use support::http_get;

const TIMEOUT: Duration = Duration::from_secs(20);
const SILENT: u8 = 127;
const VOICE: u8 = 30;

fn config(url: &str, name: &str, audio: bool) -> ParticipantConfig {
    ParticipantConfig {
        url: url.to_owned(),
        room: "vad".into(),
        name: name.into(),
        audio,
        video: false,
        receive: true,
    }
}

/// Waits until `bob` has received `count` notifications; returns the last one's time and
/// whether it was speech.
async fn nth_vad(bob: &Participant, count: usize, within: Duration) -> (Instant, String, bool) {
    let s = bob
        .wait_until("vadNotification", within, |s| s.vad.len() >= count)
        .await
        .unwrap();
    s.vad[count - 1].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_and_silence_reach_the_other_participant() {
    let server = support::spawn_server(|c| c.debug_endpoints = true).await;
    let url = format!("ws://{}/socket/websocket", server.addr);
    let level = Arc::new(AtomicU8::new(SILENT));
    let options = ParticipantOptions {
        audio_level: Some(level.clone()),
        ..Default::default()
    };
    let alice = Participant::join_with(config(&url, "alice", true), options)
        .await
        .unwrap();
    let bob = Participant::join(config(&url, "bob", false)).await.unwrap();
    let alice_id = alice.id.clone();
    bob.wait_until("bob decodes alice's audio", TIMEOUT, |s| {
        s.playing(&alice_id, 20) == 1
    })
    .await
    .unwrap();
    // Silence so far: nothing was sent.
    assert!(bob.snapshot().vad.is_empty());

    // A cough (60 ms) is not speech.
    level.store(10, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(60)).await;
    level.store(SILENT, Ordering::Relaxed);
    assert!(
        bob.wait_until("no notification", Duration::from_millis(1500), |s| !s
            .vad
            .is_empty())
            .await
            .is_err(),
        "a cough made a speaker"
    );

    // Speech.
    let spoke = Instant::now();
    level.store(VOICE, Ordering::Relaxed);
    let (at, track, speech) = nth_vad(&bob, 1, TIMEOUT).await;
    assert!(speech);
    let speech_delay = at - spoke;
    let track_owner = bob
        .snapshot()
        .tracks
        .get(&track)
        .map(|t| t.endpoint.clone());
    assert_eq!(
        track_owner.as_deref(),
        Some(alice.id.as_str()),
        "alice's audio track"
    );
    let (_, body) = http_get(server.addr, "/debug/rooms/vad").await;
    let room: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        room["state"]["activeSpeaker"]["track"],
        track.as_str(),
        "{room}"
    );
    assert_eq!(room["state"]["activeSpeaker"]["peer"], alice.id.as_str());
    assert!(
        alice.snapshot().vad.is_empty(),
        "not sent to the speaker herself"
    );

    // Silence.
    let stopped = Instant::now();
    level.store(SILENT, Ordering::Relaxed);
    let (at, _, speech) = nth_vad(&bob, 2, TIMEOUT).await;
    assert!(!speech);
    let silence_delay = at - stopped;
    let (_, body) = http_get(server.addr, "/debug/rooms/vad").await;
    let room: Value = serde_json::from_str(&body).unwrap();
    assert!(room["state"]["activeSpeaker"].is_null(), "{room}");
    println!(
        "[metric] vad: voice → speech at the other participant {speech_delay:?}, voice stops → silence {silence_delay:?}"
    );
    assert!(
        speech_delay < Duration::from_millis(300),
        "speech after {speech_delay:?}"
    );
    assert!(
        silence_delay < Duration::from_millis(1500),
        "silence after {silence_delay:?}"
    );
    alice.leave().await;
    bob.leave().await;
    server.stop().await;
}
