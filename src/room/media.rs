//! The room actor's port on its media graph.
//!
//! The room core's [`MediaCommand`]s go through a [`MediaBackend`]; [`MediaEvent`]s come back
//! on a channel (both types are the seam crate's, `lamina-seam`). The production backend is
//! `lamina_pipelines::RoomPipeline`; tests of the signalling layer may use their own.

use tokio::sync::{mpsc, oneshot};

use lamina_pipelines::{MediaCommand, MediaError, MediaEvent, TrackId};

use super::RoomId;

/// A room's media graph as seen from the room actor. Calls must return quickly: blocking
/// GStreamer work belongs on the engine's own threads.
pub trait MediaBackend: Send {
    /// Executes one command; an error concerns only the command's peer.
    fn execute(&mut self, cmd: MediaCommand) -> Result<(), MediaError>;
    /// The media graph in Graphviz dot, if the backend has one.
    fn dot(&self) -> Option<String>;
    /// Number of elements in the media graph (for leak checks and metrics).
    fn element_count(&self) -> usize;
    /// Tears the engine down (without blocking the caller).
    fn shutdown(self: Box<Self>);
    /// Runs an operator tool (recording, tap) without blocking; backends without a media
    /// graph refuse it.
    fn tool(&self, op: super::tools::ToolOp) {
        op.refuse("this room has no media pipeline");
    }
    /// Tears the engine down like [`MediaBackend::shutdown`]; the receiver resolves once it is
    /// down (the pipeline is NULL).
    fn shutdown_wait(self: Box<Self>) -> oneshot::Receiver<()> {
        self.shutdown();
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(());
        rx
    }
    /// Posts a real error into the media graph, from inside a peer's part or from the room
    /// itself (failure-isolation tests); backends without a media graph refuse.
    fn inject_fault(&mut self, _fault: &lamina_pipelines::Fault) -> Result<(), MediaError> {
        Err(MediaError::NoMedia)
    }
    /// Packets and bytes forwarded so far by the forwarder of `track`, if it exists.
    fn forwarded(&self, _track: &TrackId) -> Option<(u64, u64)> {
        None
    }
    /// Keyframe requests sent to the publisher of `track` and dropped by the throttle.
    fn keyframe_requests(&self, _track: &TrackId) -> Option<(u64, u64)> {
        None
    }
    /// The room's loss-repair counters so far (peers already gone included).
    fn repair(&self) -> lamina_pipelines::repair::RepairStats {
        Default::default()
    }
}

/// A started backend and the receiver of its events.
pub type StartedBackend = (Box<dyn MediaBackend>, mpsc::UnboundedReceiver<MediaEvent>);

/// Creates the media backend of a room.
pub type BackendFactory = dyn Fn(&RoomId) -> Result<StartedBackend, String> + Send + Sync;
