//! Published tracks and the receive slots (m-lines) that carry them to subscribers.

use serde_json::Value;

use lamina_protocol::media_event::TrackInfo;

use crate::simulcast::Layers;
use crate::{PeerId, TrackId, TrackKind};

/// A track some peer publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// Client-chosen id, `"<owner id>:<uuid>"`.
    pub id: TrackId,
    /// The publishing peer.
    pub owner: PeerId,
    /// Audio or video.
    pub kind: TrackKind,
    /// Opaque metadata (`{"type": "camera", "active": true}` from the web client).
    pub metadata: Value,
    /// The publisher's m-line carrying it.
    pub mid: String,
    /// True once the other peers have been told (`tracksAdded`).
    pub announced: bool,
    /// The layers of a simulcast track (its m-line offered at least two send RIDs).
    pub simulcast: Option<Layers>,
    /// Bit rate of a single-encoding track (declared in `trackIdToTrackBitrates`, else the
    /// default of its kind); see [`Layers::bitrates`] for simulcast tracks.
    pub bitrate: u64,
}

impl Track {
    /// The track as listed to other endpoints (`tracksAdded`, `connected`).
    pub fn info(&self) -> TrackInfo {
        TrackInfo {
            id: self.id.to_string(),
            metadata: self.metadata.clone(),
            simulcast: self.simulcast.as_ref().map(|l| l.rids.clone()),
        }
    }
}

/// One of a subscriber's recvonly m-lines, and the remote track it carries.
///
/// Slots are never reused once they carried a track (as in Membrane): a removed track's m-line
/// stays `inactive`. Reusing them would bound the SDP of long-lived peers, but webrtcbin 1.22
/// answers a re-activated m-line with a new DTLS fingerprint, which breaks the session.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// The subscriber's mid.
    pub mid: String,
    /// Kind of the m-line.
    pub kind: TrackKind,
    /// The remote track it carries.
    pub track: Option<TrackId>,
    /// The track went away after it was assigned; the next answer still maps it (inactive)
    /// so the client can be told `tracksRemoved` afterwards.
    pub removed: bool,
    /// It carried a track at some point.
    pub used: bool,
}

/// A remote track announced to a subscriber with `tracksAdded`.
#[derive(Debug, Clone, PartialEq)]
pub struct Announced {
    /// The track.
    pub track: TrackId,
    /// Its owner.
    pub owner: PeerId,
    /// Its kind.
    pub kind: TrackKind,
    /// It went away before any answer mapped it.
    pub removed: bool,
}
