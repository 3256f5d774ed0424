//! Dropping chosen downstream events at a pad.

use gst::prelude::*;

/// Drops the downstream events pushed through `pad` for which `drop_it` is true; other events
/// and data pass. The probe sees events only.
pub(crate) fn drop_downstream_events(
    pad: &gst::Pad,
    drop_it: impl Fn(&gst::Event) -> bool + Send + Sync + 'static,
) {
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if !info.event().is_some_and(&drop_it) {
            return gst::PadProbeReturn::Ok;
        }
        // Taken and handled: returning `Drop` with the event left in place gives a
        // GStreamer-CRITICAL (`gst_mini_object_unref` of NULL) with gstreamer-rs 0.25.
        drop(info.data.take());
        gst::PadProbeReturn::Handled
    });
}
