//! # lamina-pipelines: the room media graph
//!
//! One [`RoomPipeline`] per videoroom owns one `gst::Pipeline` (named after the room) with one
//! `peer-<id>` bin (holding that peer's `webrtcbin`) per participant and one `laminaforwarder`
//! (`fwd-<track>`) per published track. The room actor calls its methods; everything that
//! happens inside the graph comes back as [`PipelineEvent`]s on one tokio channel.
//!
//! This crate knows GStreamer, never JSON nor channels of the signalling layer.
//!
//! ## Contract
//!
//! - The server always answers: the room calls [`RoomPipeline::handle_offer`] with an
//!   [`OfferPlan`] (which of the client's m-lines it publishes, which remote track goes on each
//!   of its receiving m-lines). One offer per peer at a time.
//! - Events of one peer, in order, per round: `AnswerReady`, then the `LocalCandidate`s
//!   gathered so far (later ones follow as they come), then `PeerConnected` once the transport
//!   is connected *for this round* (immediately when it already was and the offer kept its
//!   ICE credentials; after ICE/DTLS (re)connects otherwise, e.g. after an ICE restart). The
//!   room starts the next round for a peer only after that `PeerConnected` (protocol.md 3.5).
//!   `TrackPublished` fires when a published track's first RTP arrives. `NegotiationFailed`
//!   ends a round without an answer; `PeerFailed` means the pipeline already removed the peer.
//! - A track can be subscribed once its publisher's round was answered (its forwarder exists
//!   from then on); a subscription to an unknown track, or in a codec the subscriber did not
//!   offer, is answered `inactive`.
//! - Forwarding to a subscriber m-line starts (gate opened, keyframe requested) when the
//!   subscriber is connected: on every transition to `connected`, and about 150 ms after an
//!   answer that found the transport connected.
//!
//! ## Threading
//!
//! ```text
//!  room task (tokio)          media thread (std, one per room)      GStreamer threads
//!  RoomPipeline::method ──Cmd──▶ executes commands in order  ◀──Cmd── on-ice-candidate,
//!        ▲                       (promises, state changes,           connection-state,
//!        │                        links, teardown)                   pad-removed, bus thread
//!        └──────── PipelineEvent (unbounded, non-blocking send) ◀── media thread, pad-added
//! ```
//!
//! - Methods of [`RoomPipeline`] only post a command and return: safe on tokio workers.
//! - All graph changes happen on the media thread, except one: `pad-added` of a publisher's
//!   RTP pad ghosts it and links it to the track's existing forwarder right away (data flows
//!   as soon as the handler returns).
//! - Callbacks capture no webrtcbin strongly and are disconnected when the peer is removed; no
//!   lock is held across a GStreamer call.
//! - Removal follows the safe order of the notes (forwarder pads released, then the peer's
//!   webrtcbin to NULL, then its forwarders, pads and bin).
//!
//! ## Example
//!
//! ```no_run
//! use lamina_pipelines::{PipelineConfig, RoomPipeline, PeerId};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! lamina_pipelines::prewarm();
//! let (mut room, mut events) = RoomPipeline::new(PipelineConfig {
//!     name: "room-1".into(),
//!     ice_addresses: vec!["127.0.0.1".parse()?],
//!     ice_port_range: (0, 0),
//!     latency_ms: 30,
//! })?;
//! room.add_peer(&PeerId::new("alice"))?;
//! // room.handle_offer(&peer, plan)?; then wait for AnswerReady on `events`.
//! # Ok(()) }
//! ```

mod bus;
mod codecs;
mod engine;
pub mod event;
pub mod forwarder;
mod ice;
pub mod ids;
mod negotiation;
pub mod peer_bin;
pub mod room_pipeline;
mod teardown;

pub use event::PipelineEvent;
pub use ids::{PeerId, TrackId, TrackKind};
pub use room_pipeline::{OfferPlan, PipelineConfig, PipelineError, RoomPipeline};

/// Pays the one-time costs of the first webrtcbin of the process (plugin loading, DTLS
/// certificate generation, about 0.5 s) so the first real join does not. Blocking: call it
/// once at start-up, outside async code. Calls `gst::init`.
pub fn prewarm() {
    use gst::prelude::*;
    if gst::init().is_err() {
        return;
    }
    let pipeline = gst::Pipeline::new();
    let Ok(webrtc) = gst::ElementFactory::make("webrtcbin").build() else {
        return;
    };
    // dtlsdec creates the process-wide DTLS agent and its certificate.
    let dtls = gst::ElementFactory::make("dtlsdec").build().ok();
    let _ = pipeline.add(&webrtc);
    let _ = pipeline.set_state(gst::State::Ready);
    let _ = pipeline.set_state(gst::State::Null);
    drop(dtls);
}
