//! [`Cmd`]: the work items of a room's media thread. The room's handle posts them, and so do
//! GStreamer callbacks (which only ever post, never touch the graph's state).

use gst_webrtc::WebRTCPeerConnectionState as ConnState;
use tokio::sync::oneshot;

use crate::ids::{PeerId, TrackId};
use crate::MediaCommand;

/// Work for the media thread.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// A command of the room (the seam).
    Media(MediaCommand),
    /// Ask a track's publisher for a keyframe.
    RequestKeyframe(TrackId),
    /// Tear the room down; reply once the pipeline is NULL.
    Shutdown(Option<oneshot::Sender<()>>),
    /// webrtcbin `on-ice-candidate`.
    LocalCandidate {
        peer: PeerId,
        mline: u32,
        candidate: String,
    },
    /// webrtcbin `notify::connection-state`.
    ConnectionState { peer: PeerId, state: ConnState },
    /// A forwarder output switched simulcast layer (its `lamina-layer-switched` message).
    LayerSwitched {
        track: TrackId,
        pad: String,
        layer: String,
    },
    /// webrtcbin `pad-removed` (src).
    SrcPadRemoved { peer: PeerId, pad: String },
    /// Bus error inside `peer-<id>`.
    PeerError { peer: PeerId, reason: String },
    /// Recordings (`recording.rs`).
    Recording(crate::recording::Op),
    /// Taps (`tap.rs`).
    Tap(crate::tap::Op),
    /// Bus error inside a `rec-…` or `tap-…` branch: drop that branch only.
    BranchError { branch: String, reason: String },
}
