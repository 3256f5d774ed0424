//! Unit tests of Phoenix frame decoding, encoding and the frame constructors.

use super::*;
use serde_json::json;

#[test]
fn decodes_join() {
    let f = decode(r#"["3","3","room:abc","phx_join",{}]"#, 100).unwrap();
    assert_eq!(f.join_ref.as_deref(), Some("3"));
    assert_eq!(f.reference.as_deref(), Some("3"));
    assert_eq!(f.topic, "room:abc");
    assert_eq!(f.event, "phx_join");
    assert!(f.payload.is_empty());
}

#[test]
fn decodes_nulls_and_payload() {
    let f = decode(r#"[null,null,"t","e",{"data":"x"}]"#, 100).unwrap();
    assert_eq!(f.join_ref, None);
    assert_eq!(f.reference, None);
    assert_eq!(f.payload.get("data"), Some(&json!("x")));
}

#[test]
fn rejects_too_large() {
    let text = r#"[null,"1","phoenix","heartbeat",{}]"#;
    assert_eq!(
        decode(text, 10),
        Err(FrameError::TooLarge {
            size: text.len(),
            max: 10
        })
    );
    assert!(decode(text, text.len()).is_ok());
}

#[test]
fn rejects_non_json() {
    assert!(matches!(decode("hello", 100), Err(FrameError::NotJson(_))));
    assert!(matches!(decode("", 100), Err(FrameError::NotJson(_))));
}

#[test]
fn rejects_wrong_arity() {
    assert_eq!(
        decode(r#"[null,"1","t","e"]"#, 100),
        Err(FrameError::WrongArity)
    );
    assert_eq!(
        decode(r#"[null,"1","t","e",{},1]"#, 100),
        Err(FrameError::WrongArity)
    );
    assert_eq!(decode(r#"{"a":1}"#, 100), Err(FrameError::WrongArity));
    assert_eq!(decode("42", 100), Err(FrameError::WrongArity));
}

#[test]
fn rejects_wrong_types() {
    let field = |text: &str| match decode(text, 100) {
        Err(FrameError::WrongType { field, .. }) => field,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(field(r#"[1,"1","t","e",{}]"#), "join_ref");
    assert_eq!(field(r#"[null,2,"t","e",{}]"#), "ref");
    assert_eq!(field(r#"[null,"1",null,"e",{}]"#), "topic");
    assert_eq!(field(r#"[null,"1","t",["e"],{}]"#), "event");
    assert_eq!(field(r#"[null,"1","t","e",[]]"#), "payload");
    assert_eq!(field(r#"[null,"1","t","e","x"]"#), "payload");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(
        decode(&text, 1 << 20),
        Err(FrameError::NotJson(_))
    ));
}

#[test]
fn recovers_refs_of_malformed_frames() {
    assert_eq!(
        recover(r#"["3","7","room:a","mediaEvent"]"#),
        Some(Recovered {
            join_ref: Some("3".into()),
            reference: "7".into(),
            topic: Some("room:a".into()),
        })
    );
    assert_eq!(
        recover(r#"[null,"7",5,"e",[]]"#).map(|r| (r.reference, r.topic)),
        Some(("7".into(), None))
    );
    assert_eq!(recover(r#"[null,7,"t","e",{}]"#), None);
    assert_eq!(recover("nope"), None);
    assert_eq!(recover(r#"{"ref":"1"}"#), None);
    // Whatever follows the topic does not matter.
    let deep = format!(
        r#"["3","8","room:a","e",{{"x":{}{}}}]"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(recover(&deep).map(|r| r.reference), Some("8".into()));
    assert_eq!(
        recover(r#"[null,"9","room:a","e",{"x":"#).map(|r| r.reference),
        Some("9".into())
    );
    assert_eq!(recover(r#"[null,"9"#), None);
}

/// Compares as JSON values, so the key order of objects does not matter.
fn same(frame: &Frame, expected: &str) {
    let got: Value = serde_json::from_str(&frame.encode()).unwrap();
    let want: Value = serde_json::from_str(expected).unwrap();
    assert_eq!(got, want);
}

#[test]
fn encodes_replies_and_pushes() {
    let req = decode(r#"["3","9","room:a","phx_leave",{}]"#, 100).unwrap();
    same(
        &Frame::ok_reply(&req, json!({})),
        r#"["3","9","room:a","phx_reply",{"response":{},"status":"ok"}]"#,
    );
    same(
        &Frame::error_reply(&req, "nope"),
        r#"["3","9","room:a","phx_reply",{"response":{"reason":"nope"},"status":"error"}]"#,
    );
    same(
        &Frame::unmatched_topic(&req),
        r#"[null,"9","room:a","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]"#,
    );
    let mut payload = Map::new();
    payload.insert("data".into(), json!("{\"type\":\"x\"}"));
    same(
        &Frame::push(Some("3".into()), "room:a", "mediaEvent", payload),
        r#"["3",null,"room:a","mediaEvent",{"data":"{\"type\":\"x\"}"}]"#,
    );
    same(
        &Frame::close(Some("3".into()), "room:a"),
        r#"["3","3","room:a","phx_close",{}]"#,
    );
    same(
        &Frame::crash(Some("3".into()), "room:a"),
        r#"["3","3","room:a","phx_error",{"reason":"channel_crash"}]"#,
    );
}

#[test]
fn round_trips() {
    let text = r#"["1","2","room:x","mediaEvent",{"data":"é\n"}]"#;
    let f = decode(text, 100).unwrap();
    assert_eq!(decode(&f.encode(), 100).unwrap(), f);
}

#[test]
fn encodes_client_frames() {
    same(
        &Frame::join("3", "room:a", Map::new()),
        r#"["3","3","room:a","phx_join",{}]"#,
    );
    same(
        &Frame::request(
            Some("3".into()),
            "4",
            "room:a",
            MEDIA_EVENT,
            Frame::media_event_payload("{}"),
        ),
        r#"["3","4","room:a","mediaEvent",{"data":"{}"}]"#,
    );
    same(
        &Frame::leave(Some("3".into()), "5", "room:a"),
        r#"["3","5","room:a","phx_leave",{}]"#,
    );
    same(
        &Frame::heartbeat("6"),
        r#"[null,"6","phoenix","heartbeat",{}]"#,
    );
}

/// Every constructor, both directions: decode(encode(f)) == f, also through serde.
#[test]
fn every_frame_round_trips() {
    let req = decode(r#"["3","9","room:a","phx_leave",{}]"#, 100).unwrap();
    let mut payload = Map::new();
    payload.insert("nested".into(), json!({"a": [1, null, "é\u{0}"]}));
    let frames = [
        Frame::ok_reply(&req, json!({"x": 1})),
        Frame::error_reply(&req, "nope"),
        Frame::unmatched_topic(&req),
        Frame::push(
            None,
            "room:a",
            MEDIA_EVENT,
            Frame::media_event_payload("{\"a\":1}"),
        ),
        Frame::close(Some("3".into()), "room:a"),
        Frame::crash(None, "room:a"),
        Frame::join("1", "room:b", payload.clone()),
        Frame::request(None, "2", "room:b", "custom", payload),
        Frame::leave(Some("1".into()), "3", "room:b"),
        Frame::heartbeat("4"),
    ];
    for f in frames {
        let text = f.encode();
        assert_eq!(decode(&text, 1 << 16).as_ref(), Ok(&f), "{text}");
        let value = serde_json::to_value(&f).unwrap();
        assert!(value.as_array().is_some_and(|a| a.len() == 5), "{value}");
        assert_eq!(serde_json::from_value::<Frame>(value).unwrap(), f);
    }
}

#[test]
fn reads_replies_and_media_events() {
    let req = decode(r#"["3","9","room:a","phx_join",{}]"#, 100).unwrap();
    let ok = Frame::ok_reply(&req, json!({"n": 1}));
    assert_eq!(ok.as_reply(), Some((ReplyStatus::Ok, &json!({"n": 1}))));
    let refused = Frame::error_reply(&req, "full");
    assert_eq!(
        refused.as_reply(),
        Some((ReplyStatus::Error, &json!({"reason": "full"})))
    );
    assert_eq!(req.as_reply(), None);
    let odd = decode(r#"[null,"1","t","phx_reply",{"status":"maybe"}]"#, 100).unwrap();
    assert_eq!(odd.as_reply(), None);
    let bare = decode(r#"[null,"1","t","phx_reply",{"status":"ok"}]"#, 100).unwrap();
    assert_eq!(bare.as_reply(), Some((ReplyStatus::Ok, &Value::Null)));

    let push = Frame::push(
        None,
        "room:a",
        MEDIA_EVENT,
        Frame::media_event_payload("{}"),
    );
    assert_eq!(push.media_event_data(), Some("{}"));
    let not_string = decode(r#"[null,null,"room:a","mediaEvent",{"data":5}]"#, 100).unwrap();
    assert_eq!(not_string.media_event_data(), None);
    assert_eq!(ok.media_event_data(), None);
    for s in [ReplyStatus::Ok, ReplyStatus::Error] {
        assert_eq!(ReplyStatus::parse(s.as_str()), Some(s));
    }
}
