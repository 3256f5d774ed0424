//! A cluster of three `lamina` processes and a private `redis-server`: participants (real
//! `webrtcbin` peers that decode) on two different nodes share a room owned by a third; the
//! owner is SIGKILLed and they are back in a room on a live node, decoding each other again,
//! within 10 s (the time is printed); Redis restarting under a call does not interrupt it; then
//! `lamina drain` drains that node, which stops once its room has ended. SIGTERM with
//! `--drain-timeout` drains the same way.

mod cluster_common;
mod support;

use std::time::{Duration, Instant};

use cluster_common::{wait_owners, NodeProcess, Redis};
use lamina_client::{Participant, ParticipantConfig};
use support::PhoenixClient;

/// Frames of each other's video that count as decoding.
const FRAMES: u64 = 10;

fn config(url: &str, room: &str, name: &str) -> ParticipantConfig {
    ParticipantConfig {
        url: url.to_owned(),
        room: room.to_owned(),
        name: name.to_owned(),
        audio: false,
        video: true,
        receive: true,
    }
}

/// Joins through `url` until a join succeeds (right after a node died, joins of its rooms
/// fail until its claims expire) or `deadline` passes.
async fn join_until(url: &str, room: &str, name: &str, deadline: Instant) -> Participant {
    loop {
        match Participant::join(config(url, room, name)).await {
            Ok(p) => return p,
            Err(e) => {
                assert!(Instant::now() < deadline, "{name} could not rejoin: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn decode_each_other(x: &Participant, y: &Participant, within: Duration) {
    let (xi, yi) = (x.id.clone(), y.id.clone());
    x.wait_until("x decodes y", within, |s| s.playing(&yi, FRAMES) == 1)
        .await
        .unwrap();
    y.wait_until("y decodes x", within, |s| s.playing(&xi, FRAMES) == 1)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_on_two_nodes_survive_the_death_of_the_rooms_node() {
    support::init_tracing();
    gst::init().unwrap();
    let redis = Redis::start();
    let mut c = NodeProcess::start(&redis.url(), "node-c", "127.0.0.3", &[]).unwrap();
    let a = NodeProcess::start(&redis.url(), "node-a", "127.0.0.1", &[]).unwrap();
    let b = NodeProcess::start(&redis.url(), "node-b", "127.0.0.2", &[]).unwrap();

    // The room is placed on C by its first join (through C); X joins through A, Y through B.
    let mut probe = PhoenixClient::connect(c.addr).await;
    probe.join_ok("room:failover").await;
    assert_eq!(wait_owners(a.addr, "failover").await, ["node-c"]);
    let t = Instant::now();
    let x = Participant::join(config(&a.socket_url(), "failover", "x"))
        .await
        .unwrap();
    let y = Participant::join(config(&b.socket_url(), "failover", "y"))
        .await
        .unwrap();
    decode_each_other(&x, &y, Duration::from_secs(20)).await;
    println!(
        "cluster failover: two relayed participants decode each other {:?} after joining",
        t.elapsed()
    );

    // The room's node dies.
    c.kill();
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(10);
    while x.is_connected() || y.is_connected() {
        assert!(
            Instant::now() < deadline,
            "the relays closed the participants' sockets"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed_after = killed.elapsed();
    drop((x, y));
    let (url_a, url_b) = (a.socket_url(), b.socket_url());
    let (x, y) = tokio::join!(
        join_until(&url_a, "failover", "x", deadline),
        join_until(&url_b, "failover", "y", deadline)
    );
    decode_each_other(&x, &y, deadline.saturating_duration_since(Instant::now())).await;
    let recovered = killed.elapsed();
    let owner = wait_owners(a.addr, "failover").await;
    assert!(owner == ["node-a"] || owner == ["node-b"], "{owner:?}");
    println!(
        "cluster failover: owner SIGKILLed → sockets closed after {:.2} s → both decoding each other again after {:.2} s (room now on {})",
        closed_after.as_secs_f64(),
        recovered.as_secs_f64(),
        owner[0]
    );
    assert!(recovered < Duration::from_secs(10));

    // `lamina drain` on the new owner: listed as draining, no new room there, and it stops
    // by itself once its room has ended.
    let (mut owner_node, other) = if owner[0] == "node-a" { (a, b) } else { (b, a) };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lamina"))
        .args([
            "drain",
            "--redis-url",
            &redis.url(),
            "--node-id",
            &owner_node.id,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("node {} draining: 1 room(s) left", owner_node.id)),
        "{said}"
    );
    let mut fresh = PhoenixClient::connect(owner_node.addr).await;
    let listed = support::wait_until(
        || async {
            let v = cluster_common::cluster_view(other.addr).await;
            v["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["id"] == owner_node.id.as_str() && n["draining"] == true)
        },
        support::TIMEOUT,
    )
    .await;
    assert!(listed, "draining shows in /cluster");
    fresh.join_ok("room:after-drain").await;
    assert_eq!(
        wait_owners(other.addr, "after-drain").await,
        vec![other.id.clone()]
    );
    x.leave().await;
    y.leave().await;
    let status = owner_node.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "a drained node stops by itself: {status:?}\n{}",
        owner_node.log()
    );
    // A bad id is a clear error.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lamina"))
        .args([
            "drain",
            "--redis-url",
            &redis.url(),
            "--node-id",
            "node-nope",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("node \"node-nope\" is not registered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_drain_timeout_lets_the_rooms_finish() {
    support::init_tracing();
    let redis = Redis::start();
    let mut a = NodeProcess::start(
        &redis.url(),
        "node-a",
        "127.0.0.1",
        &["--drain-timeout", "30"],
    )
    .unwrap();
    let b = NodeProcess::start(&redis.url(), "node-b", "127.0.0.2", &[]).unwrap();
    let mut peer = PhoenixClient::connect(a.addr).await;
    peer.join_ok("room:finishing").await;
    assert_eq!(wait_owners(b.addr, "finishing").await, ["node-a"]);
    a.terminate();
    let draining = support::wait_until(
        || async {
            cluster_common::try_cluster_view(b.addr)
                .await
                .is_some_and(|v| {
                    v["nodes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|n| n["id"] == "node-a" && n["draining"] == true)
                })
        },
        support::TIMEOUT,
    )
    .await;
    assert!(draining, "node-a drains after SIGTERM");
    // Its room goes on: the peer is still served.
    let hb = peer.heartbeat().await;
    assert!(peer.reply(&hb).await.is_ok());
    assert!(a.running(), "a draining node waits for its rooms");
    // New rooms through A go to B.
    let mut other = PhoenixClient::connect(a.addr).await;
    other.join_ok("room:fresh").await;
    assert_eq!(wait_owners(b.addr, "fresh").await, ["node-b"]);
    drop(other);
    peer.close().await;
    let status = a.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "stops once its room ended: {status:?}\n{}",
        a.log()
    );
}
