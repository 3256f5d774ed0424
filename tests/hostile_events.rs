//! Hostile media events (the `data` of `"mediaEvent"` pushes) from one client of a room,
//! through real WebSockets against a real server. For each case the offender gets an error
//! (reply or `error` media event) or is disconnected, the two healthy participants of the room
//! keep decoding each other, and the server still serves newcomers.

#[path = "support/hostile.rs"]
mod hostile;
mod support;

use hostile::{HostileRoom, Outcome};
use serde_json::json;

/// Asserts the offender's next error is an `error` media event containing `needle`.
async fn error_event_contains(o: &mut hostile::Offender, needle: &str) {
    let message = o.error_event().await;
    assert!(
        message.contains(needle),
        "error {message:?} lacks {needle:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_not_a_string() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    for payload in [
        json!({"data": {"type": "renegotiateTracks"}}),
        json!({"data": 5}),
        json!({"data": null}),
        json!({}),
    ] {
        let r = o.push("mediaEvent", payload).await;
        let reason = o.error_reply(&r).await;
        assert_eq!(reason, "mediaEvent payload must be {\"data\": string}");
    }
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_not_json() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    o.data("{\"type\": \"connect\", ").await;
    error_event_contains(&mut o, "not valid JSON").await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_deeply_nested() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    let deep = format!(
        r#"{{"type":"connect","data":{{"metadata":{}{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    o.data(&deep).await;
    error_event_contains(&mut o, "not valid JSON").await;
    // Nested `custom` wrappers are not unwrapped more than once.
    let mut ev = json!({"type": "renegotiateTracks"});
    for _ in 0..100 {
        ev = json!({"type": "custom", "data": ev});
    }
    o.event(ev).await;
    error_event_contains(&mut o, "unknown media event type: custom").await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_media_event_type() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    o.event(json!({"type": "becomeAdmin", "data": {}})).await;
    error_event_contains(&mut o, "unknown media event type: becomeAdmin").await;
    o.custom("sdpAnswer", json!({"type": "answer", "sdp": "v=0"}))
        .await;
    error_event_contains(&mut o, "unknown media event type: sdpAnswer").await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_event_without_a_type() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    for data in ["{}", "[1,2,3]", "\"connect\"", "{\"type\":5}", "null"] {
        o.data(data).await;
        error_event_contains(&mut o, "string \"type\"").await;
    }
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_before_connect() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.offender().await;
    o.custom("renegotiateTracks", json!(null)).await;
    error_event_contains(&mut o, "send \"connect\" first").await;
    o.event(json!({"type": "updateEndpointMetadata", "data": {"metadata": {"displayName": "x"}}}))
        .await;
    error_event_contains(&mut o, "send \"connect\" first").await;
    o.candidate(json!("candidate:1 1 udp 1 127.0.0.1 9 typ host"), json!(0))
        .await;
    error_event_contains(&mut o, "send \"connect\" first").await;
    // The offender never became an endpoint.
    assert_eq!(room.a.snapshot().endpoints.len(), 1);
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_connect() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    o.event(json!({"type": "connect", "data": {"metadata": {"displayName": "Again"}}}))
        .await;
    error_event_contains(&mut o, "already connected").await;
    // The others still know it by its first name.
    let id = o.id.clone();
    let s = room
        .a
        .wait_until("offender listed", hostile::MEDIA_TIMEOUT, |s| {
            s.endpoints.contains_key(&id)
        })
        .await
        .unwrap();
    assert_eq!(s.endpoints[&id]["displayName"], "Mallory");
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_without_metadata() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.offender().await;
    o.event(json!({"type": "connect"})).await;
    error_event_contains(&mut o, "missing field \"metadata\"").await;
    o.event(json!({"type": "connect", "data": "metadata"}))
        .await;
    error_event_contains(&mut o, "missing field \"metadata\"").await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_display_name() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.offender().await;
    let name = "N".repeat(900 * 1024);
    o.event(json!({"type": "connect", "data": {"metadata": {"displayName": name}}}))
        .await;
    error_event_contains(&mut o, "metadata is too large").await;
    // The same through a metadata update of a connected peer.
    o.connect("Mallory").await;
    o.event(json!({"type": "updateEndpointMetadata", "data": {"metadata": {"displayName": name}}}))
        .await;
    error_event_contains(&mut o, "metadata is too large").await;
    let id = o.id.clone();
    let s = room.a.snapshot();
    assert!(
        s.endpoints
            .get(&id)
            .is_none_or(|m| m["displayName"] == "Mallory"),
        "A got the huge name"
    );
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_track_metadata_with_a_numeric_track_id() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    o.event(json!({"type": "updateTrackMetadata", "data": {"trackId": 7, "trackMetadata": {}}}))
        .await;
    error_event_contains(&mut o, "\"trackId\" must be a string").await;
    o.event(json!({"type": "updateTrackMetadata", "data": {"trackId": "x"}}))
        .await;
    error_event_contains(&mut o, "missing field \"trackMetadata\"").await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_track_metadata_of_another_peers_track() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    let b_tracks: Vec<String> = hostile::frames_from(&room.a.snapshot(), &room.b.id)
        .into_keys()
        .collect();
    assert_eq!(b_tracks.len(), 2);
    for t in &b_tracks {
        o.event(json!({"type": "updateTrackMetadata",
                       "data": {"trackId": t, "trackMetadata": {"type": "hacked"}}}))
            .await;
        error_event_contains(&mut o, "unknown track").await;
    }
    o.event(json!({"type": "enableTrackEncoding",
                   "data": {"trackId": b_tracks[0], "encoding": "h"}}))
        .await;
    error_event_contains(&mut o, "unknown track").await;
    room.assert_healthy().await;
    let s = room.a.snapshot();
    for t in &b_tracks {
        assert_ne!(s.tracks[t].metadata["type"], "hacked");
    }
    assert!(!s.log.iter().any(|t| t.contains("trackUpdated")));
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_index_of_wrong_type() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    let c = json!("candidate:1 1 udp 2122260223 127.0.0.1 9 typ host");
    for index in [json!("0"), json!(null), json!(0.5), json!([0])] {
        o.candidate(c.clone(), index).await;
        error_event_contains(&mut o, "sdpMLineIndex").await;
    }
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_index_negative() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    let c = json!("candidate:1 1 udp 2122260223 127.0.0.1 9 typ host");
    for index in [json!(-1), json!(i64::MIN)] {
        o.candidate(c.clone(), index).await;
        error_event_contains(&mut o, "sdpMLineIndex").await;
    }
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_index_huge() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    let c = json!("candidate:1 1 udp 2122260223 127.0.0.1 9 typ host");
    for index in [json!(1024), json!(u32::MAX), json!(u64::MAX), json!(1e300)] {
        o.candidate(c.clone(), index).await;
        error_event_contains(&mut o, "sdpMLineIndex").await;
    }
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_not_a_string() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    for c in [json!(5), json!(null), json!({"candidate": "x"})] {
        o.candidate(c, json!(0)).await;
        error_event_contains(&mut o, "\"candidate\" must be a string").await;
    }
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_candidates_before_any_offer() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    for i in 0..1000 {
        o.candidate(
            json!(format!(
                "candidate:{i} 1 udp 2122260223 127.0.0.1 {} typ host",
                10_000 + i
            )),
            json!(0),
        )
        .await;
    }
    // Buffered up to a bound, then refused (or rate limited, or disconnected for flooding).
    match o.outcome().await {
        Outcome::ErrorEvent(m) => assert!(m.contains("too many candidates"), "{m}"),
        Outcome::ErrorReply(r) => assert_eq!(r, "rate_limited"),
        Outcome::Disconnected(_) => {}
    }
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renegotiate_tracks_flood() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    for _ in 0..1000 {
        o.custom("renegotiateTracks", json!(null)).await;
    }
    let outcome = o.outcome().await;
    assert!(
        matches!(&outcome, Outcome::ErrorReply(r) if r == "rate_limited")
            || matches!(outcome, Outcome::Disconnected(_)),
        "{outcome:?}"
    );
    // One round in flight at a time: the flood did not start more rounds.
    let offers = o
        .settled_barrier()
        .await
        .iter()
        .filter(|f| hostile::media(f).is_some_and(|(t, _)| t == "offerData"))
        .count();
    assert!(offers <= 1, "{offers} offerData");
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_after_leave() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    let id = o.id.clone();
    let r = o.push("phx_leave", json!({})).await;
    assert_eq!(o.client.reply(&r).await.status(), "ok");
    o.client.next_frame_where(|f| f.event == "phx_close").await;
    let r = o
        .event(json!({"type": "connect", "data": {"metadata": {}}}))
        .await;
    assert_eq!(o.error_reply(&r).await, "unmatched topic");
    let r = o.custom("renegotiateTracks", json!(null)).await;
    assert_eq!(o.error_reply(&r).await, "unmatched topic");
    let r = o.push("phx_leave", json!({})).await;
    assert_eq!(o.error_reply(&r).await, "unmatched topic");
    room.a
        .wait_until("offender gone", hostile::MEDIA_TIMEOUT, |s| {
            !s.endpoints.contains_key(&id)
        })
        .await
        .unwrap();
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_events_with_wrong_field_types() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    for (ev, needle) in [
        (
            json!({"type": "updateEndpointMetadata", "data": {}}),
            "missing field \"metadata\"",
        ),
        (
            json!({"type": "updateEndpointMetadata", "data": [{"metadata": 1}]}),
            "missing field \"metadata\"",
        ),
        (
            json!({"type": "enableTrackEncoding", "data": {"trackId": 5, "encoding": "h"}}),
            "\"trackId\" must be a string",
        ),
        (
            json!({"type": "disableTrackEncoding", "data": {"trackId": "t", "encoding": null}}),
            "\"encoding\" must be a string",
        ),
        (json!({"type": "custom"}), "string \"type\""),
        (
            json!({"type": "custom", "data": "sdpOffer"}),
            "string \"type\"",
        ),
        (
            json!({"type": "custom", "data": {"type": "sdpOffer"}}),
            "missing field \"sdpOffer\"",
        ),
        (
            json!({"type": "custom", "data": {"type": "candidate", "data": 7}}),
            "missing field \"candidate\"",
        ),
    ] {
        o.event(ev).await;
        error_event_contains(&mut o, needle).await;
    }
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_ids_are_not_echoed_back() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    let huge = "i".repeat(900 * 1024);
    o.event(json!({"type": "updateTrackMetadata",
                   "data": {"trackId": huge, "trackMetadata": {}}}))
        .await;
    let message = o.error_event().await;
    assert!(message.starts_with("unknown track"), "{}", &message[..40]);
    assert!(message.len() < 1024, "error of {} bytes", message.len());
    o.event(json!({"type": "enableTrackEncoding", "data": {"trackId": huge, "encoding": "h"}}))
        .await;
    assert!(o.error_event().await.len() < 1024);
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_update_flood() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    // Every update differs and is near the size limit: relayed to A and B as long as the
    // rate limit lets it through.
    let pad = "m".repeat(15_000);
    let started = std::time::Instant::now();
    for i in 0..600 {
        o.event(json!({"type": "updateEndpointMetadata",
                       "data": {"metadata": {"displayName": format!("{i}"), "pad": pad}}}))
            .await;
    }
    // Relayed to everyone, so throttled per peer well below the socket's rate limit.
    let message = o.error_event().await;
    assert!(
        message.contains("metadata updates too frequent"),
        "{message}"
    );
    let before = room.a.snapshot();
    room.assert_healthy().await;
    let relayed = room
        .a
        .snapshot()
        .log
        .iter()
        .filter(|t| *t == "endpointUpdated")
        .count();
    // A burst of 20, then 10 per second while the flood lasted.
    let bound = 20 + 10 * (started.elapsed().as_secs() as usize + 1);
    assert!(
        relayed <= bound,
        "A got {relayed} of the 600 updates (bound {bound})"
    );
    assert!(before.endpoints.contains_key(&o.id));
    room.finish().await;
}
