//! Unit tests of media event decoding and encoding.

use serde_json::{json, Map};

use super::validate::check_candidate;
use super::*;

#[test]
fn decodes_connect_and_custom_offer() {
    let e = decode(r#"{"type":"connect","data":{"metadata":{"displayName":"A"}}}"#).unwrap();
    assert_eq!(
        e,
        ClientEvent::Connect {
            metadata: json!({"displayName": "A"})
        }
    );
    let offer = json!({"type":"custom","data":{"type":"sdpOffer","data":{
        "sdpOffer":{"type":"offer","sdp":"v=0\r\n"},
        "trackIdToTrackMetadata":{"a:1":{"type":"camera"}},
        "trackIdToTrackBitrates":{"a:1":2500000},
        "midToTrackId":{"0":"a:1"}}}});
    match decode(&offer.to_string()).unwrap() {
        ClientEvent::SdpOffer {
            sdp,
            track_metadata,
            mid_to_track_id,
            track_bitrates,
        } => {
            assert_eq!(sdp, "v=0\r\n");
            assert_eq!(track_metadata["a:1"], json!({"type":"camera"}));
            assert_eq!(mid_to_track_id["0"], "a:1");
            assert_eq!(track_bitrates["a:1"], TrackBitrates::Single(2_500_000));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn decodes_candidate_renegotiate_and_ignored() {
    let c = json!({"type":"custom","data":{"type":"candidate","data":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ relay","sdpMLineIndex":0}}});
    assert!(matches!(
        decode(&c.to_string()).unwrap(),
        ClientEvent::Candidate {
            sdp_mline_index: 0,
            ..
        }
    ));
    let r = r#"{"type":"custom","data":{"type":"renegotiateTracks"}}"#;
    assert_eq!(decode(r).unwrap(), ClientEvent::RenegotiateTracks);
    let p = r#"{"type":"custom","data":{"type":"prioritizeTrack","data":{"trackId":"x"}}}"#;
    assert!(matches!(decode(p).unwrap(), ClientEvent::Ignored { .. }));
}

#[test]
fn refuses_bad_input_with_clear_errors() {
    assert_eq!(decode("nope"), Err(DecodeError::NotJson));
    assert_eq!(decode("[]"), Err(DecodeError::NoType));
    assert_eq!(decode(r#"{"type":5}"#), Err(DecodeError::NoType));
    assert_eq!(
        decode(r#"{"type":"fly"}"#),
        Err(DecodeError::UnknownType("fly".into()))
    );
    assert!(matches!(
        decode(r#"{"type":"connect"}"#),
        Err(DecodeError::BadField { .. })
    ));
    assert!(matches!(
        decode(r#"{"type":"updateTrackMetadata","data":{"trackId":1,"trackMetadata":{}}}"#),
        Err(DecodeError::BadField { .. })
    ));
    let nested = r#"{"type":"custom","data":{"type":"custom","data":{"type":"connect","data":{"metadata":1}}}}"#;
    assert!(decode(nested).is_err());
    let bad_mid = json!({"type":"custom","data":{"type":"sdpOffer","data":{
        "sdpOffer":{"type":"offer","sdp":"v=0"},"midToTrackId":{"0":5}}}});
    assert!(decode(&bad_mid.to_string()).is_err());
}

#[test]
fn checks_candidate_lines() {
    for good in [
        "",
        "candidate:842163049 1 udp 1677729535 192.0.2.7 61665 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag sXx/ network-cost 999",
        "candidate:1 1 UDP 2122260223 127.0.0.1 50000 typ host",
        "candidate:2 2 tcp 1518280447 ::1 9 typ host tcptype active",
        "candidate:3 1 udp 41885439 198.51.100.1 3478 typ relay raddr 10.0.0.1 rport 5000",
    ] {
        assert_eq!(check_candidate(good), Ok(()), "{good}");
    }
    for bad in [
        "garbage",
        "candidate:",
        "a=candidate:1 1 udp 1 127.0.0.1 9 typ host",
        "candidate:1 1 udp 1 999.999.999.999 9 typ host",
        "candidate:1 1 udp 1 127.0.0.1 99999 typ host",
        "candidate:1 0 udp 1 127.0.0.1 9 typ host",
        "candidate:1 1 sctp 1 127.0.0.1 9 typ host",
        "candidate:1 1 udp -1 127.0.0.1 9 typ host",
        "candidate:1 1 udp 1 evil.local 9 typ host",
        "candidate:1 1 udp 1 127.0.0.1 9 type host",
        "candidate:1 1 udp 1 127.0.0.1 9 typ nonsense",
        "candidate:1 1 udp 1 127.0.0.1 9 typ host\u{0}",
        &format!(
            "candidate:1 1 udp 1 127.0.0.1 9 typ host {}",
            "x".repeat(600)
        ),
    ] {
        assert!(check_candidate(bad).is_err(), "{bad}");
    }
}

#[test]
fn refuses_oversized_metadata() {
    let big = "n".repeat(MAX_METADATA_BYTES);
    let just = "n".repeat(MAX_METADATA_BYTES - 2);
    let connect = |name: &str| json!({"type":"connect","data":{"metadata":name}}).to_string();
    assert!(decode(&connect(&just)).is_ok());
    let err = decode(&connect(&big)).unwrap_err().to_string();
    assert!(err.contains("metadata is too large"), "{err}");
    let update = json!({"type":"updateTrackMetadata","data":{"trackId":"t","trackMetadata":[big]}});
    assert!(decode(&update.to_string()).is_err());
    let offer = json!({"type":"custom","data":{"type":"sdpOffer","data":{
        "sdpOffer":{"type":"offer","sdp":"v=0"},"midToTrackId":{},
        "trackIdToTrackMetadata":{"t":{"x":big}}}}});
    assert!(decode(&offer.to_string()).is_err());
}

#[test]
fn encodes_wire_shapes() {
    let e = ServerEvent::TracksAdded {
        endpoint_id: "A".into(),
        tracks: vec![TrackInfo::new("A:1", json!({"type":"audio"}))],
    };
    let v = e.to_json();
    assert_eq!(v["type"], "tracksAdded");
    assert_eq!(v["data"]["trackIdToMetadata"]["A:1"]["type"], "audio");
    assert_eq!(
        v["data"]["tracks"]["A:1"]["simulcastConfig"]["enabled"],
        false
    );
    let c = ServerEvent::Candidate {
        candidate: "candidate:1".into(),
        sdp_mline_index: 0,
    }
    .to_json();
    assert_eq!(c["type"], "custom");
    assert_eq!(c["data"]["type"], "candidate");
    assert!(c["data"]["data"]["sdpMid"].is_null());
    let o = ServerEvent::OfferData {
        audio: 1,
        video: 2,
        turn_servers: vec![],
    }
    .to_json();
    assert_eq!(o["data"]["data"]["tracksTypes"]["video"], 2);
    assert!(o["data"]["data"]["integratedTurnServers"].is_array());
}

#[test]
fn sdp_offer_event_decodes_back() {
    let mut mids = Map::new();
    mids.insert("0".into(), json!("p:cam"));
    let mut metadata = Map::new();
    metadata.insert("p:cam".into(), json!({"type": "camera"}));
    let event = sdp_offer_event("v=0\r\n", metadata, mids);
    match decode(&event.to_string()).unwrap() {
        ClientEvent::SdpOffer {
            sdp,
            track_metadata,
            mid_to_track_id,
            ..
        } => {
            assert_eq!(sdp, "v=0\r\n");
            assert_eq!(track_metadata["p:cam"], json!({"type": "camera"}));
            assert_eq!(mid_to_track_id["0"], "p:cam");
        }
        other => panic!("{other:?}"),
    }
}
