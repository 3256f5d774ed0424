//! [`RoomPipeline`]: the GStreamer pipeline of one room.
//!
//! CONTRACT (to be implemented): see the doc comments on each item.

use std::net::IpAddr;

use tokio::sync::mpsc;

use crate::event::PipelineEvent;
use crate::ids::{PeerId, TrackId};

/// Settings of a room pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Name of the pipeline (the room id), used in logs and dot graphs.
    pub name: String,
    /// Addresses webrtcbin gathers host candidates on (e.g. `127.0.0.1`).
    pub ice_addresses: Vec<IpAddr>,
    /// UDP port range of webrtcbin's ICE sockets (`0, 0` = any).
    pub ice_port_range: (u16, u16),
    /// Jitterbuffer latency of the server-side webrtcbins, in milliseconds.
    pub latency_ms: u32,
}

/// What the room decided for one offer of a peer.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferPlan {
    /// The offer SDP as the client sent it.
    pub sdp: String,
    /// The client's own sending m-lines (`sendonly` in the offer), mid → track id.
    pub publish: Vec<(String, TrackId)>,
    /// The client's receiving m-lines (`recvonly`), mid → remote track to send on it, or `None`
    /// to answer it `inactive`.
    pub subscribe: Vec<(String, Option<TrackId>)>,
}

/// Errors of pipeline commands.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A GStreamer element is missing or could not be created.
    #[error("missing GStreamer element: {0}")]
    MissingElement(String),
    /// The peer is unknown to this pipeline.
    #[error("unknown peer {0}")]
    UnknownPeer(PeerId),
    /// The pipeline no longer runs.
    #[error("room pipeline is closed")]
    Closed,
    /// Anything else GStreamer refused.
    #[error("{0}")]
    Gst(String),
}

/// The media graph of one room. Placeholder until the media engine lands.
pub struct RoomPipeline {
    _events: mpsc::UnboundedSender<PipelineEvent>,
}

impl RoomPipeline {
    /// Creates the pipeline and the receiver of its events.
    pub fn new(
        _config: PipelineConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<PipelineEvent>), PipelineError> {
        let (tx, rx) = mpsc::unbounded_channel();
        Ok((Self { _events: tx }, rx))
    }
}
