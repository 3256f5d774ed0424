//! Operator tools on a room's media graph, reached through [`super::RoomCommand::Tool`]:
//! recordings (`lamina_pipelines::recording`) and UDP taps (`lamina_pipelines::tap`).
//!
//! The room actor hands a [`ToolOp`] to its media backend without waiting; the backend
//! answers on the op's reply channel once the media thread is done (for a stop: once the files
//! are finalized). [`ask`] wraps the round trip for the HTTP handlers.

use std::time::Duration;

use lamina_pipelines::{
    RecordingError, RecordingInfo, RecordingRequest, RoomPipeline, TapError, TapInfo, TrackId,
};
use tokio::sync::oneshot;

use super::{RoomCommand, RoomHandle};

/// Why a tool command failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The recording command failed.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// The tap command failed.
    #[error(transparent)]
    Tap(#[from] TapError),
    /// The room has no media graph that supports it.
    #[error("{0}")]
    Unsupported(String),
    /// The room or its pipeline stopped before answering, or did not answer in time.
    #[error("the room did not answer")]
    Closed,
}

/// Reply channel of a tool command.
pub type Reply<T> = oneshot::Sender<Result<T, ToolError>>;

/// A tool command for a room's media backend.
#[derive(Debug)]
pub enum ToolOp {
    /// Start a recording.
    StartRecording {
        /// What to record and where.
        request: RecordingRequest,
        /// First progress report.
        reply: Reply<RecordingInfo>,
    },
    /// Stop one recording (`Some(id)`) or all running ones; replies once finalized.
    StopRecording {
        /// Which recording.
        id: Option<String>,
        /// Final state of the stopped recordings.
        reply: Reply<Vec<RecordingInfo>>,
    },
    /// Running and recently stopped recordings.
    ListRecordings {
        /// Their progress.
        reply: Reply<Vec<RecordingInfo>>,
    },
    /// Send a track's RTP to `127.0.0.1:<port>`.
    AddTap {
        /// The track.
        track: TrackId,
        /// UDP port on 127.0.0.1.
        port: u16,
        /// The tap.
        reply: Reply<TapInfo>,
    },
    /// Remove a track's tap on `port`, or all its taps.
    RemoveTap {
        /// The track.
        track: TrackId,
        /// One port, or all.
        port: Option<u16>,
        /// The removed taps.
        reply: Reply<Vec<TapInfo>>,
    },
}

impl ToolOp {
    /// Answers the command with [`ToolError::Unsupported`].
    pub fn refuse(self, why: &str) {
        fn no<T>(reply: Reply<T>, why: &str) {
            let _ = reply.send(Err(ToolError::Unsupported(why.to_owned())));
        }
        match self {
            ToolOp::StartRecording { reply, .. } => no(reply, why),
            ToolOp::StopRecording { reply, .. } | ToolOp::ListRecordings { reply } => {
                no(reply, why)
            }
            ToolOp::AddTap { reply, .. } => no(reply, why),
            ToolOp::RemoveTap { reply, .. } => no(reply, why),
        }
    }
}

/// Executes `op` on a room pipeline (from the room actor: returns at once).
pub fn run(pipeline: &RoomPipeline, op: ToolOp) {
    match op {
        ToolOp::StartRecording { request, reply } => {
            forward(pipeline.start_recording(request), reply, |r| Ok(r?))
        }
        ToolOp::StopRecording { id, reply } => {
            forward(pipeline.stop_recording(id), reply, |r| Ok(r?))
        }
        ToolOp::ListRecordings { reply } => forward(pipeline.recordings(), reply, Ok),
        ToolOp::AddTap { track, port, reply } => {
            forward(pipeline.add_tap(&track, port), reply, |r| Ok(r?))
        }
        ToolOp::RemoveTap { track, port, reply } => {
            forward(pipeline.remove_tap(&track, port), reply, |r| Ok(r?))
        }
    }
}

/// Relays the media thread's answer to `reply` (on a task: the actor never waits for it).
fn forward<T: Send + 'static, U: Send + 'static>(
    rx: oneshot::Receiver<T>,
    reply: Reply<U>,
    map: impl FnOnce(T) -> Result<U, ToolError> + Send + 'static,
) {
    tokio::spawn(async move {
        let result = match rx.await {
            Ok(v) => map(v),
            Err(_) => Err(ToolError::Closed),
        };
        let _ = reply.send(result);
    });
}

/// Sends a tool command to `room` and waits (at most `timeout`) for its answer.
pub async fn ask<T>(
    room: &RoomHandle,
    timeout: Duration,
    make: impl FnOnce(Reply<T>) -> ToolOp,
) -> Result<T, ToolError> {
    let (tx, rx) = oneshot::channel();
    if !room.send(RoomCommand::Tool(make(tx))).await {
        return Err(ToolError::Closed);
    }
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(result)) => result,
        _ => Err(ToolError::Closed),
    }
}
