//! The simulcast parts of the protocol on the wire: `setTargetTrackVariant`,
//! `trackIdToTrackBitrates`, `encodingSwitched`, `bandwidthEstimation` and `simulcastConfig`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;

fn custom(kind: &str, data: Value) -> String {
    json!({"type": "custom", "data": {"type": kind, "data": data}}).to_string()
}

fn problem(result: Result<ClientEvent, DecodeError>, event: &str) -> String {
    match result {
        Err(DecodeError::BadField { event: e, problem }) if e == event => problem,
        other => panic!("expected a bad {event} field, got {other:?}"),
    }
}

#[test]
fn set_target_track_variant_is_decoded_at_either_level() {
    let want = ClientEvent::SetTargetTrackVariant {
        track_id: "b:2".into(),
        variant: "l".into(),
    };
    let data = json!({"trackId": "b:2", "variant": "l"});
    assert_eq!(
        decode(&custom("setTargetTrackVariant", data.clone())),
        Ok(want.clone())
    );
    let top = json!({"type": "setTargetTrackVariant", "data": data}).to_string();
    assert_eq!(decode(&top), Ok(want.clone()));
    assert_eq!(want.kind(), "setTargetTrackVariant");
    // What membrane-webrtc-js 0.5.3's `setTargetTrackEncoding` sends.
    assert_eq!(
        want.to_json(),
        json!({"type": "custom", "data": {"type": "setTargetTrackVariant",
               "data": {"trackId": "b:2", "variant": "l"}}})
    );
}

#[test]
fn set_target_track_variant_shape_is_checked() {
    let send = |data: Value| decode(&custom("setTargetTrackVariant", data));
    assert_eq!(
        problem(send(json!({"trackId": "b:2"})), "setTargetTrackVariant"),
        "missing field \"variant\""
    );
    assert_eq!(
        problem(
            send(json!({"trackId": 7, "variant": "l"})),
            "setTargetTrackVariant"
        ),
        "\"trackId\" must be a string"
    );
    assert_eq!(
        problem(
            send(json!({"trackId": "b:2", "variant": ["l"]})),
            "setTargetTrackVariant"
        ),
        "\"variant\" must be a string"
    );
    let long = "t".repeat(MAX_TRACK_ID_BYTES + 1);
    assert_eq!(
        problem(
            send(json!({"trackId": long, "variant": "l"})),
            "setTargetTrackVariant"
        ),
        "trackId is too long (limit 256 bytes)"
    );
    for variant in ["", "x".repeat(17).as_str(), "l m", "h\n", "é"] {
        let p = problem(
            send(json!({"trackId": "b:2", "variant": variant})),
            "setTargetTrackVariant",
        );
        assert!(p.starts_with("variant must be"), "{variant:?}: {p}");
    }
    let ok = "t".repeat(MAX_TRACK_ID_BYTES);
    assert!(send(json!({"trackId": ok, "variant": "q_1-x"})).is_ok());
}

#[test]
fn offer_bitrates_are_read_leniently() {
    let offer = |bitrates: Value| {
        let e = decode(&custom(
            "sdpOffer",
            json!({"sdpOffer": {"type": "offer", "sdp": "v=0"}, "midToTrackId": {"0": "a:1"},
                   "trackIdToTrackBitrates": bitrates}),
        ));
        match e {
            Ok(ClientEvent::SdpOffer { track_bitrates, .. }) => track_bitrates,
            other => panic!("the offer must decode: {other:?}"),
        }
    };
    // What 0.5.3 sends: a number per single-encoding track, an object per simulcast track.
    let m = offer(json!({"a:1": 50000, "a:2": {"l": 150000, "m": 500000, "h": 2500000}}));
    assert_eq!(m["a:1"], TrackBitrates::Single(50_000));
    assert_eq!(
        m["a:2"],
        TrackBitrates::Layers(BTreeMap::from([
            ("l".into(), 150_000),
            ("m".into(), 500_000),
            ("h".into(), 2_500_000),
        ]))
    );
    // Malformed values are dropped; the offer still goes through.
    for nothing in [json!(null), json!("fast"), json!([]), json!(3)] {
        assert!(offer(nothing).is_empty());
    }
    let m = offer(json!({"a:1": "x", "a:2": {"l": -1, "h": 900000}, "a:3": -2, "a:4": {}}));
    assert_eq!(
        m.into_iter().collect::<Vec<_>>(),
        [(
            "a:2".to_string(),
            TrackBitrates::Layers(BTreeMap::from([("h".into(), 900_000)]))
        )]
    );
    // Absent: no bitrates.
    let e = decode(&custom(
        "sdpOffer",
        json!({"sdpOffer": {"type": "offer", "sdp": "v=0"}, "midToTrackId": {}}),
    ));
    assert!(
        matches!(e, Ok(ClientEvent::SdpOffer { track_bitrates, .. }) if track_bitrates.is_empty())
    );
}

#[test]
fn encoding_switched_and_bandwidth_estimation_have_the_membrane_shapes() {
    let switched = ServerEvent::EncodingSwitched {
        endpoint_id: "b".into(),
        track_id: "b:2".into(),
        encoding: "m".into(),
        reason: "encoding_inactive".into(),
    };
    assert_eq!(
        switched.to_json(),
        json!({"type": "custom", "data": {"type": "encodingSwitched", "data":
               {"endpointId": "b", "trackId": "b:2", "encoding": "m",
                "reason": "encoding_inactive"}}})
    );
    assert_eq!(ServerEvent::decode(&switched.encode()), Ok(switched));
    let estimate = ServerEvent::BandwidthEstimation {
        estimation: 800_000,
    };
    assert_eq!(
        estimate.to_json(),
        json!({"type": "custom", "data": {"type": "bandwidthEstimation",
               "data": {"estimation": 800000}}})
    );
    assert_eq!(ServerEvent::decode(&estimate.encode()), Ok(estimate));
    // Only inside the custom wrapper, as the client sends nothing of the kind at top level.
    assert_eq!(
        ServerEvent::decode(r#"{"type":"bandwidthEstimation","data":{"estimation":1}}"#),
        Err(DecodeError::UnknownType("bandwidthEstimation".into()))
    );
}

#[test]
fn simulcast_config_carries_the_layers_of_simulcast_tracks() {
    let tracks = vec![
        TrackInfo {
            id: "b:v".into(),
            metadata: json!({"type": "camera"}),
            simulcast: Some(vec!["l".into(), "m".into(), "h".into()]),
        },
        TrackInfo::new("b:a", json!({"type": "audio"})),
    ];
    let simulcast = json!({"enabled": true, "activeEncodings": ["l", "m", "h"],
                           "disabledEncodings": []});
    let single = json!({"enabled": false, "activeEncodings": ["h"], "disabledEncodings": []});
    let added = ServerEvent::TracksAdded {
        endpoint_id: "b".into(),
        tracks: tracks.clone(),
    };
    let v = added.to_json();
    assert_eq!(v["data"]["tracks"]["b:v"]["simulcastConfig"], simulcast);
    assert_eq!(v["data"]["tracks"]["b:a"]["simulcastConfig"], single);
    assert_eq!(
        v["data"]["trackIdToMetadata"]["b:v"],
        json!({"type": "camera"})
    );
    assert_eq!(ServerEvent::decode(&added.encode()), Ok(added));
    let connected = ServerEvent::Connected {
        id: "a".into(),
        other_endpoints: vec![EndpointInfo {
            id: "b".into(),
            metadata: json!(null),
            tracks,
        }],
    };
    let v = connected.to_json();
    let b = &v["data"]["otherEndpoints"][0];
    assert_eq!(b["tracks"]["b:v"]["simulcastConfig"], simulcast);
    assert_eq!(b["tracks"]["b:a"]["simulcastConfig"], single);
    assert_eq!(ServerEvent::decode(&connected.encode()), Ok(connected));
}
