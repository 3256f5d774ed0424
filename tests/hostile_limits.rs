//! Server limits not covered by the protocol tests, hit by one client of a busy server: the
//! offender is refused clearly, the two healthy participants keep decoding each other.
//! (Frame size, rate, peers per room, outbound queue and idle timeout are covered in
//! `protocol_socket.rs` / `protocol_room.rs`, and again under attack in `hostile_*.rs`.)

#[path = "support/hostile.rs"]
mod hostile;
mod support;

use hostile::{offer_sdp, recvonly, HostileRoom, Offender, M};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_rooms() {
    let room = HostileRoom::start(|c| c.max_rooms = 1).await;
    let mut o = support::PhoenixClient::connect(room.addr()).await;
    for topic in ["room:another", "room:yet-another"] {
        let reply = o.join(topic).await.expect_err("no room left");
        assert_eq!(reply.join_ref, reply.reference);
        assert_eq!(
            reply.payload,
            json!({"status": "error", "response": {"reason": "too_many_rooms"}})
        );
    }
    assert_eq!(room.server.rooms.len(), 1);
    // The existing room still takes peers.
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_tracks_per_peer() {
    let room = HostileRoom::start(|c| c.max_tracks_per_peer = 2).await;
    let mut o: Offender = room.connected_offender().await;
    let id = o.id.clone();
    let (a, v) = o.offer_data().await;
    let mut mlines = recvonly(a, v);
    let mut mids = serde_json::Map::new();
    for (i, kind) in ["audio", "video", "video"].into_iter().enumerate() {
        mlines.push(M {
            kind,
            dir: "sendonly",
        });
        mids.insert((a + v + i).to_string(), json!(format!("{id}:t{i}")));
    }
    o.send_offer(&offer_sdp(&mlines), json!(mids)).await;
    let message = o.error_event().await;
    assert!(message.contains("too many tracks (limit 2)"), "{message}");
    room.assert_healthy().await;
    let s = room.a.snapshot();
    assert!(
        s.tracks.values().all(|t| t.endpoint != id),
        "{:?}",
        s.tracks
    );
    room.finish().await;
}
