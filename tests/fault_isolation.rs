//! Failure isolation (docs/design.md §7): real GStreamer errors injected into a running room through
//! `POST /debug/rooms/<id>/fault` (`--debug-endpoints`).
//! - An error inside one peer's bin removes that peer only (with an `error`); the others keep
//!   decoding each other.
//! - An error of the room pipeline closes that room (every peer gets an `error`, the room
//!   leaves the registry) while the server keeps serving other rooms.

#[path = "support/hostile.rs"]
mod hostile;
mod support;

use hostile::{
    http_post, keeps_decoding, participant, wait_decoding, HostileRoom, MEDIA_TIMEOUT, ROOM,
};
use lamina::room::{RoomCommand, RoomId};
use support::{spawn_server, PhoenixClient};
use tokio::sync::oneshot;

fn debug_on(c: &mut lamina::config::Config) {
    c.debug_endpoints = true;
}

async fn peers_in(server: &lamina::server::Server, room: &str) -> usize {
    let handle = server.rooms.get(&RoomId(room.into())).expect("room runs");
    let (reply, rx) = oneshot::channel();
    assert!(handle.send(RoomCommand::Describe { reply }).await);
    let state = rx.await.expect("room answers");
    state["peers"].as_array().expect("peers").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_fault_removes_only_that_peer() {
    let room = HostileRoom::start(debug_on).await;
    let c = participant(&room.server, ROOM, "C").await;
    tokio::join!(
        wait_decoding(&c, &room.a.id, 5),
        wait_decoding(&c, &room.b.id, 5),
        wait_decoding(&room.a, &c.id, 5),
        wait_decoding(&room.b, &c.id, 5),
    );
    assert_eq!(peers_in(&room.server, ROOM).await, 3);

    let (status, body) = http_post(
        room.addr(),
        &format!("/debug/rooms/{ROOM}/fault?peer={}", c.id),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "fault injected"));

    // C is told and removed; A and B see it go.
    let s = c
        .wait_until("C told", MEDIA_TIMEOUT, |s| !s.errors.is_empty())
        .await
        .unwrap();
    assert!(
        s.errors[0].contains("injected fault"),
        "C's error: {:?}",
        s.errors
    );
    let c_id = c.id.clone();
    for p in [&room.a, &room.b] {
        p.wait_until("C removed", MEDIA_TIMEOUT, |s| {
            !s.endpoints.contains_key(&c_id) && s.tracks.values().all(|t| t.endpoint != c_id)
        })
        .await
        .unwrap();
    }
    assert!(
        support::wait_until(
            || async { peers_in(&room.server, ROOM).await == 2 },
            MEDIA_TIMEOUT
        )
        .await
    );
    // A and B keep decoding each other; the room still serves newcomers.
    room.assert_healthy().await;
    c.leave().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_fault_closes_only_that_room() {
    let room = HostileRoom::start(debug_on).await;
    let d = participant(&room.server, "other", "D").await;
    let e = participant(&room.server, "other", "E").await;
    tokio::join!(wait_decoding(&d, &e.id, 5), wait_decoding(&e, &d.id, 5));

    let (status, _) = http_post(room.addr(), &format!("/debug/rooms/{ROOM}/fault?room=1")).await;
    assert_eq!(status, 200);

    // Every peer of the failed room is told…
    for p in [&room.a, &room.b] {
        let s = p
            .wait_until("room failure told", MEDIA_TIMEOUT, |s| !s.errors.is_empty())
            .await
            .unwrap();
        assert!(s.errors[0].contains("room failed"), "{:?}", s.errors);
    }
    // …it stops taking peers at once, and leaves the registry once its pipeline is down.
    let id = RoomId(ROOM.into());
    assert!(
        support::wait_until(
            || async { room.server.rooms.get(&id).is_none() },
            MEDIA_TIMEOUT
        )
        .await,
        "failed room still running"
    );
    assert!(
        support::wait_until(
            || async { !room.server.rooms.ids().contains(&id) },
            MEDIA_TIMEOUT
        )
        .await,
        "failed room still registered"
    );

    // The other room is untouched.
    tokio::join!(keeps_decoding(&d, &e.id), keeps_decoding(&e, &d.id));
    assert!(room.server.rooms.get(&RoomId("other".into())).is_some());
    // The failed room's id can be used again: a fresh room.
    let mut fresh = hostile::Offender::join(room.addr(), ROOM).await;
    let connected = fresh.connect("Fresh").await;
    assert_eq!(connected["data"]["otherEndpoints"], serde_json::json!([]));
    fresh.client.close().await;
    hostile::assert_no_panic();
    d.leave().await;
    e.leave().await;
    room.finish().await;
}

#[tokio::test]
async fn fault_route_refuses_bad_requests() {
    let server = spawn_server(debug_on).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    c.join_ok("room:r").await;
    let post = |path: &'static str| http_post(server.addr, path);
    assert_eq!(post("/debug/rooms/r/fault").await.0, 400);
    assert_eq!(post("/debug/rooms/r/fault?room=0").await.0, 400);
    assert_eq!(post("/debug/rooms/r/fault?room=1&peer=x").await.0, 400);
    assert_eq!(post("/debug/rooms/nope/fault?room=1").await.0, 404);
    // A joined peer that never sent `connect` has no media bin yet.
    let (status, body) = post("/debug/rooms/r/fault?peer=nobody").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("unknown peer"), "{body}");
    // The room was not harmed.
    assert!(server.rooms.get(&RoomId("r".into())).is_some());
    server.stop().await;

    // Without --debug-endpoints the route does not exist.
    let server = spawn_server(|_| {}).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    c.join_ok("room:r").await;
    assert_eq!(
        http_post(server.addr, "/debug/rooms/r/fault?room=1")
            .await
            .0,
        404
    );
    assert!(server.rooms.get(&RoomId("r".into())).is_some());
    server.stop().await;
}
