//! The room channel with the real room behind it (docs/protocol.md §3.7 and §8): `connect` →
//! `connected`, `endpointAdded` to the others, and `endpointRemoved` whichever way a peer goes.

mod support;

use serde_json::{json, Value};
use support::{spawn_server, PhoenixClient};

/// A peer that joined `topic` and sent `connect`; holds its join ref and endpoint id.
struct Peer {
    client: PhoenixClient,
    topic: String,
    join_ref: String,
    id: String,
    connected: Value,
}

async fn connect_peer(addr: std::net::SocketAddr, topic: &str, name: &str) -> Peer {
    let mut client = PhoenixClient::connect(addr).await;
    let join_ref = client.join_ok(topic).await;
    let r = client
        .media_event(
            &join_ref,
            topic,
            json!({"type": "connect", "data": {"metadata": {"displayName": name}}}),
        )
        .await;
    assert_eq!(client.reply(&r).await.status(), "ok");
    let frame = client
        .next_frame_where(|f| f.media_event().is_some_and(|e| e["type"] == "connected"))
        .await;
    // Server pushes carry the current join ref and a null ref.
    assert_eq!(frame.join_ref.as_deref(), Some(join_ref.as_str()));
    assert_eq!(frame.reference, None);
    assert_eq!(frame.topic, topic);
    let connected = frame.media_event().expect("media event");
    let id = connected["data"]["id"]
        .as_str()
        .expect("connected.data.id is a string")
        .to_owned();
    Peer {
        client,
        topic: topic.to_owned(),
        join_ref,
        id,
        connected,
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

async fn endpoint_removed(p: &mut Peer, id: &str) {
    let removed = p.client.media_event_of_type("endpointRemoved").await;
    assert_eq!(removed["data"]["id"], id);
}

#[tokio::test]
async fn connect_gets_connected_with_a_fresh_uuid() {
    let server = spawn_server(|_| {}).await;
    let a = connect_peer(server.addr, "room:first", "Alice").await;
    assert!(is_uuid(&a.id), "{}", a.id);
    assert_eq!(a.connected["data"]["otherEndpoints"], json!([]));
    let b = connect_peer(server.addr, "room:other", "Bob").await;
    assert_ne!(a.id, b.id);
    server.stop().await;
}

#[tokio::test]
async fn second_peer_sees_the_first_and_the_first_gets_endpoint_added() {
    let server = spawn_server(|_| {}).await;
    let mut a = connect_peer(server.addr, "room:pair", "Alice").await;
    let b = connect_peer(server.addr, "room:pair", "Bob").await;
    let others = b.connected["data"]["otherEndpoints"]
        .as_array()
        .expect("otherEndpoints is an array");
    assert_eq!(others.len(), 1);
    assert_eq!(others[0]["id"], a.id.as_str());
    assert_eq!(others[0]["type"], "webrtc");
    assert_eq!(others[0]["metadata"], json!({"displayName": "Alice"}));

    let added = a.client.media_event_of_type("endpointAdded").await;
    assert_eq!(
        added["data"],
        json!({"id": b.id, "type": "webrtc", "metadata": {"displayName": "Bob"}})
    );
    server.stop().await;
}

#[tokio::test]
async fn socket_close_removes_the_peer_for_the_others() {
    let server = spawn_server(|_| {}).await;
    let mut a = connect_peer(server.addr, "room:close", "Alice").await;
    let b = connect_peer(server.addr, "room:close", "Bob").await;
    a.client.media_event_of_type("endpointAdded").await;
    let b_id = b.id.clone();
    b.client.close().await;
    endpoint_removed(&mut a, &b_id).await;
    server.stop().await;
}

#[tokio::test]
async fn dropped_connection_removes_the_peer_for_the_others() {
    let server = spawn_server(|_| {}).await;
    let mut a = connect_peer(server.addr, "room:drop", "Alice").await;
    let b = connect_peer(server.addr, "room:drop", "Bob").await;
    a.client.media_event_of_type("endpointAdded").await;
    let b_id = b.id.clone();
    drop(b); // TCP closed without a close handshake
    endpoint_removed(&mut a, &b_id).await;
    server.stop().await;
}

#[tokio::test]
async fn leave_removes_the_peer_for_the_others() {
    let server = spawn_server(|_| {}).await;
    let mut a = connect_peer(server.addr, "room:leaving", "Alice").await;
    let mut b = connect_peer(server.addr, "room:leaving", "Bob").await;
    a.client.media_event_of_type("endpointAdded").await;
    let r = b
        .client
        .push(&b.join_ref, &b.topic, "phx_leave", json!({}))
        .await;
    assert_eq!(b.client.reply(&r).await.status(), "ok");
    b.client.next_frame_where(|f| f.event == "phx_close").await;
    endpoint_removed(&mut a, &b.id).await;
    server.stop().await;
}

#[tokio::test]
async fn disconnect_media_event_closes_the_channel() {
    let server = spawn_server(|_| {}).await;
    let mut a = connect_peer(server.addr, "room:disc", "Alice").await;
    let mut b = connect_peer(server.addr, "room:disc", "Bob").await;
    a.client.media_event_of_type("endpointAdded").await;
    b.client
        .media_event(&b.join_ref, &b.topic, json!({"type": "disconnect"}))
        .await;
    let close = b.client.next_frame_where(|f| f.event == "phx_close").await;
    assert_eq!(close.join_ref.as_deref(), Some(b.join_ref.as_str()));
    assert_eq!(close.topic, b.topic);
    endpoint_removed(&mut a, &b.id).await;
    // The channel is gone on the server too.
    let r = b
        .client
        .media_event(
            &b.join_ref,
            &b.topic,
            json!({"type": "connect", "data": {"metadata": {}}}),
        )
        .await;
    assert_eq!(
        b.client.reply(&r).await.response(),
        &json!({"reason": "unmatched topic"})
    );
    server.stop().await;
}

#[tokio::test]
async fn rejoin_on_the_same_socket_replaces_the_peer() {
    let server = spawn_server(|_| {}).await;
    let mut a = connect_peer(server.addr, "room:rejoin", "Alice").await;
    let mut b = connect_peer(server.addr, "room:rejoin", "Bob").await;
    a.client.media_event_of_type("endpointAdded").await;
    let old_id = b.id.clone();
    let new_ref = b.client.send_join("room:rejoin").await;
    let close = b.client.next_frame_where(|f| f.event == "phx_close").await;
    assert_eq!(close.join_ref.as_deref(), Some(b.join_ref.as_str()));
    assert_eq!(b.client.reply(&new_ref).await.status(), "ok");
    endpoint_removed(&mut a, &old_id).await;
    // The new channel instance is a new peer.
    let r = b
        .client
        .media_event(
            &new_ref,
            "room:rejoin",
            json!({"type": "connect", "data": {"metadata": {"displayName": "Bob again"}}}),
        )
        .await;
    assert_eq!(b.client.reply(&r).await.status(), "ok");
    let connected = b.client.media_event_of_type("connected").await;
    assert_ne!(connected["data"]["id"], old_id.as_str());
    let others = connected["data"]["otherEndpoints"].as_array().unwrap();
    assert_eq!(others.len(), 1);
    assert_eq!(others[0]["id"], a.id.as_str());
    server.stop().await;
}

#[tokio::test]
async fn rooms_are_isolated() {
    let server = spawn_server(|_| {}).await;
    let mut a = connect_peer(server.addr, "room:iso-1", "Alice").await;
    let b = connect_peer(server.addr, "room:iso-2", "Bob").await;
    assert_eq!(b.connected["data"]["otherEndpoints"], json!([]));
    let c = connect_peer(server.addr, "room:iso-1", "Carol").await;
    let others = c.connected["data"]["otherEndpoints"].as_array().unwrap();
    assert_eq!(others.len(), 1);
    assert_eq!(others[0]["id"], a.id.as_str());
    let added = a.client.media_event_of_type("endpointAdded").await;
    assert_eq!(
        added["data"]["id"],
        c.id.as_str(),
        "Bob is not announced to Alice"
    );
    server.stop().await;
}

#[tokio::test]
async fn full_room_refuses_the_join() {
    let server = spawn_server(|c| c.max_peers_per_room = 2).await;
    let _a = connect_peer(server.addr, "room:full", "Alice").await;
    let _b = connect_peer(server.addr, "room:full", "Bob").await;
    let mut c = PhoenixClient::connect(server.addr).await;
    let reply = c.join("room:full").await.expect_err("room is full");
    assert_eq!(reply.join_ref, reply.reference);
    assert_eq!(
        reply.payload,
        json!({"status": "error", "response": {"reason": "room_full"}})
    );
    server.stop().await;
}

#[tokio::test]
async fn garbage_media_events_do_not_break_the_room() {
    let server = spawn_server(|_| {}).await;
    let mut a = connect_peer(server.addr, "room:garbage", "Alice").await;
    for data in ["not json", "{}", "{\"type\":\"nope\"}", "[1,2,3]"] {
        let r = a
            .client
            .push(&a.join_ref, &a.topic, "mediaEvent", json!({"data": data}))
            .await;
        assert_eq!(a.client.reply(&r).await.status(), "ok");
    }
    // The room still serves newcomers.
    let b = connect_peer(server.addr, "room:garbage", "Bob").await;
    assert!(b.connected["data"]["otherEndpoints"].is_array());
    server.stop().await;
}

#[tokio::test]
async fn room_shutdown_closes_the_channels() {
    let server = spawn_server(|_| {}).await;
    let mut a = connect_peer(server.addr, "room:shutdown", "Alice").await;
    for room in server.rooms.handles() {
        assert!(room.send(lamina::room::RoomCommand::Shutdown).await);
    }
    let error = a.client.media_event_of_type("error").await;
    assert!(error["data"]["message"].is_string(), "{error}");
    let close = a.client.next_frame_where(|f| f.event == "phx_close").await;
    assert_eq!(close.join_ref.as_deref(), Some(a.join_ref.as_str()));
    // The channel is forgotten: a new join on the same socket starts a fresh room.
    a.client.join_ok("room:shutdown").await;
    server.stop().await;
}
