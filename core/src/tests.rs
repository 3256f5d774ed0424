//! RoomCore sequences from docs/protocol.md §3.7 that need no media.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::*;
use lamina_seam::OfferPlan;

struct FixedTurn;

impl TurnProvider for FixedTurn {
    fn servers_for(&self, peer: &PeerId) -> Vec<TurnServerInfo> {
        vec![TurnServerInfo {
            addr: "127.0.0.1".into(),
            port: 3478,
            transport: "udp".into(),
            username: format!("9999999999:{peer}"),
            password: "pw".into(),
        }]
    }
}

pub(crate) fn room() -> RoomCore {
    RoomCore::new(
        Limits {
            max_peers: 4,
            max_tracks_per_peer: 3,
        },
        Arc::new(FixedTurn),
    )
}

pub(crate) fn id(s: &str) -> PeerId {
    PeerId::new(s)
}

/// The media events pushed to `peer`, by wire name.
pub(crate) fn kinds(fx: &[Effect], peer: &str) -> Vec<&'static str> {
    events(fx, peer).iter().map(|e| e.kind()).collect()
}

pub(crate) fn events<'a>(fx: &'a [Effect], peer: &str) -> Vec<&'a ServerEvent> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Push { peer: p, event } if p.as_str() == peer => Some(event),
            _ => None,
        })
        .collect()
}

pub(crate) fn plan(fx: &[Effect]) -> &OfferPlan {
    fx.iter()
        .find_map(|e| match e {
            Effect::Media(MediaCommand::HandleOffer { plan, .. }) => Some(plan),
            _ => None,
        })
        .expect("a HandleOffer effect")
}

pub(crate) fn connect(r: &mut RoomCore, p: &str, name: &str) -> Vec<Effect> {
    r.join(id(p)).unwrap();
    r.client_event(
        &id(p),
        ClientEvent::Connect {
            metadata: json!({"displayName": name}),
        },
    )
}

/// An offer with `send` sendonly m-lines (kind, mid) and `recv` recvonly m-lines.
pub(crate) fn sdp(send: &[(&str, &str)], recv: &[(&str, &str)]) -> String {
    let mut s = String::from("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n");
    for (kind, mid) in send {
        s += &format!(
            "m={kind} 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:u\r\na=mid:{mid}\r\na=sendonly\r\n"
        );
    }
    for (kind, mid) in recv {
        s += &format!("m={kind} 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{mid}\r\na=recvonly\r\n");
    }
    s
}

pub(crate) fn offer(
    r: &mut RoomCore,
    p: &str,
    send: &[(&str, &str, &str)],
    recv: &[(&str, &str)],
) -> Vec<Effect> {
    let sendlines: Vec<(&str, &str)> = send.iter().map(|(k, m, _)| (*k, *m)).collect();
    let mids: BTreeMap<String, String> = send
        .iter()
        .map(|(_, m, t)| (m.to_string(), format!("{p}:{t}")))
        .collect();
    let meta = send
        .iter()
        .map(|(k, _, t)| (format!("{p}:{t}"), json!({"type": k})))
        .collect();
    r.client_event(
        &id(p),
        ClientEvent::SdpOffer {
            sdp: sdp(&sendlines, recv),
            track_metadata: meta,
            mid_to_track_id: mids,
            track_bitrates: BTreeMap::new(),
        },
    )
}

pub(crate) fn answer(r: &mut RoomCore, p: &str) -> Vec<Effect> {
    r.media_event(MediaEvent::AnswerReady {
        peer: id(p),
        sdp: "v=0 answer".into(),
    })
}

pub(crate) fn connected(r: &mut RoomCore, p: &str) -> Vec<Effect> {
    r.media_event(MediaEvent::PeerConnected { peer: id(p) })
}

pub(crate) fn renegotiate(r: &mut RoomCore, p: &str) -> Vec<Effect> {
    r.client_event(&id(p), ClientEvent::RenegotiateTracks)
}

/// A connected with camera + microphone published and its round finished.
pub(crate) fn publisher(r: &mut RoomCore, p: &str) {
    connect(r, p, p);
    renegotiate(r, p);
    offer(r, p, &[("audio", "0", "a"), ("video", "1", "v")], &[]);
    answer(r, p);
    connected(r, p);
}

#[test]
fn first_peer_connects_to_empty_room() {
    let mut r = room();
    let fx = connect(&mut r, "A", "Alice");
    assert_eq!(kinds(&fx, "A"), ["connected"]);
    assert!(fx.contains(&Effect::Media(MediaCommand::AddPeer(id("A")))));
    match events(&fx, "A")[0] {
        ServerEvent::Connected {
            id,
            other_endpoints,
        } => {
            assert_eq!(id, "A");
            assert!(other_endpoints.is_empty());
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn publisher_round_answer_and_pending_round() {
    let mut r = room();
    connect(&mut r, "A", "Alice");
    let fx = renegotiate(&mut r, "A");
    assert_eq!(kinds(&fx, "A"), ["offerData"]);
    match events(&fx, "A")[0] {
        ServerEvent::OfferData {
            audio,
            video,
            turn_servers,
        } => {
            assert_eq!((*audio, *video), (0, 0));
            assert_eq!(turn_servers.len(), 1);
        }
        e => panic!("{e:?}"),
    }
    // The second renegotiateTracks (0.5.x sends one per addTrack) only sets the pending flag.
    assert!(renegotiate(&mut r, "A").is_empty());
    let fx = offer(
        &mut r,
        "A",
        &[("audio", "0", "a"), ("video", "1", "v")],
        &[],
    );
    let p = plan(&fx);
    assert_eq!(
        p.publish,
        vec![
            ("0".to_string(), TrackId::new("A:a")),
            ("1".to_string(), TrackId::new("A:v"))
        ]
    );
    assert!(p.subscribe.is_empty());
    let fx = answer(&mut r, "A");
    match events(&fx, "A")[0] {
        ServerEvent::SdpAnswer {
            mid_to_track_id, ..
        } => {
            assert_eq!(mid_to_track_id["0"], "A:a");
            assert_eq!(mid_to_track_id["1"], "A:v");
        }
        e => panic!("{e:?}"),
    }
    // The pending request starts the next round only when the transport is connected again.
    let fx = connected(&mut r, "A");
    assert_eq!(kinds(&fx, "A"), ["offerData"]);
}

#[test]
fn second_peer_gets_existing_tracks_and_a_round() {
    let mut r = room();
    publisher(&mut r, "A");
    let fx = connect(&mut r, "B", "Bob");
    assert_eq!(kinds(&fx, "B"), ["connected", "tracksAdded", "offerData"]);
    assert_eq!(kinds(&fx, "A"), ["endpointAdded"]);
    match events(&fx, "B")[2] {
        ServerEvent::OfferData { audio, video, .. } => assert_eq!((*audio, *video), (1, 1)),
        e => panic!("{e:?}"),
    }
    let fx = offer(&mut r, "B", &[], &[("audio", "0"), ("video", "1")]);
    assert_eq!(
        plan(&fx).subscribe,
        vec![
            ("0".to_string(), Some(TrackId::new("A:a"))),
            ("1".to_string(), Some(TrackId::new("A:v")))
        ]
    );
    let fx = answer(&mut r, "B");
    match events(&fx, "B")[0] {
        ServerEvent::SdpAnswer {
            mid_to_track_id, ..
        } => assert_eq!(mid_to_track_id.len(), 2),
        e => panic!("{e:?}"),
    }
}

#[test]
fn new_publication_is_announced_then_negotiated() {
    let mut r = room();
    publisher(&mut r, "A");
    connect(&mut r, "B", "Bob");
    offer(&mut r, "B", &[], &[("audio", "0"), ("video", "1")]);
    answer(&mut r, "B");
    connected(&mut r, "B");
    let fx = renegotiate(&mut r, "B");
    assert_eq!(kinds(&fx, "B"), ["offerData"]);
    offer(
        &mut r,
        "B",
        &[("audio", "2", "a"), ("video", "3", "v")],
        &[("audio", "0"), ("video", "1")],
    );
    let fx = answer(&mut r, "B");
    assert_eq!(kinds(&fx, "A"), ["tracksAdded", "offerData"]);
    match events(&fx, "A")[1] {
        ServerEvent::OfferData { audio, video, .. } => assert_eq!((*audio, *video), (1, 1)),
        e => panic!("{e:?}"),
    }
    let fx = offer(
        &mut r,
        "A",
        &[("audio", "0", "a"), ("video", "1", "v")],
        &[("audio", "2"), ("video", "3")],
    );
    assert_eq!(
        plan(&fx).subscribe,
        vec![
            ("2".to_string(), Some(TrackId::new("B:a"))),
            ("3".to_string(), Some(TrackId::new("B:v")))
        ]
    );
}

#[test]
fn metadata_updates_are_relayed_only_on_change() {
    let mut r = room();
    publisher(&mut r, "A");
    connect(&mut r, "B", "Bob");
    let fx = r.client_event(
        &id("A"),
        ClientEvent::UpdateEndpointMetadata {
            metadata: json!({"displayName": "Alicia"}),
        },
    );
    assert_eq!(kinds(&fx, "B"), ["endpointUpdated"]);
    let fx = r.client_event(
        &id("A"),
        ClientEvent::UpdateEndpointMetadata {
            metadata: json!({"displayName": "Alicia"}),
        },
    );
    assert!(fx.is_empty());
    let muted = ClientEvent::UpdateTrackMetadata {
        track_id: "A:a".into(),
        metadata: json!({"type": "audio", "active": false}),
    };
    let fx = r.client_event(&id("A"), muted.clone());
    assert_eq!(kinds(&fx, "B"), ["trackUpdated"]);
    assert!(r.client_event(&id("A"), muted).is_empty());
    let fx = r.client_event(
        &id("A"),
        ClientEvent::UpdateTrackMetadata {
            track_id: "B:zzz".into(),
            metadata: json!(1),
        },
    );
    assert_eq!(kinds(&fx, "A"), ["error"]);
    assert!(kinds(&fx, "B").is_empty());
}

#[test]
fn leaving_publisher_is_removed_from_subscribers_in_order() {
    let mut r = room();
    publisher(&mut r, "A");
    connect(&mut r, "B", "Bob");
    offer(&mut r, "B", &[], &[("audio", "0"), ("video", "1")]);
    answer(&mut r, "B");
    connected(&mut r, "B");
    let fx = r.leave(&id("A"));
    assert_eq!(
        kinds(&fx, "B"),
        ["tracksRemoved", "endpointRemoved", "offerData"]
    );
    match events(&fx, "B")[2] {
        // tracksTypes never decrease: the inactive m-lines still count.
        ServerEvent::OfferData { audio, video, .. } => assert_eq!((*audio, *video), (1, 1)),
        e => panic!("{e:?}"),
    }
    assert!(fx.contains(&Effect::Media(MediaCommand::RemovePeer(id("A")))));
    let fx = offer(&mut r, "B", &[], &[("audio", "0"), ("video", "1")]);
    assert_eq!(
        plan(&fx).subscribe,
        vec![("0".to_string(), None), ("1".to_string(), None)]
    );
    let fx = r.leave(&id("B"));
    assert!(fx.contains(&Effect::CloseRoom));
    assert_eq!(r.peer_count(), 0);
}

#[test]
fn track_removed_while_subscriber_round_in_flight_is_removed_after_its_answer() {
    let mut r = room();
    publisher(&mut r, "A");
    connect(&mut r, "B", "Bob");
    offer(&mut r, "B", &[], &[("audio", "0"), ("video", "1")]);
    // A stops its camera while B's answer is being built.
    renegotiate(&mut r, "A");
    let fx = offer(&mut r, "A", &[("audio", "0", "a")], &[]);
    assert!(
        kinds(&fx, "B").is_empty(),
        "B must not hear of an unmapped track yet"
    );
    let fx = answer(&mut r, "B");
    assert_eq!(kinds(&fx, "B"), ["sdpAnswer", "tracksRemoved"]);
    match events(&fx, "B")[0] {
        ServerEvent::SdpAnswer {
            mid_to_track_id, ..
        } => assert_eq!(mid_to_track_id["1"], "A:v"),
        e => panic!("{e:?}"),
    }
    // The removal asks for another round, which starts when B's transport is up.
    assert_eq!(kinds(&connected(&mut r, "B"), "B"), ["offerData"]);
}

#[test]
fn early_candidates_are_buffered_until_the_offer() {
    let mut r = room();
    connect(&mut r, "A", "Alice");
    renegotiate(&mut r, "A");
    let cand = ClientEvent::Candidate {
        candidate: "candidate:1 1 udp 1 127.0.0.1 4000 typ relay".into(),
        sdp_mline_index: 0,
    };
    assert!(r.client_event(&id("A"), cand.clone()).is_empty());
    let fx = offer(&mut r, "A", &[("audio", "0", "a")], &[]);
    let pos_offer = fx
        .iter()
        .position(|e| matches!(e, Effect::Media(MediaCommand::HandleOffer { .. })))
        .unwrap();
    let pos_cand = fx
        .iter()
        .position(|e| matches!(e, Effect::Media(MediaCommand::AddCandidate { .. })))
        .unwrap();
    assert!(pos_offer < pos_cand);
    // Afterwards they go straight to the pipeline.
    let fx = r.client_event(&id("A"), cand);
    assert!(matches!(
        fx[..],
        [Effect::Media(MediaCommand::AddCandidate { .. })]
    ));
}

#[test]
fn server_candidates_are_relayed_as_they_come() {
    // The media graph holds candidates gathered before the first answer (it owns that fact:
    // see the contract of `lamina-pipelines`); the core relays each one it is given.
    let mut r = room();
    connect(&mut r, "A", "Alice");
    renegotiate(&mut r, "A");
    offer(&mut r, "A", &[("audio", "0", "a")], &[]);
    let fx = answer(&mut r, "A");
    assert_eq!(kinds(&fx, "A"), ["sdpAnswer"]);
    let fx = r.media_event(MediaEvent::LocalCandidate {
        peer: id("A"),
        mline: 0,
        candidate: "candidate:1 1 UDP 1 127.0.0.1 5000 typ host".into(),
    });
    assert_eq!(kinds(&fx, "A"), ["candidate"]);
}

#[test]
fn round_timeout_ends_a_round_without_connected() {
    let mut r = room();
    connect(&mut r, "A", "Alice");
    renegotiate(&mut r, "A");
    renegotiate(&mut r, "A");
    offer(&mut r, "A", &[("audio", "0", "a")], &[]);
    let fx = answer(&mut r, "A");
    let round = fx
        .iter()
        .find_map(|e| match e {
            Effect::StartTimer { round, .. } => Some(*round),
            _ => None,
        })
        .unwrap();
    assert!(r.round_timeout(&id("A"), round + 1).is_empty());
    assert_eq!(kinds(&r.round_timeout(&id("A"), round), "A"), ["offerData"]);
}

#[test]
fn disconnect_event_and_pipeline_failure_remove_the_peer() {
    let mut r = room();
    publisher(&mut r, "A");
    connect(&mut r, "B", "Bob");
    let fx = r.client_event(&id("B"), ClientEvent::Disconnect);
    assert_eq!(kinds(&fx, "A"), ["endpointRemoved"]);
    assert!(fx.contains(&Effect::Disconnect {
        peer: id("B"),
        error: None
    }));
    connect(&mut r, "C", "Carol");
    let fx = r.media_event(MediaEvent::PeerFailed {
        peer: id("C"),
        failure: lamina_seam::PeerFailure::Transport,
    });
    assert_eq!(kinds(&fx, "C"), ["error"]);
    assert_eq!(kinds(&fx, "A"), ["endpointRemoved"]);
    assert_eq!(r.peer_count(), 1);
}

#[test]
fn freed_slots_are_not_reused() {
    let mut r = room();
    publisher(&mut r, "A");
    connect(&mut r, "B", "Bob");
    offer(&mut r, "B", &[], &[("audio", "0"), ("video", "1")]);
    answer(&mut r, "B");
    connected(&mut r, "B");
    // A leaves; B's m-lines go inactive for good.
    r.leave(&id("A"));
    offer(&mut r, "B", &[], &[("audio", "0"), ("video", "1")]);
    answer(&mut r, "B");
    connected(&mut r, "B");
    // C publishes: B is asked for two more m-lines, and C's tracks go there.
    connect(&mut r, "C", "Carol");
    renegotiate(&mut r, "C");
    offer(
        &mut r,
        "C",
        &[("audio", "0", "a"), ("video", "1", "v")],
        &[],
    );
    let fx = answer(&mut r, "C");
    assert_eq!(kinds(&fx, "B"), ["tracksAdded", "offerData"]);
    match events(&fx, "B")[1] {
        ServerEvent::OfferData { audio, video, .. } => assert_eq!((*audio, *video), (2, 2)),
        e => panic!("{e:?}"),
    }
    let fx = offer(
        &mut r,
        "B",
        &[],
        &[
            ("audio", "0"),
            ("video", "1"),
            ("audio", "2"),
            ("video", "3"),
        ],
    );
    assert_eq!(
        plan(&fx).subscribe,
        vec![
            ("0".to_string(), None),
            ("1".to_string(), None),
            ("2".to_string(), Some(TrackId::new("C:a"))),
            ("3".to_string(), Some(TrackId::new("C:v")))
        ]
    );
}

pub(crate) fn reports(fx: &[Effect]) -> Vec<Outcome> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Report(o) => Some(*o),
            _ => None,
        })
        .collect()
}

#[test]
fn negotiation_outcomes_are_reported_not_inspected() {
    let mut r = room();
    connect(&mut r, "A", "Alice");
    // An offer outside a round, then an offer that does not parse.
    let fx = offer(&mut r, "A", &[("audio", "0", "a")], &[]);
    assert_eq!(reports(&fx), [Outcome::InvalidOffer]);
    renegotiate(&mut r, "A");
    let fx = r.client_event(
        &id("A"),
        ClientEvent::SdpOffer {
            sdp: "not sdp".into(),
            track_metadata: BTreeMap::new(),
            mid_to_track_id: BTreeMap::new(),
            track_bitrates: BTreeMap::new(),
        },
    );
    assert_eq!(reports(&fx), [Outcome::InvalidOffer]);
    // The media graph refuses the command, then fails an answer.
    renegotiate(&mut r, "A");
    let fx = offer(&mut r, "A", &[("audio", "0", "a")], &[]);
    assert!(reports(&fx).is_empty());
    let cmd = MediaCommand::HandleOffer {
        peer: id("A"),
        plan: plan(&fx).clone(),
    };
    let fx = r.media_refused(&cmd, lamina_seam::MediaError::Closed);
    assert_eq!(reports(&fx), [Outcome::Refused]);
    assert_eq!(kinds(&fx, "A"), ["error"]);
    renegotiate(&mut r, "A");
    offer(&mut r, "A", &[("audio", "0", "a")], &[]);
    let fx = r.media_event(MediaEvent::NegotiationFailed {
        peer: id("A"),
        error: lamina_seam::NegotiationError::Webrtc("create-answer: no reply".into()),
    });
    assert_eq!(reports(&fx), [Outcome::AnswerFailed]);
    // An answered round whose transport never connects.
    renegotiate(&mut r, "A");
    offer(&mut r, "A", &[("audio", "0", "a")], &[]);
    let fx = answer(&mut r, "A");
    let round = fx
        .iter()
        .find_map(|e| match e {
            Effect::StartTimer { round, .. } => Some(*round),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        reports(&r.round_timeout(&id("A"), round)),
        [Outcome::ConnectTimeout]
    );
}
