//! Bad input and limits through the room core: events before `connect`, broken offers, a
//! peer vanishing mid-negotiation, renegotiation floods, room limits and the metadata-update
//! budget.

use std::time::SystemTime;

use serde_json::json;

use super::tests::*;
use super::*;

#[test]
fn peer_vanishing_mid_negotiation_harms_nobody() {
    let mut r = room();
    publisher(&mut r, "A");
    connect(&mut r, "B", "Bob");
    // B got offerData and leaves before its offer.
    let fx = r.leave(&id("B"));
    assert_eq!(kinds(&fx, "A"), ["endpointRemoved"]);
    // Late pipeline events for B are ignored.
    assert!(answer(&mut r, "B").is_empty());
    assert!(connected(&mut r, "B").is_empty());
    // A is unaffected.
    assert_eq!(kinds(&renegotiate(&mut r, "A"), "A"), ["offerData"]);
}

#[test]
fn bad_offers_get_errors() {
    let mut r = room();
    connect(&mut r, "A", "Alice");
    // No offerData pending.
    let fx = offer(&mut r, "A", &[("audio", "0", "a")], &[]);
    assert_eq!(kinds(&fx, "A"), ["error"]);
    renegotiate(&mut r, "A");
    // More recvonly m-lines than asked for.
    let fx = offer(&mut r, "A", &[], &[("video", "0")]);
    assert_eq!(kinds(&fx, "A"), ["error"]);
    renegotiate(&mut r, "A");
    let fx = r.client_event(
        &id("A"),
        ClientEvent::SdpOffer {
            sdp: "garbage".into(),
            track_metadata: BTreeMap::new(),
            mid_to_track_id: BTreeMap::new(),
            track_bitrates: BTreeMap::new(),
        },
    );
    assert_eq!(kinds(&fx, "A"), ["error"]);
    renegotiate(&mut r, "A");
    // A track id with another endpoint's prefix.
    let fx = r.client_event(
        &id("A"),
        ClientEvent::SdpOffer {
            sdp: sdp(&[("video", "0")], &[]),
            track_metadata: BTreeMap::new(),
            mid_to_track_id: [("0".to_string(), "B:x".to_string())].into(),
            track_bitrates: BTreeMap::new(),
        },
    );
    assert_eq!(kinds(&fx, "A"), ["error"]);
    renegotiate(&mut r, "A");
    // Too many tracks.
    let fx = offer(
        &mut r,
        "A",
        &[
            ("audio", "0", "1"),
            ("audio", "1", "2"),
            ("audio", "2", "3"),
            ("audio", "3", "4"),
        ],
        &[],
    );
    assert_eq!(kinds(&fx, "A"), ["error"]);
    // The peer can still negotiate properly afterwards.
    renegotiate(&mut r, "A");
    let fx = offer(&mut r, "A", &[("audio", "0", "a")], &[]);
    assert_eq!(plan(&fx).publish.len(), 1);
}

#[test]
fn events_before_connect_are_refused() {
    let mut r = room();
    r.join(id("A")).unwrap();
    let fx = renegotiate(&mut r, "A");
    assert_eq!(kinds(&fx, "A"), ["error"]);
}

#[test]
fn renegotiate_flood_gives_one_round_at_a_time() {
    let mut r = room();
    connect(&mut r, "A", "Alice");
    let mut offers = 0;
    for _ in 0..1000 {
        offers += kinds(&renegotiate(&mut r, "A"), "A").len();
    }
    assert_eq!(offers, 1);
}

#[test]
fn room_limits() {
    let mut r = room();
    for p in ["A", "B", "C", "D"] {
        r.join(id(p)).unwrap();
    }
    assert_eq!(r.join(id("E")), Err(JoinError::RoomFull));
}

#[test]
fn metadata_updates_are_limited_in_the_cores_time() {
    let mut r = room();
    connect(&mut r, "A", "Alice");
    connect(&mut r, "B", "Bob");
    let t0 = Instant::now();
    r.advance(t0, SystemTime::UNIX_EPOCH);
    let update = |r: &mut RoomCore, n: u32| {
        r.client_event(
            &id("A"),
            ClientEvent::UpdateEndpointMetadata {
                metadata: json!({ "n": n }),
            },
        )
    };
    // A burst of twice the rate passes; the next update in the same instant is refused.
    let burst = 2 * METADATA_UPDATES_PER_SEC;
    for n in 0..burst {
        assert_eq!(
            kinds(&update(&mut r, n), "B"),
            ["endpointUpdated"],
            "update {n}"
        );
    }
    let fx = update(&mut r, burst);
    assert_eq!(kinds(&fx, "A"), ["error"]);
    assert!(kinds(&fx, "B").is_empty());
    // One second later the budget has refilled.
    r.advance(t0 + Duration::from_secs(1), SystemTime::UNIX_EPOCH);
    assert_eq!(kinds(&update(&mut r, burst + 1), "B"), ["endpointUpdated"]);
}
