//! The room chat's decisions: who may chat, how often, what text, who gets it.

use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use super::*;
use crate::tests::{connect, id, room};
use lamina_protocol::chat::{MAX_CHAT_CHARS, MAX_CHAT_NAME_CHARS};

/// Who got which message, in effect order.
fn deliveries(fx: &[Effect]) -> Vec<(&str, &ChatMessage)> {
    fx.iter()
        .map(|e| match e {
            Effect::Chat { peer, message } => (peer.as_str(), message),
            other => panic!("chat produced {other:?}"),
        })
        .collect()
}

fn recipients(fx: &[Effect]) -> Vec<&str> {
    deliveries(fx).into_iter().map(|(p, _)| p).collect()
}

fn at(unix_ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(unix_ms)
}

#[test]
fn a_message_goes_to_every_connected_peer_sender_included() {
    let mut r = room();
    connect(&mut r, "A", "Alice");
    connect(&mut r, "B", "Bob");
    r.join(id("C")).unwrap(); // joined the channel, no `connect`: not an endpoint yet
    connect(&mut r, "D", "Dave");
    r.advance(Instant::now(), at(1_700_000_000_123));

    let fx = r.chat(&id("B"), "hello <b>all</b>".into()).unwrap();
    assert_eq!(recipients(&fx), ["A", "B", "D"]);
    let want = ChatMessage {
        from: "B".into(),
        name: "Bob".into(),
        text: "hello <b>all</b>".into(),
        at: 1_700_000_000_123,
    };
    for (_, m) in deliveries(&fx) {
        assert_eq!(m, &want);
    }

    // Once C connects it gets the next messages (no history: nothing before).
    r.client_event(
        &id("C"),
        ClientEvent::Connect {
            metadata: json!({"displayName": "Carol"}),
        },
    );
    assert_eq!(
        recipients(&r.chat(&id("A"), "hi Carol".into()).unwrap()),
        ["A", "B", "C", "D"]
    );
    // A peer that left gets nothing.
    r.leave(&id("D"));
    assert_eq!(
        recipients(&r.chat(&id("C"), "bye".into()).unwrap()),
        ["A", "B", "C"]
    );
}

#[test]
fn alone_in_the_room_the_sender_gets_its_own_message() {
    let mut r = room();
    connect(&mut r, "A", "Alice");
    assert_eq!(recipients(&r.chat(&id("A"), "echo".into()).unwrap()), ["A"]);
}

#[test]
fn only_connected_peers_may_chat() {
    let mut r = room();
    connect(&mut r, "A", "Alice");
    r.join(id("B")).unwrap();
    assert_eq!(
        r.chat(&id("B"), "early".into()),
        Err(ChatError::NotConnected)
    );
    // Not in the room at all (left, or never joined).
    assert_eq!(
        r.chat(&id("nobody"), "hi".into()),
        Err(ChatError::NotConnected)
    );
    r.leave(&id("A"));
    assert_eq!(r.chat(&id("A"), "hi".into()), Err(ChatError::NotConnected));
}

#[test]
fn message_size_is_bounded_in_characters() {
    let mut r = room();
    connect(&mut r, "A", "Alice");
    connect(&mut r, "B", "Bob");
    let t0 = Instant::now();
    let mut t = t0;
    let mut send = |r: &mut RoomCore, text: String| {
        // Far apart, so the rate limit plays no part.
        t += Duration::from_secs(1);
        r.advance(t, SystemTime::UNIX_EPOCH);
        r.chat(&id("A"), text)
    };
    assert_eq!(
        send(&mut r, "x".repeat(MAX_CHAT_CHARS + 1)),
        Err(ChatError::TooLong)
    );
    assert_eq!(send(&mut r, "x".repeat(100_000)), Err(ChatError::TooLong));
    assert_eq!(
        send(&mut r, "x".repeat(MAX_CHAT_CHARS)).map(|fx| fx.len()),
        Ok(2)
    );
    // 1000 two-byte characters are 2000 bytes but 1000 characters.
    assert_eq!(
        send(&mut r, "é".repeat(MAX_CHAT_CHARS)).map(|fx| fx.len()),
        Ok(2)
    );
    assert_eq!(send(&mut r, String::new()), Err(ChatError::Empty));
    assert_eq!(
        send(&mut r, " \t".into()),
        Err(ChatError::ControlCharacters)
    );
    assert_eq!(send(&mut r, "   ".into()), Err(ChatError::Empty));
}

#[test]
fn control_characters_are_refused() {
    let mut r = room();
    connect(&mut r, "A", "Alice");
    let t0 = Instant::now();
    for (i, bad) in [
        "line\nbreak",
        "tab\t",
        "nul\0",
        "esc\u{1b}[2J",
        "del\u{7f}",
        "c1\u{9b}",
    ]
    .into_iter()
    .enumerate()
    {
        r.advance(t0 + Duration::from_secs(i as u64), SystemTime::UNIX_EPOCH);
        assert_eq!(
            r.chat(&id("A"), bad.into()),
            Err(ChatError::ControlCharacters),
            "{bad:?}"
        );
    }
    // Markup and non-Latin text are plain text.
    r.advance(t0 + Duration::from_secs(10), SystemTime::UNIX_EPOCH);
    assert!(r
        .chat(&id("A"), "<img src=x onerror=alert(1)> 日本語 🎉".into())
        .is_ok());
}

#[test]
fn each_peer_has_its_own_rate_in_the_cores_time() {
    let mut r = room();
    connect(&mut r, "A", "Alice");
    connect(&mut r, "B", "Bob");
    let t0 = Instant::now();
    r.advance(t0, SystemTime::UNIX_EPOCH);
    // A burst of twice the rate passes; the next message in the same instant is refused.
    let burst = 2 * CHAT_MESSAGES_PER_SEC;
    for n in 0..burst {
        assert!(r.chat(&id("A"), format!("m{n}")).is_ok(), "message {n}");
    }
    assert_eq!(
        r.chat(&id("A"), "one more".into()),
        Err(ChatError::RateLimited)
    );
    // A flood stays refused (never a disconnect) and costs the others nothing.
    for _ in 0..200 {
        assert_eq!(
            r.chat(&id("A"), "flood".into()),
            Err(ChatError::RateLimited)
        );
    }
    assert_eq!(
        recipients(&r.chat(&id("B"), "still here".into()).unwrap()),
        ["A", "B"]
    );
    assert_eq!(r.peer_count(), 2);
    // Refused messages count too: an oversized one is refused for its rate first.
    assert_eq!(
        r.chat(&id("A"), "x".repeat(MAX_CHAT_CHARS + 1)),
        Err(ChatError::RateLimited)
    );
    // 200 ms later one more token has come back, not two.
    r.advance(t0 + Duration::from_millis(200), SystemTime::UNIX_EPOCH);
    assert!(r.chat(&id("A"), "later".into()).is_ok());
    assert_eq!(
        r.chat(&id("A"), "again".into()),
        Err(ChatError::RateLimited)
    );
    // The budget refills at the rate, up to the burst.
    r.advance(t0 + Duration::from_secs(60), SystemTime::UNIX_EPOCH);
    for n in 0..burst {
        assert!(r.chat(&id("A"), format!("n{n}")).is_ok(), "message {n}");
    }
    assert_eq!(r.chat(&id("A"), "over".into()), Err(ChatError::RateLimited));
}

#[test]
fn a_peer_that_rejoins_starts_with_a_fresh_budget() {
    let mut r = room();
    connect(&mut r, "A", "Alice");
    connect(&mut r, "B", "Bob");
    r.advance(Instant::now(), SystemTime::UNIX_EPOCH);
    for _ in 0..2 * CHAT_MESSAGES_PER_SEC {
        r.chat(&id("A"), "x".into()).unwrap();
    }
    assert_eq!(r.chat(&id("A"), "x".into()), Err(ChatError::RateLimited));
    r.leave(&id("A"));
    connect(&mut r, "A", "Alice");
    assert!(r.chat(&id("A"), "back".into()).is_ok());
}

#[test]
fn the_name_is_the_display_name_cleaned_or_the_enforced_one() {
    let mut r = room();
    r.join(id("A")).unwrap();
    r.client_event(
        &id("A"),
        ClientEvent::Connect {
            metadata: json!({"displayName": format!("Al\u{7}ice{}", "e".repeat(300))}),
        },
    );
    r.join(id("B")).unwrap();
    r.client_event(
        &id("B"),
        ClientEvent::Connect {
            metadata: json!(42),
        },
    );
    r.join(id("C")).unwrap();
    r.enforce_display_name(&id("C"), "Token Carol".into());
    r.client_event(
        &id("C"),
        ClientEvent::Connect {
            metadata: json!({"displayName": "Mallory"}),
        },
    );
    let name = |r: &mut RoomCore, p: &str| {
        let fx = r.chat(&id(p), "hi".into()).unwrap();
        deliveries(&fx)[0].1.name.clone()
    };
    let a = name(&mut r, "A");
    assert!(a.starts_with("Aliceee"), "{a}");
    assert_eq!(a.chars().count(), MAX_CHAT_NAME_CHARS);
    assert_eq!(name(&mut r, "B"), "");
    assert_eq!(name(&mut r, "C"), "Token Carol");
    // A renamed endpoint chats under its new name.
    r.client_event(
        &id("B"),
        ClientEvent::UpdateEndpointMetadata {
            metadata: json!({"displayName": "Bob"}),
        },
    );
    assert_eq!(name(&mut r, "B"), "Bob");
}

#[test]
fn nothing_is_kept_after_the_room_fails() {
    let mut r = room();
    connect(&mut r, "A", "Alice");
    r.chat(&id("A"), "hello".into()).unwrap();
    let fx = r.media_event(MediaEvent::RoomFailed {
        reason: "boom".into(),
    });
    assert!(fx.contains(&Effect::CloseRoom));
    assert_eq!(
        r.chat(&id("A"), "hello".into()),
        Err(ChatError::NotConnected)
    );
    assert!(r.chat_rate.is_empty());
}
