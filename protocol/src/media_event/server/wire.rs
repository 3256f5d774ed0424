//! The serde form of [`ServerEvent`]: an adjacently tagged enum (`{"type": …, "data": …}`,
//! custom events nested once more) of one body struct per event, and the conversions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EndpointInfo, ServerEvent, TrackInfo, TurnServerInfo, CUSTOM, TOP};
use crate::media_event::{bad, bad_at, envelope, DecodeError};

/// The event as JSON.
pub(super) fn to_json(event: &ServerEvent) -> Value {
    serde_json::to_value(to_wire(event)).expect("a media event always serializes")
}

/// The event as JSON text; track lists keep their order.
pub(super) fn encode(event: &ServerEvent) -> String {
    serde_json::to_string(&to_wire(event)).expect("a media event always serializes")
}

/// Decodes an event's JSON text. A bad body is reported at the path of the field.
pub(super) fn decode(data: &str) -> Result<ServerEvent, DecodeError> {
    let mut de = serde_json::Deserializer::from_str(data);
    let wire = serde_path_to_error::deserialize::<_, Wire>(&mut de);
    match wire.map(|wire| (wire, de.end())) {
        Ok((wire, Ok(()))) => from_wire(wire),
        Ok((_, Err(_))) => Err(DecodeError::NotJson),
        Err(e) => {
            // Which event it is, for the error.
            let value: Value = serde_json::from_str(data).map_err(|_| DecodeError::NotJson)?;
            let (kind, _) = envelope(value, &TOP, &CUSTOM)?;
            Err(bad_at(kind, &within_data(&e.path().to_string()), e.inner()))
        }
    }
}

/// `path` (from the event) relative to its `data`, or to the inner `data` of a custom event.
fn within_data(path: &str) -> String {
    let mut rest = path;
    for _ in 0..2 {
        match rest.strip_prefix("data") {
            Some(r) if r.is_empty() || r.starts_with(['.', '[']) => {
                rest = r.strip_prefix('.').unwrap_or(r);
            }
            _ => break,
        }
    }
    if rest.is_empty() {
        ".".into()
    } else {
        rest.into()
    }
}

/// A server event as sent: `{"type": …, "data": …}`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "camelCase")]
enum Wire {
    Connected(ConnectedBody),
    EndpointAdded(EndpointAddedBody),
    EndpointRemoved(EndpointRemovedBody),
    EndpointUpdated(EndpointUpdatedBody),
    TracksAdded(TracksAddedBody),
    TracksRemoved(TracksRemovedBody),
    TrackUpdated(TrackUpdatedBody),
    TrackEncodingEnabled(TrackEncodingBody),
    TrackEncodingDisabled(TrackEncodingBody),
    Error(ErrorBody),
    Custom(Custom),
}

/// The events the server wraps in `{"type": "custom", "data": …}`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "camelCase")]
enum Custom {
    OfferData(OfferDataBody),
    SdpAnswer(SdpAnswerBody),
    Candidate(CandidateBody),
    VadNotification(VadBody),
    EncodingSwitched(EncodingSwitchedBody),
    BandwidthEstimation(BandwidthBody),
}

/// `data` of `encodingSwitched`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncodingSwitchedBody {
    endpoint_id: String,
    track_id: String,
    encoding: String,
    reason: String,
}

/// `data` of `bandwidthEstimation`.
#[derive(Serialize, Deserialize)]
struct BandwidthBody {
    estimation: u64,
}

/// `data` of `vadNotification`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VadBody {
    track_id: String,
    status: VadStatus,
}

/// The two statuses 0.5.3 accepts.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum VadStatus {
    Speech,
    Silence,
}

/// `data` of `connected`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectedBody {
    id: String,
    other_endpoints: Vec<EndpointBody>,
}

/// An endpoint of `connected.otherEndpoints`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndpointBody {
    id: String,
    #[serde(rename = "type", default = "webrtc")]
    kind: String,
    metadata: Value,
    /// Track id → metadata (membrane-webrtc-js 0.5); a copy of `tracks`, not read back.
    #[serde(serialize_with = "tracks::metadata", skip_deserializing)]
    track_id_to_metadata: Vec<TrackInfo>,
    /// Track id → `{metadata, simulcastConfig}` (0.7).
    #[serde(with = "tracks")]
    tracks: Vec<TrackInfo>,
}

/// `data` of `endpointAdded`.
#[derive(Serialize, Deserialize)]
struct EndpointAddedBody {
    id: String,
    #[serde(rename = "type", default = "webrtc")]
    kind: String,
    metadata: Value,
}

/// `data` of `endpointRemoved`.
#[derive(Serialize, Deserialize)]
struct EndpointRemovedBody {
    id: String,
}

/// `data` of `endpointUpdated`.
#[derive(Serialize, Deserialize)]
struct EndpointUpdatedBody {
    id: String,
    metadata: Value,
}

/// `data` of `tracksAdded`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TracksAddedBody {
    endpoint_id: String,
    /// A copy of `tracks`, not read back (see [`EndpointBody`]).
    #[serde(serialize_with = "tracks::metadata", skip_deserializing)]
    track_id_to_metadata: Vec<TrackInfo>,
    #[serde(with = "tracks")]
    tracks: Vec<TrackInfo>,
}

/// `data` of `tracksRemoved`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TracksRemovedBody {
    endpoint_id: String,
    track_ids: Vec<String>,
}

/// `data` of `trackUpdated`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrackUpdatedBody {
    endpoint_id: String,
    track_id: String,
    metadata: Value,
}

/// `data` of `trackEncodingEnabled` and `trackEncodingDisabled`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrackEncodingBody {
    endpoint_id: String,
    track_id: String,
    encoding: String,
}

/// `data` of `error`.
#[derive(Serialize, Deserialize)]
struct ErrorBody {
    message: String,
}

/// `data` of `offerData`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OfferDataBody {
    tracks_types: TracksTypes,
    integrated_turn_servers: Vec<TurnServerInfo>,
}

/// `offerData.tracksTypes`: recvonly transceivers the client must own per kind.
#[derive(Serialize, Deserialize)]
struct TracksTypes {
    audio: usize,
    video: usize,
}

/// `data` of `sdpAnswer`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SdpAnswerBody {
    #[serde(rename = "type")]
    kind: String,
    sdp: String,
    mid_to_track_id: BTreeMap<String, String>,
}

/// `data` of a server's `candidate` (`sdpMid` and `usernameFragment` always `null`).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CandidateBody {
    candidate: String,
    sdp_m_line_index: u32,
    sdp_mid: Option<String>,
    username_fragment: Option<String>,
}

fn webrtc() -> String {
    "webrtc".into()
}

/// Track lists (in order) as JSON objects.
mod tracks {
    use serde::de::{Deserializer, MapAccess, Visitor};
    use serde::ser::Serializer;
    use serde::{Deserialize, Serialize};
    use serde_json::Value;

    use super::TrackInfo;

    /// `{id: metadata}`.
    pub(super) fn metadata<S: Serializer>(tracks: &[TrackInfo], s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(tracks.iter().map(|t| (&t.id, &t.metadata)))
    }

    /// A track as listed in `tracks`.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Info<M> {
        metadata: M,
        #[serde(default)]
        simulcast_config: Simulcast,
    }

    /// `{"enabled": true, "activeEncodings": [rids…], "disabledEncodings": []}` for a
    /// simulcast track, `{"enabled": false, "activeEncodings": ["h"], "disabledEncodings": []}`
    /// (the default) otherwise.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Simulcast {
        enabled: bool,
        active_encodings: Vec<String>,
        disabled_encodings: Vec<String>,
    }

    impl Default for Simulcast {
        fn default() -> Self {
            Simulcast {
                enabled: false,
                active_encodings: vec!["h".into()],
                disabled_encodings: Vec::new(),
            }
        }
    }

    impl Simulcast {
        fn of(layers: Option<&Vec<String>>) -> Self {
            match layers {
                Some(layers) => Simulcast {
                    enabled: true,
                    active_encodings: layers.clone(),
                    disabled_encodings: Vec::new(),
                },
                None => Simulcast::default(),
            }
        }
    }

    /// `{id: {"metadata": metadata, "simulcastConfig": …}}`.
    pub(super) fn serialize<S: Serializer>(tracks: &[TrackInfo], s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(tracks.iter().map(|t| {
            let info = Info {
                metadata: &t.metadata,
                simulcast_config: Simulcast::of(t.simulcast.as_ref()),
            };
            (&t.id, info)
        }))
    }

    /// The tracks of `{id: {"metadata": …, "simulcastConfig": …}}`, in the order of the text.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TrackInfo>, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Vec<TrackInfo>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of track id to {\"metadata\": …}")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut tracks = Vec::new();
                while let Some((id, info)) = map.next_entry::<String, Info<Value>>()? {
                    let simulcast = info
                        .simulcast_config
                        .enabled
                        .then_some(info.simulcast_config.active_encodings);
                    tracks.push(TrackInfo {
                        id,
                        metadata: info.metadata,
                        simulcast,
                    });
                }
                Ok(tracks)
            }
        }
        d.deserialize_map(InOrder)
    }
}

/// The event of a decoded [`Wire`].
fn from_wire(wire: Wire) -> Result<ServerEvent, DecodeError> {
    let encoding = |b: TrackEncodingBody, enabled| ServerEvent::TrackEncoding {
        endpoint_id: b.endpoint_id,
        track_id: b.track_id,
        encoding: b.encoding,
        enabled,
    };
    Ok(match wire {
        Wire::Connected(b) => ServerEvent::Connected {
            id: b.id,
            other_endpoints: b
                .other_endpoints
                .into_iter()
                .map(|e| EndpointInfo {
                    id: e.id,
                    metadata: e.metadata,
                    tracks: e.tracks,
                })
                .collect(),
        },
        Wire::EndpointAdded(b) => ServerEvent::EndpointAdded {
            id: b.id,
            metadata: b.metadata,
        },
        Wire::EndpointRemoved(b) => ServerEvent::EndpointRemoved { id: b.id },
        Wire::EndpointUpdated(b) => ServerEvent::EndpointUpdated {
            id: b.id,
            metadata: b.metadata,
        },
        Wire::TracksAdded(b) => ServerEvent::TracksAdded {
            endpoint_id: b.endpoint_id,
            tracks: b.tracks,
        },
        Wire::TracksRemoved(b) => ServerEvent::TracksRemoved {
            endpoint_id: b.endpoint_id,
            track_ids: b.track_ids,
        },
        Wire::TrackUpdated(b) => ServerEvent::TrackUpdated {
            endpoint_id: b.endpoint_id,
            track_id: b.track_id,
            metadata: b.metadata,
        },
        Wire::TrackEncodingEnabled(b) => encoding(b, true),
        Wire::TrackEncodingDisabled(b) => encoding(b, false),
        Wire::Error(b) => ServerEvent::Error { message: b.message },
        Wire::Custom(Custom::OfferData(b)) => ServerEvent::OfferData {
            audio: b.tracks_types.audio,
            video: b.tracks_types.video,
            turn_servers: b.integrated_turn_servers,
        },
        Wire::Custom(Custom::SdpAnswer(b)) => {
            if b.kind != "answer" {
                return Err(bad("sdpAnswer", "type must be \"answer\""));
            }
            ServerEvent::SdpAnswer {
                sdp: b.sdp,
                mid_to_track_id: b.mid_to_track_id,
            }
        }
        Wire::Custom(Custom::Candidate(b)) => ServerEvent::Candidate {
            candidate: b.candidate,
            sdp_mline_index: b.sdp_m_line_index,
        },
        Wire::Custom(Custom::VadNotification(b)) => ServerEvent::VadNotification {
            track_id: b.track_id,
            speech: b.status == VadStatus::Speech,
        },
        Wire::Custom(Custom::EncodingSwitched(b)) => ServerEvent::EncodingSwitched {
            endpoint_id: b.endpoint_id,
            track_id: b.track_id,
            encoding: b.encoding,
            reason: b.reason,
        },
        Wire::Custom(Custom::BandwidthEstimation(b)) => ServerEvent::BandwidthEstimation {
            estimation: b.estimation,
        },
    })
}

/// The wire form of `event`.
fn to_wire(event: &ServerEvent) -> Wire {
    match event.clone() {
        ServerEvent::Connected {
            id,
            other_endpoints,
        } => Wire::Connected(ConnectedBody {
            id,
            other_endpoints: other_endpoints
                .into_iter()
                .map(|e| EndpointBody {
                    id: e.id,
                    kind: webrtc(),
                    metadata: e.metadata,
                    track_id_to_metadata: e.tracks.clone(),
                    tracks: e.tracks,
                })
                .collect(),
        }),
        ServerEvent::EndpointAdded { id, metadata } => Wire::EndpointAdded(EndpointAddedBody {
            id,
            kind: webrtc(),
            metadata,
        }),
        ServerEvent::EndpointRemoved { id } => Wire::EndpointRemoved(EndpointRemovedBody { id }),
        ServerEvent::EndpointUpdated { id, metadata } => {
            Wire::EndpointUpdated(EndpointUpdatedBody { id, metadata })
        }
        ServerEvent::TracksAdded {
            endpoint_id,
            tracks,
        } => Wire::TracksAdded(TracksAddedBody {
            endpoint_id,
            track_id_to_metadata: tracks.clone(),
            tracks,
        }),
        ServerEvent::TracksRemoved {
            endpoint_id,
            track_ids,
        } => Wire::TracksRemoved(TracksRemovedBody {
            endpoint_id,
            track_ids,
        }),
        ServerEvent::TrackUpdated {
            endpoint_id,
            track_id,
            metadata,
        } => Wire::TrackUpdated(TrackUpdatedBody {
            endpoint_id,
            track_id,
            metadata,
        }),
        ServerEvent::TrackEncoding {
            endpoint_id,
            track_id,
            encoding,
            enabled,
        } => {
            let body = TrackEncodingBody {
                endpoint_id,
                track_id,
                encoding,
            };
            if enabled {
                Wire::TrackEncodingEnabled(body)
            } else {
                Wire::TrackEncodingDisabled(body)
            }
        }
        ServerEvent::Error { message } => Wire::Error(ErrorBody { message }),
        ServerEvent::OfferData {
            audio,
            video,
            turn_servers,
        } => Wire::Custom(Custom::OfferData(OfferDataBody {
            tracks_types: TracksTypes { audio, video },
            integrated_turn_servers: turn_servers,
        })),
        ServerEvent::SdpAnswer {
            sdp,
            mid_to_track_id,
        } => Wire::Custom(Custom::SdpAnswer(SdpAnswerBody {
            kind: "answer".into(),
            sdp,
            mid_to_track_id,
        })),
        ServerEvent::Candidate {
            candidate,
            sdp_mline_index,
        } => Wire::Custom(Custom::Candidate(CandidateBody {
            candidate,
            sdp_m_line_index: sdp_mline_index,
            sdp_mid: None,
            username_fragment: None,
        })),
        ServerEvent::VadNotification { track_id, speech } => {
            Wire::Custom(Custom::VadNotification(VadBody {
                track_id,
                status: if speech {
                    VadStatus::Speech
                } else {
                    VadStatus::Silence
                },
            }))
        }
        ServerEvent::EncodingSwitched {
            endpoint_id,
            track_id,
            encoding,
            reason,
        } => Wire::Custom(Custom::EncodingSwitched(EncodingSwitchedBody {
            endpoint_id,
            track_id,
            encoding,
            reason,
        })),
        ServerEvent::BandwidthEstimation { estimation } => {
            Wire::Custom(Custom::BandwidthEstimation(BandwidthBody { estimation }))
        }
    }
}
