//! Phoenix v2 JSON frames: `[join_ref, ref, topic, event, payload]`.
//!
//! Pure encode/decode with a size limit (the serde form of [`Frame`] is that 5-element array),
//! constructors for the frames a Phoenix server sends (`phx_reply`, pushes, `phx_close`,
//! `phx_error`) and for those a client sends (`phx_join`, requests, `phx_leave`, heartbeats),
//! and readers of replies and `"mediaEvent"` payloads. No I/O here.
//!
//! ```
//! use lamina_protocol::phoenix_frame::{decode, Frame};
//! let f = decode(r#"[null,"12","phoenix","heartbeat",{}]"#, 1024).unwrap();
//! assert_eq!(f.reference.as_deref(), Some("12"));
//! let reply = Frame::ok_reply(&f, serde_json::json!({})).encode();
//! let expected = serde_json::json!([null, "12", "phoenix", "phx_reply", {"status": "ok", "response": {}}]);
//! assert_eq!(serde_json::from_str::<serde_json::Value>(&reply).unwrap(), expected);
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Event name of replies.
pub const PHX_REPLY: &str = "phx_reply";
/// Event name of a channel join.
pub const PHX_JOIN: &str = "phx_join";
/// Event name of a channel leave.
pub const PHX_LEAVE: &str = "phx_leave";
/// Event name the server sends when a channel is closed normally.
pub const PHX_CLOSE: &str = "phx_close";
/// Event name the server sends when a channel crashed (the client rejoins).
pub const PHX_ERROR: &str = "phx_error";
/// Topic of socket-level messages (heartbeats).
pub const PHOENIX_TOPIC: &str = "phoenix";
/// Event name of heartbeats.
pub const HEARTBEAT: &str = "heartbeat";
/// Event name of the pushes carrying a media event (`{"data": JSON text}`), both ways.
pub const MEDIA_EVENT: &str = "mediaEvent";

/// Why a text frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame is longer than the configured limit.
    #[error("frame too large: {size} bytes > {max} bytes")]
    TooLarge {
        /// Size of the frame in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The frame is not valid JSON.
    #[error("frame is not JSON: {0}")]
    NotJson(String),
    /// The frame is JSON but not an array of 5 elements.
    #[error("frame is not an array of 5 elements")]
    WrongArity,
    /// One element has the wrong JSON type.
    #[error("frame field `{field}` must be {expected}")]
    WrongType {
        /// Name of the field (`join_ref`, `ref`, `topic`, `event`, `payload`).
        field: &'static str,
        /// What was expected.
        expected: &'static str,
    },
}

/// One decoded Phoenix v2 frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Ref of the `phx_join` that opened the channel, if any.
    pub join_ref: Option<String>,
    /// Message ref chosen by the requester (`None` on server pushes).
    pub reference: Option<String>,
    /// Topic, e.g. `"room:abc"` or `"phoenix"`.
    pub topic: String,
    /// Event name.
    pub event: String,
    /// The payload object.
    pub payload: Map<String, Value>,
}

/// Outcome of a request, as carried in a `phx_reply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyStatus {
    /// `"ok"`.
    Ok,
    /// `"error"`.
    Error,
}

impl ReplyStatus {
    /// `"ok"` or `"error"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyStatus::Ok => "ok",
            ReplyStatus::Error => "error",
        }
    }

    /// The status named `s`, if it is one.
    pub fn parse(s: &str) -> Option<ReplyStatus> {
        match s {
            "ok" => Some(ReplyStatus::Ok),
            "error" => Some(ReplyStatus::Error),
            _ => None,
        }
    }
}

/// The refs and topic that could be read from a frame that is otherwise malformed, enough to
/// address an error reply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The frame's join ref, if it was a string.
    pub join_ref: Option<String>,
    /// The frame's ref.
    pub reference: String,
    /// The frame's topic, if it was a string.
    pub topic: Option<String>,
}

/// A frame as sent: `[join_ref, ref, topic, event, payload]`.
#[derive(Deserialize)]
struct Wire(
    Option<String>,
    Option<String>,
    String,
    String,
    Map<String, Value>,
);

/// [`Wire`] borrowed from a [`Frame`], to encode it.
#[derive(Serialize)]
struct WireRef<'a>(
    &'a Option<String>,
    &'a Option<String>,
    &'a str,
    &'a str,
    &'a Map<String, Value>,
);

impl Serialize for Frame {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WireRef(
            &self.join_ref,
            &self.reference,
            &self.topic,
            &self.event,
            &self.payload,
        )
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Frame {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Frame, D::Error> {
        let Wire(join_ref, reference, topic, event, payload) = Wire::deserialize(d)?;
        Ok(Frame {
            join_ref,
            reference,
            topic,
            event,
            payload,
        })
    }
}

/// Decodes a text frame of at most `max_bytes` bytes.
pub fn decode(text: &str, max_bytes: usize) -> Result<Frame, FrameError> {
    if text.len() > max_bytes {
        return Err(FrameError::TooLarge {
            size: text.len(),
            max: max_bytes,
        });
    }
    serde_json::from_str(text).map_err(|e| explain(text, e))
}

/// Why `text` is not a frame (deserializing it failed with `e`): the checks one by one.
fn explain(text: &str, e: serde_json::Error) -> FrameError {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => return FrameError::NotJson(e.to_string()),
    };
    let Value::Array(items) = value else {
        return FrameError::WrongArity;
    };
    let Ok([join_ref, reference, topic, event, payload]) = <[Value; 5]>::try_from(items) else {
        return FrameError::WrongArity;
    };
    let optional = |v: &Value| v.is_null() || v.is_string();
    let checks = [
        (optional(&join_ref), "join_ref", "a string or null"),
        (optional(&reference), "ref", "a string or null"),
        (topic.is_string(), "topic", "a string"),
        (event.is_string(), "event", "a string"),
        (payload.is_object(), "payload", "an object"),
    ];
    match checks.into_iter().find(|(ok, _, _)| !ok) {
        Some((_, field, expected)) => FrameError::WrongType { field, expected },
        // Not expected: the checks above are all the frame's shape.
        None => FrameError::NotJson(e.to_string()),
    }
}

/// Reads the refs and topic of a malformed frame, if its `ref` (2nd element) is a string.
/// Only the first three elements are read, so a frame whose payload is too deep, truncated or
/// otherwise broken can still be answered. Call only on frames within the size limit.
pub fn recover(text: &str) -> Option<Recovered> {
    let mut items = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    // Fails by design once the visitor stops early (or at the first broken element): what was
    // read before is kept.
    let _ = serde::Deserializer::deserialize_seq(&mut de, Head(&mut items));
    let reference = items.get(1)?.as_str()?.to_owned();
    let str_at = |i: usize| items.get(i).and_then(Value::as_str).map(str::to_owned);
    Some(Recovered {
        join_ref: str_at(0),
        reference,
        topic: str_at(2),
    })
}

/// Visitor reading the first three elements of a frame array into the vector.
struct Head<'a>(&'a mut Vec<Value>);

impl<'de> serde::de::Visitor<'de> for Head<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a frame array")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while self.0.len() < 3 {
            match seq.next_element::<Value>()? {
                Some(v) => self.0.push(v),
                None => break,
            }
        }
        Ok(())
    }
}

/// `{"reason": reason}`, the response body of error replies.
pub fn reason(reason: &str) -> Value {
    let mut m = Map::new();
    m.insert("reason".into(), Value::String(reason.into()));
    Value::Object(m)
}

impl Frame {
    /// A `phx_reply` with explicit refs and topic.
    pub fn reply(
        join_ref: Option<String>,
        reference: Option<String>,
        topic: impl Into<String>,
        status: ReplyStatus,
        response: Value,
    ) -> Frame {
        let mut payload = Map::new();
        payload.insert("status".into(), Value::String(status.as_str().into()));
        payload.insert("response".into(), response);
        Frame {
            join_ref,
            reference,
            topic: topic.into(),
            event: PHX_REPLY.into(),
            payload,
        }
    }

    /// An ok reply to `request` (same join ref, ref and topic).
    pub fn ok_reply(request: &Frame, response: Value) -> Frame {
        Frame::reply(
            request.join_ref.clone(),
            request.reference.clone(),
            request.topic.clone(),
            ReplyStatus::Ok,
            response,
        )
    }

    /// An error reply `{"reason": reason}` to `request` (same join ref, ref and topic).
    pub fn error_reply(request: &Frame, why: &str) -> Frame {
        Frame::reply(
            request.join_ref.clone(),
            request.reference.clone(),
            request.topic.clone(),
            ReplyStatus::Error,
            reason(why),
        )
    }

    /// The `"unmatched topic"` error reply to `request` (join ref `null`, as Phoenix does).
    pub fn unmatched_topic(request: &Frame) -> Frame {
        Frame::reply(
            None,
            request.reference.clone(),
            request.topic.clone(),
            ReplyStatus::Error,
            reason("unmatched topic"),
        )
    }

    /// A server push on a channel: `[join_ref, null, topic, event, payload]`.
    pub fn push(
        join_ref: Option<String>,
        topic: impl Into<String>,
        event: impl Into<String>,
        payload: Map<String, Value>,
    ) -> Frame {
        Frame {
            join_ref,
            reference: None,
            topic: topic.into(),
            event: event.into(),
            payload,
        }
    }

    /// `phx_close` for the channel opened by `join_ref`: `[join_ref, join_ref, topic, "phx_close", {}]`.
    pub fn close(join_ref: Option<String>, topic: impl Into<String>) -> Frame {
        Frame {
            reference: join_ref.clone(),
            join_ref,
            topic: topic.into(),
            event: PHX_CLOSE.into(),
            payload: Map::new(),
        }
    }

    /// `phx_error` `{"reason": "channel_crash"}` for the channel opened by `join_ref`.
    pub fn crash(join_ref: Option<String>, topic: impl Into<String>) -> Frame {
        let Value::Object(payload) = reason("channel_crash") else {
            unreachable!("reason() builds an object")
        };
        Frame {
            reference: join_ref.clone(),
            join_ref,
            topic: topic.into(),
            event: PHX_ERROR.into(),
            payload,
        }
    }

    /// A client's `phx_join` of `topic`; its ref is the join ref:
    /// `[join_ref, join_ref, topic, "phx_join", payload]`.
    pub fn join(
        join_ref: impl Into<String>,
        topic: impl Into<String>,
        payload: Map<String, Value>,
    ) -> Frame {
        let join_ref = join_ref.into();
        Frame {
            join_ref: Some(join_ref.clone()),
            reference: Some(join_ref),
            topic: topic.into(),
            event: PHX_JOIN.into(),
            payload,
        }
    }

    /// A client's request on the channel opened by `join_ref`, answered by a `phx_reply` to
    /// `reference`: `[join_ref, ref, topic, event, payload]`.
    pub fn request(
        join_ref: Option<String>,
        reference: impl Into<String>,
        topic: impl Into<String>,
        event: impl Into<String>,
        payload: Map<String, Value>,
    ) -> Frame {
        Frame {
            join_ref,
            reference: Some(reference.into()),
            topic: topic.into(),
            event: event.into(),
            payload,
        }
    }

    /// A client's `phx_leave` of the channel opened by `join_ref`.
    pub fn leave(
        join_ref: Option<String>,
        reference: impl Into<String>,
        topic: impl Into<String>,
    ) -> Frame {
        Frame::request(join_ref, reference, topic, PHX_LEAVE, Map::new())
    }

    /// A client's heartbeat: `[null, ref, "phoenix", "heartbeat", {}]`.
    pub fn heartbeat(reference: impl Into<String>) -> Frame {
        Frame::request(None, reference, PHOENIX_TOPIC, HEARTBEAT, Map::new())
    }

    /// `{"data": data}`: the payload of a [`MEDIA_EVENT`] push, `data` being the event's JSON
    /// text.
    pub fn media_event_payload(data: impl Into<String>) -> Map<String, Value> {
        let mut payload = Map::new();
        payload.insert("data".into(), Value::String(data.into()));
        payload
    }

    /// The `data` text of a [`MEDIA_EVENT`] frame; `None` for other events or a `data` that is
    /// not a string.
    pub fn media_event_data(&self) -> Option<&str> {
        if self.event != MEDIA_EVENT {
            return None;
        }
        self.payload.get("data").and_then(Value::as_str)
    }

    /// Status and response of a `phx_reply` (`null` when it has no response); `None` for other
    /// events or an unknown status.
    pub fn as_reply(&self) -> Option<(ReplyStatus, &Value)> {
        if self.event != PHX_REPLY {
            return None;
        }
        let status = ReplyStatus::parse(self.payload.get("status")?.as_str()?)?;
        Some((status, self.payload.get("response").unwrap_or(&Value::Null)))
    }

    /// The JSON text of this frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a frame of strings and a JSON map always serializes")
    }
}

#[cfg(test)]
mod tests;
