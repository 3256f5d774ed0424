//! [`RoomPipeline`]: the handle the room actor holds on its room's media graph.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};

use gst::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::engine::{Cmd, Engine};
use crate::event::PipelineEvent;
use crate::ids::{PeerId, TrackId};
use crate::peer_bin::IceSettings;

/// Settings of a room pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Name of the pipeline (the room id), used in logs and dot graphs.
    pub name: String,
    /// Addresses webrtcbin gathers host candidates on (e.g. `127.0.0.1`).
    pub ice_addresses: Vec<IpAddr>,
    /// UDP port range of webrtcbin's ICE sockets (`0, 0` = any).
    pub ice_port_range: (u16, u16),
    /// Jitterbuffer latency of the server-side webrtcbins, in milliseconds (20–50 advised).
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
    /// The peer was already added.
    #[error("peer {0} already exists")]
    DuplicatePeer(PeerId),
    /// The pipeline no longer runs.
    #[error("room pipeline is closed")]
    Closed,
    /// Anything else GStreamer refused.
    #[error("{0}")]
    Gst(String),
}

/// The media graph of one room: a handle on the room's media thread.
///
/// Every method returns at once (it only posts a command), so it may be called from a tokio
/// task. Results arrive as [`PipelineEvent`]s. Dropping the handle shuts the room down like
/// [`RoomPipeline::shutdown`].
#[derive(Debug)]
pub struct RoomPipeline {
    cmd: std_mpsc::Sender<Cmd>,
    pipeline: gst::Pipeline,
    peers: HashSet<PeerId>,
    bus_stop: Arc<AtomicBool>,
    nacks: Arc<crate::repair::NackCounters>,
    shut: bool,
}

impl RoomPipeline {
    /// Creates the room's pipeline (PLAYING), its media thread and its bus watcher, and the
    /// receiver of its events. Calls `gst::init`.
    pub fn new(
        config: PipelineConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<PipelineEvent>), PipelineError> {
        gst::init().map_err(|e| PipelineError::Gst(e.to_string()))?;
        for factory in [
            "webrtcbin",
            crate::forwarder::FACTORY,
            crate::repair::REPAIR_FACTORY,
        ] {
            if gst::ElementFactory::find(factory).is_none() {
                return Err(PipelineError::MissingElement(factory.into()));
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let pipeline = gst::Pipeline::with_name(&config.name);
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| PipelineError::Gst(e.to_string()))?;
        let (cmd_tx, cmd_rx) = std_mpsc::channel();
        let ice = IceSettings {
            addresses: config.ice_addresses.clone(),
            port_range: config.ice_port_range,
            latency_ms: config.latency_ms,
        };
        let bus_stop = Arc::new(AtomicBool::new(false));
        let fail = |e: std::io::Error| {
            let _ = pipeline.set_state(gst::State::Null);
            PipelineError::Gst(format!("cannot spawn thread: {e}"))
        };
        crate::bus::spawn(
            pipeline.clone(),
            cmd_tx.clone(),
            tx.clone(),
            bus_stop.clone(),
        )
        .map_err(fail)?;
        let nacks = Arc::new(crate::repair::NackCounters::default());
        let (engine_pipeline, engine_cmd, engine_nacks) =
            (pipeline.clone(), cmd_tx.clone(), nacks.clone());
        if let Err(e) = std::thread::Builder::new()
            .name(format!("media-{}", config.name))
            .spawn(move || {
                let failed = tx.clone();
                let pipeline = engine_pipeline.clone();
                let engine = Engine::new(engine_pipeline, ice, tx, engine_cmd, engine_nacks);
                let run = std::panic::AssertUnwindSafe(move || engine.run(cmd_rx));
                if std::panic::catch_unwind(run).is_err() {
                    // A bug: the room cannot go on, but the process can.
                    let _ = pipeline.set_state(gst::State::Null);
                    let _ = failed.send(PipelineEvent::RoomFailed {
                        reason: "media thread panicked".into(),
                    });
                }
            })
        {
            bus_stop.store(true, Ordering::Release);
            return Err(fail(e));
        }
        Ok((
            Self {
                cmd: cmd_tx,
                pipeline,
                peers: HashSet::new(),
                bus_stop,
                nacks,
                shut: false,
            },
            rx,
        ))
    }

    pub(crate) fn post(&self, cmd: Cmd) -> Result<(), PipelineError> {
        self.cmd.send(cmd).map_err(|_| PipelineError::Closed)
    }

    /// Adds a participant: a `peer-<id>` bin with its webrtcbin. Failures to build it arrive
    /// as `PeerFailed`.
    pub fn add_peer(&mut self, peer: &PeerId) -> Result<(), PipelineError> {
        if self.peers.contains(peer) {
            return Err(PipelineError::DuplicatePeer(peer.clone()));
        }
        self.post(Cmd::AddPeer(peer.clone()))?;
        self.peers.insert(peer.clone());
        Ok(())
    }

    /// Removes a participant and everything it published or received (safe order). Unknown
    /// peers are ignored. No event follows.
    pub fn remove_peer(&mut self, peer: &PeerId) {
        if self.peers.remove(peer) {
            let _ = self.post(Cmd::RemovePeer(peer.clone()));
        }
    }

    /// Answers an offer according to `plan`. The result arrives as `AnswerReady` or
    /// `NegotiationFailed`; one offer per peer at a time.
    pub fn handle_offer(&mut self, peer: &PeerId, plan: OfferPlan) -> Result<(), PipelineError> {
        if !self.peers.contains(peer) {
            return Err(PipelineError::UnknownPeer(peer.clone()));
        }
        self.post(Cmd::Offer(peer.clone(), plan))
    }

    /// Passes a trickled remote candidate (`candidate:` line) to the peer's webrtcbin. Empty
    /// strings (end of candidates) and unknown peers are ignored.
    pub fn add_remote_candidate(&mut self, peer: &PeerId, mline: u32, candidate: &str) {
        if candidate.trim().is_empty() || !self.peers.contains(peer) {
            return;
        }
        let _ = self.post(Cmd::RemoteCandidate(
            peer.clone(),
            mline,
            candidate.to_owned(),
        ));
    }

    /// Asks the publisher of `track` for a keyframe (deduplicated by the forwarder).
    pub fn request_keyframe(&self, track: &TrackId) {
        let _ = self.post(Cmd::RequestKeyframe(track.clone()));
    }

    /// Posts a real bus error for `fault`, as a failing element would (failure-isolation
    /// tests; see [`crate::fault`]). The outcome arrives as `PeerFailed` or `RoomFailed`.
    pub fn inject_fault(&self, fault: &crate::Fault) -> Result<(), PipelineError> {
        crate::fault::inject(&self.pipeline, fault)
    }

    /// The pipeline graph in Graphviz dot.
    pub fn dot(&self) -> String {
        self.pipeline
            .debug_to_dot_data(gst::DebugGraphDetails::all())
            .to_string()
    }

    /// Number of elements in the pipeline, recursively (for leak checks).
    pub fn element_count(&self) -> usize {
        self.pipeline.iterate_recurse().into_iter().count()
    }

    /// Packets forwarded so far by the forwarder of `track`, if it exists.
    pub fn forwarded_packets(&self, track: &TrackId) -> Option<u64> {
        let fwd = self
            .pipeline
            .by_name(&crate::forwarder::element_name(track))?;
        fwd.find_property("forwarded-packets")?;
        Some(fwd.property::<u64>("forwarded-packets"))
    }

    /// Bytes forwarded so far by the forwarder of `track`, if it exists.
    pub fn forwarded_bytes(&self, track: &TrackId) -> Option<u64> {
        let fwd = self
            .pipeline
            .by_name(&crate::forwarder::element_name(track))?;
        fwd.find_property("forwarded-bytes")?;
        Some(fwd.property::<u64>("forwarded-bytes"))
    }

    /// Keyframe requests the forwarder of `track` sent to its publisher and those its throttle
    /// dropped, if it exists.
    pub fn keyframe_requests(&self, track: &TrackId) -> Option<(u64, u64)> {
        let fwd = self
            .pipeline
            .by_name(&crate::forwarder::element_name(track))?;
        fwd.find_property("keyframe-requests")?;
        Some((
            fwd.property::<u64>("keyframe-requests"),
            fwd.property::<u64>("keyframe-requests-dropped"),
        ))
    }

    /// Loss-repair counters of the room's live peers (walks the graph: call it for a scrape,
    /// not per packet).
    pub fn repair_stats(&self) -> crate::repair::RepairStats {
        crate::repair::RepairStats::collect(self.pipeline.upcast_ref(), &self.nacks)
    }

    /// Peers currently added.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.peers.iter()
    }

    /// Tears the room down on its media thread (peers in the safe order, then the pipeline to
    /// NULL) and returns at once. The receiver resolves when the pipeline is NULL.
    pub fn shutdown(mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.shut = true;
        let _ = self.post(Cmd::Shutdown(Some(tx)));
        self.bus_stop.store(true, Ordering::Release);
        rx
    }
}

impl Drop for RoomPipeline {
    fn drop(&mut self) {
        if !self.shut {
            let _ = self.cmd.send(Cmd::Shutdown(None));
            self.bus_stop.store(true, Ordering::Release);
        }
    }
}
