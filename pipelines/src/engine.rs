//! The room's media thread: the single owner of every GStreamer object of a room.
//!
//! [`crate::RoomPipeline`] methods and GStreamer callbacks post [`Cmd`]s; this thread executes
//! them one after another. It may block (promise waits, state changes): it is a plain
//! `std::thread`, never a tokio worker. Timers (delayed link activation) are kept here too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_webrtc::WebRTCPeerConnectionState as ConnState;
use tokio::sync::{mpsc::UnboundedSender, oneshot};

use crate::codecs::Codec;
use crate::event::PipelineEvent;
use crate::forwarder::Forwarder;
use crate::ids::{PeerId, TrackId};
use crate::peer_bin::{IceSettings, PeerBin};
use crate::room_pipeline::OfferPlan;

/// After an answer on an already connected transport, wait this long (about one RTT plus the
/// client applying the answer) before opening new links, so the first keyframe is not dropped.
const ACTIVATE_AFTER_ANSWER: Duration = Duration::from_millis(150);
/// After an ICE-restart answer, report `PeerConnected` anyway if the state never left
/// `connected` within this time.
const RESTART_GRACE: Duration = Duration::from_secs(3);

/// Work for the media thread.
#[derive(Debug)]
pub(crate) enum Cmd {
    AddPeer(PeerId),
    RemovePeer(PeerId),
    Offer(PeerId, OfferPlan),
    RemoteCandidate(PeerId, u32, String),
    RequestKeyframe(TrackId),
    Shutdown(Option<oneshot::Sender<()>>),
    /// webrtcbin `on-ice-candidate`.
    LocalCandidate {
        peer: PeerId,
        mline: u32,
        candidate: String,
    },
    /// webrtcbin `notify::connection-state`.
    ConnectionState {
        peer: PeerId,
        state: ConnState,
    },
    /// webrtcbin `pad-removed` (src).
    SrcPadRemoved {
        peer: PeerId,
        pad: String,
    },
    /// Bus error inside `peer-<id>`.
    PeerError {
        peer: PeerId,
        reason: String,
    },
    /// Recordings (`recording.rs`).
    Recording(crate::recording::Op),
    /// Taps (`tap.rs`).
    Tap(crate::tap::Op),
    /// Bus error inside a `rec-…` or `tap-…` branch: drop that branch only.
    BranchError {
        branch: String,
        reason: String,
    },
}

#[derive(Debug)]
enum Timer {
    Activate(PeerId),
    /// A keyframe request for a newly opened link was throttled: ask again.
    Keyframe(TrackId),
    RestartGrace(PeerId, u64),
}

/// One forwarded link: forwarder output → subscriber m-line.
#[derive(Debug)]
pub(crate) struct Link {
    pub track: TrackId,
    pub fwd_pad: gst::Pad,
}

/// A sending (subscriber) m-line: webrtcbin `sink_<k>` ghosted on the peer bin.
#[derive(Debug)]
pub(crate) struct SubSlot {
    pub sink: gst::Pad,
    pub ghost: gst::GhostPad,
    pub transceiver: gst_webrtc::WebRTCRTPTransceiver,
    pub link: Option<Link>,
}

/// What an m-line of a peer is used for.
#[derive(Debug)]
pub(crate) enum MLine {
    /// The client sends track `track` here.
    Publish {
        track: TrackId,
        transceiver: gst_webrtc::WebRTCRTPTransceiver,
    },
    /// We send (or sent) a remote track here.
    Subscribe(SubSlot),
    /// Answered inactive.
    Inactive(Option<gst_webrtc::WebRTCRTPTransceiver>),
}

impl MLine {
    /// The m-line's transceiver, if it has one.
    pub(crate) fn transceiver(&self) -> Option<&gst_webrtc::WebRTCRTPTransceiver> {
        match self {
            MLine::Publish { transceiver, .. } => Some(transceiver),
            MLine::Subscribe(slot) => Some(&slot.transceiver),
            MLine::Inactive(t) => t.as_ref(),
        }
    }
}

/// Media-thread state of one peer.
#[derive(Debug)]
pub(crate) struct Peer {
    pub pb: PeerBin,
    pub last_ufrag: Option<String>,
    pub answered: bool,
    pub queued_candidates: Vec<(u32, String)>,
    pub conn: ConnState,
    pub awaiting_connected: bool,
    pub round: u64,
    pub mlines: BTreeMap<u32, MLine>,
    /// DTLS fingerprint of the last offer: the certificate the peer presents must match.
    pub fingerprint: Option<crate::dtls::Fingerprint>,
}

/// A published track.
#[derive(Debug)]
pub(crate) struct Track {
    pub publisher: PeerId,
    pub mline: u32,
    pub codec: Codec,
    pub fwd: Forwarder,
    pub subscribers: BTreeSet<(PeerId, u32)>,
}

/// The media thread's state.
pub(crate) struct Engine {
    pub pipeline: gst::Pipeline,
    pub ice: IceSettings,
    pub events: UnboundedSender<PipelineEvent>,
    pub cmd_tx: Sender<Cmd>,
    pub peers: HashMap<PeerId, Peer>,
    pub tracks: HashMap<TrackId, Track>,
    /// Forwarders of unpublished tracks whose publisher pad still exists.
    pub retired: HashMap<TrackId, (PeerId, Forwarder)>,
    pub recordings: crate::recording::Recordings,
    pub taps: crate::tap::Taps,
    /// Retransmission requests of the room's subscribers (shared with `RoomPipeline`).
    pub nacks: Arc<crate::repair::NackCounters>,
    timers: Vec<(Instant, Timer)>,
    ssrc_seed: u64,
}

impl Engine {
    pub(crate) fn new(
        pipeline: gst::Pipeline,
        ice: IceSettings,
        events: UnboundedSender<PipelineEvent>,
        cmd_tx: Sender<Cmd>,
        nacks: Arc<crate::repair::NackCounters>,
    ) -> Self {
        use std::hash::{BuildHasher, RandomState};
        let ssrc_seed = RandomState::new().hash_one(pipeline.name().as_str());
        Self {
            pipeline,
            ice,
            events,
            cmd_tx,
            peers: HashMap::new(),
            tracks: HashMap::new(),
            retired: HashMap::new(),
            recordings: Default::default(),
            taps: Default::default(),
            nacks,
            timers: Vec::new(),
            ssrc_seed,
        }
    }

    /// Runs until `Shutdown` or until every sender is gone.
    pub(crate) fn run(mut self, rx: Receiver<Cmd>) {
        loop {
            let timeout = self
                .timers
                .iter()
                .map(|(at, _)| at.saturating_duration_since(Instant::now()))
                .min()
                .unwrap_or(Duration::from_secs(3600));
            match rx.recv_timeout(timeout) {
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
            self.run_timers();
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::AddPeer(peer) => self.add_peer(peer),
            Cmd::RemovePeer(peer) => self.remove_peer(&peer),
            Cmd::Offer(peer, plan) => {
                self.offer(&peer, plan);
                crate::recording::sync_all(self);
            }
            Cmd::RemoteCandidate(peer, mline, cand) => {
                if let Some(p) = self.peers.get(&peer) {
                    p.pb.webrtc
                        .emit_by_name::<()>("add-ice-candidate", &[&mline, &cand]);
                }
            }
            Cmd::RequestKeyframe(track) => {
                if let Some(t) = self.tracks.get(&track) {
                    t.fwd.request_keyframe();
                }
            }
            Cmd::LocalCandidate {
                peer,
                mline,
                candidate,
            } => self.local_candidate(&peer, mline, candidate),
            Cmd::ConnectionState { peer, state } => self.connection_state(&peer, state),
            Cmd::SrcPadRemoved { peer, pad } => self.src_pad_removed(&peer, &pad),
            Cmd::PeerError { peer, reason } => {
                if self.peers.contains_key(&peer) {
                    self.remove_peer(&peer);
                    self.emit(PipelineEvent::PeerFailed { peer, reason });
                }
            }
            Cmd::Recording(op) => crate::recording::handle(self, op),
            Cmd::Tap(op) => crate::tap::handle(self, op),
            Cmd::BranchError { branch, reason } => {
                crate::recording::branch_failed(self, &branch, &reason);
                crate::tap::branch_failed(self, &branch);
            }
            Cmd::Shutdown(_) => unreachable!("handled in run"),
        }
    }

    pub(crate) fn emit(&self, ev: PipelineEvent) {
        let _ = self.events.send(ev);
    }

    pub(crate) fn next_ssrc(&mut self) -> u32 {
        // splitmix64: distinct, well-spread values per room.
        self.ssrc_seed = self.ssrc_seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.ssrc_seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) as u32).max(1)
    }

    pub(crate) fn schedule_activation(&mut self, peer: &PeerId) {
        self.timers.push((
            Instant::now() + ACTIVATE_AFTER_ANSWER,
            Timer::Activate(peer.clone()),
        ));
    }

    pub(crate) fn schedule_restart_grace(&mut self, peer: &PeerId, round: u64) {
        self.timers.push((
            Instant::now() + RESTART_GRACE,
            Timer::RestartGrace(peer.clone(), round),
        ));
    }

    fn run_timers(&mut self) {
        let now = Instant::now();
        let (due, rest): (Vec<_>, Vec<_>) = self.timers.drain(..).partition(|(at, _)| *at <= now);
        self.timers = rest;
        for (_, timer) in due {
            match timer {
                Timer::Activate(peer) => self.activate_links(&peer),
                Timer::Keyframe(track) => {
                    if let Some(t) = self.tracks.get(&track) {
                        t.fwd.request_keyframe();
                    }
                }
                Timer::RestartGrace(peer, round) => {
                    let Some(p) = self.peers.get_mut(&peer) else {
                        continue;
                    };
                    if p.round == round && p.awaiting_connected && p.conn == ConnState::Connected {
                        tracing::warn!(%peer, "ICE restart left the state connected; reporting it");
                        p.awaiting_connected = false;
                        self.emit(PipelineEvent::PeerConnected { peer: peer.clone() });
                        self.activate_links(&peer);
                    }
                }
            }
        }
    }

    fn add_peer(&mut self, peer: PeerId) {
        if self.peers.contains_key(&peer) {
            return;
        }
        let pb = match PeerBin::new(&peer, &self.ice, self.cmd_tx.clone(), self.events.clone()) {
            Ok(pb) => pb,
            Err(e) => {
                self.emit(PipelineEvent::PeerFailed {
                    peer,
                    reason: e.to_string(),
                });
                return;
            }
        };
        if self.pipeline.add(&pb.bin).is_err() || pb.bin.sync_state_with_parent().is_err() {
            let _ = self.pipeline.remove(&pb.bin);
            self.emit(PipelineEvent::PeerFailed {
                peer,
                reason: "cannot start the peer's webrtcbin".into(),
            });
            return;
        }
        tracing::debug!(%peer, "peer added");
        self.peers.insert(
            peer,
            Peer {
                pb,
                last_ufrag: None,
                answered: false,
                queued_candidates: Vec::new(),
                conn: ConnState::New,
                awaiting_connected: false,
                round: 0,
                mlines: BTreeMap::new(),
                fingerprint: None,
            },
        );
    }

    fn local_candidate(&mut self, peer: &PeerId, mline: u32, candidate: String) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if p.answered {
            self.emit(PipelineEvent::LocalCandidate {
                peer: peer.clone(),
                mline,
                candidate,
            });
        } else {
            p.queued_candidates.push((mline, candidate));
        }
    }

    fn connection_state(&mut self, peer: &PeerId, state: ConnState) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        let previous = std::mem::replace(&mut p.conn, state);
        tracing::debug!(%peer, ?previous, ?state, "connection-state");
        match state {
            ConnState::Connected if previous != ConnState::Connected && p.answered => {
                // Authenticate the peer before anything flows to it (webrtcbin does not).
                let verified = match &p.fingerprint {
                    Some(f) => crate::dtls::verify_peer(
                        p.mlines.values().filter_map(MLine::transceiver),
                        f,
                    ),
                    None => Err("no DTLS fingerprint was offered".into()),
                };
                if let Err(reason) = verified {
                    tracing::warn!(%peer, %reason, "DTLS peer not authenticated: removing it");
                    self.remove_peer(peer);
                    self.emit(PipelineEvent::PeerFailed {
                        peer: peer.clone(),
                        reason,
                    });
                    return;
                }
                p.awaiting_connected = false;
                self.emit(PipelineEvent::PeerConnected { peer: peer.clone() });
                self.activate_links(peer);
            }
            ConnState::Failed => {
                self.remove_peer(peer);
                self.emit(PipelineEvent::PeerFailed {
                    peer: peer.clone(),
                    reason: "ICE/DTLS connection failed".into(),
                });
            }
            _ => {}
        }
    }

    /// Opens every link the peer receives. Opening requests a keyframe; when the forwarder's
    /// throttle swallowed that request (another subscriber opened just before, and the
    /// keyframe it got may already be gone), a retry is scheduled after the throttle interval.
    pub(crate) fn activate_links(&mut self, peer: &PeerId) {
        let Some(p) = self.peers.get(peer) else {
            return;
        };
        if p.conn != ConnState::Connected {
            return;
        }
        let mut retries = Vec::new();
        for m in p.mlines.values() {
            if let MLine::Subscribe(SubSlot {
                link: Some(link), ..
            }) = m
            {
                if let Some(t) = self.tracks.get(&link.track) {
                    if let Some(after) = t.fwd.open(&link.fwd_pad) {
                        retries.push((Instant::now() + after, Timer::Keyframe(link.track.clone())));
                    }
                }
            }
        }
        self.timers.extend(retries);
    }

    fn src_pad_removed(&mut self, peer: &PeerId, pad: &str) {
        let Some(p) = self.peers.get(peer) else {
            return;
        };
        let Some(ghost) = p.pb.bin.static_pad(pad) else {
            return;
        };
        let fwd_sink = ghost.peer();
        let _ = ghost.set_active(false);
        let _ = p.pb.bin.remove_pad(&ghost);
        // A retired forwarder whose upstream pad is gone can go now.
        if let Some(sink) = fwd_sink {
            let parent = sink.parent_element();
            let retired: Vec<TrackId> = self
                .retired
                .iter()
                .filter(|(_, (_, f))| Some(f.element()) == parent.as_ref())
                .map(|(t, _)| t.clone())
                .collect();
            for t in retired {
                if let Some((_, f)) = self.retired.remove(&t) {
                    crate::teardown::remove_element(self.pipeline.upcast_ref(), f.element());
                }
            }
        }
    }

    /// Closes one subscriber link in the safe order; the m-line's sink pad stays.
    pub(crate) fn unlink_slot(&mut self, sub: &PeerId, mline: u32) {
        let link = match self
            .peers
            .get_mut(sub)
            .and_then(|p| p.mlines.get_mut(&mline))
        {
            Some(MLine::Subscribe(slot)) => slot.link.take(),
            _ => None,
        };
        if let Some(link) = link {
            if let Some(t) = self.tracks.get_mut(&link.track) {
                t.subscribers.remove(&(sub.clone(), mline));
                t.fwd.release_src(&link.fwd_pad);
            }
        }
    }

    /// Stops forwarding a track: releases its subscriber pads, then removes (or retires) its
    /// forwarder. `publisher_leaving`: the publisher's bin goes to NULL next, remove directly
    /// after that (the caller does).
    pub(crate) fn unpublish(
        &mut self,
        track: &TrackId,
        publisher_leaving: bool,
    ) -> Option<Forwarder> {
        crate::recording::track_gone(self, track);
        crate::tap::track_gone(self, track);
        let subs: Vec<(PeerId, u32)> = self
            .tracks
            .get(track)?
            .subscribers
            .iter()
            .cloned()
            .collect();
        for (sub, mline) in subs {
            self.unlink_slot(&sub, mline);
        }
        let t = self.tracks.remove(track)?;
        if let Some(p) = self.peers.get(&t.publisher) {
            p.pb.shared
                .publish
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .slots
                .remove(&t.mline);
        }
        if publisher_leaving {
            return Some(t.fwd);
        }
        let detached = match (t.fwd.sink_pad().peer(), self.peers.get(&t.publisher)) {
            (None, _) => true,
            (Some(ghost), Some(p)) => crate::teardown::divert_to_discard(&p.pb.bin, &ghost),
            (Some(_), None) => false,
        };
        if detached {
            crate::teardown::remove_element(self.pipeline.upcast_ref(), t.fwd.element());
        } else {
            // The publisher's pad is busy or gone strange: keep the forwarder as its sink until
            // the pad is removed or the publisher leaves.
            tracing::warn!(%track, "publisher pad not idle: forwarder retired, not removed");
            self.retired.insert(track.clone(), (t.publisher, t.fwd));
        }
        None
    }

    /// Removes a peer in the safe order (notes Part 1 §4).
    pub(crate) fn remove_peer(&mut self, peer: &PeerId) {
        if !self.peers.contains_key(peer) {
            return;
        }
        // 1+2: release every forwarder pad that feeds this peer.
        let sub_mlines: Vec<u32> = self.peers[peer].mlines.keys().copied().collect();
        for mline in sub_mlines {
            self.unlink_slot(peer, mline);
        }
        // Its own tracks: release their subscribers' pads; forwarders go after the bin.
        let own: Vec<TrackId> = self
            .tracks
            .iter()
            .filter(|(_, t)| &t.publisher == peer)
            .map(|(id, _)| id.clone())
            .collect();
        let mut fwds: Vec<Forwarder> = own.iter().filter_map(|t| self.unpublish(t, true)).collect();
        let retired: Vec<TrackId> = self
            .retired
            .iter()
            .filter(|(_, (p, _))| p == peer)
            .map(|(t, _)| t.clone())
            .collect();
        for t in retired {
            if let Some((_, f)) = self.retired.remove(&t) {
                fwds.push(f);
            }
        }
        let Some(mut p) = self.peers.remove(peer) else {
            return;
        };
        p.pb.disconnect();
        self.nacks.retire(&p.pb.bin);
        // 3: the webrtcbin to NULL flushes its sink pads and stops its streaming threads.
        if p.pb.bin.set_state(gst::State::Null).is_err() {
            tracing::warn!(%peer, "peer bin refused NULL");
        }
        // 4: forwarders of its tracks.
        for f in fwds {
            crate::teardown::remove_element(self.pipeline.upcast_ref(), f.element());
        }
        // 5: ghosts, webrtcbin sink pads, the bin.
        for m in p.mlines.values() {
            if let MLine::Subscribe(slot) = m {
                let _ = p.pb.bin.remove_pad(&slot.ghost);
                p.pb.webrtc.release_request_pad(&slot.sink);
            }
        }
        if self.pipeline.remove(&p.pb.bin).is_err() {
            tracing::warn!(%peer, "peer bin was not in the pipeline");
        }
        self.timers.retain(|(_, t)| match t {
            Timer::Activate(x) | Timer::RestartGrace(x, _) => x != peer,
            Timer::Keyframe(_) => true,
        });
        tracing::debug!(%peer, "peer removed");
    }

    fn shutdown(&mut self) {
        crate::recording::shutdown(self);
        crate::tap::shutdown(self);
        let peers: Vec<PeerId> = self.peers.keys().cloned().collect();
        for peer in peers {
            self.remove_peer(&peer);
        }
        for (_, (_, f)) in self.retired.drain() {
            crate::teardown::remove_element(self.pipeline.upcast_ref(), f.element());
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
