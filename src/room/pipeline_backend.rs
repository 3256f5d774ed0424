//! The production [`MediaBackend`]: a `lamina_pipelines::RoomPipeline` per room.

use lamina_pipelines::{MediaCommand, MediaError, PipelineConfig, RoomPipeline, TrackId};
use tokio::sync::oneshot;

use super::media::{MediaBackend, StartedBackend};
use super::RoomId;

/// Starts the GStreamer pipeline of a room.
pub fn start(room: &RoomId, config: PipelineConfig) -> Result<StartedBackend, String> {
    let config = PipelineConfig {
        name: room.0.clone(),
        ..config
    };
    let (pipeline, events) = RoomPipeline::new(config).map_err(|e| e.to_string())?;
    Ok((Box::new(Backend { pipeline }), events))
}

struct Backend {
    pipeline: RoomPipeline,
}

impl MediaBackend for Backend {
    fn execute(&mut self, cmd: MediaCommand) -> Result<(), MediaError> {
        self.pipeline.execute(cmd)
    }

    fn dot(&self) -> Option<String> {
        Some(self.pipeline.dot())
    }

    fn inject_fault(&mut self, fault: &lamina_pipelines::Fault) -> Result<(), MediaError> {
        self.pipeline.inject_fault(fault)
    }

    fn element_count(&self) -> usize {
        self.pipeline.element_count()
    }

    fn tool(&self, op: super::tools::ToolOp) {
        super::tools::run(&self.pipeline, op);
    }

    fn shutdown(self: Box<Self>) {
        // The media thread tears the graph down; nothing here waits for it.
        drop(self.pipeline.shutdown());
    }

    fn shutdown_wait(self: Box<Self>) -> oneshot::Receiver<()> {
        self.pipeline.shutdown()
    }

    fn keyframe_requests(&self, track: &TrackId) -> Option<(u64, u64)> {
        self.pipeline.keyframe_requests(track)
    }

    fn repair(&self) -> lamina_pipelines::repair::RepairStats {
        self.pipeline.repair_stats()
    }

    fn forwarded(&self, track: &TrackId) -> Option<(u64, u64)> {
        Some((
            self.pipeline.forwarded_packets(track)?,
            self.pipeline.forwarded_bytes(track)?,
        ))
    }
}
