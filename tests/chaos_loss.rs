//! Chaos: one participant of three on a lossy network link.
//!
//! A, B and C publish audio and video in one room and receive each other. C's media goes
//! through a small UDP relay (each side only learns the relay's address as the other's
//! candidate, the way a TURN allocation stands in the path), and the relay drops 15 % of the
//! datagrams in each direction once the loss period starts. Every participant handles loss like
//! a browser: lost video packets are asked for again (NACK/RTX), and a video receiver that still
//! misses packets sends a PLI and shows nothing until a keyframe arrives.
//!
//! Measured over a baseline period without loss and a period with loss (`[metric]` lines):
//! the frame rates A and B receive from each other (must stay within 10 % of baseline), the
//! frame rates involving C (what A and B receive from C, what C receives), the keyframe
//! requests each forwarder sent upstream and throttled (`keyframe-requests`,
//! `keyframe-requests-dropped`, read from the room's pipeline graph), and the keyframes each
//! publisher's encoder produced (bounded by the forwarder's throttle).

#[path = "support/relay.rs"]
mod relay;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lamina::room::{RoomCommand, RoomId};
use lamina::server::Server;
use lamina_client::{CandidateFilter, Participant, ParticipantConfig, ParticipantOptions};
use relay::LossyRelay;
use serde_json::Value;
use tokio::sync::oneshot;

const ROOM: &str = "chaos";
/// Datagrams the relay drops in each direction during the loss period (per mille).
const LOSS_PER_MILLE: u32 = 150;
const BASELINE: Duration = Duration::from_secs(8);
const LOSSY: Duration = Duration::from_secs(12);
/// The forwarder's default `keyframe-min-interval`.
const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(500);

async fn join(server: &Server, name: &str, filter: Option<CandidateFilter>) -> Participant {
    let config = ParticipantConfig {
        url: format!("ws://{}/socket/websocket", server.addr),
        room: ROOM.into(),
        name: name.into(),
        audio: true,
        video: true,
        receive: true,
    };
    let options = ParticipantOptions {
        candidate_filter: filter,
        keyframe_on_loss: true,
        ..ParticipantOptions::default()
    };
    Participant::join_with(config, options)
        .await
        .expect("participant joins")
}

async fn room_query<T>(server: &Server, make: impl FnOnce(oneshot::Sender<T>) -> RoomCommand) -> T {
    let handle = server.rooms.get(&RoomId(ROOM.into())).expect("room runs");
    let (reply, rx) = oneshot::channel();
    assert!(handle.send(make(reply)).await);
    rx.await.expect("room answers")
}

/// The video track id of every endpoint → its forwarder element name.
async fn video_forwarders(server: &Server) -> BTreeMap<String, (String, String)> {
    let d: Value = room_query(server, |reply| RoomCommand::Describe { reply }).await;
    d["tracks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["kind"] == "video")
        .map(|t| {
            let owner = t["owner"].as_str().unwrap_or_default().to_owned();
            let id = t["id"].as_str().unwrap_or_default().to_owned();
            let fwd = t["forwarder"].as_str().unwrap_or_default().to_owned();
            (owner, (id, fwd))
        })
        .collect()
}

/// `keyframe-requests` and `keyframe-requests-dropped` of the forwarder `name`, from the
/// room's pipeline graph (the dot dump lists every property that differs from its default).
fn keyframe_counters(dot: &str, name: &str) -> (u64, u64) {
    let Some(start) = dot.find(&format!("\\n{name}\\n")) else {
        panic!("forwarder {name} not in the pipeline graph");
    };
    let label = &dot[start..];
    let label = &label[..label.find('"').unwrap_or(label.len())];
    let prop = |key: &str| {
        label
            .split("\\n")
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (prop("keyframe-requests"), prop("keyframe-requests-dropped"))
}

/// Everything counted at one instant.
struct Snapshot {
    at: Instant,
    /// (receiver, sender) → decoded video frames of the sender's camera.
    frames: BTreeMap<(String, String), u64>,
    /// sender → (keyframe requests sent upstream, dropped) of its camera's forwarder.
    requests: BTreeMap<String, (u64, u64)>,
    /// sender → keyframes its encoder produced.
    keyframes: BTreeMap<String, u64>,
    /// Relay (to C, from C): (passed, dropped).
    relay: ((u64, u64), (u64, u64)),
}

async fn snapshot(
    server: &Server,
    people: &[(&str, &Participant)],
    cams: &BTreeMap<String, (String, String)>,
    relay: &LossyRelay,
) -> Snapshot {
    let dot = room_query(server, |reply| RoomCommand::Dot { reply })
        .await
        .expect("room has a pipeline");
    let mut s = Snapshot {
        at: Instant::now(),
        frames: BTreeMap::new(),
        requests: BTreeMap::new(),
        keyframes: BTreeMap::new(),
        relay: (relay.to_client.get(), relay.to_server.get()),
    };
    for (name, p) in people {
        let state = p.snapshot();
        let (cam, fwd) = &cams[&p.id];
        s.requests
            .insert(name.to_string(), keyframe_counters(&dot, fwd));
        s.keyframes
            .insert(name.to_string(), state.sent_keyframes[cam]);
        for (other, q) in people {
            if other != name {
                let (their_cam, _) = &cams[&q.id];
                let frames = state.tracks.get(their_cam).map_or(0, |t| t.frames);
                s.frames
                    .insert((name.to_string(), other.to_string()), frames);
            }
        }
    }
    s
}

/// What happened between two snapshots.
struct Period {
    secs: f64,
    /// (receiver, sender) → frames per second.
    fps: BTreeMap<(String, String), f64>,
    requests: BTreeMap<String, (u64, u64)>,
    keyframes: BTreeMap<String, u64>,
    /// (to C, from C): (passed, dropped).
    relay: ((u64, u64), (u64, u64)),
}

fn period(a: &Snapshot, b: &Snapshot) -> Period {
    let secs = (b.at - a.at).as_secs_f64();
    let d = |x: (u64, u64), y: (u64, u64)| (y.0 - x.0, y.1 - x.1);
    Period {
        secs,
        fps: b
            .frames
            .iter()
            .map(|(k, v)| (k.clone(), (v - a.frames[k]) as f64 / secs))
            .collect(),
        requests: b
            .requests
            .iter()
            .map(|(k, v)| (k.clone(), d(a.requests[k], *v)))
            .collect(),
        keyframes: b
            .keyframes
            .iter()
            .map(|(k, v)| (k.clone(), v - a.keyframes[k]))
            .collect(),
        relay: (d(a.relay.0, b.relay.0), d(a.relay.1, b.relay.1)),
    }
}

fn print_period(label: &str, p: &Period) {
    for ((rx, tx), fps) in &p.fps {
        println!("[metric] {label} fps {rx}<-{tx} = {fps:.1}");
    }
    for (who, (sent, dropped)) in &p.requests {
        println!(
            "[metric] {label} forwarder of {who}'s camera: keyframe-requests +{sent}, keyframe-requests-dropped +{dropped}"
        );
    }
    for (who, k) in &p.keyframes {
        println!(
            "[metric] {label} keyframes encoded by {who} = {k} ({:.2}/s)",
            *k as f64 / p.secs
        );
    }
    let ((tc, dc), (ts, ds)) = p.relay;
    let rate =
        |passed: u64, dropped: u64| 100.0 * dropped as f64 / (passed + dropped).max(1) as f64;
    println!(
        "[metric] {label} relay to C: {tc} passed, {dc} dropped ({:.1} %); from C: {ts} passed, {ds} dropped ({:.1} %)",
        rate(tc, dc),
        rate(ts, ds)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lossy_participant_degrades_alone() {
    tokio::time::timeout(Duration::from_secs(60), lossy_room())
        .await
        .expect("the chaos test finishes within 60 s");
}

async fn lossy_room() {
    let server = support::spawn_server(|_| {}).await;
    let relay = LossyRelay::start(0x5eed);
    let a = join(&server, "A", None).await;
    let b = join(&server, "B", None).await;
    let c = join(&server, "C", Some(relay.filter())).await;
    let people = [("A", &a), ("B", &b), ("C", &c)];
    for (name, p) in &people {
        let others: Vec<String> = people
            .iter()
            .filter(|(n, _)| n != name)
            .map(|(_, q)| q.id.clone())
            .collect();
        p.wait_until("everyone's media decoded", Duration::from_secs(25), |s| {
            others.iter().all(|o| s.playing(o, 15) == 2)
        })
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(
        relay.to_client.get().0 > 0 && relay.to_server.get().0 > 0,
        "C's media does not go through the relay"
    );
    let cams = video_forwarders(&server).await;

    let t0 = snapshot(&server, &people, &cams, &relay).await;
    tokio::time::sleep(BASELINE).await;
    let t1 = snapshot(&server, &people, &cams, &relay).await;
    relay.set_loss_per_mille(LOSS_PER_MILLE);
    tokio::time::sleep(LOSSY).await;
    let t2 = snapshot(&server, &people, &cams, &relay).await;
    let (base, lossy) = (period(&t0, &t1), period(&t1, &t2));
    print_period("baseline", &base);
    print_period("loss", &lossy);

    let key = |rx: &str, tx: &str| (rx.to_owned(), tx.to_owned());
    // The loss was real, on C's link only.
    let ((tc, dc), (ts, ds)) = lossy.relay;
    for (passed, dropped) in [(tc, dc), (ts, ds)] {
        let rate = dropped as f64 / (passed + dropped) as f64;
        assert!(
            (0.10..=0.20).contains(&rate),
            "relay loss {rate:.3} out of 10–20 %"
        );
    }
    // A and B keep receiving each other as before.
    for (rx, tx) in [("A", "B"), ("B", "A")] {
        let (before, during) = (base.fps[&key(rx, tx)], lossy.fps[&key(rx, tx)]);
        assert!(before > 10.0, "{rx}<-{tx} baseline {before:.1} fps");
        let change = (during - before) / before;
        println!(
            "[metric] healthy {rx}<-{tx} change under C's loss = {:+.1} %",
            100.0 * change
        );
        assert!(
            change.abs() <= 0.10,
            "{rx}<-{tx}: {before:.1} fps → {during:.1} fps while C suffers loss"
        );
    }
    // C's media degrades (for C and for those receiving C) but keeps coming: every lost
    // frame is answered with a keyframe request, and keyframes get through.
    for (rx, tx) in [("A", "C"), ("B", "C"), ("C", "A"), ("C", "B")] {
        let (before, during) = (base.fps[&key(rx, tx)], lossy.fps[&key(rx, tx)]);
        println!(
            "[metric] lossy {rx}<-{tx} change = {:+.1} %",
            100.0 * (during - before) / before
        );
        assert!(
            during >= 1.0,
            "{rx}<-{tx} froze: {during:.1} fps under loss"
        );
    }
    // C's keyframe requests reach A's and B's encoders, throttled by the forwarders.
    let max_requests =
        (LOSSY.as_secs_f64() / KEYFRAME_MIN_INTERVAL.as_secs_f64()).ceil() as u64 + 1;
    for who in ["A", "B", "C"] {
        let (sent, dropped) = lossy.requests[who];
        let keyframes = lossy.keyframes[who];
        assert!(
            sent <= max_requests,
            "{who}'s forwarder sent {sent} keyframe requests upstream in {:.0} s",
            lossy.secs
        );
        assert!(
            keyframes <= sent + 2,
            "{who} encoded {keyframes} keyframes for {sent} forwarded requests"
        );
        println!(
            "[metric] loss {who}: {:.2} keyframe requests/s forwarded (throttle allows {:.1}/s), {dropped} throttled",
            sent as f64 / lossy.secs,
            1.0 / KEYFRAME_MIN_INTERVAL.as_secs_f64()
        );
    }
    let throttled: u64 = lossy.requests.values().map(|r| r.1).sum();
    assert!(throttled > 0, "no keyframe request was throttled");
    for who in ["A", "B"] {
        assert!(
            lossy.requests[who].0 >= 1 && lossy.keyframes[who] >= 1,
            "C's losses never produced a keyframe request to {who}: {:?}",
            lossy.requests[who]
        );
    }

    c.leave().await;
    b.leave().await;
    a.leave().await;
    server.stop().await;
}
