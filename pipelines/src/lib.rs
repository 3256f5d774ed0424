//! # lamina-pipelines: the room media graph
//!
//! One [`RoomPipeline`] per videoroom owns one `gst::Pipeline` (named after the room) with one
//! `peer-<id>` bin (holding that peer's `webrtcbin`) per participant and one `laminaforwarder`
//! (`fwd-<track>`) per published track. The room's commands ([`MediaCommand`], from the
//! `lamina-seam` crate) go in through [`RoomPipeline::execute`]; everything that happens inside
//! the graph comes back as [`MediaEvent`]s on one tokio channel. Operator tools (recordings,
//! taps), counters and fault injection are methods of [`RoomPipeline`].
//!
//! This crate knows GStreamer, never JSON nor channels of the signalling layer.
//!
//! Inside, one media thread per room owns the graph (`media_thread.rs`); its state is split by
//! concern: peers (`peers.rs`) and their transports' negotiation facts (`transport.rs`), tracks
//! and links (`forwarding.rs`), answering offers (`negotiation.rs`), delayed work
//! (`timers.rs`); recordings and taps reach the tracks only through a narrow port (`port.rs`).
//! GStreamer callbacks (`peer_bin.rs`, `bus.rs`) only post work items (`cmd.rs`).
//!
//! ## Contract
//!
//! - Register the elements first (`gstlamina::plugin_register_static()`): [`RoomPipeline::new`]
//!   fails with [`MediaError::MissingElement`] without `laminaforwarder`.
//! - The server always answers: the room sends [`MediaCommand::HandleOffer`] with an
//!   [`OfferPlan`] (the offer, its summary, which of the client's `sendonly` m-lines it
//!   publishes, which remote track goes on each `recvonly` m-line). One round per peer at a
//!   time. Client candidates ([`MediaCommand::AddCandidate`]) only after the peer's first
//!   offer: the room holds earlier ones.
//! - Events of one peer, per round, in this order:
//!   1. `AnswerReady` (or `NegotiationFailed`, which ends the round);
//!   2. the `LocalCandidate`s gathered before the first answer; later ones follow as they are
//!      gathered (webrtcbin gathers once, on the first answer, and never re-emits);
//!   3. `PeerConnected`: the transport is connected *for this round*. Emitted right after the
//!      answer when the transport already was connected and the offer kept its ICE ufrag;
//!      otherwise at the next transition to `connected` (first ICE/DTLS connection, or after
//!      an ICE restart: connected → connecting → connected). If an ICE-restart round never
//!      leaves `connected`, it is emitted after 3 s. **The room starts the next round of a
//!      peer only after this event** (docs/protocol.md §3.5).
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
//! - Simulcast: a `sendonly` video m-line whose summary lists RIDs (`MLine::rids`) and whose
//!   offer maps the RID header extension is answered `a=simulcast:recv` with `a=rid:<id> recv`;
//!   each layer stream gets its own sink on the track's forwarder, which reads the RIDs. Each
//!   subscriber gets one layer: the last one chosen for it with [`MediaCommand::SelectLayer`]
//!   (else the highest); a switch happens on the new layer's keyframe and is reported as
//!   `LayerSwitched`. `LayersActive` reports the layers arriving whenever that set changes. A
//!   layer no subscriber gets is dropped at the forwarder's input. Each subscriber's downlink
//!   estimate arrives as `DownlinkEstimate` (and `DownlinkLoss` when its link drops packets);
//!   [`MediaCommand::SeedDownlinkEstimate`] raises the estimator's value to what a probe carried.
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
//! use lamina_pipelines::{MediaCommand, PeerId, PipelineConfig, RoomPipeline};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! lamina_pipelines::prewarm();
//! let (mut room, mut events) = RoomPipeline::new(PipelineConfig {
//!     name: "room-1".into(),
//!     ice_addresses: vec!["127.0.0.1".parse()?],
//!     ice_port_range: (0, 0),
//!     latency_ms: 30,
//!     downlink_estimation: true,
//! })?;
//! room.execute(MediaCommand::AddPeer(PeerId::new("alice")))?;
//! // room.execute(MediaCommand::HandleOffer { peer, plan })?; then wait for AnswerReady.
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod bus;
mod cmd;
mod codecs;
mod downlink;
mod dtls;
mod eos;
mod event_drop;
pub mod fault;
pub mod forwarder;
mod forwarding;
mod ghost_hops;
mod ice;
mod media_thread;
mod negotiation;
mod peer_bin;
mod peers;
mod port;
mod receive_fec;
mod receive_path;
pub mod recording;
pub mod repair;
pub mod room_pipeline;
mod rtcp;
mod send_path;
pub mod srtp_library;
pub mod tap;
mod teardown;
#[cfg(test)]
mod test_packets;
mod timers;
mod transport;

pub use fault::Fault;
/// The typed ids shared with the room logic (defined in `lamina-protocol`).
pub use lamina_protocol::ids;
pub use lamina_protocol::ids::{PeerId, TrackId, TrackKind};
pub use lamina_seam::{
    MediaCommand, MediaError, MediaEvent, NegotiationError, OfferPlan, OfferSummary, PeerFailure,
    Want,
};
pub use peer_bin::bin_name;
pub use recording::{RecordedFile, RecordingError, RecordingInfo, RecordingRequest};
pub use room_pipeline::{PipelineConfig, RoomPipeline};
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
