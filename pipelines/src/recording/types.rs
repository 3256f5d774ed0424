//! The recording API's types: requests, progress reports, errors, and the media thread's work
//! items.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::ids::{TrackId, TrackKind};

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
