//! The room chat over a real WebSocket (docs/protocol.md §9): `"chat"` pushes answered ok or
//! with a clear error reason, delivered as `"chat"` pushes to every connected peer of the room;
//! refused messages (oversized, control characters, flooding, before `connect`, on a room not
//! joined) reach nobody and harm nothing else.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use lamina_protocol::chat::{ChatMessage, MAX_CHAT_CHARS};
use serde_json::{json, Value};
use support::{spawn_server, PhoenixClient};

/// A peer that joined `topic` (and sent `connect` when it has a name).
struct Peer {
    client: PhoenixClient,
    topic: String,
    join_ref: String,
    id: Option<String>,
}

impl Peer {
    async fn join(addr: std::net::SocketAddr, topic: &str) -> Peer {
        let mut client = PhoenixClient::connect(addr).await;
        let join_ref = client.join_ok(topic).await;
        Peer {
            client,
            topic: topic.to_owned(),
            join_ref,
            id: None,
        }
    }

    async fn connected(addr: std::net::SocketAddr, topic: &str, name: &str) -> Peer {
        let mut p = Peer::join(addr, topic).await;
        p.connect(name).await;
        p
    }

    async fn connect(&mut self, name: &str) {
        let event = json!({"type": "connect", "data": {"metadata": {"displayName": name}}});
        let r = self
            .client
            .media_event(&self.join_ref, &self.topic, event)
            .await;
        assert_eq!(self.client.reply(&r).await.status(), "ok");
        let connected = self.client.media_event_of_type("connected").await;
        self.id = Some(connected["data"]["id"].as_str().expect("id").to_owned());
    }

    fn id(&self) -> &str {
        self.id.as_deref().expect("connected")
    }

    /// Sends a chat message and returns the reply: `Ok(())` or `Err(reason)`.
    async fn chat(&mut self, text: &str) -> Result<(), String> {
        let r = self.client.chat(&self.join_ref, &self.topic, text).await;
        reply_result(&self.client.reply(&r).await)
    }

    /// The chat messages received so far (proved complete by a heartbeat barrier).
    async fn chats_so_far(&mut self) -> Vec<ChatMessage> {
        self.client
            .barrier()
            .await
            .iter()
            .filter_map(support::Frame::chat_message)
            .collect()
    }
}

fn reply_result(reply: &support::Frame) -> Result<(), String> {
    assert_eq!(reply.event, "phx_reply");
    if reply.is_ok() {
        assert_eq!(reply.response(), &json!({}));
        Ok(())
    } else {
        assert_eq!(reply.status(), "error", "{reply:?}");
        Err(reply.response()["reason"]
            .as_str()
            .expect("an error reply has a reason")
            .to_owned())
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

#[tokio::test]
async fn two_peers_exchange_messages() {
    let server = spawn_server(|_| {}).await;
    let mut a = Peer::connected(server.addr, "room:chat", "Alice").await;
    let mut b = Peer::connected(server.addr, "room:chat", "Bob").await;
    // Joined the room's channel but never sent `connect`: not an endpoint, gets no chat.
    let mut lurker = Peer::join(server.addr, "room:chat").await;
    // Another room hears nothing.
    let mut elsewhere = Peer::connected(server.addr, "room:elsewhere", "Eve").await;

    let (a_id, b_id) = (a.id().to_owned(), b.id().to_owned());
    let before = unix_ms();
    assert_eq!(a.chat("hello <b>Bob</b> 👋").await, Ok(()));
    let after = unix_ms();
    for p in [&mut a, &mut b] {
        let m = p.client.chat_message().await;
        assert_eq!(m.from, a_id);
        assert_eq!(m.name, "Alice");
        assert_eq!(m.text, "hello <b>Bob</b> 👋");
        assert!(
            (before - 1000..=after + 1000).contains(&m.at),
            "at {} not within [{before}, {after}]",
            m.at
        );
    }
    assert_eq!(b.chat("hi Alice").await, Ok(()));
    for p in [&mut a, &mut b] {
        let m = p.client.chat_message().await;
        assert_eq!((m.from.as_str(), m.name.as_str()), (b_id.as_str(), "Bob"));
        assert_eq!(m.text, "hi Alice");
    }
    // The frame itself: a push with the channel's join ref and a null ref.
    assert_eq!(a.chat("third").await, Ok(()));
    let f = b.client.next_frame_where(|f| f.event == "chat").await;
    assert_eq!(f.join_ref.as_deref(), Some(b.join_ref.as_str()));
    assert_eq!(f.reference, None);
    assert_eq!(f.topic, "room:chat");
    assert_eq!(
        f.payload.as_object().map(|o| {
            let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
            keys.sort_unstable();
            keys
        }),
        Some(vec!["at", "from", "name", "text"])
    );
    a.client.chat_message().await;

    assert_eq!(lurker.chats_so_far().await, []);
    assert_eq!(elsewhere.chats_so_far().await, []);
    // Once it connects, the lurker gets the next messages (and no history).
    lurker.connect("Late").await;
    assert_eq!(a.chat("welcome").await, Ok(()));
    assert_eq!(lurker.client.chat_message().await.text, "welcome");
    assert_eq!(lurker.chats_so_far().await, []);
    server.stop().await;
}

#[tokio::test]
async fn refused_messages_get_clear_reasons_and_reach_nobody() {
    let server = spawn_server(|_| {}).await;
    let mut a = Peer::connected(server.addr, "room:refused", "Alice").await;
    let mut b = Peer::connected(server.addr, "room:refused", "Bob").await;
    a.client.media_event_of_type("endpointAdded").await;

    let too_long = "x".repeat(MAX_CHAT_CHARS + 1);
    assert_eq!(a.chat(&too_long).await, Err("too_long".into()));
    assert_eq!(a.chat("ring\u{7}").await, Err("control_characters".into()));
    assert_eq!(a.chat("two\nlines").await, Err("control_characters".into()));
    assert_eq!(a.chat("   ").await, Err("empty".into()));
    for payload in [json!({}), json!({"text": 5}), json!({"message": "hi"})] {
        let r = a.client.push(&a.join_ref, &a.topic, "chat", payload).await;
        assert_eq!(
            reply_result(&a.client.reply(&r).await),
            Err("invalid_payload".into())
        );
    }
    // Nothing of it was delivered, nothing was echoed back.
    assert_eq!(a.chats_so_far().await, []);
    assert_eq!(b.chats_so_far().await, []);

    // The limit counts characters: 1000 of them (2000 bytes) pass.
    let longest = "é".repeat(MAX_CHAT_CHARS);
    assert_eq!(a.chat(&longest).await, Ok(()));
    assert_eq!(b.client.chat_message().await.text, longest);

    // Both peers are still in the room: media events flow, nobody was removed.
    let update =
        json!({"type": "updateEndpointMetadata", "data": {"metadata": {"displayName": "Alice 2"}}});
    let r = a.client.media_event(&a.join_ref, &a.topic, update).await;
    assert_eq!(a.client.reply(&r).await.status(), "ok");
    let updated = b.client.media_event_of_type("endpointUpdated").await;
    assert_eq!(updated["data"]["id"], a.id());
    // The new name is used from now on.
    assert_eq!(a.chat("renamed").await, Ok(()));
    assert_eq!(b.client.chat_message().await.name, "Alice 2");
    let removed = |f: &support::Frame| {
        f.media_event()
            .is_some_and(|e| e["type"] == "endpointRemoved")
    };
    assert!(!b.client.barrier().await.iter().any(removed));
    server.stop().await;
}

#[tokio::test]
async fn chat_before_connect_is_refused() {
    let server = spawn_server(|_| {}).await;
    let mut a = Peer::connected(server.addr, "room:early", "Alice").await;
    let mut b = Peer::join(server.addr, "room:early").await;
    assert_eq!(b.chat("too early").await, Err("not_connected".into()));
    assert_eq!(a.chats_so_far().await, []);
    b.connect("Bob").await;
    assert_eq!(b.chat("now").await, Ok(()));
    assert_eq!(a.client.chat_message().await.text, "now");
    server.stop().await;
}

#[tokio::test]
async fn chat_on_a_room_not_joined_is_refused() {
    let server = spawn_server(|_| {}).await;
    let mut a = Peer::connected(server.addr, "room:mine", "Alice").await;
    let mut b = Peer::connected(server.addr, "room:theirs", "Bob").await;

    // A's socket never joined room:theirs: the socket answers "unmatched topic".
    let r = a
        .client
        .chat(&a.join_ref.clone(), "room:theirs", "intruding")
        .await;
    let reply = a.client.reply(&r).await;
    assert_eq!(reply.join_ref, None);
    assert_eq!(reply_result(&reply), Err("unmatched topic".into()));
    assert_eq!(b.chats_so_far().await, []);

    // After leaving, its own room is not joined either.
    let r = a
        .client
        .push(&a.join_ref, &a.topic, "phx_leave", json!({}))
        .await;
    assert!(a.client.reply(&r).await.is_ok());
    assert_eq!(a.chat("gone").await, Err("unmatched topic".into()));

    // Both rooms still chat.
    assert_eq!(b.chat("still fine").await, Ok(()));
    assert_eq!(b.client.chat_message().await.text, "still fine");
    server.stop().await;
}

#[tokio::test]
async fn flooding_is_limited_per_peer_and_harms_nobody() {
    let server = spawn_server(|_| {}).await;
    let mut a = Peer::connected(server.addr, "room:flood", "Alice").await;
    let mut b = Peer::connected(server.addr, "room:flood", "Bob").await;

    // 40 messages back to back, replies collected afterwards.
    let mut refs = Vec::new();
    for n in 0..40 {
        let r = a
            .client
            .chat(&a.join_ref, &a.topic, &format!("flood {n}"))
            .await;
        refs.push((n, r));
    }
    let mut accepted = Vec::new();
    for (n, r) in refs {
        match reply_result(&a.client.reply(&r).await) {
            Ok(()) => accepted.push(format!("flood {n}")),
            Err(reason) => assert_eq!(reason, "rate_limited"),
        }
    }
    // A burst of 10 (twice the 5/s rate), plus what refilled meanwhile.
    assert!(
        (10..=15).contains(&accepted.len()),
        "{} accepted",
        accepted.len()
    );
    // Exactly the accepted messages reach the others, in order.
    let got: Vec<String> = b.chats_so_far().await.into_iter().map(|m| m.text).collect();
    assert_eq!(got, accepted);

    // The budget is per peer: B chats at once; A is still in the room.
    assert_eq!(b.chat("my turn").await, Ok(()));
    assert_eq!(
        a.chats_so_far().await.last().map(|m| m.text.clone()),
        Some("my turn".into())
    );
    let frames = b.client.barrier().await;
    assert!(!frames.iter().any(|f| f
        .media_event()
        .is_some_and(|e| e["type"] == "endpointRemoved")));
    // And A's channel still works for media events.
    let update =
        json!({"type": "updateEndpointMetadata", "data": {"metadata": {"displayName": "A"}}});
    let r = a.client.media_event(&a.join_ref, &a.topic, update).await;
    assert_eq!(a.client.reply(&r).await.status(), "ok");
    let updated: Value = b.client.media_event_of_type("endpointUpdated").await;
    assert_eq!(updated["data"]["id"], a.id());
    server.stop().await;
}

#[tokio::test]
async fn control_characters_in_names_and_invalid_utf8_harm_nothing() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::Message;

    let server = spawn_server(|_| {}).await;
    let mut a = Peer::connected(server.addr, "room:bytes", "Alice").await;
    // A display name with control characters: others see it without them.
    let mut b = Peer::connected(server.addr, "room:bytes", "B\u{7}o\u{1b}[31mb\n").await;
    assert_eq!(b.chat("hi").await, Ok(()));
    for p in [&mut a, &mut b] {
        assert_eq!(p.client.chat_message().await.name, "Bo[31mb");
    }

    // A text frame that is not UTF-8, carrying a chat push: the sender's socket is closed
    // (RFC 6455: 1007), nobody gets anything, the room goes on.
    let (mut raw, _) = tokio_tungstenite::connect_async(support::socket_url(server.addr))
        .await
        .expect("websocket handshake");
    let join = r#"["1","1","room:bytes","phx_join",{}]"#;
    raw.send(Message::Text(join.into())).await.unwrap();
    let mut payload = br#"["1","2","room:bytes","chat",{"text":"caf"#.to_vec();
    payload.extend_from_slice(&[0xc3, 0x28, 0xff]);
    payload.extend_from_slice(br#""}]"#);
    let frame = Frame::message(payload, OpCode::Data(Data::Text), true);
    let _ = raw.send(Message::Frame(frame)).await;
    let closed = tokio::time::timeout(support::TIMEOUT, async {
        loop {
            match raw.next().await {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Close(c))) => return c.map(|c| u16::from(c.code)),
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("the server closes the socket in time");
    assert!(
        matches!(closed, None | Some(1007) | Some(1002)),
        "closed with {closed:?}"
    );
    assert_eq!(a.chats_so_far().await, []);
    assert_eq!(a.chat("still here").await, Ok(()));
    assert_eq!(b.client.chat_message().await.text, "still here");
    server.stop().await;
}
