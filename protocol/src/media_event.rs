//! Membrane media events: the JSON text carried in the `data` string of `"mediaEvent"` pushes.
//!
//! Wire names stay here (`endpoint`, `tracksAdded`, `offerData`…); the rest of the server works
//! with [`ClientEvent`] and [`ServerEvent`]. Client events arrive either at top level
//! (`connect`, `disconnect`, `updateEndpointMetadata`, `updateTrackMetadata`,
//! `enable/disableTrackEncoding`) or wrapped as `{"type":"custom","data":{…}}` (`sdpOffer`,
//! `candidate`, `renegotiateTracks`, …), exactly as `@jellyfish-dev/membrane-webrtc-js`
//! 0.5.x/0.7.x sends them.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// Largest accepted SDP text, in bytes.
pub const MAX_SDP_BYTES: usize = 256 * 1024;

/// Longest accepted ICE candidate line, in bytes (browser candidates are about 150).
pub const MAX_CANDIDATE_BYTES: usize = 512;

/// Largest accepted endpoint or track metadata (as JSON text), in bytes. The server relays
/// metadata to every other peer and lists it to each newcomer, so it must stay small.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

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
fn check_candidate(c: &str) -> Result<(), &'static str> {
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

/// Another endpoint as listed in `connected.otherEndpoints`.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointInfo {
    /// Endpoint id.
    pub id: String,
    /// Endpoint metadata.
    pub metadata: Value,
    /// Its tracks: id → metadata.
    pub tracks: Vec<(String, Value)>,
}

/// A TURN server as listed in `offerData.integratedTurnServers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnServerInfo {
    /// Address the browser connects to.
    pub addr: String,
    /// UDP port.
    pub port: u16,
    /// `"udp"`, `"tcp"` or `"tls"`.
    pub transport: String,
    /// TURN REST username.
    pub username: String,
    /// TURN REST password.
    pub password: String,
}

/// A media event sent to a client.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// Answer to `connect`.
    Connected {
        /// The client's endpoint id.
        id: String,
        /// The other ready endpoints.
        other_endpoints: Vec<EndpointInfo>,
    },
    /// Another endpoint became ready.
    EndpointAdded {
        /// Its id.
        id: String,
        /// Its metadata.
        metadata: Value,
    },
    /// An endpoint left.
    EndpointRemoved {
        /// Its id.
        id: String,
    },
    /// An endpoint changed its metadata.
    EndpointUpdated {
        /// Its id.
        id: String,
        /// New metadata.
        metadata: Value,
    },
    /// An endpoint published tracks.
    TracksAdded {
        /// Owner.
        endpoint_id: String,
        /// Track id → metadata.
        tracks: Vec<(String, Value)>,
    },
    /// An endpoint's tracks went away.
    TracksRemoved {
        /// Owner.
        endpoint_id: String,
        /// The tracks.
        track_ids: Vec<String>,
    },
    /// A track's metadata changed.
    TrackUpdated {
        /// Owner.
        endpoint_id: String,
        /// The track.
        track_id: String,
        /// New metadata.
        metadata: Value,
    },
    /// A simulcast layer of a track was switched on or off at its sender.
    TrackEncoding {
        /// Owner.
        endpoint_id: String,
        /// The track.
        track_id: String,
        /// Layer name.
        encoding: String,
        /// `true` → `trackEncodingEnabled`.
        enabled: bool,
    },
    /// Something could not be served; the client disconnects itself.
    Error {
        /// Human-readable message.
        message: String,
    },
    /// Starts a negotiation round: the client must own this many recvonly transceivers.
    OfferData {
        /// Recvonly audio transceivers.
        audio: usize,
        /// Recvonly video transceivers.
        video: usize,
        /// TURN servers the client must use.
        turn_servers: Vec<TurnServerInfo>,
    },
    /// The answer to the client's offer.
    SdpAnswer {
        /// Answer SDP.
        sdp: String,
        /// Every meaningful mid → track id (own and remote).
        mid_to_track_id: BTreeMap<String, String>,
    },
    /// A trickled server ICE candidate.
    Candidate {
        /// The `candidate:` line.
        candidate: String,
        /// m-line index.
        sdp_mline_index: u32,
    },
}

fn track_maps(tracks: &[(String, Value)]) -> (Value, Value) {
    let mut meta = Map::new();
    let mut infos = Map::new();
    for (id, m) in tracks {
        meta.insert(id.clone(), m.clone());
        infos.insert(
            id.clone(),
            json!({
                "metadata": m,
                "simulcastConfig": {"enabled": false, "activeEncodings": ["h"], "disabledEncodings": []}
            }),
        );
    }
    (Value::Object(meta), Value::Object(infos))
}

fn custom(kind: &str, data: Value) -> Value {
    json!({"type": "custom", "data": {"type": kind, "data": data}})
}

impl ServerEvent {
    /// The wire name of the event (for logs and tests).
    pub fn kind(&self) -> &'static str {
        match self {
            ServerEvent::Connected { .. } => "connected",
            ServerEvent::EndpointAdded { .. } => "endpointAdded",
            ServerEvent::EndpointRemoved { .. } => "endpointRemoved",
            ServerEvent::EndpointUpdated { .. } => "endpointUpdated",
            ServerEvent::TracksAdded { .. } => "tracksAdded",
            ServerEvent::TracksRemoved { .. } => "tracksRemoved",
            ServerEvent::TrackUpdated { .. } => "trackUpdated",
            ServerEvent::TrackEncoding { enabled: true, .. } => "trackEncodingEnabled",
            ServerEvent::TrackEncoding { .. } => "trackEncodingDisabled",
            ServerEvent::Error { .. } => "error",
            ServerEvent::OfferData { .. } => "offerData",
            ServerEvent::SdpAnswer { .. } => "sdpAnswer",
            ServerEvent::Candidate { .. } => "candidate",
        }
    }

    /// The event as JSON.
    pub fn to_json(&self) -> Value {
        let kind = self.kind();
        match self {
            ServerEvent::Connected {
                id,
                other_endpoints,
            } => {
                let others: Vec<Value> = other_endpoints
                    .iter()
                    .map(|e| {
                        let (meta, infos) = track_maps(&e.tracks);
                        json!({"id": e.id, "type": "webrtc", "metadata": e.metadata,
                               "trackIdToMetadata": meta, "tracks": infos})
                    })
                    .collect();
                json!({"type": kind, "data": {"id": id, "otherEndpoints": others}})
            }
            ServerEvent::EndpointAdded { id, metadata } => {
                json!({"type": kind, "data": {"id": id, "type": "webrtc", "metadata": metadata}})
            }
            ServerEvent::EndpointRemoved { id } => json!({"type": kind, "data": {"id": id}}),
            ServerEvent::EndpointUpdated { id, metadata } => {
                json!({"type": kind, "data": {"id": id, "metadata": metadata}})
            }
            ServerEvent::TracksAdded {
                endpoint_id,
                tracks,
            } => {
                let (meta, infos) = track_maps(tracks);
                json!({"type": kind, "data": {"endpointId": endpoint_id,
                       "trackIdToMetadata": meta, "tracks": infos}})
            }
            ServerEvent::TracksRemoved {
                endpoint_id,
                track_ids,
            } => json!({"type": kind, "data": {"endpointId": endpoint_id, "trackIds": track_ids}}),
            ServerEvent::TrackUpdated {
                endpoint_id,
                track_id,
                metadata,
            } => json!({"type": kind, "data": {"endpointId": endpoint_id, "trackId": track_id,
                        "metadata": metadata}}),
            ServerEvent::TrackEncoding {
                endpoint_id,
                track_id,
                encoding,
                ..
            } => json!({"type": kind, "data": {"endpointId": endpoint_id, "trackId": track_id,
                        "encoding": encoding}}),
            ServerEvent::Error { message } => json!({"type": kind, "data": {"message": message}}),
            ServerEvent::OfferData {
                audio,
                video,
                turn_servers,
            } => {
                let turns: Vec<Value> = turn_servers
                    .iter()
                    .map(|t| {
                        json!({"serverAddr": t.addr, "serverPort": t.port, "transport": t.transport,
                               "username": t.username, "password": t.password})
                    })
                    .collect();
                custom(
                    kind,
                    json!({"tracksTypes": {"audio": audio, "video": video},
                           "integratedTurnServers": turns}),
                )
            }
            ServerEvent::SdpAnswer {
                sdp,
                mid_to_track_id,
            } => custom(
                kind,
                json!({"type": "answer", "sdp": sdp, "midToTrackId": mid_to_track_id}),
            ),
            ServerEvent::Candidate {
                candidate,
                sdp_mline_index,
            } => custom(
                kind,
                json!({"candidate": candidate, "sdpMLineIndex": sdp_mline_index,
                       "sdpMid": null, "usernameFragment": null}),
            ),
        }
    }

    /// The event as the JSON text that goes into `{"data": …}`.
    pub fn encode(&self) -> String {
        self.to_json().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_connect_and_custom_offer() {
        let e = decode(r#"{"type":"connect","data":{"metadata":{"displayName":"A"}}}"#).unwrap();
        assert_eq!(
            e,
            ClientEvent::Connect {
                metadata: json!({"displayName": "A"})
            }
        );
        let offer = json!({"type":"custom","data":{"type":"sdpOffer","data":{
            "sdpOffer":{"type":"offer","sdp":"v=0\r\n"},
            "trackIdToTrackMetadata":{"a:1":{"type":"camera"}},
            "trackIdToTrackBitrates":{"a:1":2500000},
            "midToTrackId":{"0":"a:1"}}}});
        match decode(&offer.to_string()).unwrap() {
            ClientEvent::SdpOffer {
                sdp,
                track_metadata,
                mid_to_track_id,
            } => {
                assert_eq!(sdp, "v=0\r\n");
                assert_eq!(track_metadata["a:1"], json!({"type":"camera"}));
                assert_eq!(mid_to_track_id["0"], "a:1");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn decodes_candidate_renegotiate_and_ignored() {
        let c = json!({"type":"custom","data":{"type":"candidate","data":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ relay","sdpMLineIndex":0}}});
        assert!(matches!(
            decode(&c.to_string()).unwrap(),
            ClientEvent::Candidate {
                sdp_mline_index: 0,
                ..
            }
        ));
        let r = r#"{"type":"custom","data":{"type":"renegotiateTracks"}}"#;
        assert_eq!(decode(r).unwrap(), ClientEvent::RenegotiateTracks);
        let p = r#"{"type":"custom","data":{"type":"prioritizeTrack","data":{"trackId":"x"}}}"#;
        assert!(matches!(decode(p).unwrap(), ClientEvent::Ignored { .. }));
    }

    #[test]
    fn refuses_bad_input_with_clear_errors() {
        assert_eq!(decode("nope"), Err(DecodeError::NotJson));
        assert_eq!(decode("[]"), Err(DecodeError::NoType));
        assert_eq!(decode(r#"{"type":5}"#), Err(DecodeError::NoType));
        assert_eq!(
            decode(r#"{"type":"fly"}"#),
            Err(DecodeError::UnknownType("fly".into()))
        );
        assert!(matches!(
            decode(r#"{"type":"connect"}"#),
            Err(DecodeError::BadField { .. })
        ));
        assert!(matches!(
            decode(r#"{"type":"updateTrackMetadata","data":{"trackId":1,"trackMetadata":{}}}"#),
            Err(DecodeError::BadField { .. })
        ));
        let nested = r#"{"type":"custom","data":{"type":"custom","data":{"type":"connect","data":{"metadata":1}}}}"#;
        assert!(decode(nested).is_err());
        let bad_mid = json!({"type":"custom","data":{"type":"sdpOffer","data":{
            "sdpOffer":{"type":"offer","sdp":"v=0"},"midToTrackId":{"0":5}}}});
        assert!(decode(&bad_mid.to_string()).is_err());
    }

    #[test]
    fn checks_candidate_lines() {
        for good in [
            "",
            "candidate:842163049 1 udp 1677729535 192.0.2.7 61665 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag sXx/ network-cost 999",
            "candidate:1 1 UDP 2122260223 127.0.0.1 50000 typ host",
            "candidate:2 2 tcp 1518280447 ::1 9 typ host tcptype active",
            "candidate:3 1 udp 41885439 198.51.100.1 3478 typ relay raddr 10.0.0.1 rport 5000",
        ] {
            assert_eq!(check_candidate(good), Ok(()), "{good}");
        }
        for bad in [
            "garbage",
            "candidate:",
            "a=candidate:1 1 udp 1 127.0.0.1 9 typ host",
            "candidate:1 1 udp 1 999.999.999.999 9 typ host",
            "candidate:1 1 udp 1 127.0.0.1 99999 typ host",
            "candidate:1 0 udp 1 127.0.0.1 9 typ host",
            "candidate:1 1 sctp 1 127.0.0.1 9 typ host",
            "candidate:1 1 udp -1 127.0.0.1 9 typ host",
            "candidate:1 1 udp 1 evil.local 9 typ host",
            "candidate:1 1 udp 1 127.0.0.1 9 type host",
            "candidate:1 1 udp 1 127.0.0.1 9 typ nonsense",
            "candidate:1 1 udp 1 127.0.0.1 9 typ host\u{0}",
            &format!(
                "candidate:1 1 udp 1 127.0.0.1 9 typ host {}",
                "x".repeat(600)
            ),
        ] {
            assert!(check_candidate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_oversized_metadata() {
        let big = "n".repeat(MAX_METADATA_BYTES);
        let just = "n".repeat(MAX_METADATA_BYTES - 2);
        let connect = |name: &str| json!({"type":"connect","data":{"metadata":name}}).to_string();
        assert!(decode(&connect(&just)).is_ok());
        let err = decode(&connect(&big)).unwrap_err().to_string();
        assert!(err.contains("metadata is too large"), "{err}");
        let update =
            json!({"type":"updateTrackMetadata","data":{"trackId":"t","trackMetadata":[big]}});
        assert!(decode(&update.to_string()).is_err());
        let offer = json!({"type":"custom","data":{"type":"sdpOffer","data":{
            "sdpOffer":{"type":"offer","sdp":"v=0"},"midToTrackId":{},
            "trackIdToTrackMetadata":{"t":{"x":big}}}}});
        assert!(decode(&offer.to_string()).is_err());
    }

    #[test]
    fn encodes_wire_shapes() {
        let e = ServerEvent::TracksAdded {
            endpoint_id: "A".into(),
            tracks: vec![("A:1".into(), json!({"type":"audio"}))],
        };
        let v = e.to_json();
        assert_eq!(v["type"], "tracksAdded");
        assert_eq!(v["data"]["trackIdToMetadata"]["A:1"]["type"], "audio");
        assert_eq!(
            v["data"]["tracks"]["A:1"]["simulcastConfig"]["enabled"],
            false
        );
        let c = ServerEvent::Candidate {
            candidate: "candidate:1".into(),
            sdp_mline_index: 0,
        }
        .to_json();
        assert_eq!(c["type"], "custom");
        assert_eq!(c["data"]["type"], "candidate");
        assert!(c["data"]["data"]["sdpMid"].is_null());
        let o = ServerEvent::OfferData {
            audio: 1,
            video: 2,
            turn_servers: vec![],
        }
        .to_json();
        assert_eq!(o["data"]["data"]["tracksTypes"]["video"], 2);
        assert!(o["data"]["data"]["integratedTurnServers"].is_array());
    }
}
