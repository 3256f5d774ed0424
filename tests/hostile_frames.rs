//! Hostile Phoenix frames from one client of a room, through real WebSockets against a real
//! server. For each case the offender gets an error reply or is disconnected, the two healthy
//! participants of the room keep decoding each other, and the server still serves newcomers.
//!
//! Frames that carry a readable ref get a `"malformed frame"` error reply; frames without one
//! cannot be answered and are dropped, but a socket that keeps sending malformed frames is
//! closed (1002).

#[path = "support/hostile.rs"]
mod hostile;
mod support;

use hostile::HostileRoom;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// More malformed frames than any socket may send (the server's limit is lower).
const GARBAGE_BURST: usize = 64;

/// Sends `frame` until the server closes the connection; returns the close code and reason.
async fn send_until_closed(o: &mut hostile::Offender, frame: &str) -> (u16, String) {
    for _ in 0..GARBAGE_BURST {
        if o.client
            .send_message(Message::Text(frame.to_owned()))
            .await
            .is_err()
        {
            break;
        }
    }
    o.disconnected()
        .await
        .expect("server closes with a close frame")
}

/// Sends each frame and asserts the error reply `"malformed frame"` to its ref.
async fn malformed_replies(o: &mut hostile::Offender, frames: &[(&str, &str)]) {
    for (text, r) in frames {
        o.client.send_text(*text).await;
        let reason = o.error_reply(r).await;
        assert_eq!(reason, "malformed frame", "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_json() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.offender().await;
    // One stray frame is dropped (there is no ref to answer)…
    o.client.send_text("hello, not json").await;
    assert!(o.client.barrier().await.is_empty());
    // …a client that sends nothing else is not a Phoenix client.
    let (code, reason) = send_until_closed(&mut o, "{[not json").await;
    assert_eq!((code, reason.as_str()), (1002, "too many malformed frames"));
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_but_not_an_array() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.offender().await;
    for text in [
        r#"{"topic":"phoenix","event":"heartbeat","ref":"1","payload":{}}"#,
        "42",
        "\"heartbeat\"",
        "null",
    ] {
        o.client.send_text(text).await;
    }
    assert!(o.client.barrier().await.is_empty(), "nothing to reply to");
    let (code, _) = send_until_closed(&mut o, r#"{"ref":"1"}"#).await;
    assert_eq!(code, 1002);
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_arity() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.offender().await;
    let (jr, topic) = (o.join_ref.clone(), o.topic.clone());
    malformed_replies(
        &mut o,
        &[
            (&format!(r#"["{jr}","m1","{topic}","mediaEvent"]"#), "m1"),
            (r#"[null,"m2","phoenix","heartbeat",{},{}]"#, "m2"),
            (r#"[null,"m3"]"#, "m3"),
        ],
    )
    .await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_ref_of_wrong_type() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.offender().await;
    let data = r#"{"data":"{\"type\":\"connect\",\"data\":{\"metadata\":null}}"}"#;
    let t = o.topic.clone();
    malformed_replies(
        &mut o,
        &[
            (&format!(r#"[7,"j1","{t}","mediaEvent",{data}]"#), "j1"),
            (
                &format!(r#"[{{"a":1}},"j2","{t}","mediaEvent",{data}]"#),
                "j2",
            ),
            (&format!(r#"[true,"j3","{t}","mediaEvent",{data}]"#), "j3"),
        ],
    )
    .await;
    // None of them reached the room: the offender was never connected.
    assert!(o
        .client
        .barrier()
        .await
        .iter()
        .all(|f| hostile::media(f).is_none()));
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ref_of_wrong_type() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.offender().await;
    let t = o.topic.clone();
    // A ref that is not a string cannot be echoed: dropped, and counted.
    o.client
        .send_text(format!(
            r#"["{}",5,"{t}","mediaEvent",{{"data":"x"}}]"#,
            o.join_ref
        ))
        .await;
    assert!(o.client.barrier().await.is_empty());
    let (code, _) = send_until_closed(&mut o, r#"[null,{"r":1},"phoenix","heartbeat",{}]"#).await;
    assert_eq!(code, 1002);
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_of_wrong_type() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.offender().await;
    malformed_replies(
        &mut o,
        &[
            (r#"[null,"t1",5,"heartbeat",{}]"#, "t1"),
            (r#"[null,"t2",null,"phx_join",{}]"#, "t2"),
            (r#"[null,"t3",["room:hostile"],"phx_join",{}]"#, "t3"),
        ],
    )
    .await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_of_wrong_type() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.offender().await;
    let (jr, t) = (o.join_ref.clone(), o.topic.clone());
    malformed_replies(
        &mut o,
        &[
            (&format!(r#"["{jr}","e1","{t}",null,{{"data":"x"}}]"#), "e1"),
            (&format!(r#"["{jr}","e2","{t}",1,{{"data":"x"}}]"#), "e2"),
            (&format!(r#"["{jr}","e3","{t}",{{}},{{"data":"x"}}]"#), "e3"),
        ],
    )
    .await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_of_wrong_type() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.offender().await;
    let (jr, t) = (o.join_ref.clone(), o.topic.clone());
    malformed_replies(
        &mut o,
        &[
            (&format!(r#"["{jr}","p1","{t}","mediaEvent",[]]"#), "p1"),
            (&format!(r#"["{jr}","p2","{t}","mediaEvent","{{}}"]"#), "p2"),
            (&format!(r#"["{jr}","p3","{t}","mediaEvent",null]"#), "p3"),
            (&format!(r#"["{jr}","p4","{t}","mediaEvent",12]"#), "p4"),
        ],
    )
    .await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_frame() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    o.client
        .send_message(Message::Binary(vec![0, 3, 3, 12, 10, b'1', b'2', b'3']))
        .await
        .expect("send");
    let (code, reason) = o.disconnected().await.expect("close frame");
    assert_eq!(code, 1003);
    assert!(reason.contains("binary"), "{reason}");
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    // Default limit: 1 MiB.
    let big = "x".repeat(1_300_000);
    let _ = o
        .client
        .send_message(Message::Text(
            json!([o.join_ref, "big", o.topic, "mediaEvent", {"data": big}]).to_string(),
        ))
        .await;
    let (code, reason) = o.disconnected().await.expect("close frame");
    assert_eq!((code, reason.as_str()), (1009, "message too big"));
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_payload() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.offender().await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let frame = format!(
        r#"["{}","deep","{}","mediaEvent",{{"data":{deep}}}]"#,
        o.join_ref, o.topic
    );
    o.client.send_text(frame).await;
    assert_eq!(o.error_reply("deep").await, "malformed frame");
    // Nesting in the ref's place cannot be answered at all.
    let frame = format!(r#"[null,{deep},"phoenix","heartbeat",{{}}]"#);
    o.client.send_text(frame).await;
    assert!(o.client.barrier().await.is_empty());
    room.assert_healthy().await;
    room.finish().await;
}
