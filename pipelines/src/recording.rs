//! Recording tracks to files without decoding: one `rec-<recording>-<track>` bin per recorded
//! track, fed by its own `laminaforwarder` src pad (active, publisher's PT/SSRC kept):
//!
//! ```text
//! fwd-<track>.src_N ─▶ queue ─▶ rtpvp8depay ─────────────▶ webmmux ─▶ filesink <dir>/video-<track>.webm
//!                         └───▶ rtpopusdepay ─▶ opusparse ─┘ (Opus)
//! ```
//!
//! Every branch lives in the room pipeline, so all share its clock and running time. A
//! recording fixes its base `T0` (the pipeline's running time when it started); each branch
//! retimes its input to `running time - T0` on a fresh segment (packets from before `T0` are
//! dropped), so in every file of one recording the timestamp `t` means "`t` after the
//! recording started", whenever the track joined: the files play in sync. (A negative pad
//! offset would do the same in theory, but GStreamer 1.22 leaves the segment's `base` invalid
//! when the offset exceeds it, and the muxer's timestamps drift by the room's age.)
//!
//! Starting a video branch requests a keyframe (opening the forwarder pad does, and the depayloader
//! keeps asking until one arrives), so each file starts decodable. Stopping closes the forwarder
//! pad in the safe order, sends EOS into the branch and lets a finalizer thread wait (bounded)
//! for the EOS at the file sink before setting the branch to NULL: the muxer writes its
//! duration and cues, and no streaming or media thread waits for it. A room that shuts down
//! finalizes its recordings the same way, on its media thread, bounded.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::ids::TrackId;
use crate::port::{Branches, TrackPort};

mod branch;
mod types;
pub use branch::file_safe;
pub(crate) use branch::owning_branch;
use branch::{build_branch, FileStats};
pub(crate) use types::Op;
pub use types::{RecordedFile, RecordingError, RecordingInfo, RecordingRequest};

/// How long a stopped branch may take to write its last data and finalize its file.
const FINALIZE_TIMEOUT: Duration = Duration::from_secs(5);
/// Stopped recordings kept per room for listing.
const KEEP_STOPPED: usize = 16;

/// One running branch.
#[derive(Debug)]
struct Branch {
    bin: gst::Bin,
    fwd_pad: gst::Pad,
    stats: Arc<FileStats>,
    /// Fires when EOS reaches the file sink.
    eos: mpsc::Receiver<()>,
}

#[derive(Debug)]
struct Session {
    id: String,
    track: Option<TrackId>,
    dir: PathBuf,
    /// Running time the files count from.
    base: gst::ClockTime,
    started: Instant,
    stopped: Option<Instant>,
    branches: Vec<Branch>,
    files: Vec<Arc<FileStats>>,
}

impl Session {
    fn info(&self) -> RecordingInfo {
        RecordingInfo {
            id: self.id.clone(),
            track: self.track.clone(),
            running: self.stopped.is_none(),
            duration: self.stopped.unwrap_or_else(Instant::now) - self.started,
            dir: self.dir.clone(),
            files: self.files.iter().map(|f| f.snapshot()).collect(),
        }
    }

    fn records(&self, track: &TrackId) -> bool {
        self.branches.iter().any(|b| &b.stats.track == track)
    }
}

/// The media thread's recordings of one room.
#[derive(Debug, Default)]
pub(crate) struct Recordings {
    sessions: Vec<Session>,
    /// Finalizer threads that may still run (joined when the room shuts down).
    finalizers: Vec<std::thread::JoinHandle<()>>,
}

/// Bin name of a recording branch.
fn bin_name(id: &str, track: &TrackId) -> String {
    format!("rec-{id}-{track}")
}

/// Executes a recording command on the media thread.
impl Recordings {
    /// Executes a recording command.
    pub(crate) fn handle(&mut self, op: Op, port: &mut dyn TrackPort) {
        match op {
            Op::Start(request, reply) => {
                let _ = reply.send(self.start(request, port));
            }
            Op::Stop(id, reply) => {
                let running: Vec<usize> = self
                    .sessions
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| {
                        s.stopped.is_none() && id.as_ref().is_none_or(|id| &s.id == id)
                    })
                    .map(|(i, _)| i)
                    .collect();
                if let (Some(id), true) = (&id, running.is_empty()) {
                    // Stopping a stopped recording answers its final state again.
                    let known = self.sessions.iter().find(|s| &s.id == id);
                    let _ = reply.send(match known {
                        Some(s) => Ok(vec![s.info()]),
                        None => Err(RecordingError::UnknownRecording(id.clone())),
                    });
                    return;
                }
                let mut pending = Vec::new();
                let mut stopped = Vec::new();
                for i in running {
                    let session = &mut self.sessions[i];
                    session.stopped = Some(Instant::now());
                    let branches: Vec<Branch> = session.branches.drain(..).collect();
                    stopped.push(i);
                    for b in branches {
                        pending.push(detach(port, b));
                    }
                }
                let done: Vec<(RecordingInfo, Vec<Arc<FileStats>>)> = stopped
                    .iter()
                    .map(|i| {
                        let s = &self.sessions[*i];
                        (s.info(), s.files.clone())
                    })
                    .collect();
                self.spawn_finalizer(port.pipeline(), pending, move || {
                    // Sizes and completion as finalized.
                    let out = done
                        .into_iter()
                        .map(|(mut info, files)| {
                            info.files = files.iter().map(|f| f.snapshot()).collect();
                            info
                        })
                        .collect();
                    let _ = reply.send(Ok(out));
                });
                prune(self);
            }
            Op::List(reply) => {
                let _ = reply.send(self.sessions.iter().map(Session::info).collect());
            }
        }
    }

    fn start(
        &mut self,
        request: RecordingRequest,
        port: &mut dyn TrackPort,
    ) -> Result<RecordingInfo, RecordingError> {
        if self.sessions.iter().any(|s| s.id == request.id) {
            return Err(RecordingError::Duplicate(request.id));
        }
        if let Some(track) = &request.track {
            if !port.tracks().iter().any(|t| &t.id == track) {
                return Err(RecordingError::UnknownTrack(track.clone()));
            }
        }
        std::fs::create_dir_all(&request.dir)
            .map_err(|e| RecordingError::Io(format!("{}: {e}", request.dir.display())))?;
        let base = port
            .pipeline()
            .current_running_time()
            .ok_or_else(|| RecordingError::Gst("the room pipeline has no clock yet".into()))?;
        self.sessions.push(Session {
            id: request.id.clone(),
            track: request.track.clone(),
            dir: request.dir,
            base,
            started: Instant::now(),
            stopped: None,
            branches: Vec::new(),
            files: Vec::new(),
        });
        let index = self.sessions.len() - 1;
        let tracks: Vec<TrackId> = match request.track {
            Some(t) => vec![t],
            None => port.tracks().into_iter().map(|t| t.id).collect(),
        };
        for track in tracks {
            if let Err(e) = self.add_branch(port, index, &track) {
                if self.sessions[index].track.is_some() {
                    self.sessions.pop();
                    return Err(e);
                }
                tracing::warn!(%track, "cannot record track: {e}");
            }
        }
        tracing::info!(recording = %request.id, "recording started");
        Ok(self.sessions[index].info())
    }

    /// Starts recording every new track in the room-wide recordings (called after each offer,
    /// when new tracks got their forwarder).
    fn sync_all(&mut self, port: &mut dyn TrackPort) {
        let mut todo = Vec::new();
        for (i, s) in self.sessions.iter().enumerate() {
            if s.stopped.is_some() || s.track.is_some() {
                continue;
            }
            for track in port.tracks() {
                let seen = s.files.iter().any(|f| f.track == track.id);
                if !seen {
                    todo.push((i, track.id));
                }
            }
        }
        for (i, track) in todo {
            if let Err(e) = self.add_branch(port, i, &track) {
                tracing::warn!(%track, "cannot record track: {e}");
            }
        }
    }

    /// Builds, links and opens one branch of session `index` for `track`.
    fn add_branch(
        &mut self,
        port: &mut dyn TrackPort,
        index: usize,
        track: &TrackId,
    ) -> Result<(), RecordingError> {
        let t = port
            .tracks()
            .into_iter()
            .find(|t| &t.id == track)
            .ok_or_else(|| RecordingError::UnknownTrack(track.clone()))?;
        let session = &self.sessions[index];
        let (codec, kind) = (t.codec, t.kind);
        let path = session.dir.join(format!(
            "{}-{}.webm",
            kind.as_str(),
            file_safe(track.as_str())
        ));
        let stats = Arc::new(FileStats::new(track, kind, &codec, &path));
        let (bin, eos) = build_branch(
            &bin_name(&session.id, track),
            &codec,
            &path,
            session.base,
            &stats,
        )?;
        let gst_err = |e: &dyn std::fmt::Display| RecordingError::Gst(e.to_string());
        let sink = bin.static_pad("sink").expect("branch has a sink ghost pad");
        let pipeline = port.pipeline().clone();
        let drop_bin = || crate::teardown::remove_element(pipeline.upcast_ref(), bin.upcast_ref());
        pipeline.add(&bin).map_err(|e| gst_err(&e))?;
        if let Err(e) = bin.sync_state_with_parent() {
            drop_bin();
            return Err(gst_err(&e));
        }
        let Some(fwd_pad) = port.source_pad(track, 0) else {
            drop_bin();
            return Err(RecordingError::Gst("forwarder refused a pad".into()));
        };
        if let Err(e) = fwd_pad.link(&sink) {
            port.release(track, &fwd_pad);
            drop_bin();
            return Err(gst_err(&e));
        }
        port.open(track, &fwd_pad);
        let session = &mut self.sessions[index];
        session.files.push(stats.clone());
        session.branches.push(Branch {
            bin,
            fwd_pad,
            stats,
            eos,
        });
        tracing::info!(recording = %session.id, %track, path = %path.display(), "recording track");
        Ok(())
    }
}

/// A branch detached from its forwarder and waiting for its EOS.
struct Pending {
    bin: gst::Bin,
    stats: Arc<FileStats>,
    eos: Option<mpsc::Receiver<()>>,
}

/// Closes the branch's forwarder pad (safe order) and sends EOS into the branch. A branch that
/// never got a frame gets no EOS (its muxer has nothing to finalize); its empty file is removed.
fn detach(port: &mut dyn TrackPort, branch: Branch) -> Pending {
    port.release(&branch.stats.track, &branch.fwd_pad);
    let eos = if branch.stats.frames.load(Ordering::Relaxed) > 0 {
        if let Some(sink) = branch.bin.static_pad("sink") {
            sink.send_event(gst::event::Eos::new());
        }
        Some(branch.eos)
    } else {
        None
    };
    Pending {
        bin: branch.bin,
        stats: branch.stats,
        eos,
    }
}

/// Waits (bounded) for every pending branch's EOS, then sets them to NULL and removes them.
fn finalize(pipeline: &gst::Pipeline, pending: Vec<Pending>) {
    let deadline = Instant::now() + FINALIZE_TIMEOUT;
    for p in pending {
        match &p.eos {
            Some(eos) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if eos.recv_timeout(left).is_err() {
                    tracing::warn!(file = %p.stats.path.display(), "recording not finalized in time");
                    p.stats.set_error("not finalized in time");
                }
            }
            None => {
                let _ = std::fs::remove_file(&p.stats.path);
            }
        }
        crate::teardown::remove_element(pipeline.upcast_ref(), p.bin.upcast_ref());
        p.stats.finished.store(true, Ordering::Release);
        tracing::info!(file = %p.stats.path.display(), "recording file closed");
    }
}

impl Recordings {
    /// Finalizes on a thread of its own, then runs `done`.
    fn spawn_finalizer(
        &mut self,
        pipeline: &gst::Pipeline,
        pending: Vec<Pending>,
        done: impl FnOnce() + Send + 'static,
    ) {
        let pipeline = pipeline.clone();
        let spawned = std::thread::Builder::new()
            .name("rec-finalize".into())
            .spawn(move || {
                finalize(&pipeline, pending);
                done();
            });
        let finalizers = &mut self.finalizers;
        finalizers.retain(|t| !t.is_finished());
        match spawned {
            Ok(thread) => finalizers.push(thread),
            Err(e) => tracing::error!("cannot spawn the recording finalizer: {e}"),
        }
    }
}

impl Branches for Recordings {
    fn tracks_changed(&mut self, port: &mut dyn TrackPort) {
        self.sync_all(port);
    }

    /// A recorded track is being unpublished: finalize its files (before its forwarder goes).
    fn track_gone(&mut self, track: &TrackId, port: &mut dyn TrackPort) {
        let mut pending = Vec::new();
        for i in 0..self.sessions.len() {
            let session = &mut self.sessions[i];
            if !session.records(track) {
                continue;
            }
            let (gone, keep): (Vec<Branch>, Vec<Branch>) = session
                .branches
                .drain(..)
                .partition(|b| &b.stats.track == track);
            session.branches = keep;
            for b in gone {
                pending.push(detach(port, b));
            }
        }
        if !pending.is_empty() {
            let pipeline = port.pipeline().clone();
            self.spawn_finalizer(&pipeline, pending, || {});
        }
    }

    /// An element inside branch `name` posted an error: drop that branch, keep the room.
    fn branch_failed(&mut self, name: &str, reason: &str, port: &mut dyn TrackPort) {
        for session in &mut self.sessions {
            let Some(pos) = session.branches.iter().position(|b| b.bin.name() == name) else {
                continue;
            };
            let b = session.branches.remove(pos);
            tracing::warn!(recording = %session.id, track = %b.stats.track, %reason, "recording branch failed");
            b.stats.set_error(reason);
            port.release(&b.stats.track, &b.fwd_pad);
            crate::teardown::remove_element(port.pipeline().upcast_ref(), b.bin.upcast_ref());
            b.stats.finished.store(true, Ordering::Release);
            return;
        }
    }

    /// The room is closing: finalize every running recording here (bounded), before the pipeline
    /// goes to NULL.
    fn shutdown(&mut self, port: &mut dyn TrackPort) {
        let mut pending = Vec::new();
        for i in 0..self.sessions.len() {
            let session = &mut self.sessions[i];
            if session.stopped.is_none() {
                session.stopped = Some(Instant::now());
            }
            let branches: Vec<Branch> = session.branches.drain(..).collect();
            for b in branches {
                pending.push(detach(port, b));
            }
        }
        finalize(port.pipeline(), pending);
        // Branches already stopping (stopped recordings, unpublished tracks) finish too, before
        // the pipeline goes to NULL; each waits at most FINALIZE_TIMEOUT.
        for thread in self.finalizers.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Forgets the oldest stopped recordings beyond [`KEEP_STOPPED`].
fn prune(recordings: &mut Recordings) {
    let stopped = recordings
        .sessions
        .iter()
        .filter(|s| s.stopped.is_some())
        .count();
    let mut extra = stopped.saturating_sub(KEEP_STOPPED);
    recordings.sessions.retain(|s| {
        if extra > 0 && s.stopped.is_some() {
            extra -= 1;
            false
        } else {
            true
        }
    });
}
