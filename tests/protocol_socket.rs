//! The Phoenix socket over a real WebSocket: framing, heartbeats, join/leave, bad input, limits.

mod support;

use serde_json::json;
use support::{spawn_server, Event, PhoenixClient};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn heartbeat_reply_echoes_ref() {
    let server = spawn_server(|_| {}).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    c.send(None, Some("12"), "phoenix", "heartbeat", json!({}))
        .await;
    let reply = c.reply("12").await;
    assert_eq!(reply.join_ref, None);
    assert_eq!(reply.topic, "phoenix");
    assert_eq!(reply.payload, json!({"status": "ok", "response": {}}));
    server.stop().await;
}

#[tokio::test]
async fn socket_without_vsn_is_accepted_and_other_vsn_refused() {
    let server = spawn_server(|_| {}).await;
    let mut c = PhoenixClient::connect_url(&format!("ws://{}/socket/websocket", server.addr)).await;
    let r = c.heartbeat().await;
    assert_eq!(c.reply(&r).await.status(), "ok");

    let url = format!("ws://{}/socket/websocket?vsn=1.0.0", server.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 400)
        }
        other => panic!("vsn 1.0.0 accepted: {:?}", other.map(|(_, r)| r)),
    }
    server.stop().await;
}

#[tokio::test]
async fn join_reply_has_the_join_refs() {
    let server = spawn_server(|_| {}).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    c.send(Some("3"), Some("3"), "room:abc", "phx_join", json!({}))
        .await;
    let reply = c.reply("3").await;
    assert_eq!(reply.join_ref.as_deref(), Some("3"));
    assert_eq!(reply.reference.as_deref(), Some("3"));
    assert_eq!(reply.topic, "room:abc");
    assert_eq!(reply.payload, json!({"status": "ok", "response": {}}));
    server.stop().await;
}

#[tokio::test]
async fn join_with_invalid_room_id_is_refused() {
    let server = spawn_server(|_| {}).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    let long = format!("room:{}", "x".repeat(129));
    for topic in ["room:", long.as_str(), "room:a\u{1}b"] {
        let reply = c.join(topic).await.expect_err("refused");
        assert_eq!(reply.join_ref, reply.reference);
        assert_eq!(reply.topic, topic);
        assert_eq!(
            reply.payload,
            json!({"status": "error", "response": {"reason": "invalid room id"}})
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn join_to_unknown_topic_is_unmatched() {
    let server = spawn_server(|_| {}).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    c.send(Some("4"), Some("4"), "lobby:x", "phx_join", json!({}))
        .await;
    let reply = c.reply("4").await;
    assert_eq!(reply.join_ref, None);
    assert_eq!(reply.topic, "lobby:x");
    assert_eq!(
        reply.payload,
        json!({"status": "error", "response": {"reason": "unmatched topic"}})
    );
    // Non-heartbeat events on the "phoenix" topic are unmatched too.
    c.send(None, Some("5"), "phoenix", "phx_join", json!({}))
        .await;
    assert_eq!(
        c.reply("5").await.response(),
        &json!({"reason": "unmatched topic"})
    );
    server.stop().await;
}

#[tokio::test]
async fn message_to_a_topic_not_joined_is_unmatched() {
    let server = spawn_server(|_| {}).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    let r = c
        .push("1", "room:nope", "mediaEvent", json!({"data": "{}"}))
        .await;
    let reply = c.reply(&r).await;
    assert_eq!(reply.join_ref, None);
    assert_eq!(reply.topic, "room:nope");
    assert_eq!(
        reply.payload,
        json!({"status": "error", "response": {"reason": "unmatched topic"}})
    );
    let r = c.push("1", "room:nope", "phx_leave", json!({})).await;
    assert_eq!(
        c.reply(&r).await.response(),
        &json!({"reason": "unmatched topic"})
    );
    server.stop().await;
}

#[tokio::test]
async fn leave_replies_then_closes_the_channel() {
    let server = spawn_server(|_| {}).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    let jr = c.join_ok("room:leave").await;
    let r = c.push(&jr, "room:leave", "phx_leave", json!({})).await;
    let reply = c.reply(&r).await;
    assert_eq!(reply.join_ref.as_deref(), Some(jr.as_str()));
    assert_eq!(reply.status(), "ok");
    let close = c.next_frame_where(|f| f.event == "phx_close").await;
    assert_eq!(close.join_ref.as_deref(), Some(jr.as_str()));
    assert_eq!(close.reference.as_deref(), Some(jr.as_str()));
    assert_eq!(close.topic, "room:leave");
    assert_eq!(close.payload, json!({}));
    // The reply came before the close.
    let r2 = c
        .push(&jr, "room:leave", "mediaEvent", json!({"data": "{}"}))
        .await;
    assert_eq!(
        c.reply(&r2).await.response(),
        &json!({"reason": "unmatched topic"})
    );
    server.stop().await;
}

#[tokio::test]
async fn second_join_closes_the_old_channel_first() {
    let server = spawn_server(|_| {}).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    let old = c.join_ok("room:twice").await;
    let new = c.send_join("room:twice").await;
    let first = c
        .next_frame_where(|f| f.event == "phx_close" || f.is_reply_to(&new))
        .await;
    assert_eq!(
        first.event, "phx_close",
        "phx_close comes before the new join reply"
    );
    assert_eq!(first.join_ref.as_deref(), Some(old.as_str()));
    assert_eq!(first.reference.as_deref(), Some(old.as_str()));
    let reply = c.reply(&new).await;
    assert_eq!(reply.join_ref.as_deref(), Some(new.as_str()));
    assert_eq!(reply.status(), "ok");
    // The new channel is joined.
    let r = c
        .push(&new, "room:twice", "mediaEvent", json!({"data": "{}"}))
        .await;
    assert_eq!(c.reply(&r).await.status(), "ok");
    server.stop().await;
}

#[tokio::test]
async fn binary_frame_closes_with_1003() {
    let server = spawn_server(|_| {}).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    c.send_message(Message::Binary(vec![0, 1, 2, 3]))
        .await
        .unwrap();
    let (code, reason) = c.closed().await;
    assert_eq!(code, 1003);
    assert!(reason.contains("binary"), "reason: {reason}");
    server.stop().await;
}

#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    let server = spawn_server(|c| c.max_frame_bytes = 1024).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    let big = json!([null, "1", "phoenix", "heartbeat", {"pad": "x".repeat(1500)}]).to_string();
    c.send_text(big).await;
    let (code, reason) = c.closed().await;
    assert_eq!(code, 1009);
    assert_eq!(reason, "message too big");

    // Far beyond the limit, warp itself stops reading; the socket still ends.
    let mut c = PhoenixClient::connect(server.addr).await;
    let huge = json!([null, "1", "phoenix", "heartbeat", {"pad": "x".repeat(100_000)}]).to_string();
    let _ = c.send_message(Message::Text(huge)).await;
    match c.ended().await {
        Event::Closed { code, .. } => assert_eq!(code, 1009),
        Event::Gone(_) => {}
        Event::Frame(f) => panic!("unexpected frame {f:?}"),
    }

    // A frame at the limit is fine.
    let mut c = PhoenixClient::connect(server.addr).await;
    let head = r#"[null,"1","phoenix","heartbeat",{"pad":""}]"#.len();
    let exact = json!([null, "1", "phoenix", "heartbeat", {"pad": "x".repeat(1024 - head)}]);
    assert_eq!(exact.to_string().len(), 1024);
    c.send_text(exact.to_string()).await;
    assert_eq!(c.reply("1").await.status(), "ok");
    server.stop().await;
}

#[tokio::test]
async fn non_json_frame_is_ignored() {
    let server = spawn_server(|_| {}).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    c.send_text("hello, not json").await;
    c.send_text("").await;
    // Truncated with an unreadable ref (a readable one gets a "malformed frame" reply).
    c.send_text("[null,1,").await;
    let before = c.barrier().await;
    assert!(before.is_empty(), "no reply without a ref: {before:?}");
    server.stop().await;
}

#[tokio::test]
async fn wrong_arity_gets_malformed_reply() {
    let server = spawn_server(|_| {}).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    c.send_text(r#"["1","7","room:x","mediaEvent"]"#).await;
    let reply = c.reply("7").await;
    assert_eq!(reply.join_ref.as_deref(), Some("1"));
    assert_eq!(reply.topic, "room:x");
    assert_eq!(
        reply.payload,
        json!({"status": "error", "response": {"reason": "malformed frame"}})
    );
    c.send_text(r#"[null,"8","phoenix","heartbeat",{},{}]"#)
        .await;
    assert_eq!(
        c.reply("8").await.response(),
        &json!({"reason": "malformed frame"})
    );
    c.send_text(r#"{"topic":"phoenix","event":"heartbeat","ref":"9"}"#)
        .await;
    assert!(c.barrier().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn wrong_types_get_malformed_reply() {
    let server = spawn_server(|_| {}).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    for (text, r) in [
        (r#"[null,"11",5,"heartbeat",{}]"#, "11"),
        (r#"[null,"12","phoenix",null,{}]"#, "12"),
        (r#"[null,"13","phoenix","heartbeat",[]]"#, "13"),
        (r#"[null,"14","phoenix","heartbeat","x"]"#, "14"),
        (r#"[7,"15","phoenix","heartbeat",{}]"#, "15"),
    ] {
        c.send_text(text).await;
        let reply = c.reply(r).await;
        assert_eq!(reply.status(), "error", "{text}");
        assert_eq!(reply.response(), &json!({"reason": "malformed frame"}));
        if r == "11" {
            assert_eq!(reply.topic, "phoenix", "topic falls back to phoenix");
        }
    }
    // A numeric ref cannot be echoed: no reply.
    c.send_text(r#"[null,16,"phoenix","heartbeat",{}]"#).await;
    assert!(c.barrier().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn media_event_needs_string_data() {
    let server = spawn_server(|_| {}).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    let jr = c.join_ok("room:data").await;
    for payload in [
        json!({"data": {"type": "connect"}}),
        json!({}),
        json!({"data": 5}),
    ] {
        let r = c.push(&jr, "room:data", "mediaEvent", payload).await;
        let reply = c.reply(&r).await;
        assert_eq!(reply.join_ref.as_deref(), Some(jr.as_str()));
        assert_eq!(
            reply.payload,
            json!({"status": "error", "response": {"reason": "mediaEvent payload must be {\"data\": string}"}})
        );
    }
    let r = c
        .push(
            &jr,
            "room:data",
            "mediaEvent",
            json!({"data": "not even json"}),
        )
        .await;
    assert_eq!(c.reply(&r).await.status(), "ok");
    server.stop().await;
}

#[tokio::test]
async fn unknown_channel_event_is_refused() {
    let server = spawn_server(|_| {}).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    let jr = c.join_ok("room:unknown").await;
    let r = c.push(&jr, "room:unknown", "shout", json!({})).await;
    assert_eq!(
        c.reply(&r).await.payload,
        json!({"status": "error", "response": {"reason": "unknown event"}})
    );
    server.stop().await;
}

#[tokio::test]
async fn idle_socket_is_closed() {
    let server = spawn_server(|c| c.idle_timeout_secs = 1).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    let r = c.heartbeat().await;
    assert_eq!(c.reply(&r).await.status(), "ok");
    let started = std::time::Instant::now();
    let (code, reason) = c.closed().await;
    assert_eq!(code, 1001);
    assert_eq!(reason, "idle timeout");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    server.stop().await;
}

#[tokio::test]
async fn client_that_never_reads_is_disconnected() {
    let server = spawn_server(|c| {
        c.outbound_queue = 4;
        c.max_events_per_sec = 1_000_000;
    })
    .await;
    let mut c = PhoenixClient::connect(server.addr).await;
    // Each heartbeat reply echoes a 60 kB ref: a few hundred fill the TCP buffers, then the
    // outbound queue, and the server must give up on this client instead of buffering.
    let pad = "r".repeat(60_000);
    let mut sent = 0;
    for i in 0..2_000 {
        let frame = json!([null, format!("{i}{pad}"), "phoenix", "heartbeat", {}]).to_string();
        if c.send_message(Message::Text(frame)).await.is_err() {
            break;
        }
        sent += 1;
    }
    assert!(sent > 10, "sent {sent}");
    // Now read: the server must have ended the connection (else we would read every reply
    // and then time out waiting).
    c.ended().await;
    server.stop().await;
}

#[tokio::test]
async fn rate_limit_replies_rate_limited() {
    let server = spawn_server(|c| c.max_events_per_sec = 5).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    let mut refs = Vec::new();
    for _ in 0..30 {
        refs.push(c.heartbeat().await);
    }
    let (mut ok, mut limited) = (0, 0);
    for r in &refs {
        let reply = c.reply(r).await;
        match reply.status() {
            "ok" => ok += 1,
            "error" => {
                assert_eq!(reply.response(), &json!({"reason": "rate_limited"}));
                limited += 1;
            }
            other => panic!("status {other}"),
        }
    }
    assert!(ok >= 10, "burst of 2x the rate: {ok}");
    assert!(limited >= 1, "some were limited");
    // Not disconnected: once tokens refill (one per 200 ms), heartbeats are answered again.
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    let mut answered = false;
    for _ in 0..50 {
        tick.tick().await;
        let r = c.heartbeat().await;
        if c.reply(&r).await.status() == "ok" {
            answered = true;
            break;
        }
    }
    assert!(answered);
    server.stop().await;
}

#[tokio::test]
async fn flooding_client_is_disconnected() {
    let server = spawn_server(|c| c.max_events_per_sec = 5).await;
    let mut c = PhoenixClient::connect(server.addr).await;
    for _ in 0..200 {
        let r = c.make_ref();
        let frame = json!([null, r, "phoenix", "heartbeat", {}]).to_string();
        if c.send_message(Message::Text(frame)).await.is_err() {
            break;
        }
    }
    let (code, reason) = c.closed().await;
    assert_eq!(code, 1008);
    assert_eq!(reason, "rate limit exceeded");
    server.stop().await;
}

#[tokio::test]
async fn at_most_100_channels_per_socket() {
    let server = spawn_server(|c| {
        c.max_rooms = 200;
        c.max_events_per_sec = 10_000;
    })
    .await;
    let mut c = PhoenixClient::connect(server.addr).await;
    for i in 0..100 {
        c.join_ok(&format!("room:many-{i}")).await;
    }
    let reply = c.join("room:many-100").await.expect_err("101st refused");
    assert_eq!(
        reply.response(),
        &json!({"reason": "too many channels joined"})
    );
    // Rejoining an already joined topic does not count as a new channel.
    c.join_ok("room:many-5").await;
    server.stop().await;
}
