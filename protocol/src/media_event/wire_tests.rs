//! Both halves of both directions: encode → decode is the identity for every event, the
//! encoded shapes are membrane-webrtc-js's, and bad input gets errors that name the field.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;

const CANDIDATE: &str = "candidate:1 1 UDP 2122260223 127.0.0.1 50000 typ host";

/// One of each client event (both encodings, every ignored type).
fn client_events() -> Vec<ClientEvent> {
    let mut events = vec![
        ClientEvent::Connect {
            metadata: json!({"displayName": "A"}),
        },
        ClientEvent::Disconnect,
        ClientEvent::UpdateEndpointMetadata {
            metadata: json!(null),
        },
        ClientEvent::UpdateTrackMetadata {
            track_id: "a:1".into(),
            metadata: json!({"type": "camera", "active": false}),
        },
        ClientEvent::RenegotiateTracks,
        ClientEvent::SdpOffer {
            sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n".into(),
            track_metadata: BTreeMap::from([
                ("a:1".into(), json!({"type": "audio"})),
                ("a:2".into(), json!({"type": "camera"})),
            ]),
            mid_to_track_id: BTreeMap::from([
                ("0".into(), "a:1".into()),
                ("1".into(), "a:2".into()),
            ]),
            track_bitrates: BTreeMap::new(),
        },
        ClientEvent::SdpOffer {
            sdp: "v=0\r\n".into(),
            track_metadata: BTreeMap::new(),
            mid_to_track_id: BTreeMap::new(),
            track_bitrates: BTreeMap::from([
                ("a:1".into(), TrackBitrates::Single(50_000)),
                (
                    "a:2".into(),
                    TrackBitrates::Layers(BTreeMap::from([
                        ("l".into(), 150_000),
                        ("h".into(), 2_500_000),
                    ])),
                ),
            ]),
        },
        ClientEvent::Candidate {
            candidate: CANDIDATE.into(),
            sdp_mline_index: 3,
        },
        ClientEvent::Candidate {
            candidate: String::new(),
            sdp_mline_index: 0,
        },
        ClientEvent::TrackEncoding {
            track_id: "a:2".into(),
            encoding: "h".into(),
            enabled: true,
        },
        ClientEvent::TrackEncoding {
            track_id: "a:2".into(),
            encoding: "l".into(),
            enabled: false,
        },
        ClientEvent::SetTargetTrackVariant {
            track_id: "b:2".into(),
            variant: "m".into(),
        },
    ];
    for kind in client::IGNORED {
        events.push(ClientEvent::Ignored { kind: kind.into() });
    }
    events
}

/// One of each server event; track lists out of key order, to show order is kept.
fn server_events() -> Vec<ServerEvent> {
    let tracks = vec![
        TrackInfo {
            id: "b:2".into(),
            metadata: json!({"type": "camera"}),
            simulcast: Some(vec!["l".into(), "m".into(), "h".into()]),
        },
        TrackInfo::new("b:1", json!({"type": "audio", "active": true})),
    ];
    vec![
        ServerEvent::Connected {
            id: "a".into(),
            other_endpoints: vec![
                EndpointInfo {
                    id: "b".into(),
                    metadata: json!({"displayName": "B"}),
                    tracks: tracks.clone(),
                },
                EndpointInfo {
                    id: "c".into(),
                    metadata: json!(null),
                    tracks: vec![],
                },
            ],
        },
        ServerEvent::Connected {
            id: "a".into(),
            other_endpoints: vec![],
        },
        ServerEvent::EndpointAdded {
            id: "b".into(),
            metadata: json!({"displayName": "B"}),
        },
        ServerEvent::EndpointRemoved { id: "b".into() },
        ServerEvent::EndpointUpdated {
            id: "b".into(),
            metadata: json!({"displayName": "B2"}),
        },
        ServerEvent::TracksAdded {
            endpoint_id: "b".into(),
            tracks,
        },
        ServerEvent::TracksRemoved {
            endpoint_id: "b".into(),
            track_ids: vec!["b:2".into(), "b:1".into()],
        },
        ServerEvent::TrackUpdated {
            endpoint_id: "b".into(),
            track_id: "b:1".into(),
            metadata: json!({"type": "audio", "active": false}),
        },
        ServerEvent::TrackEncoding {
            endpoint_id: "b".into(),
            track_id: "b:2".into(),
            encoding: "m".into(),
            enabled: true,
        },
        ServerEvent::TrackEncoding {
            endpoint_id: "b".into(),
            track_id: "b:2".into(),
            encoding: "m".into(),
            enabled: false,
        },
        ServerEvent::Error {
            message: "room closed".into(),
        },
        ServerEvent::OfferData {
            audio: 1,
            video: 2,
            turn_servers: vec![TurnServerInfo {
                addr: "192.0.2.1".into(),
                port: 3478,
                transport: "udp".into(),
                username: "1700000000:a".into(),
                password: "secret".into(),
            }],
        },
        ServerEvent::OfferData {
            audio: 0,
            video: 0,
            turn_servers: vec![],
        },
        ServerEvent::SdpAnswer {
            sdp: "v=0\r\n".into(),
            mid_to_track_id: BTreeMap::from([("0".into(), "b:1".into())]),
        },
        ServerEvent::Candidate {
            candidate: CANDIDATE.into(),
            sdp_mline_index: 0,
        },
        ServerEvent::VadNotification {
            track_id: "b:1".into(),
            speech: true,
        },
        ServerEvent::VadNotification {
            track_id: "b:1".into(),
            speech: false,
        },
        ServerEvent::EncodingSwitched {
            endpoint_id: "b".into(),
            track_id: "b:2".into(),
            encoding: "l".into(),
            reason: "low_bandwidth".into(),
        },
        ServerEvent::BandwidthEstimation {
            estimation: 1_250_000,
        },
    ]
}

#[test]
fn vad_notification_has_the_membrane_shape() {
    let v = ServerEvent::VadNotification {
        track_id: "b:1".into(),
        speech: true,
    }
    .to_json();
    assert_eq!(
        v,
        json!({"type": "custom", "data": {"type": "vadNotification", "data": {"trackId": "b:1", "status": "speech"}}})
    );
    let bad = r#"{"type":"custom","data":{"type":"vadNotification","data":{"trackId":"b:1","status":"loud"}}}"#;
    assert!(ServerEvent::decode(bad).is_err());
}

/// `(type, data)` of an encoded event, the `custom` wrapper removed; whether it was wrapped.
fn unwrap_custom(v: &Value) -> (String, Value, bool) {
    let custom = v["type"] == "custom";
    let inner = if custom { &v["data"] } else { v };
    let kind = inner["type"].as_str().expect("a string type").to_owned();
    (kind, inner["data"].clone(), custom)
}

#[test]
fn client_events_round_trip() {
    for event in client_events() {
        let text = event.encode();
        assert_eq!(decode(&text).as_ref(), Ok(&event), "{text}");
        assert_eq!(
            ClientEvent::decode(&event.to_json().to_string()),
            Ok(event.clone())
        );
        let (kind, _, _) = unwrap_custom(&event.to_json());
        assert_eq!(kind, event.kind());
    }
}

#[test]
fn server_events_round_trip() {
    for event in server_events() {
        let text = event.encode();
        assert_eq!(ServerEvent::decode(&text).as_ref(), Ok(&event), "{text}");
        let (kind, _, custom) = unwrap_custom(&event.to_json());
        assert_eq!(kind, event.kind());
        let list: &[&str] = if custom {
            &server::CUSTOM
        } else {
            &server::TOP
        };
        assert!(list.contains(&event.kind()), "{kind} listed");
    }
}

#[test]
fn client_events_have_the_membrane_shapes() {
    let shape = |e: &ClientEvent| {
        let (kind, data, custom) = unwrap_custom(&e.to_json());
        (kind, custom, data)
    };
    let top = [
        "connect",
        "disconnect",
        "updateEndpointMetadata",
        "updateTrackMetadata",
        "enableTrackEncoding",
        "disableTrackEncoding",
    ];
    for e in client_events() {
        let (kind, custom, _) = shape(&e);
        assert_eq!(custom, !top.contains(&kind.as_str()), "{kind}");
    }
    assert_eq!(
        ClientEvent::Disconnect.to_json(),
        json!({"type": "disconnect"})
    );
    assert_eq!(
        ClientEvent::RenegotiateTracks.to_json(),
        json!({"type": "custom", "data": {"type": "renegotiateTracks"}})
    );
    let offer = &client_events()[5];
    assert_eq!(
        shape(offer).2,
        json!({
            "sdpOffer": {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"},
            "trackIdToTrackMetadata": {"a:1": {"type": "audio"}, "a:2": {"type": "camera"}},
            "trackIdToTrackBitrates": {},
            "midToTrackId": {"0": "a:1", "1": "a:2"},
        })
    );
    let candidate = ClientEvent::Candidate {
        candidate: CANDIDATE.into(),
        sdp_mline_index: 1,
    };
    assert_eq!(
        shape(&candidate).2,
        json!({"candidate": CANDIDATE, "sdpMLineIndex": 1})
    );
    // The encoding puts `type` first, as browsers do.
    assert!(ClientEvent::Disconnect.encode().starts_with("{\"type\":"));
}

#[test]
fn server_events_have_the_membrane_shapes() {
    let connected = server_events()[0].to_json();
    let b = &connected["data"]["otherEndpoints"][0];
    assert_eq!(b["type"], "webrtc");
    assert_eq!(b["trackIdToMetadata"]["b:2"], json!({"type": "camera"}));
    assert_eq!(
        b["tracks"]["b:1"],
        json!({"metadata": {"type": "audio", "active": true}, "simulcastConfig":
               {"enabled": false, "activeEncodings": ["h"], "disabledEncodings": []}})
    );
    let offer = server_events()[11].to_json();
    assert_eq!(
        offer["data"]["data"]["integratedTurnServers"][0],
        json!({"serverAddr": "192.0.2.1", "serverPort": 3478, "transport": "udp",
               "username": "1700000000:a", "password": "secret"})
    );
    let answer = server_events()[13].to_json();
    assert_eq!(answer["data"]["data"]["type"], "answer");
    let candidate = server_events()[14].to_json();
    assert_eq!(
        candidate["data"]["data"],
        json!({"candidate": CANDIDATE, "sdpMLineIndex": 0, "sdpMid": null,
               "usernameFragment": null})
    );
    // Track lists keep their order in the text.
    let text = server_events()[5].encode();
    assert!(
        text.find("b:2").unwrap() < text.find("b:1").unwrap(),
        "{text}"
    );
}

/// The `problem` of a [`DecodeError::BadField`] of `event`.
fn problem(result: Result<impl std::fmt::Debug, DecodeError>, event: &str) -> String {
    match result {
        Err(DecodeError::BadField { event: e, problem }) if e == event => problem,
        other => panic!("expected a bad {event} field, got {other:?}"),
    }
}

#[test]
fn client_errors_name_the_field_whatever_the_key_order() {
    let data_first = r#"{"data":{"trackId":7,"trackMetadata":{}},"type":"updateTrackMetadata"}"#;
    assert_eq!(
        problem(decode(data_first), "updateTrackMetadata"),
        "\"trackId\" must be a string"
    );
    assert_eq!(
        problem(decode(r#"{"type":"connect","data":"metadata"}"#), "connect"),
        "missing field \"metadata\""
    );
    let custom = |kind: &str, data: Value| {
        decode(&json!({"type": "custom", "data": {"type": kind, "data": data}}).to_string())
    };
    for index in [
        json!("0"),
        json!(null),
        json!(0.5),
        json!(-1),
        json!(u64::MAX),
    ] {
        let p = problem(
            custom(
                "candidate",
                json!({"candidate": "", "sdpMLineIndex": index}),
            ),
            "candidate",
        );
        assert_eq!(p, "sdpMLineIndex must be an unsigned integer");
    }
    let p = problem(
        custom("candidate", json!({"candidate": "", "sdpMLineIndex": 1024})),
        "candidate",
    );
    assert_eq!(p, "sdpMLineIndex must be a small unsigned integer");
    let p = problem(custom("candidate", json!({"candidate": null})), "candidate");
    assert_eq!(p, "\"candidate\" must be a string");
    let offer = |sdp_offer: Value, mids: Value| {
        custom(
            "sdpOffer",
            json!({"sdpOffer": sdp_offer, "midToTrackId": mids}),
        )
    };
    let ok = json!({"type": "offer", "sdp": "v=0"});
    assert_eq!(
        problem(offer(json!({"type": "offer"}), json!({})), "sdpOffer"),
        "missing field \"sdpOffer.sdp\""
    );
    assert_eq!(
        problem(offer(json!(5), json!({})), "sdpOffer"),
        "sdpOffer must be an object"
    );
    assert_eq!(
        problem(
            offer(json!({"type": "answer", "sdp": ""}), json!({})),
            "sdpOffer"
        ),
        "sdpOffer.type must be \"offer\""
    );
    assert_eq!(
        problem(offer(ok.clone(), json!({"0": 5})), "sdpOffer"),
        "midToTrackId values must be strings"
    );
    assert_eq!(
        problem(offer(ok.clone(), json!([])), "sdpOffer"),
        "midToTrackId must be an object"
    );
    assert_eq!(
        problem(
            offer(json!({"type": "offer", "sdp": 5}), json!({})),
            "sdpOffer"
        ),
        "sdpOffer.sdp must be a string"
    );
    assert_eq!(
        problem(custom("sdpOffer", json!({"midToTrackId": {}})), "sdpOffer"),
        "missing field \"sdpOffer\""
    );
    let metadata = json!({"sdpOffer": ok, "midToTrackId": {}, "trackIdToTrackMetadata": "x"});
    assert_eq!(
        problem(custom("sdpOffer", metadata), "sdpOffer"),
        "trackIdToTrackMetadata must be an object"
    );
    let err = decode(data_first).unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid updateTrackMetadata event: \"trackId\" must be a string"
    );
}

#[test]
fn validation_is_a_separate_step() {
    let huge = ClientEvent::Connect {
        metadata: json!("n".repeat(MAX_METADATA_BYTES)),
    };
    // What a client could send is encodable; the receiving side refuses it.
    let err = decode(&huge.encode()).unwrap_err();
    assert_eq!(huge.validate(), Err(err.clone()));
    assert!(err.to_string().contains("metadata is too large"), "{err}");
    let bad = ClientEvent::Candidate {
        candidate: "candidate:1 1 udp 1 evil.local 9 typ host".into(),
        sdp_mline_index: 0,
    };
    assert!(bad.validate().is_err());
    let big_sdp = ClientEvent::SdpOffer {
        sdp: "a".repeat(MAX_SDP_BYTES + 1),
        track_metadata: BTreeMap::new(),
        mid_to_track_id: BTreeMap::new(),
        track_bitrates: BTreeMap::new(),
    };
    assert_eq!(
        problem(big_sdp.validate().map(|_| ()), "sdpOffer"),
        "sdp is too large"
    );
    for e in client_events() {
        assert_eq!(e.validate(), Ok(()), "{e:?}");
    }
}

#[test]
fn server_decode_errors() {
    assert_eq!(ServerEvent::decode("{"), Err(DecodeError::NotJson));
    assert_eq!(
        ServerEvent::decode(r#"{"type":"connected","data":{"id":"a","otherEndpoints":[]}} x"#),
        Err(DecodeError::NotJson)
    );
    assert_eq!(ServerEvent::decode("[]"), Err(DecodeError::NoType));
    assert_eq!(
        ServerEvent::decode(r#"{"type":"connect","data":{"metadata":{}}}"#),
        Err(DecodeError::UnknownType("connect".into()))
    );
    // Custom events are only read inside the wrapper.
    assert_eq!(
        ServerEvent::decode(r#"{"type":"sdpAnswer","data":{}}"#),
        Err(DecodeError::UnknownType("sdpAnswer".into()))
    );
    let removed = r#"{"type":"tracksRemoved","data":{"endpointId":"b","trackIds":["x",1]}}"#;
    assert_eq!(
        problem(ServerEvent::decode(removed), "tracksRemoved"),
        "trackIds[1] must be a string"
    );
    let answer = r#"{"type":"custom","data":{"type":"sdpAnswer","data":{"type":"answer"}}}"#;
    assert_eq!(
        problem(ServerEvent::decode(answer), "sdpAnswer"),
        "missing field \"sdp\""
    );
    let offer = r#"{"type":"custom","data":{"type":"sdpAnswer","data":{"type":"offer","sdp":"","midToTrackId":{}}}}"#;
    assert_eq!(
        problem(ServerEvent::decode(offer), "sdpAnswer"),
        "type must be \"answer\""
    );
    // Every event with an empty body is refused as that event (its type is listed).
    for event in server_events() {
        let mut v = event.to_json();
        let data = if v["type"] == "custom" {
            &mut v["data"]["data"]
        } else {
            &mut v["data"]
        };
        *data = json!({});
        let err = ServerEvent::decode(&v.to_string()).unwrap_err();
        assert!(
            matches!(&err, DecodeError::BadField { event: e, .. } if *e == event.kind()),
            "{err:?}"
        );
    }
}
