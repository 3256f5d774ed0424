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
use tokio::sync::oneshot;

use crate::engine::{Cmd, Engine};
use crate::ids::{TrackId, TrackKind};
use crate::room_pipeline::RoomPipeline;

mod branch;
pub use branch::file_safe;
pub(crate) use branch::owning_branch;
use branch::{build_branch, FileStats};

/// How long a stopped branch may take to write its last data and finalize its file.
const FINALIZE_TIMEOUT: Duration = Duration::from_secs(5);
/// Stopped recordings kept per room for listing.
const KEEP_STOPPED: usize = 16;

/// Errors of recording commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordingError {
    /// The track has no forwarder in this room (unknown, or not published yet).
    #[error("unknown track {0}")]
    UnknownTrack(TrackId),
    /// No recording has this id.
    #[error("unknown recording {0}")]
    UnknownRecording(String),
    /// The recording id is already used in this room.
    #[error("recording {0} already exists")]
    Duplicate(String),
    /// A file or directory could not be created.
    #[error("{0}")]
    Io(String),
    /// GStreamer refused to build the branch.
    #[error("{0}")]
    Gst(String),
    /// The room pipeline no longer runs.
    #[error("room pipeline is closed")]
    Closed,
}

/// What to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRequest {
    /// Id of the recording, unique in the room (used in bin and directory names).
    pub id: String,
    /// Directory the recording's files go to (created if missing).
    pub dir: PathBuf,
    /// One track, or `None`: every track of the room, including tracks published later.
    pub track: Option<TrackId>,
}

/// Progress of one recorded file.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedFile {
    /// The track.
    pub track: TrackId,
    /// Audio or video.
    pub kind: TrackKind,
    /// Encoding name, `VP8` or `OPUS`.
    pub codec: String,
    /// The file.
    pub path: PathBuf,
    /// Size on disk now.
    pub bytes: u64,
    /// Encoded frames (video) or packets (audio) written so far.
    pub frames: u64,
    /// Timestamp of the first frame in the file (since the recording started).
    pub start: Option<Duration>,
    /// Timestamp of the last frame in the file (since the recording started).
    pub end: Option<Duration>,
    /// The file is complete (EOS reached its sink, or the branch failed: see `error`).
    pub finished: bool,
    /// Why the branch stopped early, if it failed.
    pub error: Option<String>,
}

/// Progress of one recording.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingInfo {
    /// Its id.
    pub id: String,
    /// The recorded track, or `None` for every track of the room.
    pub track: Option<TrackId>,
    /// Still recording.
    pub running: bool,
    /// Time recorded: since the start, until now or until the stop.
    pub duration: Duration,
    /// Its directory.
    pub dir: PathBuf,
    /// One file per recorded track.
    pub files: Vec<RecordedFile>,
}

/// Recording work for the media thread.
#[derive(Debug)]
pub(crate) enum Op {
    Start(
        RecordingRequest,
        oneshot::Sender<Result<RecordingInfo, RecordingError>>,
    ),
    /// Stop one recording (`Some`) or all running ones.
    Stop(
        Option<String>,
        oneshot::Sender<Result<Vec<RecordingInfo>, RecordingError>>,
    ),
    List(oneshot::Sender<Vec<RecordingInfo>>),
}

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

impl RoomPipeline {
    /// Starts a recording (see [`RecordingRequest`]); resolves with its first progress report.
    pub fn start_recording(
        &self,
        request: RecordingRequest,
    ) -> oneshot::Receiver<Result<RecordingInfo, RecordingError>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.post(Cmd::Recording(Op::Start(request, tx)));
        rx
    }

    /// Stops one recording (`Some(id)`) or every running one; resolves once the files are
    /// finalized (bounded), with their final state.
    pub fn stop_recording(
        &self,
        id: Option<String>,
    ) -> oneshot::Receiver<Result<Vec<RecordingInfo>, RecordingError>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.post(Cmd::Recording(Op::Stop(id, tx)));
        rx
    }

    /// Running and recently stopped recordings with their progress.
    pub fn recordings(&self) -> oneshot::Receiver<Vec<RecordingInfo>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.post(Cmd::Recording(Op::List(tx)));
        rx
    }
}

/// Executes a recording command on the media thread.
pub(crate) fn handle(engine: &mut Engine, op: Op) {
    match op {
        Op::Start(request, reply) => {
            let _ = reply.send(start(engine, request));
        }
        Op::Stop(id, reply) => {
            let running: Vec<usize> = engine
                .recordings
                .sessions
                .iter()
                .enumerate()
                .filter(|(_, s)| s.stopped.is_none() && id.as_ref().is_none_or(|id| &s.id == id))
                .map(|(i, _)| i)
                .collect();
            if let (Some(id), true) = (&id, running.is_empty()) {
                // Stopping a stopped recording answers its final state again.
                let known = engine.recordings.sessions.iter().find(|s| &s.id == id);
                let _ = reply.send(match known {
                    Some(s) => Ok(vec![s.info()]),
                    None => Err(RecordingError::UnknownRecording(id.clone())),
                });
                return;
            }
            let mut pending = Vec::new();
            let mut stopped = Vec::new();
            for i in running {
                let session = &mut engine.recordings.sessions[i];
                session.stopped = Some(Instant::now());
                let branches: Vec<Branch> = session.branches.drain(..).collect();
                stopped.push(i);
                for b in branches {
                    pending.push(detach(engine, b));
                }
            }
            let done: Vec<(RecordingInfo, Vec<Arc<FileStats>>)> = stopped
                .iter()
                .map(|i| {
                    let s = &engine.recordings.sessions[*i];
                    (s.info(), s.files.clone())
                })
                .collect();
            spawn_finalizer(engine, pending, move || {
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
            prune(&mut engine.recordings);
        }
        Op::List(reply) => {
            let _ = reply.send(
                engine
                    .recordings
                    .sessions
                    .iter()
                    .map(Session::info)
                    .collect(),
            );
        }
    }
}

fn start(engine: &mut Engine, request: RecordingRequest) -> Result<RecordingInfo, RecordingError> {
    if engine
        .recordings
        .sessions
        .iter()
        .any(|s| s.id == request.id)
    {
        return Err(RecordingError::Duplicate(request.id));
    }
    if let Some(track) = &request.track {
        if !engine.tracks.contains_key(track) {
            return Err(RecordingError::UnknownTrack(track.clone()));
        }
    }
    std::fs::create_dir_all(&request.dir)
        .map_err(|e| RecordingError::Io(format!("{}: {e}", request.dir.display())))?;
    let base = engine
        .pipeline
        .current_running_time()
        .ok_or_else(|| RecordingError::Gst("the room pipeline has no clock yet".into()))?;
    engine.recordings.sessions.push(Session {
        id: request.id.clone(),
        track: request.track.clone(),
        dir: request.dir,
        base,
        started: Instant::now(),
        stopped: None,
        branches: Vec::new(),
        files: Vec::new(),
    });
    let index = engine.recordings.sessions.len() - 1;
    let tracks: Vec<TrackId> = match request.track {
        Some(t) => vec![t],
        None => engine.tracks.keys().cloned().collect(),
    };
    for track in tracks {
        if let Err(e) = add_branch(engine, index, &track) {
            if engine.recordings.sessions[index].track.is_some() {
                engine.recordings.sessions.pop();
                return Err(e);
            }
            tracing::warn!(%track, "cannot record track: {e}");
        }
    }
    tracing::info!(recording = %request.id, "recording started");
    Ok(engine.recordings.sessions[index].info())
}

/// Starts recording every new track in the room-wide recordings (called after each offer,
/// when new tracks got their forwarder).
pub(crate) fn sync_all(engine: &mut Engine) {
    let mut todo = Vec::new();
    for (i, s) in engine.recordings.sessions.iter().enumerate() {
        if s.stopped.is_some() || s.track.is_some() {
            continue;
        }
        for track in engine.tracks.keys() {
            let seen = s.files.iter().any(|f| &f.track == track);
            if !seen {
                todo.push((i, track.clone()));
            }
        }
    }
    for (i, track) in todo {
        if let Err(e) = add_branch(engine, i, &track) {
            tracing::warn!(%track, "cannot record track: {e}");
        }
    }
}

/// Builds, links and opens one branch of session `index` for `track`.
fn add_branch(engine: &mut Engine, index: usize, track: &TrackId) -> Result<(), RecordingError> {
    let t = engine
        .tracks
        .get(track)
        .ok_or_else(|| RecordingError::UnknownTrack(track.clone()))?;
    let session = &engine.recordings.sessions[index];
    let codec = t.codec.encoding_name.clone();
    let kind = t.codec.kind;
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
    engine.pipeline.add(&bin).map_err(|e| gst_err(&e))?;
    if let Err(e) = bin.sync_state_with_parent() {
        crate::teardown::remove_element(engine.pipeline.upcast_ref(), bin.upcast_ref());
        return Err(gst_err(&e));
    }
    let Some(fwd_pad) = t.fwd.request_src(0, 0) else {
        crate::teardown::remove_element(engine.pipeline.upcast_ref(), bin.upcast_ref());
        return Err(RecordingError::Gst("forwarder refused a pad".into()));
    };
    if let Err(e) = fwd_pad.link(&sink) {
        t.fwd.release_src(&fwd_pad);
        crate::teardown::remove_element(engine.pipeline.upcast_ref(), bin.upcast_ref());
        return Err(gst_err(&e));
    }
    crate::tap::open_with_keyframe(engine, track, &fwd_pad);
    let session = &mut engine.recordings.sessions[index];
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

/// A branch detached from its forwarder and waiting for its EOS.
struct Pending {
    bin: gst::Bin,
    stats: Arc<FileStats>,
    eos: Option<mpsc::Receiver<()>>,
}

/// Closes the branch's forwarder pad (safe order) and sends EOS into the branch. A branch that
/// never got a frame gets no EOS (its muxer has nothing to finalize); its empty file is removed.
fn detach(engine: &Engine, branch: Branch) -> Pending {
    if let Some(t) = engine.tracks.get(&branch.stats.track) {
        t.fwd.release_src(&branch.fwd_pad);
    } else {
        crate::teardown::unlink_when_idle(&branch.fwd_pad);
    }
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

/// Finalizes on a thread of its own, then runs `done`.
fn spawn_finalizer(
    engine: &mut Engine,
    pending: Vec<Pending>,
    done: impl FnOnce() + Send + 'static,
) {
    let pipeline = engine.pipeline.clone();
    let spawned = std::thread::Builder::new()
        .name("rec-finalize".into())
        .spawn(move || {
            finalize(&pipeline, pending);
            done();
        });
    let finalizers = &mut engine.recordings.finalizers;
    finalizers.retain(|t| !t.is_finished());
    match spawned {
        Ok(thread) => finalizers.push(thread),
        Err(e) => tracing::error!("cannot spawn the recording finalizer: {e}"),
    }
}

/// A recorded track is being unpublished: finalize its files (before its forwarder goes).
pub(crate) fn track_gone(engine: &mut Engine, track: &TrackId) {
    let mut pending = Vec::new();
    for i in 0..engine.recordings.sessions.len() {
        let session = &mut engine.recordings.sessions[i];
        if !session.records(track) {
            continue;
        }
        let (gone, keep): (Vec<Branch>, Vec<Branch>) = session
            .branches
            .drain(..)
            .partition(|b| &b.stats.track == track);
        session.branches = keep;
        for b in gone {
            pending.push(detach(engine, b));
        }
    }
    if !pending.is_empty() {
        spawn_finalizer(engine, pending, || {});
    }
}

/// An element inside branch `name` posted an error: drop that branch, keep the room.
pub(crate) fn branch_failed(engine: &mut Engine, name: &str, reason: &str) {
    for session in &mut engine.recordings.sessions {
        let Some(pos) = session.branches.iter().position(|b| b.bin.name() == name) else {
            continue;
        };
        let b = session.branches.remove(pos);
        tracing::warn!(recording = %session.id, track = %b.stats.track, %reason, "recording branch failed");
        b.stats.set_error(reason);
        if let Some(t) = engine.tracks.get(&b.stats.track) {
            t.fwd.release_src(&b.fwd_pad);
        }
        crate::teardown::remove_element(engine.pipeline.upcast_ref(), b.bin.upcast_ref());
        b.stats.finished.store(true, Ordering::Release);
        return;
    }
}

/// The room is closing: finalize every running recording here (bounded), before the pipeline
/// goes to NULL.
pub(crate) fn shutdown(engine: &mut Engine) {
    let mut pending = Vec::new();
    for i in 0..engine.recordings.sessions.len() {
        let session = &mut engine.recordings.sessions[i];
        if session.stopped.is_none() {
            session.stopped = Some(Instant::now());
        }
        let branches: Vec<Branch> = session.branches.drain(..).collect();
        for b in branches {
            pending.push(detach(engine, b));
        }
    }
    finalize(&engine.pipeline, pending);
    // Branches already stopping (stopped recordings, unpublished tracks) finish too, before
    // the pipeline goes to NULL; each waits at most FINALIZE_TIMEOUT.
    for thread in engine.recordings.finalizers.drain(..) {
        let _ = thread.join();
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
