//! Membrane media events: the JSON text carried in the `data` string of `"mediaEvent"` pushes.
//!
//! Wire names stay here (`endpoint`, `tracksAdded`, `offerData`…); the rest of the code works
//! with [`ClientEvent`] and [`ServerEvent`]. Every event is `{"type": …, "data": …}`; some are
//! wrapped once more as `{"type":"custom","data":{"type": …, "data": …}}`, exactly as
//! `@jellyfish-dev/membrane-webrtc-js` 0.5.x/0.7.x sends and expects them:
//! - client events at top level: `connect`, `disconnect`, `updateEndpointMetadata`,
//!   `updateTrackMetadata`, `enable/disableTrackEncoding`; wrapped: `sdpOffer`, `candidate`,
//!   `renegotiateTracks`, `setTargetTrackVariant` and the ignored optional events. The server
//!   accepts every client event at either level.
//! - server events wrapped: `offerData`, `sdpAnswer`, `candidate`, `vadNotification`,
//!   `encodingSwitched`, `bandwidthEstimation`; all others at top level.
//!
//! Both directions encode and decode: [`ClientEvent::encode`] / [`decode`] (the server's half)
//! and [`ServerEvent::encode`] / [`ServerEvent::decode`] (the client's half). The bodies are
//! serde structs; what a client sends is then checked by [`ClientEvent::validate`] (sizes,
//! candidate syntax), which [`decode`] applies.

mod bitrates;
mod client;
mod server;
mod validate;

use serde_json::Value;

pub use bitrates::{TrackBitrates, MAX_BITRATE_LAYERS, MAX_BITRATE_TRACKS, MAX_TRACK_ID_BYTES};
pub use client::{decode, sdp_offer_event, ClientEvent};
pub use server::{EndpointInfo, ServerEvent, TrackInfo, TurnServerInfo};

/// Largest accepted SDP text, in bytes.
pub const MAX_SDP_BYTES: usize = 256 * 1024;

/// Longest accepted ICE candidate line, in bytes (browser candidates are about 150).
pub const MAX_CANDIDATE_BYTES: usize = 512;

/// Largest accepted endpoint or track metadata (as JSON text), in bytes. The server relays
/// metadata to every other peer and lists it to each newcomer, so it must stay small.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Why a media event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The text is not JSON.
    #[error("media event is not valid JSON")]
    NotJson,
    /// The JSON is not an object with a string `type`.
    #[error("media event must be an object with a string \"type\"")]
    NoType,
    /// The type is not one of the protocol's.
    #[error("unknown media event type: {0}")]
    UnknownType(String),
    /// A field is missing, has the wrong type or an invalid value.
    #[error("invalid {event} event: {problem}")]
    BadField {
        /// The event type.
        event: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// The `type` of the custom wrapper.
const CUSTOM: &str = "custom";

/// Takes the `{"type": …, "data": …}` envelope of an event apart, unwrapping one `custom`
/// level: the event's type (one of `top`, or of `custom` inside the wrapper) and its `data`.
fn envelope(
    value: Value,
    top: &[&'static str],
    custom: &[&'static str],
) -> Result<(&'static str, Option<Value>), DecodeError> {
    let (kind, data) = tagged(value)?;
    if kind == CUSTOM {
        let (kind, data) = tagged(data.ok_or(DecodeError::NoType)?)?;
        return Ok((known(&kind, custom)?, data));
    }
    Ok((known(&kind, top)?, data))
}

/// The string `type` and the `data` of an object.
fn tagged(value: Value) -> Result<(String, Option<Value>), DecodeError> {
    let Value::Object(mut obj) = value else {
        return Err(DecodeError::NoType);
    };
    let Some(Value::String(kind)) = obj.remove("type") else {
        return Err(DecodeError::NoType);
    };
    Ok((kind, obj.remove("data")))
}

/// `kind` as one of the `names`, or [`DecodeError::UnknownType`] (truncated to 64 chars).
fn known(kind: &str, names: &[&'static str]) -> Result<&'static str, DecodeError> {
    names
        .iter()
        .find(|n| **n == kind)
        .copied()
        .ok_or_else(|| DecodeError::UnknownType(kind.chars().take(64).collect()))
}

/// A [`DecodeError::BadField`].
fn bad(event: &'static str, problem: impl Into<String>) -> DecodeError {
    DecodeError::BadField {
        event,
        problem: problem.into(),
    }
}

/// The serde error of an event's body as a [`DecodeError::BadField`] naming the field:
/// `missing field "trackId"`, `"trackId" must be a string`, `sdpOffer.sdp must be a string`.
fn bad_body(event: &'static str, e: serde_path_to_error::Error<serde_json::Error>) -> DecodeError {
    bad_at(event, &e.path().to_string(), e.inner())
}

/// [`bad_body`] for an error at `path` (relative to `data`, "." for `data` itself). A field of
/// `data` that must be a string is quoted, other places are not (the server's messages have
/// read so since the first release).
fn bad_at(event: &'static str, path: &str, e: &serde_json::Error) -> DecodeError {
    let mut message = e.to_string();
    if e.line() > 0 {
        let location = format!(" at line {} column {}", e.line(), e.column());
        if message.ends_with(&location) {
            message.truncate(message.len() - location.len());
        }
    }
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'));
    let problem = if let Some(field) = missing {
        match path {
            "." => format!("missing field \"{field}\""),
            parent => format!("missing field \"{parent}.{field}\""),
        }
    } else if let Some((_, expected)) = message.split_once(", expected ") {
        let expected = match expected {
            "a map" => "an object",
            "a sequence" => "an array",
            "u16" | "u32" | "u64" | "usize" => "an unsigned integer",
            e if e.starts_with("struct ") => "an object",
            e => e,
        };
        match path {
            "." => format!("data must be {expected}"),
            field if expected == "a string" && !field.contains(['.', '[']) => {
                format!("\"{field}\" must be {expected}")
            }
            place => format!("{place} must be {expected}"),
        }
    } else {
        match path {
            // A custom message of a field's deserializer names the field itself.
            place if place == "." || message.starts_with(place) => message,
            place => format!("{place}: {message}"),
        }
    };
    bad(event, problem)
}

#[cfg(test)]
mod simulcast_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wire_tests;
