//! [`RoomPipeline`]: the handle the room actor holds on its room's media graph.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};

use gst::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::cmd::Cmd;
use crate::ids::{PeerId, TrackId};
use crate::media_thread::MediaThread;
use crate::peer_bin::PeerSettings;
use crate::recording::{RecordingError, RecordingInfo, RecordingRequest};
use crate::tap::{TapError, TapInfo};
use crate::{MediaCommand, MediaError, MediaEvent};

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
    /// Estimate each subscriber's downlink from its transport-wide congestion-control feedback
    /// (subscriber m-lines answered with `transport-cc`; `downlink.rs`). Off: no TWCC toward
    /// subscribers and no estimates, layers are then chosen without them (docs/performance.md
    /// §16 has what it costs).
    pub downlink_estimation: bool,
}

/// The media graph of one room: a handle on the room's media thread.
///
/// Every method returns at once (it only posts a command), so it may be called from a tokio
/// task. Results arrive as [`MediaEvent`]s. Dropping the handle shuts the room down like
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
    ) -> Result<(Self, mpsc::UnboundedReceiver<MediaEvent>), MediaError> {
        gst::init().map_err(|e| MediaError::Gst(e.to_string()))?;
        for factory in [
            "webrtcbin",
            crate::forwarder::FACTORY,
            crate::repair::REPAIR_FACTORY,
        ] {
            if gst::ElementFactory::find(factory).is_none() {
                return Err(MediaError::MissingElement(factory.into()));
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let pipeline = gst::Pipeline::with_name(&config.name);
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| MediaError::Gst(e.to_string()))?;
        let (cmd_tx, cmd_rx) = std_mpsc::channel();
        let settings = PeerSettings {
            addresses: config.ice_addresses.clone(),
            port_range: config.ice_port_range,
            latency_ms: config.latency_ms,
            downlink_estimation: config.downlink_estimation,
        };
        let bus_stop = Arc::new(AtomicBool::new(false));
        let fail = |e: std::io::Error| {
            let _ = pipeline.set_state(gst::State::Null);
            MediaError::Gst(format!("cannot spawn thread: {e}"))
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
                let thread =
                    MediaThread::new(engine_pipeline, settings, tx, engine_cmd, engine_nacks);
                let run = std::panic::AssertUnwindSafe(move || thread.run(cmd_rx));
                if std::panic::catch_unwind(run).is_err() {
                    // A bug: the room cannot go on, but the process can.
                    let _ = pipeline.set_state(gst::State::Null);
                    let _ = failed.send(MediaEvent::RoomFailed {
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

    fn post(&self, cmd: Cmd) -> Result<(), MediaError> {
        self.cmd.send(cmd).map_err(|_| MediaError::Closed)
    }

    /// Executes one command of the room (see the crate's contract). Returns at once; results
    /// arrive as [`MediaEvent`]s. Adding a peer twice, or offering for an unknown peer, is an
    /// error; removing an unknown peer, candidates of unknown peers and empty candidates (end
    /// of candidates) are ignored.
    pub fn execute(&mut self, cmd: MediaCommand) -> Result<(), MediaError> {
        match &cmd {
            MediaCommand::AddPeer(peer) => {
                if self.peers.contains(peer) {
                    return Err(MediaError::DuplicatePeer(peer.clone()));
                }
                self.post(Cmd::Media(cmd.clone()))?;
                self.peers.insert(peer.clone());
                return Ok(());
            }
            MediaCommand::RemovePeer(peer) => {
                if !self.peers.remove(peer) {
                    return Ok(());
                }
            }
            MediaCommand::HandleOffer { peer, .. } => {
                if !self.peers.contains(peer) {
                    return Err(MediaError::UnknownPeer(peer.clone()));
                }
            }
            MediaCommand::AddCandidate {
                peer, candidate, ..
            } => {
                if candidate.trim().is_empty() || !self.peers.contains(peer) {
                    return Ok(());
                }
            }
            MediaCommand::SelectLayer { peer, .. }
            | MediaCommand::SeedDownlinkEstimate { peer, .. } => {
                if !self.peers.contains(peer) {
                    return Ok(());
                }
            }
        }
        self.post(Cmd::Media(cmd))
    }

    /// Asks the publisher of `track` for a keyframe (deduplicated by the forwarder).
    pub fn request_keyframe(&self, track: &TrackId) {
        let _ = self.post(Cmd::RequestKeyframe(track.clone()));
    }

    /// Posts a real bus error for `fault`, as a failing element would (failure-isolation
    /// tests; see [`crate::fault`]). The outcome arrives as `PeerFailed` or `RoomFailed`.
    pub fn inject_fault(&self, fault: &crate::Fault) -> Result<(), MediaError> {
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

    /// Starts a recording (see [`RecordingRequest`]); resolves with its first progress report.
    pub fn start_recording(
        &self,
        request: RecordingRequest,
    ) -> oneshot::Receiver<Result<RecordingInfo, RecordingError>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.post(Cmd::Recording(crate::recording::Op::Start(request, tx)));
        rx
    }

    /// Stops one recording (`Some(id)`) or every running one; resolves once the files are
    /// finalized (bounded), with their final state.
    pub fn stop_recording(
        &self,
        id: Option<String>,
    ) -> oneshot::Receiver<Result<Vec<RecordingInfo>, RecordingError>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.post(Cmd::Recording(crate::recording::Op::Stop(id, tx)));
        rx
    }

    /// Running and recently stopped recordings with their progress.
    pub fn recordings(&self) -> oneshot::Receiver<Vec<RecordingInfo>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.post(Cmd::Recording(crate::recording::Op::List(tx)));
        rx
    }

    /// Sends `track`'s RTP to `127.0.0.1:<port>` until removed.
    pub fn add_tap(
        &self,
        track: &TrackId,
        port: u16,
    ) -> oneshot::Receiver<Result<TapInfo, TapError>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.post(Cmd::Tap(crate::tap::Op::Add(track.clone(), port, tx)));
        rx
    }

    /// Removes the tap of `track` on `port`, or all its taps; resolves with what was removed.
    pub fn remove_tap(
        &self,
        track: &TrackId,
        port: Option<u16>,
    ) -> oneshot::Receiver<Result<Vec<TapInfo>, TapError>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.post(Cmd::Tap(crate::tap::Op::Remove(track.clone(), port, tx)));
        rx
    }

    /// The running taps.
    pub fn taps(&self) -> oneshot::Receiver<Vec<TapInfo>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.post(Cmd::Tap(crate::tap::Op::List(tx)));
        rx
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
