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
//! - Register the elements first (`gstlamina::plugin_register_static()`): [`RoomPipeline::new`]
//!   fails with [`PipelineError::MissingElement`] without `laminaforwarder`.
//! - The server always answers: the room calls [`RoomPipeline::handle_offer`] with an
//!   [`OfferPlan`] (which of the client's `sendonly` m-lines it publishes, which remote track
//!   goes on each `recvonly` m-line). One round per peer at a time.
//! - Events of one peer, per round, in this order:
//!   1. `AnswerReady` (or `NegotiationFailed`, which ends the round);
//!   2. the `LocalCandidate`s gathered before the first answer; later ones follow as they are
//!      gathered (webrtcbin gathers once, on the first answer, and never re-emits);
//!   3. `PeerConnected`: the transport is connected *for this round*. Emitted right after the
//!      answer when the transport already was connected and the offer kept its ICE ufrag;
//!      otherwise at the next transition to `connected` (first ICE/DTLS connection, or after
//!      an ICE restart: connected → connecting → connected). If an ICE-restart round never
//!      leaves `connected`, it is emitted after 3 s. **The room starts the next round of a
//!      peer only after this event** (protocol.md 3.5).
//! - `TrackPublished` fires once per track, when its first RTP reaches the server (the codec
//!   is the negotiated encoding name, `VP8`/`OPUS`). A track can be subscribed as soon as its
//!   publisher's `AnswerReady` was emitted (its forwarder exists from then on); a
//!   subscription to an unknown track, or in a codec the subscriber did not offer, is answered
//!   `inactive`.
//! - `PeerFailed` (ICE/DTLS failed, a DTLS certificate that does not match the offer's
//!   `a=fingerprint`, or an error inside `peer-<id>`): the pipeline already removed that peer.
//!   `RoomFailed`: close the room. [`Fault`] injects such errors for tests.
//! - Forwarding to a subscriber m-line starts when the subscriber is connected: on every
//!   transition to `connected`, and 150 ms after an answer that added links on an already
//!   connected transport. Opening a link requests a keyframe from the publisher.
//! - Removing a peer releases everything it published or received. The subscribers' m-lines
//!   that carried its tracks stop getting data; answer them `inactive` (subscribe `None`) in
//!   their next round.
//!
//! ```text
//!  room                      RoomPipeline (media thread)              webrtcbin / forwarder
//!  join A ──add_peer(A)────▶ peer-A bin + webrtcbin (PLAYING)
//!  A offers (sendonly a,v)
//!       ──handle_offer(A)──▶ set-remote; add-transceiver(recvonly) per
//!                            m-line; fwd-<a>, fwd-<v> created; answer
//!       ◀─AnswerReady, LocalCandidate*─┘
//!       ──add_remote_candidate──▶ ...                         ICE/DTLS connected
//!       ◀─PeerConnected(A)                                    first RTP: pad-added →
//!       ◀─TrackPublished(a), (v) ◀────────────────────────────── linked to fwd-<track>
//!  join B, B offers (recvonly a,v)
//!       ──handle_offer(B)──▶ sink_<k> + sendonly + codec-prefs(PT, ssrc)
//!                            + msid; fwd pad (pt, ssrc, inactive) linked
//!       ◀─AnswerReady, LocalCandidate*, ... PeerConnected(B) ─▶ fwd pads active
//!                                                               (keyframe request)
//!  A leaves ─remove_peer(A)─▶ fwd pads → B released (IDLE unlink), peer-A → NULL,
//!                             forwarders removed, bin removed
//!  B re-offers (restartIce) ──handle_offer(B, subscribe None)──▶ nice restart_stream,
//!                             m-lines answered inactive ... PeerConnected(B)
//! ```
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

#![warn(missing_docs)]

mod bus;
mod codecs;
mod dtls;
mod engine;
pub mod event;
pub mod fault;
pub mod forwarder;
mod ice;
mod negotiation;
mod peer_bin;
pub mod recording;
pub mod repair;
pub mod room_pipeline;
pub mod tap;
mod teardown;

pub use event::PipelineEvent;
pub use fault::Fault;
/// The typed ids shared with the room logic (defined in `lamina-protocol`).
pub use lamina_protocol::ids;
pub use lamina_protocol::ids::{PeerId, TrackId, TrackKind};
pub use peer_bin::bin_name;
pub use recording::{RecordedFile, RecordingError, RecordingInfo, RecordingRequest};
pub use room_pipeline::{OfferPlan, PipelineConfig, PipelineError, RoomPipeline};
pub use tap::{TapError, TapInfo};

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
