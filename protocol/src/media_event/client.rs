//! Client-to-server media events: [`ClientEvent`], its wire bodies, [`decode`] (the server's
//! half) and [`ClientEvent::encode`] (the client's half).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::bitrates::{self, TrackBitrates};
use super::{bad, bad_body, envelope, DecodeError};

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
        /// `trackIdToTrackBitrates`: what each local track may send (read leniently: entries
        /// that are not usable are left out, see [`TrackBitrates`]).
        track_bitrates: BTreeMap<String, TrackBitrates>,
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
    /// The simulcast layer (`variant`, a RID such as `"l"`) the client wants to receive of a
    /// remote track (custom `setTargetTrackVariant`, sent by `setTargetTrackEncoding`).
    SetTargetTrackVariant {
        /// The remote track.
        track_id: String,
        /// The wanted layer's RID.
        variant: String,
    },
    /// An optional event this server accepts and ignores (`prioritizeTrack`,
    /// `preferedVideoSizes`, `trackVariantBitrates`…).
    Ignored {
        /// The event type.
        kind: String,
    },
}

/// Events this server accepts without acting on them.
pub(super) const IGNORED: [&str; 4] = [
    "prioritizeTrack",
    "unprioritizeTrack",
    "preferedVideoSizes",
    "trackVariantBitrates",
];

/// Every client event type. The server takes each at top level and inside `custom`.
pub(super) const KINDS: [&str; 14] = [
    "connect",
    "disconnect",
    "updateEndpointMetadata",
    "updateTrackMetadata",
    "enableTrackEncoding",
    "disableTrackEncoding",
    "renegotiateTracks",
    "sdpOffer",
    "candidate",
    "setTargetTrackVariant",
    IGNORED[0],
    IGNORED[1],
    IGNORED[2],
    IGNORED[3],
];

/// `data` of `connect` and `updateEndpointMetadata`.
#[derive(Serialize, Deserialize)]
struct MetadataBody {
    metadata: Value,
}

/// `data` of `updateTrackMetadata`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrackMetadataBody {
    track_id: String,
    track_metadata: Value,
}

/// `data` of `enableTrackEncoding` and `disableTrackEncoding`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrackEncodingBody {
    track_id: String,
    encoding: String,
}

/// `data` of `setTargetTrackVariant`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetVariantBody {
    track_id: String,
    variant: String,
}

/// `data` of `sdpOffer`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SdpOfferBody {
    sdp_offer: SessionDescription,
    /// Absent or `null` reads as no tracks.
    #[serde(default)]
    track_id_to_track_metadata: Option<BTreeMap<String, Value>>,
    /// Read leniently ([`bitrates::lenient`]): absent, `null` or malformed reads as empty.
    #[serde(default, deserialize_with = "bitrates::lenient")]
    track_id_to_track_bitrates: BTreeMap<String, TrackBitrates>,
    #[serde(deserialize_with = "mid_to_track_id")]
    mid_to_track_id: BTreeMap<String, String>,
}

/// `midToTrackId`, with the errors the server has always given for it.
fn mid_to_track_id<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    use serde::de::Error;
    let Value::Object(mids) = Value::deserialize(d)? else {
        return Err(D::Error::custom("midToTrackId must be an object"));
    };
    mids.into_iter()
        .map(|(mid, track)| match track {
            Value::String(track) => Ok((mid, track)),
            _ => Err(D::Error::custom("midToTrackId values must be strings")),
        })
        .collect()
}

/// `{"type": "offer", "sdp": …}`, as `RTCSessionDescription` serializes.
#[derive(Serialize, Deserialize)]
struct SessionDescription {
    #[serde(rename = "type")]
    kind: String,
    sdp: String,
}

/// `data` of a client's `candidate` (`sdpMid` and `usernameFragment` are ignored).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CandidateBody {
    candidate: String,
    sdp_m_line_index: u32,
}

/// A client event as sent: `{"type": …, "data": …}`.
#[derive(Serialize)]
#[serde(tag = "type", content = "data", rename_all = "camelCase")]
enum Wire {
    Connect(MetadataBody),
    Disconnect,
    UpdateEndpointMetadata(MetadataBody),
    UpdateTrackMetadata(TrackMetadataBody),
    EnableTrackEncoding(TrackEncodingBody),
    DisableTrackEncoding(TrackEncodingBody),
    Custom(Custom),
}

/// The events a client wraps in `{"type": "custom", "data": …}`.
#[derive(Serialize)]
#[serde(tag = "type", content = "data", rename_all = "camelCase")]
enum Custom {
    RenegotiateTracks,
    SdpOffer(SdpOfferBody),
    Candidate(CandidateBody),
    SetTargetTrackVariant(TargetVariantBody),
    /// An ignored event, sent without data: `{"type": kind}`.
    #[serde(untagged)]
    Ignored(TypeOnly),
}

/// `{"type": kind}`.
#[derive(Serialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: String,
}

/// Decodes the `data` string of a client's `"mediaEvent"` push, then checks it with
/// [`ClientEvent::validate`].
pub fn decode(data: &str) -> Result<ClientEvent, DecodeError> {
    let value: Value = serde_json::from_str(data).map_err(|_| DecodeError::NotJson)?;
    // The tag is dispatched here rather than by a serde-tagged enum: serde buffers `data`
    // when it comes before `type` and then loses the path of a bad field, which the error
    // message must name.
    let (kind, data) = envelope(value, &KINDS, &KINDS)?;
    let event = from_body(kind, data)?;
    event.validate()?;
    Ok(event)
}

/// The event of type `kind` (one of [`KINDS`]) from its `data`.
fn from_body(kind: &'static str, data: Option<Value>) -> Result<ClientEvent, DecodeError> {
    Ok(match kind {
        "connect" => ClientEvent::Connect {
            metadata: body::<MetadataBody>(kind, data)?.metadata,
        },
        "disconnect" => ClientEvent::Disconnect,
        "updateEndpointMetadata" => ClientEvent::UpdateEndpointMetadata {
            metadata: body::<MetadataBody>(kind, data)?.metadata,
        },
        "updateTrackMetadata" => {
            let b: TrackMetadataBody = body(kind, data)?;
            ClientEvent::UpdateTrackMetadata {
                track_id: b.track_id,
                metadata: b.track_metadata,
            }
        }
        "enableTrackEncoding" | "disableTrackEncoding" => {
            let b: TrackEncodingBody = body(kind, data)?;
            ClientEvent::TrackEncoding {
                track_id: b.track_id,
                encoding: b.encoding,
                enabled: kind == "enableTrackEncoding",
            }
        }
        "renegotiateTracks" => ClientEvent::RenegotiateTracks,
        "sdpOffer" => {
            let b: SdpOfferBody = body(kind, data)?;
            if b.sdp_offer.kind != "offer" {
                return Err(bad(kind, "sdpOffer.type must be \"offer\""));
            }
            ClientEvent::SdpOffer {
                sdp: b.sdp_offer.sdp,
                track_metadata: b.track_id_to_track_metadata.unwrap_or_default(),
                mid_to_track_id: b.mid_to_track_id,
                track_bitrates: b.track_id_to_track_bitrates,
            }
        }
        "setTargetTrackVariant" => {
            let b: TargetVariantBody = body(kind, data)?;
            ClientEvent::SetTargetTrackVariant {
                track_id: b.track_id,
                variant: b.variant,
            }
        }
        "candidate" => {
            let b: CandidateBody = body(kind, data)?;
            ClientEvent::Candidate {
                candidate: b.candidate,
                sdp_mline_index: b.sdp_m_line_index,
            }
        }
        ignored => ClientEvent::Ignored {
            kind: ignored.to_owned(),
        },
    })
}

/// The `data` of `event` as `T`. A missing or non-object `data` reads as `{}`, so the error
/// names the first missing field.
fn body<T: DeserializeOwned>(event: &'static str, data: Option<Value>) -> Result<T, DecodeError> {
    let data = match data {
        Some(d @ Value::Object(_)) => d,
        _ => Value::Object(Map::new()),
    };
    serde_path_to_error::deserialize(data).map_err(|e| bad_body(event, e))
}

impl ClientEvent {
    /// Decodes and validates a media event's JSON text (same as [`decode`]).
    pub fn decode(data: &str) -> Result<ClientEvent, DecodeError> {
        decode(data)
    }

    /// The wire name of the event (`connect`, `sdpOffer`, `enableTrackEncoding`…).
    pub fn kind(&self) -> &str {
        match self {
            ClientEvent::Connect { .. } => "connect",
            ClientEvent::Disconnect => "disconnect",
            ClientEvent::UpdateEndpointMetadata { .. } => "updateEndpointMetadata",
            ClientEvent::UpdateTrackMetadata { .. } => "updateTrackMetadata",
            ClientEvent::RenegotiateTracks => "renegotiateTracks",
            ClientEvent::SdpOffer { .. } => "sdpOffer",
            ClientEvent::Candidate { .. } => "candidate",
            ClientEvent::SetTargetTrackVariant { .. } => "setTargetTrackVariant",
            ClientEvent::TrackEncoding { enabled: true, .. } => "enableTrackEncoding",
            ClientEvent::TrackEncoding { .. } => "disableTrackEncoding",
            ClientEvent::Ignored { kind } => kind,
        }
    }

    /// The event as JSON, in the shape membrane-webrtc-js sends (custom events wrapped).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.wire()).expect("a media event always serializes")
    }

    /// The event as the JSON text that goes into `{"data": …}`.
    pub fn encode(&self) -> String {
        serde_json::to_string(&self.wire()).expect("a media event always serializes")
    }

    fn wire(&self) -> Wire {
        let metadata = |metadata: &Value| MetadataBody {
            metadata: metadata.clone(),
        };
        let encoding = |track_id: &String, encoding: &String| TrackEncodingBody {
            track_id: track_id.clone(),
            encoding: encoding.clone(),
        };
        match self {
            ClientEvent::Connect { metadata: m } => Wire::Connect(metadata(m)),
            ClientEvent::Disconnect => Wire::Disconnect,
            ClientEvent::UpdateEndpointMetadata { metadata: m } => {
                Wire::UpdateEndpointMetadata(metadata(m))
            }
            ClientEvent::UpdateTrackMetadata { track_id, metadata } => {
                Wire::UpdateTrackMetadata(TrackMetadataBody {
                    track_id: track_id.clone(),
                    track_metadata: metadata.clone(),
                })
            }
            ClientEvent::TrackEncoding {
                track_id,
                encoding: e,
                enabled: true,
            } => Wire::EnableTrackEncoding(encoding(track_id, e)),
            ClientEvent::TrackEncoding {
                track_id,
                encoding: e,
                enabled: false,
            } => Wire::DisableTrackEncoding(encoding(track_id, e)),
            ClientEvent::RenegotiateTracks => Wire::Custom(Custom::RenegotiateTracks),
            ClientEvent::SdpOffer {
                sdp,
                track_metadata,
                mid_to_track_id,
                track_bitrates,
            } => Wire::Custom(Custom::SdpOffer(SdpOfferBody {
                sdp_offer: SessionDescription {
                    kind: "offer".into(),
                    sdp: sdp.clone(),
                },
                track_id_to_track_metadata: Some(track_metadata.clone()),
                track_id_to_track_bitrates: track_bitrates.clone(),
                mid_to_track_id: mid_to_track_id.clone(),
            })),
            ClientEvent::SetTargetTrackVariant { track_id, variant } => {
                Wire::Custom(Custom::SetTargetTrackVariant(TargetVariantBody {
                    track_id: track_id.clone(),
                    variant: variant.clone(),
                }))
            }
            ClientEvent::Candidate {
                candidate,
                sdp_mline_index,
            } => Wire::Custom(Custom::Candidate(CandidateBody {
                candidate: candidate.clone(),
                sdp_m_line_index: *sdp_mline_index,
            })),
            ClientEvent::Ignored { kind } => {
                Wire::Custom(Custom::Ignored(TypeOnly { kind: kind.clone() }))
            }
        }
    }
}

/// The `sdpOffer` custom event as membrane-webrtc-js sends it: `metadata` maps track id →
/// metadata, `mid_to_track` maps mid → track id (a non-string id is taken as its JSON text);
/// bitrates are left empty. The typed form is [`ClientEvent::SdpOffer`].
pub fn sdp_offer_event(
    sdp: &str,
    metadata: Map<String, Value>,
    mid_to_track: Map<String, Value>,
) -> Value {
    let mid_to_track_id = mid_to_track
        .into_iter()
        .map(|(mid, track)| match track {
            Value::String(track) => (mid, track),
            other => (mid, other.to_string()),
        })
        .collect();
    ClientEvent::SdpOffer {
        sdp: sdp.to_owned(),
        track_metadata: metadata.into_iter().collect(),
        mid_to_track_id,
        track_bitrates: BTreeMap::new(),
    }
    .to_json()
}
