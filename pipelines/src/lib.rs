//! # lamina-pipelines: the room media graph
//!
//! One [`RoomPipeline`] per videoroom owns one `gst::Pipeline` with one `peer-<id>` bin (holding
//! that peer's `webrtcbin`) per participant and one `laminaforwarder` (`fwd-<track>`) per
//! published track. The room actor calls its methods; everything that happens inside the graph
//! comes back as [`PipelineEvent`]s on one channel.
//!
//! This crate knows GStreamer, never JSON nor channels.

pub mod event;
pub mod ids;
pub mod room_pipeline;

pub use event::PipelineEvent;
pub use ids::{PeerId, TrackId, TrackKind};
pub use room_pipeline::{OfferPlan, PipelineConfig, PipelineError, RoomPipeline};
