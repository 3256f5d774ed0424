//! Cluster signalling with nodes in this process and a private `redis-server`: registration
//! and `/cluster`, atomic placement under racing joins, relayed channels (the owner's protocol
//! byte for byte, and what the relay costs), operator redirects, drains, Redis restarting,
//! vanishing, answering garbage or nothing, forged relay marks, stale claims, garbage records,
//! and node id clashes. The media path across nodes, and nodes dying, are in
//! `cluster_failover.rs`.

mod cluster_common;
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cluster_common::{
    cluster_view, node, owners, percentile, try_cluster_view, wait_owners, Proxy, ProxyMode, Redis,
};
use futures_util::{SinkExt, StreamExt};
use lamina::cluster::directory::{NODE_TTL, ROOM_TTL};
use lamina::cluster::Directory;
use serde_json::{json, Value};
use support::{http_get, wait_until, PhoenixClient, TIMEOUT};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A peer that joined `room` through the node at `addr` and got `connected`.
struct Peer {
    client: PhoenixClient,
    join_ref: String,
    topic: String,
    id: String,
}

async fn connect_peer(addr: SocketAddr, room: &str, name: &str) -> Peer {
    let topic = format!("room:{room}");
    let mut client = PhoenixClient::connect(addr).await;
    let join_ref = client.join_ok(&topic).await;
    client
        .media_event(
            &join_ref,
            &topic,
            json!({"type": "connect", "data": {"metadata": {"displayName": name}}}),
        )
        .await;
    let frame = client
        .next_frame_where(|f| f.media_event().is_some_and(|e| e["type"] == "connected"))
        .await;
    let id = frame.media_event().unwrap()["data"]["id"]
        .as_str()
        .expect("endpoint id")
        .to_owned();
    Peer {
        client,
        join_ref,
        topic,
        id,
    }
}

impl Peer {
    /// Pushes an `updateEndpointMetadata` with this display name; returns the push's ref.
    async fn rename(&mut self, name: &str) -> String {
        let event =
            json!({"type": "updateEndpointMetadata", "data": {"metadata": {"displayName": name}}});
        self.client
            .media_event(&self.join_ref, &self.topic, event)
            .await
    }
}

/// The peers the owner's `/debug/rooms/<room>` lists.
async fn peers_in(owner: SocketAddr, room: &str) -> usize {
    let (status, body) = http_get(owner, &format!("/debug/rooms/{room}")).await;
    if status != 200 {
        return 0;
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    v["state"]["peers"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_register_are_listed_label_their_metrics_and_an_id_clash_is_refused() {
    let redis = Redis::start();
    let a = node(&redis.url(), "node-a", "127.0.0.1").await;
    let b = node(&redis.url(), "node-b", "127.0.0.2").await;
    let view = cluster_view(b.addr).await;
    assert_eq!(view["node"], "node-b");
    let ids: Vec<&str> = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["node-a", "node-b"]);
    assert_eq!(view["nodes"][0]["url"], format!("ws://{}", a.addr));
    assert!(
        view["nodes"][0].get("instance").is_none(),
        "internal fields stay internal"
    );

    let (_, metrics) = http_get(a.addr, "/metrics").await;
    assert!(
        metrics.contains("lamina_rooms{node=\"node-a\"} 0"),
        "every series carries the node label:\n{metrics}"
    );

    // A second live process with the same id is refused with a clear error; the first is
    // unaffected.
    let clash = lamina::server::start(cluster_common::node_config(
        &redis.url(),
        "node-a",
        "127.0.0.3",
    ))
    .await;
    let err = clash
        .err()
        .expect("a clashing node id is refused")
        .to_string();
    assert!(
        err.contains("node id \"node-a\" is in use by another live node"),
        "{err}"
    );
    let view = cluster_view(a.addr).await;
    assert_eq!(view["nodes"].as_array().unwrap().len(), 2);

    // A clean stop deregisters at once (no wait for the TTL).
    b.stop().await;
    let view = cluster_view(a.addr).await;
    assert_eq!(view["nodes"].as_array().unwrap().len(), 1, "{view}");
    a.stop().await;
    // Single node: no /cluster.
    let single = support::spawn_server(|_| {}).await;
    let (status, body) = http_get(single.addr, "/cluster").await;
    assert_eq!(status, 404);
    assert!(body.contains("clustering is off"), "{body}");
    single.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_joins_on_two_nodes_make_one_room_on_one_node() {
    let redis = Redis::start();
    let a = node(&redis.url(), "node-a", "127.0.0.1").await;
    let b = node(&redis.url(), "node-b", "127.0.0.2").await;
    for round in 0..4 {
        let room = format!("race-{round}");
        let (pa, pb) = tokio::join!(
            connect_peer(a.addr, &room, "on-a"),
            connect_peer(b.addr, &room, "on-b")
        );
        let listed = wait_until(
            || {
                let room = room.clone();
                async move { owners(&cluster_view(a.addr).await, &room).len() == 1 }
            },
            TIMEOUT,
        )
        .await;
        let view = cluster_view(a.addr).await;
        assert!(listed, "room {room} on exactly one node: {view}");
        let owner = &owners(&view, &room)[0];
        let owner_addr = if owner == "node-a" { a.addr } else { b.addr };
        assert_eq!(
            peers_in(owner_addr, &room).await,
            2,
            "both peers in one room"
        );
        // Each sees the other: one of them got endpointAdded, or the other in connected.
        drop((pa, pb));
        // The room empties and its claim goes.
        let redis = &redis;
        let released = wait_until(
            || {
                let room = room.clone();
                async move { redis.cli(&["EXISTS", &format!("lamina:room:{room}")]) == "0" }
            },
            TIMEOUT,
        )
        .await;
        assert!(released, "an ended room's claim is released");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_channel_speaks_the_owners_protocol_and_its_cost_is_printed() {
    let redis = Redis::start();
    let a = node(&redis.url(), "node-a", "127.0.0.1").await;
    let b = node(&redis.url(), "node-b", "127.0.0.2").await;
    // The room is placed on A by its first join (through A).
    let mut sender = connect_peer(a.addr, "relay", "sender").await;
    assert_eq!(wait_owners(b.addr, "relay").await, ["node-a"]);

    // A direct and a relayed receiver.
    let mut direct = connect_peer(a.addr, "relay", "direct").await;
    let mut relayed = connect_peer(b.addr, "relay", "relayed").await;
    assert_eq!(peers_in(a.addr, "relay").await, 3);
    assert_eq!(
        peers_in(b.addr, "relay").await,
        0,
        "no room on the relaying node"
    );

    // The relayed client sees the owner's frames: its own refs and join ref, the owner's events.
    let hb = relayed.client.heartbeat().await;
    let reply = relayed.client.reply(&hb).await;
    assert!(
        reply.is_ok(),
        "heartbeats are answered by the node the client is on"
    );
    let r = relayed.rename("renamed").await;
    let reply = relayed.client.reply(&r).await;
    assert!(reply.is_ok());
    assert_eq!(reply.join_ref.as_deref(), Some(relayed.join_ref.as_str()));
    let seen = direct
        .client
        .next_frame_where(|f| {
            f.media_event()
                .is_some_and(|e| e["type"] == "endpointUpdated")
        })
        .await;
    assert_eq!(
        seen.media_event().unwrap()["data"]["id"],
        relayed.id.as_str()
    );

    // Join time, direct and relayed (socket, join, connect → connected), 10 each.
    let mut joins = [Vec::new(), Vec::new()];
    for i in 0..10 {
        for (k, addr) in [a.addr, b.addr].into_iter().enumerate() {
            let t = Instant::now();
            let p = connect_peer(addr, "relay", &format!("j{k}-{i}")).await;
            joins[k].push(t.elapsed());
            p.client.close().await;
        }
    }
    // Media-event latency: the sender updates its metadata 40 times (within the room's rate
    // limit); each `endpointUpdated` is timed at the direct and at the relayed receiver.
    let mut lat = [Vec::new(), Vec::new()];
    for i in 0..40 {
        let t = Instant::now();
        sender.rename(&format!("s{i}")).await;
        let name = format!("s{i}");
        for (k, peer) in [&mut direct, &mut relayed].into_iter().enumerate() {
            let n = name.clone();
            peer.client
                .next_frame_where(move |f| {
                    f.media_event().is_some_and(|e| {
                        e["type"] == "endpointUpdated"
                            && e["data"]["metadata"]["displayName"] == n.as_str()
                    })
                })
                .await;
            lat[k].push(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(110)).await;
    }
    println!(
        "cluster relay: join → connected p50 direct {:.1} ms, relayed {:.1} ms; media event p50 direct {:.2} ms, relayed {:.2} ms; p99 direct {:.2} ms, relayed {:.2} ms",
        percentile(&mut joins[0], 50.0),
        percentile(&mut joins[1], 50.0),
        percentile(&mut lat[0], 50.0),
        percentile(&mut lat[1], 50.0),
        percentile(&mut lat[0], 99.0),
        percentile(&mut lat[1], 99.0),
    );

    // The client leaves through the relay: the owner removes it, the relay's socket goes.
    let leave = relayed
        .client
        .push(&relayed.join_ref, &relayed.topic, "phx_leave", json!({}))
        .await;
    assert!(relayed.client.reply(&leave).await.is_ok());
    relayed
        .client
        .next_frame_where(|f| f.event == "phx_close")
        .await;
    let gone = wait_until(|| async { peers_in(a.addr, "relay").await == 2 }, TIMEOUT).await;
    assert!(gone, "the relayed peer left the owner's room");

    // Operator routes answer on any node: a redirect to the owner.
    let (status, body) = http_get(b.addr, "/debug/rooms/relay").await;
    assert_eq!(status, 307, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["node"], "node-a");
    assert_eq!(
        v["location"],
        format!("http://{}/debug/rooms/relay", a.addr)
    );
    let (status, body) = http_get(b.addr, "/rooms/relay/recordings").await;
    assert_eq!(status, 307, "{body}");
    let (status, _) = http_get(b.addr, "/debug/rooms/nowhere").await;
    assert_eq!(status, 404);

    // A relayed client whose socket ends leaves the owner's room too.
    direct.client.close().await;
    let mut last = connect_peer(b.addr, "relay", "last").await;
    assert!(wait_until(|| async { peers_in(a.addr, "relay").await == 2 }, TIMEOUT).await);
    let hb = last.client.heartbeat().await;
    assert!(last.client.reply(&hb).await.is_ok());
    last.client.close().await;
    let left = wait_until(|| async { peers_in(a.addr, "relay").await == 1 }, TIMEOUT).await;
    assert!(
        left,
        "closing the client's socket closes the relay and the owner's peer"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_relay_marks_stale_claims_and_garbage_records_harm_nothing() {
    let redis = Redis::start();
    let a = node(&redis.url(), "node-a", "127.0.0.1").await;
    let b = node(&redis.url(), "node-b", "127.0.0.2").await;
    let mut owner_peer = connect_peer(a.addr, "kept", "kept").await;

    // A client posing as a relaying node on B, for a room owned by A: refused, A unaffected.
    let mut request = format!("ws://{}/socket/websocket?vsn=2.0.0", b.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("x-lamina-relayed-by", "node-x".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::Text(
        json!(["1", "1", "room:kept", "phx_join", {}]).to_string(),
    ))
    .await
    .unwrap();
    let reply = tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let reply: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert_eq!(reply[4]["status"], "error", "{reply}");
    assert_eq!(
        reply[4]["response"]["reason"],
        "room is owned by node \"node-a\", not by this node"
    );
    assert_eq!(peers_in(a.addr, "kept").await, 1);
    // The same mark for a room nobody placed: a relayed join never creates a room (so a forged
    // mark cannot put rooms on a node, nor on a draining one).
    ws.send(Message::Text(
        json!(["2", "2", "room:forged-new", "phx_join", {}]).to_string(),
    ))
    .await
    .unwrap();
    let reply = tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let reply: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert_eq!(
        reply[4]["response"]["reason"], "room is not placed on this node",
        "{reply}"
    );
    assert!(redis.cli(&["EXISTS", "lamina:room:forged-new"]) == "0");
    assert_eq!(peers_in(b.addr, "forged-new").await, 0);

    // A claim naming a node that does not exist (stale or forged) is replaced at the next join.
    redis.cli(&["SET", "lamina:room:ghost-room", "node-ghost"]);
    let _p = connect_peer(b.addr, "ghost-room", "p").await;
    assert_eq!(wait_owners(a.addr, "ghost-room").await.len(), 1);
    assert_ne!(redis.cli(&["GET", "lamina:room:ghost-room"]), "node-ghost");

    // An unreadable node record is skipped (with a warning) and the cluster view still works.
    redis.cli(&["SET", "lamina:node:node-junk", "{not json"]);
    redis.cli(&["SADD", "lamina:nodes", "node-junk"]);
    let view = cluster_view(b.addr).await;
    assert_eq!(view["nodes"].as_array().unwrap().len(), 2, "{view}");
    let _q = connect_peer(b.addr, "after-junk", "q").await;

    // A room claim pointing at a node whose record is garbage: clear error, others unaffected.
    redis.cli(&["SET", "lamina:room:junk-room", "node-junk"]);
    let mut c = PhoenixClient::connect(b.addr).await;
    let err = c.join("room:junk-room").await.expect_err("refused");
    let reason = err.response()["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("answered garbage"), "{reason}");
    let hb = owner_peer.client.heartbeat().await;
    assert!(owner_peer.client.reply(&hb).await.is_ok());
    assert_eq!(peers_in(a.addr, "kept").await, 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_takes_no_new_room_and_is_drained_when_its_rooms_end() {
    let redis = Redis::start();
    let a = node(&redis.url(), "node-a", "127.0.0.1").await;
    let b = node(&redis.url(), "node-b", "127.0.0.2").await;
    let old = connect_peer(a.addr, "old", "old").await;
    // What `lamina drain` does.
    Directory::connect(&redis.url())
        .await
        .unwrap()
        .request_drain("node-a")
        .await
        .unwrap();
    let draining = wait_until(
        || async { cluster_view(b.addr).await["nodes"][0]["draining"] == true },
        TIMEOUT,
    )
    .await;
    assert!(draining, "/cluster shows node-a draining");
    // New rooms through A land on B; the old room keeps taking peers on A.
    let _n = connect_peer(a.addr, "new", "new").await;
    assert_eq!(wait_owners(a.addr, "new").await, ["node-b"]);
    let late = connect_peer(a.addr, "old", "late").await;
    assert_eq!(peers_in(a.addr, "old").await, 2);
    // Once its rooms have ended, the node reports drained (the binary then stops).
    let drained = a.cluster.clone().unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), drained.drained())
            .await
            .is_err(),
        "not drained while a room runs"
    );
    old.client.close().await;
    late.client.close().await;
    tokio::time::timeout(TIMEOUT, drained.drained())
        .await
        .expect("drained once the room ended");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarting_or_vanishing_keeps_running_calls_and_refuses_only_new_rooms() {
    let mut redis = Redis::start();
    let a = node(&redis.url(), "node-a", "127.0.0.1").await;
    let b = node(&redis.url(), "node-b", "127.0.0.2").await;
    let mut on_a = connect_peer(a.addr, "call", "x").await;
    let mut via_b = connect_peer(b.addr, "call", "y").await;

    // Redis restarts empty: the call goes on, the nodes register again with their claims.
    redis.restart();
    let back = wait_until(
        || async {
            try_cluster_view(b.addr).await.is_some_and(|v| {
                v["nodes"].as_array().unwrap().len() == 2 && owners(&v, "call") == ["node-a"]
            })
        },
        NODE_TTL + TIMEOUT,
    )
    .await;
    assert!(
        back,
        "registrations and claims come back after a Redis restart"
    );
    let r = via_b.rename("still here").await;
    assert!(via_b.client.reply(&r).await.is_ok());
    on_a.client
        .next_frame_where(|f| {
            f.media_event()
                .is_some_and(|e| e["data"]["metadata"]["displayName"] == "still here")
        })
        .await;

    // Redis gone: the call goes on; a new room is refused with a clear error; a join of the
    // running room on its owner still works.
    redis.kill();
    let mut c = PhoenixClient::connect(a.addr).await;
    let err = c
        .join("room:brand-new")
        .await
        .expect_err("refused without Redis");
    let reason = err.response()["reason"].as_str().unwrap().to_owned();
    assert!(
        reason.starts_with("cluster directory (Redis) unavailable"),
        "{reason}"
    );
    let _z = connect_peer(a.addr, "call", "z").await;
    let r = on_a.client.heartbeat().await;
    assert!(on_a.client.reply(&r).await.is_ok());
    let r = via_b.rename("no redis").await;
    assert!(
        via_b.client.reply(&r).await.is_ok(),
        "the relay does not need Redis"
    );
    on_a.client
        .next_frame_where(|f| {
            f.media_event()
                .is_some_and(|e| e["data"]["metadata"]["displayName"] == "no redis")
        })
        .await;
    assert!(
        !a.cluster.as_ref().unwrap().redis_up() || {
            // The refresh may not have run yet: wait for it.
            wait_until(
                || async { !a.cluster.as_ref().unwrap().redis_up() },
                TIMEOUT,
            )
            .await
        }
    );
    redis.restart();
    let registered = wait_until(
        || async {
            try_cluster_view(a.addr)
                .await
                .is_some_and(|v| v["nodes"].as_array().unwrap().len() == 2)
        },
        TIMEOUT,
    )
    .await;
    assert!(registered, "both nodes register again once Redis is back");
    let _n = connect_peer(a.addr, "brand-new", "n").await;
    assert!(ROOM_TTL <= Duration::from_secs(5));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_answering_garbage_or_nothing_is_a_clear_error_and_harms_no_room() {
    let redis = Redis::start();
    let proxy = Proxy::start(redis.port);
    // A talks to Redis through the proxy, B directly.
    let a = node(&proxy.url(), "node-a", "127.0.0.1").await;
    let b = node(&redis.url(), "node-b", "127.0.0.2").await;
    let mut on_a = connect_peer(a.addr, "steady", "s").await;
    let mut on_b = connect_peer(b.addr, "other", "o").await;
    for (mode, expect) in [
        (
            ProxyMode::Garbage,
            "cluster directory (Redis) answered garbage",
        ),
        (ProxyMode::Silent, "cluster directory (Redis) unavailable"),
    ] {
        proxy.set(mode);
        let mut c = PhoenixClient::connect(a.addr).await;
        let t = Instant::now();
        let err = c
            .join(&format!("room:new-{mode:?}"))
            .await
            .expect_err("refused");
        let reason = err.response()["reason"].as_str().unwrap().to_owned();
        assert!(reason.starts_with(expect), "{mode:?}: {reason}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{mode:?}: answered in {:?}",
            t.elapsed()
        );
        // Running rooms on both nodes are unaffected.
        for p in [&mut on_a, &mut on_b] {
            let r = p.rename(&format!("{mode:?}")).await;
            assert!(p.client.reply(&r).await.is_ok());
        }
        let _ = connect_peer(b.addr, &format!("b-{mode:?}"), "fine").await;
        println!(
            "cluster: Redis {mode:?} → join refused in {:?}: {reason}",
            t.elapsed()
        );
    }
    proxy.set(ProxyMode::Pass);
    let recovered = wait_until(
        || async { a.cluster.as_ref().unwrap().redis_up() },
        TIMEOUT + NODE_TTL,
    )
    .await;
    assert!(
        recovered,
        "node A uses Redis again once it answers properly"
    );
    let _n = connect_peer(a.addr, "after-garbage", "n").await;
    a.stop().await;
    b.stop().await;
}
