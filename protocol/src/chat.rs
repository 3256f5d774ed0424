//! Room chat: the `"chat"` channel event of a `room:<id>` channel, both directions.
//!
//! Chat is a Phoenix channel event of its own, **not** a media event: the Membrane client only
//! listens to `"mediaEvent"`, so it never sees chat traffic (docs/protocol.md §9).
//!
//! - client → server: a push `"chat"` with [`ChatPush`] `{"text": string}`, answered by a
//!   `phx_reply`: ok `{}`, or error `{"reason": <`[`ChatError`]`>}`;
//! - server → client: a push `"chat"` with [`ChatMessage`]
//!   `{"from": endpoint id, "name": display name, "text": string, "at": unix ms}` to every
//!   connected peer of the room, the sender included.
//!
//! The bodies are serde structs; [`validate_text`] is the check of a message's text (at most
//! [`MAX_CHAT_CHARS`] characters, not blank, no control characters), applied by
//! [`ChatPush::decode`] and [`ChatMessage::decode`]. [`ChatPush::from_payload`] only reads the
//! shape, for a receiver that validates later (the room core does).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The channel event of chat messages, in both directions.
pub const CHAT_EVENT: &str = "chat";

/// Longest chat message, in characters (Unicode scalar values).
pub const MAX_CHAT_CHARS: usize = 1000;

/// Longest `name` of a [`ChatMessage`], in characters: a longer display name is cut.
pub const MAX_CHAT_NAME_CHARS: usize = 100;

/// Why a chat message was refused: the `reason` of the error reply (its `Display` text, also
/// [`ChatError::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// The payload is not `{"text": string}`.
    #[error("invalid_payload")]
    InvalidPayload,
    /// The text is empty or only white space.
    #[error("empty")]
    Empty,
    /// The text is longer than [`MAX_CHAT_CHARS`] characters.
    #[error("too_long")]
    TooLong,
    /// The text contains a control character (line breaks and tabs included).
    #[error("control_characters")]
    ControlCharacters,
    /// The peer has not sent the `connect` media event yet.
    #[error("not_connected")]
    NotConnected,
    /// The peer sent more than its share of messages.
    #[error("rate_limited")]
    RateLimited,
    /// The room has stopped.
    #[error("room closed")]
    RoomClosed,
}

impl ChatError {
    /// Every reason, for parsing and tests.
    pub const ALL: [ChatError; 7] = [
        ChatError::InvalidPayload,
        ChatError::Empty,
        ChatError::TooLong,
        ChatError::ControlCharacters,
        ChatError::NotConnected,
        ChatError::RateLimited,
        ChatError::RoomClosed,
    ];

    /// The `reason` string of the error reply.
    pub fn reason(self) -> &'static str {
        match self {
            ChatError::InvalidPayload => "invalid_payload",
            ChatError::Empty => "empty",
            ChatError::TooLong => "too_long",
            ChatError::ControlCharacters => "control_characters",
            ChatError::NotConnected => "not_connected",
            ChatError::RateLimited => "rate_limited",
            ChatError::RoomClosed => "room closed",
        }
    }

    /// The error whose reason is `reason`, if any (the client's half).
    pub fn parse(reason: &str) -> Option<ChatError> {
        Self::ALL.into_iter().find(|e| e.reason() == reason)
    }
}

/// Checks the text of a chat message: not blank, at most [`MAX_CHAT_CHARS`] characters, no
/// control character (`char::is_control`: C0, DEL and C1, so no line breaks or tabs either).
pub fn validate_text(text: &str) -> Result<(), ChatError> {
    if text.chars().nth(MAX_CHAT_CHARS).is_some() {
        return Err(ChatError::TooLong);
    }
    if text.chars().any(char::is_control) {
        return Err(ChatError::ControlCharacters);
    }
    if text.trim().is_empty() {
        return Err(ChatError::Empty);
    }
    Ok(())
}

/// A display name fit for [`ChatMessage::name`]: control characters removed, cut to
/// [`MAX_CHAT_NAME_CHARS`] characters.
pub fn clean_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .take(MAX_CHAT_NAME_CHARS)
        .collect()
}

fn to_map<T: Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => unreachable!("chat bodies serialize to objects"),
    }
}

/// What a client pushes: `{"text": string}` (other fields are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatPush {
    /// The message.
    pub text: String,
}

impl ChatPush {
    /// A message to send.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }

    /// Reads the shape of a push payload only (the text is not checked): see
    /// [`ChatPush::decode`].
    pub fn from_payload(payload: &Map<String, Value>) -> Result<Self, ChatError> {
        match payload.get("text") {
            Some(Value::String(text)) => Ok(Self { text: text.clone() }),
            _ => Err(ChatError::InvalidPayload),
        }
    }

    /// Reads and checks a push payload ([`validate_text`]).
    pub fn decode(payload: &Map<String, Value>) -> Result<Self, ChatError> {
        let push = Self::from_payload(payload)?;
        push.validate()?;
        Ok(push)
    }

    /// Checks the text ([`validate_text`]).
    pub fn validate(&self) -> Result<(), ChatError> {
        validate_text(&self.text)
    }

    /// The payload of the push.
    pub fn to_payload(&self) -> Map<String, Value> {
        to_map(self)
    }
}

/// What the server pushes to every connected peer of the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// The sender's endpoint id.
    pub from: String,
    /// The sender's display name (`metadata.displayName` of its endpoint, cleaned with
    /// [`clean_name`]; empty when it has none).
    pub name: String,
    /// The message ([`validate_text`] holds).
    pub text: String,
    /// When the room accepted it, in milliseconds since the Unix epoch.
    pub at: u64,
}

impl ChatMessage {
    /// The payload of the push.
    pub fn to_payload(&self) -> Map<String, Value> {
        to_map(self)
    }

    /// Reads and checks a push payload (the client's half): every field with its type, the
    /// text passing [`validate_text`] and the name fitting [`clean_name`].
    pub fn decode(payload: &Map<String, Value>) -> Result<Self, ChatError> {
        let msg: ChatMessage = serde_json::from_value(Value::Object(payload.clone()))
            .map_err(|_| ChatError::InvalidPayload)?;
        validate_text(&msg.text)?;
        if clean_name(&msg.name) != msg.name {
            return Err(ChatError::InvalidPayload);
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn text_limits_count_characters() {
        assert_eq!(validate_text("hello"), Ok(()));
        assert_eq!(validate_text(&"x".repeat(MAX_CHAT_CHARS)), Ok(()));
        assert_eq!(validate_text(&"é".repeat(MAX_CHAT_CHARS)), Ok(()));
        assert_eq!(
            validate_text(&"x".repeat(MAX_CHAT_CHARS + 1)),
            Err(ChatError::TooLong)
        );
        assert_eq!(validate_text(""), Err(ChatError::Empty));
        assert_eq!(validate_text("  \u{3000} "), Err(ChatError::Empty));
    }

    #[test]
    fn control_characters_are_refused() {
        for bad in [
            "a\nb",
            "a\tb",
            "\r",
            "a\u{0}",
            "a\u{7f}",
            "a\u{85}b",
            "\u{1b}[31m",
        ] {
            assert_eq!(
                validate_text(bad),
                Err(ChatError::ControlCharacters),
                "{bad:?}"
            );
        }
        // Markup is text like any other: the client renders it as text.
        assert_eq!(validate_text("<img src=x onerror=alert(1)>"), Ok(()));
    }

    #[test]
    fn push_payloads() {
        assert_eq!(
            ChatPush::decode(&map(json!({"text": "hi", "extra": 1}))),
            Ok(ChatPush::new("hi"))
        );
        for bad in [json!({}), json!({"text": 5}), json!({"text": null})] {
            assert_eq!(
                ChatPush::from_payload(&map(bad)),
                Err(ChatError::InvalidPayload)
            );
        }
        assert_eq!(
            ChatPush::from_payload(&map(json!({"text": "a\nb"}))),
            Ok(ChatPush::new("a\nb"))
        );
        assert_eq!(
            ChatPush::decode(&map(json!({"text": "a\nb"}))),
            Err(ChatError::ControlCharacters)
        );
        assert_eq!(
            Value::Object(ChatPush::new("hi").to_payload()),
            json!({"text": "hi"})
        );
    }

    #[test]
    fn messages_round_trip() {
        let m = ChatMessage {
            from: "a".into(),
            name: "Alice".into(),
            text: "hi".into(),
            at: 1_700_000_000_000,
        };
        let payload = m.to_payload();
        assert_eq!(
            Value::Object(payload.clone()),
            json!({"from": "a", "name": "Alice", "text": "hi", "at": 1_700_000_000_000u64})
        );
        assert_eq!(ChatMessage::decode(&payload), Ok(m));
        for bad in [
            json!({"from": "a", "name": "A", "text": "hi"}),
            json!({"from": "a", "name": "A", "text": "hi", "at": -1}),
            json!({"from": "a", "name": "A\n", "text": "hi", "at": 1}),
            json!({"from": "a", "name": null, "text": "hi", "at": 1}),
        ] {
            assert_eq!(
                ChatMessage::decode(&map(bad)),
                Err(ChatError::InvalidPayload)
            );
        }
        assert_eq!(
            ChatMessage::decode(&map(
                json!({"from": "a", "name": "A", "text": "x".repeat(1001), "at": 1})
            )),
            Err(ChatError::TooLong)
        );
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("Al\u{7}ice\n"), "Alice");
        assert_eq!(
            clean_name(&"n".repeat(500)).chars().count(),
            MAX_CHAT_NAME_CHARS
        );
    }

    #[test]
    fn reasons_parse_back() {
        for e in ChatError::ALL {
            assert_eq!(e.to_string(), e.reason());
            assert_eq!(ChatError::parse(e.reason()), Some(e));
        }
        assert_eq!(ChatError::parse("nope"), None);
    }
}
