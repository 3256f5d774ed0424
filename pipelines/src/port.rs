//! The narrow port operator branches (recordings, taps) use to reach the room's tracks, and
//! the hooks the media thread calls on them. Branches never see the media thread's state.

use crate::ids::{TrackId, TrackKind};

/// A published track, as a branch sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrackInfo {
    /// The track.
    pub id: TrackId,
    /// Audio or video.
    pub kind: TrackKind,
    /// Negotiated encoding name (`VP8`, `OPUS`).
    pub codec: String,
}

/// What a branch may ask of the room's media graph.
pub(crate) trait TrackPort {
    /// The room pipeline: branches add their bins to it.
    fn pipeline(&self) -> &gst::Pipeline;
    /// The published tracks.
    fn tracks(&self) -> Vec<TrackInfo>;
    /// An output of the track's forwarder carrying the publisher's RTP (its SSRC kept; its
    /// payload type rewritten to `pt`, or kept when `pt` is 0), gated closed until
    /// [`TrackPort::open`].
    fn source_pad(&mut self, track: &TrackId, pt: u32) -> Option<gst::Pad>;
    /// Opens an output from [`TrackPort::source_pad`]: the publisher is asked for a keyframe
    /// (again later if its throttle swallowed the request).
    fn open(&mut self, track: &TrackId, pad: &gst::Pad);
    /// Closes and releases an output in the safe order (also after its track is gone).
    fn release(&mut self, track: &TrackId, pad: &gst::Pad);
}

/// The hooks of one kind of branch.
pub(crate) trait Branches {
    /// Tracks may have been published (after each offer).
    fn tracks_changed(&mut self, _port: &mut dyn TrackPort) {}
    /// The track is being unpublished: let go of its outputs before its forwarder goes.
    fn track_gone(&mut self, track: &TrackId, port: &mut dyn TrackPort);
    /// An element inside bin `name` posted an error: drop that branch if it is one of ours.
    fn branch_failed(&mut self, name: &str, reason: &str, port: &mut dyn TrackPort);
    /// The room is closing, before the pipeline goes to NULL.
    fn shutdown(&mut self, port: &mut dyn TrackPort);
}
