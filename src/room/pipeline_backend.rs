//! The production [`MediaBackend`]: a `lamina_pipelines::RoomPipeline` per room.

use lamina_pipelines::{PipelineConfig, RoomPipeline};

use super::core::PipelineCommand;
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
    #[allow(dead_code)]
    pipeline: RoomPipeline,
}

impl MediaBackend for Backend {
    fn execute(&mut self, cmd: PipelineCommand) -> Result<(), String> {
        match cmd {
            PipelineCommand::AddPeer(_) | PipelineCommand::RemovePeer(_) => Ok(()),
            _ => Err("media engine not available yet".into()),
        }
    }

    fn dot(&self) -> Option<String> {
        None
    }

    fn element_count(&self) -> usize {
        0
    }

    fn shutdown(self: Box<Self>) {}
}
