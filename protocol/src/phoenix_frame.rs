//! Phoenix v2 JSON frames: `[join_ref, ref, topic, event, payload]`.
//!
//! Pure encode/decode with a size limit, plus constructors for the frames a Phoenix server sends
//! (`phx_reply`, pushes, `phx_close`, `phx_error`). No I/O here.
//!
//! ```
//! use lamina_protocol::phoenix_frame::{decode, Frame};
//! let f = decode(r#"[null,"12","phoenix","heartbeat",{}]"#, 1024).unwrap();
//! assert_eq!(f.reference.as_deref(), Some("12"));
//! let reply = Frame::ok_reply(&f, serde_json::json!({})).encode();
//! let expected = serde_json::json!([null, "12", "phoenix", "phx_reply", {"status": "ok", "response": {}}]);
//! assert_eq!(serde_json::from_str::<serde_json::Value>(&reply).unwrap(), expected);
//! ```

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
    fn as_str(self) -> &'static str {
        match self {
            ReplyStatus::Ok => "ok",
            ReplyStatus::Error => "error",
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

/// Decodes a text frame of at most `max_bytes` bytes.
pub fn decode(text: &str, max_bytes: usize) -> Result<Frame, FrameError> {
    if text.len() > max_bytes {
        return Err(FrameError::TooLarge {
            size: text.len(),
            max: max_bytes,
        });
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| FrameError::NotJson(e.to_string()))?;
    let Value::Array(items) = value else {
        return Err(FrameError::WrongArity);
    };
    let Ok([join_ref, reference, topic, event, payload]) = <[Value; 5]>::try_from(items) else {
        return Err(FrameError::WrongArity);
    };
    Ok(Frame {
        join_ref: opt_string(join_ref, "join_ref")?,
        reference: opt_string(reference, "ref")?,
        topic: string(topic, "topic")?,
        event: string(event, "event")?,
        payload: match payload {
            Value::Object(m) => m,
            _ => {
                return Err(FrameError::WrongType {
                    field: "payload",
                    expected: "an object",
                })
            }
        },
    })
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

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
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

fn opt_string(v: Value, field: &'static str) -> Result<Option<String>, FrameError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(FrameError::WrongType {
            field,
            expected: "a string or null",
        }),
    }
}

fn string(v: Value, field: &'static str) -> Result<String, FrameError> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(FrameError::WrongType {
            field,
            expected: "a string",
        }),
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

    /// The JSON text of this frame.
    pub fn encode(&self) -> String {
        // A tuple serializes as a JSON array; `None` as `null`.
        let fields = (
            &self.join_ref,
            &self.reference,
            &self.topic,
            &self.event,
            &self.payload,
        );
        serde_json::to_string(&fields).expect("a frame of strings and a JSON map always serializes")
    }
}

#[cfg(test)]
mod tests {
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
}
