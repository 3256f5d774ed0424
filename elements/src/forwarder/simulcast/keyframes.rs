//! Keyframe requests of the layer sinks: each through its pad's throttle, and a request for a
//! layer a src pad waits for held back while the publisher would drop it.

use std::time::{Duration, Instant};

use super::layers::layer_index;
use super::{LayerKeyframe, Simulcast};

/// While a switch is pending and the last keyframe request went out (not throttled), a new
/// request is sent after `max(keyframe-min-interval, KEYFRAME_RETRY)` without a keyframe.
/// Chrome ignores a keyframe request that comes within 300 ms of the last one (and answers one
/// with keyframes on every layer), so a request for a second layer soon after a first one is
/// lost: in a room test, a subscriber cut to `m` and 0.2 s later to `l` waited 1.1 s for its
/// `l` keyframe with a 1 s retry.
pub(super) const KEYFRAME_RETRY: Duration = Duration::from_millis(500);
/// A request for a layer a src pad waits for is held back until this long after the last
/// request on any layer of the track: Chrome drops keyframe requests that come within 300 ms of
/// the last one it took (one timestamp for all its layers), so the request would be lost and the
/// switch would wait for [`KEYFRAME_RETRY`]. Held back, it goes out with the first packet of the
/// layer after the gap (a room test: a cut to `m` followed 0.2 s later by one to `l` switched
/// 0.62 s after the second cut).
const PUBLISHER_KEYFRAME_GAP: Duration = Duration::from_millis(320);

impl Simulcast {
    /// Asks for a keyframe of layer `rid` on its sink pad, through that pad's throttle; a
    /// request for a layer a src pad waits for is owed instead within
    /// [`PUBLISHER_KEYFRAME_GAP`] of the last request.
    pub fn request_keyframe(&mut self, rid: &str, now: Instant) -> LayerKeyframe {
        let interval = self.config.keyframe_min_interval;
        let Some(i) = self.owner_sink_index(rid) else {
            return LayerKeyframe::NoSink;
        };
        let held = self.within_publisher_gap(now)
            && layer_index(&self.layers, rid).is_some_and(|li| self.layers[li].pending > 0);
        let sink = &mut self.sinks[i];
        if !held && sink.throttle.allow(now, interval) {
            sink.keyframe_owed = false;
            self.last_layer_request = Some(now);
            LayerKeyframe::Send(sink.pad.clone())
        } else {
            sink.keyframe_owed = true;
            LayerKeyframe::Throttled
        }
    }

    /// Whether a keyframe request went out on some layer less than
    /// [`PUBLISHER_KEYFRAME_GAP`] ago.
    fn within_publisher_gap(&self, now: Instant) -> bool {
        self.last_layer_request
            .is_some_and(|at| now.saturating_duration_since(at) < PUBLISHER_KEYFRAME_GAP)
    }

    /// A packet of the layer of sink `si` arrived while a src pad waits for that layer: the
    /// sink pad to ask for a keyframe now, if one is due and the publisher would take it.
    pub(super) fn keyframe_for_pending(&mut self, si: usize, now: Instant) -> Option<gst::Pad> {
        let interval = self.config.keyframe_min_interval;
        let held = self.within_publisher_gap(now);
        let sink = &mut self.sinks[si];
        if held {
            sink.keyframe_owed = true;
            None
        } else if sink.keyframe_due(now, interval) {
            self.last_layer_request = Some(now);
            Some(sink.pad.clone())
        } else {
            None
        }
    }
}
