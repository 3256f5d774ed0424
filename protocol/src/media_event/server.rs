//! Server-to-client media events: [`ServerEvent`] with the listed [`EndpointInfo`] and
//! [`TurnServerInfo`], encoded to the JSON wire shapes.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

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
