//! Client-to-server media events: [`ClientEvent`], [`decode`] and the checks applied to what a
//! client sends (SDP, ICE candidate and metadata sizes, candidate syntax).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{MAX_CANDIDATE_BYTES, MAX_METADATA_BYTES, MAX_SDP_BYTES};

/// A media event sent by a client.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The client is ready; carries its endpoint metadata.
    Connect {
        /// Opaque endpoint metadata (the web client sends `{"displayName": …}`).
        metadata: Value,
    },
    /// The client leaves.
    Disconnect,
    /// New endpoint metadata.
    UpdateEndpointMetadata {
        /// Opaque metadata.
        metadata: Value,
    },
    /// New metadata of one of the client's tracks.
    UpdateTrackMetadata {
        /// The client's track.
        track_id: String,
        /// Opaque metadata.
        metadata: Value,
    },
    /// The client asks for a negotiation round (it added or removed a track).
    RenegotiateTracks,
    /// The client's offer, in reply to `offerData`.
    SdpOffer {
        /// Offer SDP text.
        sdp: String,
        /// Metadata of every local track of the client.
        track_metadata: BTreeMap<String, Value>,
        /// mid → track id of the client's sending transceivers.
        mid_to_track_id: BTreeMap<String, String>,
    },
    /// A trickled ICE candidate of the client.
    Candidate {
        /// The `candidate:` line.
        candidate: String,
        /// m-line index.
        sdp_mline_index: u32,
    },
    /// A simulcast layer was switched on (`enable`) or off at the sender (0.7.1).
    TrackEncoding {
        /// The client's track.
        track_id: String,
        /// Layer name (`l`, `m` or `h`).
        encoding: String,
        /// `true` for `enableTrackEncoding`.
        enabled: bool,
    },
    /// An optional event this server accepts and ignores (`prioritizeTrack`,
    /// `preferedVideoSizes`, `setTargetTrackVariant`, `trackVariantBitrates`…).
    Ignored {
        /// The event type.
        kind: String,
    },
}

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
    /// A field is missing or has the wrong type.
    #[error("invalid {event} event: {problem}")]
    BadField {
        /// The event type.
        event: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// Events this server accepts without acting on them.
const IGNORED: &[&str] = &[
    "prioritizeTrack",
    "unprioritizeTrack",
    "preferedVideoSizes",
    "setTargetTrackVariant",
    "trackVariantBitrates",
];

/// Decodes the `data` string of a client's `"mediaEvent"` push.
pub fn decode(data: &str) -> Result<ClientEvent, DecodeError> {
    let value: Value = serde_json::from_str(data).map_err(|_| DecodeError::NotJson)?;
    decode_value(&value, 0)
}

fn decode_value(value: &Value, depth: u8) -> Result<ClientEvent, DecodeError> {
    let obj = value.as_object().ok_or(DecodeError::NoType)?;
    let kind = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or(DecodeError::NoType)?;
    let data = obj.get("data");
    match kind {
        "custom" if depth == 0 => decode_value(data.ok_or(DecodeError::NoType)?, 1),
        "connect" => Ok(ClientEvent::Connect {
            metadata: metadata(data, "connect", "metadata")?,
        }),
        "disconnect" => Ok(ClientEvent::Disconnect),
        "updateEndpointMetadata" => Ok(ClientEvent::UpdateEndpointMetadata {
            metadata: metadata(data, "updateEndpointMetadata", "metadata")?,
        }),
        "updateTrackMetadata" => Ok(ClientEvent::UpdateTrackMetadata {
            track_id: string(data, "updateTrackMetadata", "trackId")?,
            metadata: metadata(data, "updateTrackMetadata", "trackMetadata")?,
        }),
        "enableTrackEncoding" | "disableTrackEncoding" => {
            let event = if kind == "enableTrackEncoding" {
                "enableTrackEncoding"
            } else {
                "disableTrackEncoding"
            };
            Ok(ClientEvent::TrackEncoding {
                track_id: string(data, event, "trackId")?,
                encoding: string(data, event, "encoding")?,
                enabled: kind == "enableTrackEncoding",
            })
        }
        "renegotiateTracks" => Ok(ClientEvent::RenegotiateTracks),
        "sdpOffer" => decode_offer(data),
        "candidate" => {
            let candidate = string(data, "candidate", "candidate")?;
            check_candidate(&candidate).map_err(|problem| bad("candidate", problem))?;
            let index = field(data, "candidate", "sdpMLineIndex")?
                .as_u64()
                .filter(|i| *i < 1024)
                .ok_or_else(|| {
                    bad(
                        "candidate",
                        "sdpMLineIndex must be a small unsigned integer",
                    )
                })?;
            Ok(ClientEvent::Candidate {
                candidate,
                sdp_mline_index: index as u32,
            })
        }
        k if IGNORED.contains(&k) => Ok(ClientEvent::Ignored { kind: k.to_owned() }),
        other => Err(DecodeError::UnknownType(truncate(other, 64))),
    }
}

fn decode_offer(data: Option<&Value>) -> Result<ClientEvent, DecodeError> {
    const E: &str = "sdpOffer";
    let offer = field(data, E, "sdpOffer")?;
    let offer = offer
        .as_object()
        .ok_or_else(|| bad(E, "sdpOffer must be an object"))?;
    if offer.get("type").and_then(Value::as_str) != Some("offer") {
        return Err(bad(E, "sdpOffer.type must be \"offer\""));
    }
    let sdp = offer
        .get("sdp")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(E, "sdpOffer.sdp must be a string"))?;
    if sdp.len() > MAX_SDP_BYTES {
        return Err(bad(E, "sdp is too large"));
    }
    let track_metadata = match data.and_then(|d| d.get("trackIdToTrackMetadata")) {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => {
            if m.values().any(too_large) {
                return Err(bad(E, &metadata_too_large()));
            }
            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }
        Some(_) => return Err(bad(E, "trackIdToTrackMetadata must be an object")),
    };
    let mids = field(data, E, "midToTrackId")?
        .as_object()
        .ok_or_else(|| bad(E, "midToTrackId must be an object"))?;
    let mut mid_to_track_id = BTreeMap::new();
    for (mid, track) in mids {
        let track = track
            .as_str()
            .ok_or_else(|| bad(E, "midToTrackId values must be strings"))?;
        mid_to_track_id.insert(mid.clone(), track.to_owned());
    }
    Ok(ClientEvent::SdpOffer {
        sdp: sdp.to_owned(),
        track_metadata,
        mid_to_track_id,
    })
}

fn bad(event: &'static str, problem: &str) -> DecodeError {
    DecodeError::BadField {
        event,
        problem: problem.to_owned(),
    }
}

fn field<'a>(
    data: Option<&'a Value>,
    event: &'static str,
    name: &str,
) -> Result<&'a Value, DecodeError> {
    data.and_then(Value::as_object)
        .and_then(|d| d.get(name))
        .ok_or_else(|| bad(event, &format!("missing field \"{name}\"")))
}

/// Checks an ICE candidate line (RFC 8839 section 5.1) so that only well-formed candidates
/// with an IP address reach the ICE agent: no host names (the server never resolves a name a
/// client gives it), no control characters, at most [`MAX_CANDIDATE_BYTES`]. The empty string
/// (end of candidates) passes.
pub(super) fn check_candidate(c: &str) -> Result<(), &'static str> {
    if c.is_empty() {
        return Ok(());
    }
    if c.len() > MAX_CANDIDATE_BYTES {
        return Err("candidate is too long");
    }
    if c.chars().any(char::is_control) {
        return Err("candidate contains control characters");
    }
    let body = c
        .strip_prefix("candidate:")
        .ok_or("candidate must start with \"candidate:\"")?;
    let f: Vec<&str> = body.split(' ').filter(|s| !s.is_empty()).collect();
    let [_foundation, component, transport, priority, address, port, typ, kind, ..] = f[..] else {
        return Err(
            "candidate must have foundation, component, transport, priority, address, port and typ",
        );
    };
    let ok = component
        .parse::<u16>()
        .is_ok_and(|c| (1..=256).contains(&c))
        && (transport.eq_ignore_ascii_case("udp") || transport.eq_ignore_ascii_case("tcp"))
        && priority.parse::<u32>().is_ok()
        && port.parse::<u16>().is_ok()
        && typ == "typ"
        && ["host", "srflx", "prflx", "relay"].contains(&kind);
    if !ok {
        return Err("malformed candidate");
    }
    if address.parse::<std::net::IpAddr>().is_err() {
        return Err("candidate address must be an IP address");
    }
    Ok(())
}

/// A metadata field, at most [`MAX_METADATA_BYTES`] long as JSON.
fn metadata(data: Option<&Value>, event: &'static str, name: &str) -> Result<Value, DecodeError> {
    let value = field(data, event, name)?;
    if too_large(value) {
        return Err(bad(event, &metadata_too_large()));
    }
    Ok(value.clone())
}

fn metadata_too_large() -> String {
    format!("metadata is too large (limit {MAX_METADATA_BYTES} bytes)")
}

/// True when `value` as JSON text exceeds [`MAX_METADATA_BYTES`] (stops writing at the limit).
fn too_large(value: &Value) -> bool {
    struct Budget(usize);
    impl std::io::Write for Budget {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self
                .0
                .checked_sub(buf.len())
                .ok_or(std::io::ErrorKind::WriteZero)?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Budget(MAX_METADATA_BYTES), value).is_err()
}

fn string(data: Option<&Value>, event: &'static str, name: &str) -> Result<String, DecodeError> {
    field(data, event, name)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| bad(event, &format!("\"{name}\" must be a string")))
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The `sdpOffer` custom event as membrane-webrtc-js sends it, for our Rust clients: `metadata`
/// maps track id → metadata, `mid_to_track` maps mid → track id; bitrates are left empty.
pub fn sdp_offer_event(
    sdp: &str,
    metadata: Map<String, Value>,
    mid_to_track: Map<String, Value>,
) -> Value {
    json!({"type": "custom", "data": {"type": "sdpOffer", "data": {
        "sdpOffer": {"type": "offer", "sdp": sdp},
        "trackIdToTrackMetadata": metadata,
        "trackIdToTrackBitrates": {},
        "midToTrackId": mid_to_track,
    }}})
}
