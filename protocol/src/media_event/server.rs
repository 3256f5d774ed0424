//! Server-to-client media events: [`ServerEvent`] with the listed [`EndpointInfo`] and
//! [`TurnServerInfo`], [`ServerEvent::encode`] (the server's half) and
//! [`ServerEvent::decode`] (the client's half).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::DecodeError;

mod wire;

/// Another endpoint as listed in `connected.otherEndpoints`.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointInfo {
    /// Endpoint id.
    pub id: String,
    /// Endpoint metadata.
    pub metadata: Value,
    /// Its tracks.
    pub tracks: Vec<TrackInfo>,
}

/// A track as listed in `tracksAdded` and in `connected.otherEndpoints` (the wire form is
/// `{id: {"metadata", "simulcastConfig"}}`, plus `{id: metadata}` in `trackIdToMetadata`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackInfo {
    /// Track id.
    pub id: String,
    /// Track metadata.
    pub metadata: Value,
    /// The layers (RIDs, low to high quality) of a simulcast track: `simulcastConfig` is then
    /// `{"enabled": true, "activeEncodings": layers, "disabledEncodings": []}`. `None` for a
    /// single-encoding track: `{"enabled": false, "activeEncodings": ["h"], …}`.
    pub simulcast: Option<Vec<String>>,
}

impl TrackInfo {
    /// A single-encoding track.
    pub fn new(id: impl Into<String>, metadata: Value) -> Self {
        Self {
            id: id.into(),
            metadata,
            simulcast: None,
        }
    }
}

/// A TURN server as listed in `offerData.integratedTurnServers` (the serde form is that
/// wire shape: `serverAddr`, `serverPort`…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnServerInfo {
    /// Address the browser connects to.
    #[serde(rename = "serverAddr")]
    pub addr: String,
    /// UDP port.
    #[serde(rename = "serverPort")]
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
        /// The tracks, in order.
        tracks: Vec<TrackInfo>,
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
    /// Voice activity of an audio track (custom `vadNotification`): sent only to peers that
    /// were told about the track.
    VadNotification {
        /// The audio track.
        track_id: String,
        /// True for `"speech"`, false for `"silence"`.
        speech: bool,
    },
    /// The client now receives another simulcast layer of a remote track (custom
    /// `encodingSwitched`): sent only to peers that were told about the track.
    EncodingSwitched {
        /// The track's owner.
        endpoint_id: String,
        /// The track.
        track_id: String,
        /// The layer's RID.
        encoding: String,
        /// Why this layer: `"other"`, `"encoding_inactive"` or `"low_bandwidth"`.
        reason: String,
    },
    /// The server's estimate of the client's downlink, in bit/s (custom
    /// `bandwidthEstimation`).
    BandwidthEstimation {
        /// Estimated bit/s.
        estimation: u64,
    },
}

/// Server events at top level.
pub(super) const TOP: [&str; 10] = [
    "connected",
    "endpointAdded",
    "endpointRemoved",
    "endpointUpdated",
    "tracksAdded",
    "tracksRemoved",
    "trackUpdated",
    "trackEncodingEnabled",
    "trackEncodingDisabled",
    "error",
];

/// Server events wrapped in `{"type": "custom", "data": …}`.
pub(super) const CUSTOM: [&str; 6] = [
    "offerData",
    "sdpAnswer",
    "candidate",
    "vadNotification",
    "encodingSwitched",
    "bandwidthEstimation",
];

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
            ServerEvent::VadNotification { .. } => "vadNotification",
            ServerEvent::EncodingSwitched { .. } => "encodingSwitched",
            ServerEvent::BandwidthEstimation { .. } => "bandwidthEstimation",
        }
    }

    /// The event as JSON.
    pub fn to_json(&self) -> Value {
        wire::to_json(self)
    }

    /// The event as the JSON text that goes into `{"data": …}`. Track lists keep their order.
    pub fn encode(&self) -> String {
        wire::encode(self)
    }

    /// Decodes a media event the server sent (what [`ServerEvent::encode`] writes).
    pub fn decode(data: &str) -> Result<ServerEvent, DecodeError> {
        wire::decode(data)
    }
}
