//! [`MediaThread`]: the single owner of every GStreamer object of a room.
//!
//! [`crate::RoomPipeline`] and GStreamer callbacks post [`Cmd`]s; this thread executes them
//! one after another. It may block (promise waits, state changes): it is a plain
//! `std::thread`, never a tokio worker. Its state is split by concern, each part with its
//! own module: peers and their transports (`peers.rs`, `transport.rs`), tracks and links
//! (`forwarding.rs`), delayed work (`timers.rs`), operator branches behind the
//! [`TrackPort`] (`recording.rs`, `tap.rs`). This module only sequences them.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;

use gst::prelude::*;
use gst_webrtc::WebRTCPeerConnectionState as ConnState;
use tokio::sync::mpsc::UnboundedSender;

use crate::cmd::Cmd;
use crate::forwarding::Forwarding;
use crate::ids::{PeerId, TrackId};
use crate::negotiation::{self, Ctx, SsrcSource};
use crate::peer_bin::{PeerBin, PeerSettings};
use crate::peers::{MLine, Peer};
use crate::port::{Branches, TrackInfo, TrackPort};
use crate::recording::Recordings;
use crate::tap::Taps;
use crate::timers::{Timer, Timers, ACTIVATE_AFTER_ANSWER, RESTART_GRACE};
use crate::transport::Change;
use crate::{MediaCommand, MediaEvent, OfferPlan, PeerFailure};

mod removal;

/// The media thread's state.
pub(crate) struct MediaThread {
    pipeline: gst::Pipeline,
    settings: PeerSettings,
    events: UnboundedSender<MediaEvent>,
    cmd_tx: Sender<Cmd>,
    peers: HashMap<PeerId, Peer>,
    forwarding: Forwarding,
    timers: Timers,
    ssrcs: SsrcSource,
    recordings: Recordings,
    taps: Taps,
    /// Retransmission requests of the room's subscribers (shared with `RoomPipeline`).
    nacks: Arc<crate::repair::NackCounters>,
}

/// The [`TrackPort`] branches get: the pipeline, the tracks and the keyframe timers.
struct Port<'a> {
    pipeline: &'a gst::Pipeline,
    forwarding: &'a mut Forwarding,
    timers: &'a mut Timers,
}

impl TrackPort for Port<'_> {
    fn pipeline(&self) -> &gst::Pipeline {
        self.pipeline
    }

    fn tracks(&self) -> Vec<TrackInfo> {
        self.forwarding.infos()
    }

    fn source_pad(&mut self, track: &TrackId, pt: u32) -> Option<gst::Pad> {
        self.forwarding.branch_pad(track, pt)
    }

    fn open(&mut self, track: &TrackId, pad: &gst::Pad) {
        if let Some(after) = self.forwarding.open(track, pad) {
            self.timers.after(after, Timer::Keyframe(track.clone()));
        }
    }

    fn release(&mut self, track: &TrackId, pad: &gst::Pad) {
        self.forwarding.release_branch_pad(track, pad);
    }
}

impl MediaThread {
    pub(crate) fn new(
        pipeline: gst::Pipeline,
        settings: PeerSettings,
        events: UnboundedSender<MediaEvent>,
        cmd_tx: Sender<Cmd>,
        nacks: Arc<crate::repair::NackCounters>,
    ) -> Self {
        let ssrcs = SsrcSource::new(pipeline.name().as_str());
        Self {
            pipeline,
            settings,
            events,
            cmd_tx,
            peers: HashMap::new(),
            forwarding: Forwarding::default(),
            timers: Timers::default(),
            ssrcs,
            recordings: Recordings::default(),
            taps: Taps::default(),
            nacks,
        }
    }

    /// Runs until `Shutdown` or until every sender is gone. Every log line of the thread
    /// carries the room's name.
    pub(crate) fn run(mut self, rx: Receiver<Cmd>) {
        let span = tracing::info_span!("media", room = %self.pipeline.name());
        let _entered = span.enter();
        self.timers
            .after(crate::timers::LAYER_RATES, Timer::LayerRates);
        loop {
            match rx.recv_timeout(self.timers.next_wait()) {
                Ok(Cmd::Shutdown(reply)) => {
                    self.shutdown();
                    if let Some(reply) = reply {
                        let _ = reply.send(());
                    }
                    return;
                }
                Ok(cmd) => self.handle(cmd),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.shutdown();
                    return;
                }
            }
            for timer in self.timers.take_due() {
                self.timer(timer);
            }
        }
    }

    fn port(&mut self) -> (Port<'_>, &mut Recordings, &mut Taps) {
        (
            Port {
                pipeline: &self.pipeline,
                forwarding: &mut self.forwarding,
                timers: &mut self.timers,
            },
            &mut self.recordings,
            &mut self.taps,
        )
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Media(MediaCommand::AddPeer(peer)) => self.add_peer(peer),
            Cmd::Media(MediaCommand::RemovePeer(peer)) => self.remove_peer(&peer),
            Cmd::Media(MediaCommand::HandleOffer { peer, plan }) => {
                self.offer(&peer, &plan);
                let (mut port, recordings, _) = self.port();
                recordings.tracks_changed(&mut port);
            }
            Cmd::Media(MediaCommand::AddCandidate {
                peer,
                mline,
                candidate,
            }) => {
                if let Some(p) = self.peers.get(&peer) {
                    p.pb.webrtc
                        .emit_by_name::<()>("add-ice-candidate", &[&mline, &candidate]);
                }
            }
            Cmd::Media(MediaCommand::SelectLayer {
                peer,
                track,
                layer,
                urgent,
            }) => {
                if !self.forwarding.select_layer(&track, &peer, &layer, urgent) {
                    tracing::debug!(%peer, %track, %layer, "no such simulcast layer: ignored");
                }
            }
            Cmd::Media(MediaCommand::SeedDownlinkEstimate { peer, bps }) => {
                if let Some(e) = self.peers.get(&peer).and_then(|p| p.pb.estimator.as_ref()) {
                    e.seed(bps);
                }
            }
            Cmd::LayerSwitched { track, pad, layer } => {
                if let Some(peer) = self.forwarding.subscriber_of(&track, &pad) {
                    self.emit(MediaEvent::LayerSwitched { peer, track, layer });
                }
            }
            Cmd::RequestKeyframe(track) => self.forwarding.request_keyframe(&track),
            Cmd::LocalCandidate {
                peer,
                mline,
                candidate,
            } => {
                let ready = self
                    .peers
                    .get_mut(&peer)
                    .and_then(|p| p.transport.local_candidate(mline, candidate));
                if let Some((mline, candidate)) = ready {
                    self.emit(MediaEvent::LocalCandidate {
                        peer,
                        mline,
                        candidate,
                    });
                }
            }
            Cmd::ConnectionState { peer, state } => self.connection_state(&peer, state),
            Cmd::SrcPadRemoved { peer, pad } => self.src_pad_removed(&peer, &pad),
            Cmd::PeerError { peer, reason } => {
                if self.peers.contains_key(&peer) {
                    self.remove_peer(&peer);
                    self.emit(MediaEvent::PeerFailed {
                        peer,
                        failure: PeerFailure::Element(reason),
                    });
                }
            }
            Cmd::Recording(op) => {
                let (mut port, recordings, _) = self.port();
                recordings.handle(op, &mut port);
            }
            Cmd::Tap(op) => {
                let (mut port, _, taps) = self.port();
                taps.handle(op, &mut port);
            }
            Cmd::BranchError { branch, reason } => {
                let (mut port, recordings, taps) = self.port();
                recordings.branch_failed(&branch, &reason, &mut port);
                taps.branch_failed(&branch, &reason, &mut port);
            }
            Cmd::Shutdown(_) => unreachable!("handled in run"),
        }
    }

    fn emit(&self, ev: MediaEvent) {
        let _ = self.events.send(ev);
    }

    fn timer(&mut self, timer: Timer) {
        match timer {
            Timer::Activate(peer) => self.activate_links(&peer),
            Timer::Keyframe(track) => self.forwarding.request_keyframe(&track),
            Timer::LayerRates => {
                for (track, bitrates) in self.forwarding.layer_rates(std::time::Instant::now()) {
                    self.emit(MediaEvent::LayerBitrates { track, bitrates });
                }
                self.timers
                    .after(crate::timers::LAYER_RATES, Timer::LayerRates);
            }
            Timer::RestartGrace(peer, round) => {
                let expired = self
                    .peers
                    .get_mut(&peer)
                    .is_some_and(|p| p.transport.grace_expired(round));
                if expired {
                    tracing::warn!(%peer, "ICE restart left the state connected; reporting it");
                    self.emit(MediaEvent::PeerConnected { peer: peer.clone() });
                    self.activate_links(&peer);
                }
            }
        }
    }

    fn add_peer(&mut self, peer: PeerId) {
        if self.peers.contains_key(&peer) {
            return;
        }
        let failed = |reason: String| MediaEvent::PeerFailed {
            peer: peer.clone(),
            failure: PeerFailure::Start(reason),
        };
        let pb = match PeerBin::new(
            self.pipeline.name().as_str(),
            &peer,
            &self.settings,
            self.cmd_tx.clone(),
            self.events.clone(),
        ) {
            Ok(pb) => pb,
            Err(e) => return self.emit(failed(e.to_string())),
        };
        if self.pipeline.add(&pb.bin).is_err() || pb.bin.sync_state_with_parent().is_err() {
            let _ = self.pipeline.remove(&pb.bin);
            return self.emit(failed("cannot start the peer's webrtcbin".into()));
        }
        tracing::debug!(%peer, "peer added");
        self.peers.insert(peer, Peer::new(pb));
    }

    /// Handles one offer; always ends with `AnswerReady` or `NegotiationFailed`.
    fn offer(&mut self, peer_id: &PeerId, plan: &OfferPlan) {
        let result = self.try_offer(peer_id, plan);
        match result {
            Ok((sdp, added_links)) => self.answered(peer_id, sdp, added_links),
            Err(error) => {
                tracing::warn!(peer = %peer_id, %error, "negotiation failed");
                self.emit(MediaEvent::NegotiationFailed {
                    peer: peer_id.clone(),
                    error,
                });
            }
        }
    }

    fn try_offer(
        &mut self,
        peer_id: &PeerId,
        plan: &OfferPlan,
    ) -> Result<(String, bool), crate::NegotiationError> {
        let unknown = || crate::NegotiationError::UnknownPeer(peer_id.clone());
        let peer = self.peers.get_mut(peer_id).ok_or_else(unknown)?;
        let (sdp, restarted) = negotiation::apply_remote(peer_id, peer, plan)?;
        let dropped = negotiation::dropped_publications(peer, plan);
        for (mline, track) in dropped {
            self.unpublish(&track, false);
            if let Some(peer) = self.peers.get_mut(peer_id) {
                negotiation::deactivate(peer, mline);
            }
        }
        let peer = self.peers.get_mut(peer_id).ok_or_else(unknown)?;
        let mut cx = Ctx {
            pipeline: &self.pipeline,
            forwarding: &mut self.forwarding,
            ssrcs: &mut self.ssrcs,
        };
        let (answer, added_links) =
            negotiation::answer(&mut cx, peer_id, peer, plan, &sdp, restarted)?;
        if restarted {
            self.timers.after(
                RESTART_GRACE,
                Timer::RestartGrace(peer_id.clone(), peer.transport.round()),
            );
        }
        Ok((answer, added_links))
    }

    /// `AnswerReady`, then the candidates held until now, then (if the round needs no ICE
    /// work) `PeerConnected` and, when links were added, their activation shortly after.
    fn answered(&mut self, peer: &PeerId, sdp: String, added_links: bool) {
        self.emit(MediaEvent::AnswerReady {
            peer: peer.clone(),
            sdp,
        });
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        let (queued, connected_now) = p.transport.answered();
        for (mline, candidate) in queued {
            self.emit(MediaEvent::LocalCandidate {
                peer: peer.clone(),
                mline,
                candidate,
            });
        }
        if connected_now {
            self.emit(MediaEvent::PeerConnected { peer: peer.clone() });
            if added_links {
                self.timers
                    .after(ACTIVATE_AFTER_ANSWER, Timer::Activate(peer.clone()));
            }
        }
    }

    fn connection_state(&mut self, peer: &PeerId, state: ConnState) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        tracing::debug!(%peer, ?state, "connection-state");
        match p.transport.state_changed(state) {
            Change::Connected => {
                // Authenticate the peer before anything flows to it (webrtcbin does not).
                let verified = match p.transport.fingerprint() {
                    Some(f) => crate::dtls::verify_peer(
                        p.mlines.values().filter_map(MLine::transceiver),
                        f,
                    ),
                    None => Err("no DTLS fingerprint was offered".into()),
                };
                if let Err(reason) = verified {
                    tracing::warn!(%peer, %reason, "DTLS peer not authenticated: removing it");
                    self.remove_peer(peer);
                    self.emit(MediaEvent::PeerFailed {
                        peer: peer.clone(),
                        failure: PeerFailure::Unauthenticated(reason),
                    });
                    return;
                }
                self.emit(MediaEvent::PeerConnected { peer: peer.clone() });
                self.activate_links(peer);
            }
            Change::Failed => {
                self.remove_peer(peer);
                self.emit(MediaEvent::PeerFailed {
                    peer: peer.clone(),
                    failure: PeerFailure::Transport,
                });
            }
            Change::None => {}
        }
    }

    /// Opens every link the peer receives. Opening requests a keyframe; when the forwarder's
    /// throttle swallowed that request (another subscriber opened just before, and the
    /// keyframe it got may already be gone), a retry is scheduled after the throttle interval.
    fn activate_links(&mut self, peer: &PeerId) {
        let Some(p) = self.peers.get(peer) else {
            return;
        };
        if !p.transport.is_connected() {
            return;
        }
        for link in p.links() {
            if let Some(after) = self.forwarding.open(&link.track, &link.fwd_pad) {
                self.timers
                    .after(after, Timer::Keyframe(link.track.clone()));
            }
        }
    }
}
