//! Media through a real server: webrtcbin participants speak the Phoenix + media-event protocol
//! over WebSocket to Lamina on 127.0.0.1 and count the frames they decode.
//!
//! The tests of this file run one at a time (they share two cores with their encoders).

mod support;

use std::time::{Duration, Instant};

use lamina::room::{RoomCommand, RoomId};
use lamina::server::Server;
use lamina_client::{Participant, ParticipantConfig, ParticipantState};
use serde_json::json;
use tokio::sync::oneshot;

const MEDIA_TIMEOUT: Duration = Duration::from_secs(20);

async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

fn url(server: &Server) -> String {
    format!("ws://{}/socket/websocket", server.addr)
}

async fn join(server: &Server, room: &str, name: &str, audio: bool, video: bool) -> Participant {
    join_with(server, room, name, audio, video, true).await
}

async fn join_with(
    server: &Server,
    room: &str,
    name: &str,
    audio: bool,
    video: bool,
    receive: bool,
) -> Participant {
    Participant::join(ParticipantConfig {
        url: url(server),
        room: room.into(),
        name: name.into(),
        audio,
        video,
        receive,
    })
    .await
    .expect("participant joins")
}

/// True when `s` decodes `min` frames of every track of each endpoint in `from`, and each of
/// them publishes `tracks_each` tracks.
fn decodes_all(s: &ParticipantState, from: &[&str], tracks_each: usize, min: u64) -> bool {
    from.iter().all(|e| s.playing(e, min) == tracks_each)
}

async fn wait_decoding(p: &Participant, from: &[&str], tracks_each: usize) -> ParticipantState {
    p.wait_until("remote media decoded", MEDIA_TIMEOUT, |s| {
        decodes_all(s, from, tracks_each, 10)
    })
    .await
    .unwrap_or_else(|e| panic!("{}: {e}", p.id))
}

async fn describe(server: &Server, room: &str) -> serde_json::Value {
    let handle = server.rooms.get(&RoomId(room.into())).expect("room runs");
    let (reply, rx) = oneshot::channel();
    assert!(handle.send(RoomCommand::Describe { reply }).await);
    rx.await.expect("room answers")
}

/// Threads of this process that belong to GStreamer or the server (the test runtime's own
/// blocking-pool threads come and go and are not counted).
fn threads() -> usize {
    thread_names()
        .iter()
        .filter(|n| !n.starts_with("tokio-runtime") && !n.starts_with("join_leave"))
        .count()
}

fn thread_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_exchange_audio_and_video() {
    let _serial = serial().await;
    let server = support::spawn_server(|_| {}).await;
    let a = join(&server, "two", "A", true, true).await;
    let b = join(&server, "two", "B", true, true).await;
    let sa = wait_decoding(&a, &[&b.id], 2).await;
    let sb = wait_decoding(&b, &[&a.id], 2).await;
    assert_eq!(sa.endpoints[&b.id]["displayName"], "B");
    assert_eq!(sb.endpoints[&a.id]["displayName"], "A");
    assert!(
        sa.errors.is_empty() && sb.errors.is_empty(),
        "{:?} {:?}",
        sa.errors,
        sb.errors
    );
    a.leave().await;
    b.leave().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_each_decode_the_two_others() {
    let _serial = serial().await;
    let server = support::spawn_server(|_| {}).await;
    let a = join(&server, "three", "A", true, true).await;
    let b = join(&server, "three", "B", true, true).await;
    let c = join(&server, "three", "C", true, true).await;
    wait_decoding(&a, &[&b.id, &c.id], 2).await;
    wait_decoding(&b, &[&a.id, &c.id], 2).await;
    wait_decoding(&c, &[&a.id, &b.id], 2).await;
    for p in [a, b, c] {
        p.leave().await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_decodes_its_first_remote_frame_quickly() {
    let _serial = serial().await;
    let server = support::spawn_server(|_| {}).await;
    let a = join(&server, "late", "A", true, true).await;
    let b = join(&server, "late", "B", true, true).await;
    wait_decoding(&a, &[&b.id], 2).await;
    wait_decoding(&b, &[&a.id], 2).await;
    // A's and B's encoders make keyframes only on request (or every 30 s): a late joiner
    // sees video quickly only if the server asks the publishers for one. Three late joins;
    // the median must be under a second (one slow join on a loaded machine is tolerated).
    let mut times = Vec::new();
    let mut all_times = Vec::new();
    for round in 0..3 {
        let start = Instant::now();
        let c = join(&server, "late", &format!("C{round}"), false, false).await;
        let s = c
            .wait_until("first remote video frame", MEDIA_TIMEOUT, |s| {
                s.tracks
                    .values()
                    .filter(|t| t.metadata["type"] == "camera")
                    .count()
                    == 2
                    && s.tracks
                        .values()
                        .filter(|t| t.metadata["type"] == "camera")
                        .all(|t| t.frames > 0)
            })
            .await
            .unwrap();
        let firsts: Vec<Instant> = s
            .tracks
            .values()
            .filter(|t| t.metadata["type"] == "camera")
            .filter_map(|t| t.first_frame)
            .collect();
        let first = *firsts.iter().min().unwrap();
        let all = *firsts.iter().max().unwrap();
        times.push((first - start).as_millis());
        all_times.push((all - start).as_millis());
        wait_decoding(&c, &[&a.id, &b.id], 2).await;
        c.leave().await;
        a.wait_until("late joiner gone", MEDIA_TIMEOUT, |s| {
            s.endpoints.len() == 1
        })
        .await
        .unwrap();
    }
    println!("[metric] late_joiner_first_frame_ms={times:?} all_remote_videos_ms={all_times:?}");
    let mut sorted = times.clone();
    sorted.sort();
    assert!(
        sorted[1] < 1000,
        "median late-joiner first frame {} ms ({times:?})",
        sorted[1]
    );
    for p in [a, b] {
        p.leave().await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_share_added_and_removed_mid_call() {
    let _serial = serial().await;
    let server = support::spawn_server(|_| {}).await;
    let a = join(&server, "share", "A", true, true).await;
    let b = join(&server, "share", "B", true, true).await;
    wait_decoding(&b, &[&a.id], 2).await;
    a.add_video_track(json!({"type": "screensharing", "active": true}));
    let s = b
        .wait_until("screen share decoded", MEDIA_TIMEOUT, |s| {
            s.tracks
                .values()
                .any(|t| t.metadata["type"] == "screensharing" && t.frames >= 10)
        })
        .await
        .unwrap();
    let share = s
        .tracks
        .iter()
        .find(|(_, t)| t.metadata["type"] == "screensharing")
        .map(|(id, _)| id.clone())
        .unwrap();
    assert!(share.starts_with(&format!("{}:", a.id)));
    a.remove_track(&share);
    b.wait_until("screen share removed", MEDIA_TIMEOUT, |s| {
        !s.tracks.contains_key(&share)
    })
    .await
    .unwrap();
    // The camera and microphone keep flowing.
    let before = b.snapshot().playing(&a.id, 0);
    assert_eq!(before, 2);
    let frames = b.snapshot().total_frames();
    b.wait_until("media still flowing", MEDIA_TIMEOUT, |s| {
        s.total_frames() > frames + 30
    })
    .await
    .unwrap();
    a.leave().await;
    b.leave().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_leaving_does_not_interrupt_the_others() {
    let _serial = serial().await;
    let server = support::spawn_server(|_| {}).await;
    let a = join(&server, "leave", "A", true, true).await;
    let b = join(&server, "leave", "B", true, true).await;
    let c = join(&server, "leave", "C", true, true).await;
    wait_decoding(&a, &[&b.id, &c.id], 2).await;
    wait_decoding(&b, &[&a.id, &c.id], 2).await;
    let c_id = c.id.clone();
    let frames_a = a.snapshot().tracks.clone();
    c.leave().await;
    let left = Instant::now();
    a.wait_until("C removed", MEDIA_TIMEOUT, |s| {
        !s.endpoints.contains_key(&c_id)
    })
    .await
    .unwrap();
    println!(
        "[metric] endpoint_removed_after_leave_ms={}",
        left.elapsed().as_millis()
    );
    // A and B keep decoding each other for two more seconds, without a gap over 500 ms.
    let target = frames_a
        .iter()
        .filter(|(_, t)| t.endpoint == b.id)
        .map(|(_, t)| t.frames)
        .sum::<u64>()
        + 40;
    let s = a
        .wait_until("B still decoding", MEDIA_TIMEOUT, |s| {
            s.tracks
                .values()
                .filter(|t| t.endpoint == b.id)
                .map(|t| t.frames)
                .sum::<u64>()
                > target
        })
        .await
        .unwrap();
    for t in s.tracks.values().filter(|t| t.endpoint == b.id) {
        assert!(
            t.max_gap < Duration::from_millis(500),
            "gap {:?}",
            t.max_gap
        );
    }
    a.leave().await;
    b.leave().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_leave_cycles_return_to_baseline() {
    let _serial = serial().await;
    let server = support::spawn_server(|_| {}).await;
    // A publishes without receiving, so every thread created per cycle in this process is the
    // server's or B's (a receiving client keeps a jitterbuffer per SSRC it ever got).
    let a = join_with(&server, "cycles", "A", true, true, false).await;
    // Let A's own round settle before taking the baseline.
    a.wait_until("A answered", MEDIA_TIMEOUT, |s| s.answers >= 1)
        .await
        .unwrap();
    let elements = |v: serde_json::Value| v["elements"].as_u64().unwrap_or(0);
    let mut base: Option<(u64, usize)> = None;
    let mut peak_elements = 0;
    for cycle in 0..10 {
        let b = join(&server, "cycles", "B", true, true).await;
        wait_decoding(&b, &[&a.id], 2).await;
        peak_elements = peak_elements.max(elements(describe(&server, "cycles").await));
        b.leave().await;
        a.wait_until("B gone", MEDIA_TIMEOUT, |s| s.endpoints.is_empty())
            .await
            .unwrap();
        // Teardown runs on the room's media thread: wait for the counts to settle.
        let deadline = Instant::now() + MEDIA_TIMEOUT;
        let mut last = (0, 0);
        let mut stable_since = Instant::now();
        loop {
            let now = (elements(describe(&server, "cycles").await), threads());
            match base {
                // The first cycle sets the baseline once the counts stop moving for a second
                // (A's own streams are fully built by then).
                None if now == last && stable_since.elapsed() > Duration::from_secs(1) => {
                    base = Some(now);
                    break;
                }
                None => {}
                Some((e, t)) if now.0 == e && now.1 <= t => break,
                Some((e, t)) => assert!(
                    Instant::now() < deadline,
                    "cycle {cycle}: elements {} (baseline {e}), threads {} (baseline {t}): {:?}",
                    now.0,
                    now.1,
                    thread_names()
                ),
            }
            if now != last {
                last = now;
                stable_since = Instant::now();
            }
            assert!(Instant::now() < deadline, "counts never settled: {now:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (base_elements, base_threads) = base.expect("baseline taken");
    println!("[metric] baseline_elements={base_elements} peak_elements={peak_elements} baseline_threads={base_threads}");
    a.leave().await;
    server.stop().await;
}
