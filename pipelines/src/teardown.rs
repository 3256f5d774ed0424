//! Helpers for taking links apart without deadlocks (notes Part 1 §4, "Safe removal order").
//!
//! 1. IDLE probe on the upstream (fan-out) src pad, unlink inside the probe.
//! 2. Release the fan-out request pad.
//! 3. Set the downstream webrtcbin to NULL: this flushes its sink pads and wakes any thread
//!    blocked in them (1.22.0 keeps a blocking probe on never-negotiated sink pads).
//! 4. Release the webrtcbin sink pads and remove the bin.
//!
//! Everything here runs on the room's media thread, never on a streaming thread, and never
//! waits for a streaming thread to reach a point it may never reach.

use gst::prelude::*;

/// Unlinks `src` from its peer as soon as no data flows through it. If the pad is idle the
/// probe runs right away; otherwise at the end of the in-flight push. Never waits.
pub(crate) fn unlink_when_idle(src: &gst::Pad) {
    if src.peer().is_none() {
        return;
    }
    src.add_probe(gst::PadProbeType::IDLE, |pad, _info| {
        if let Some(peer) = pad.peer() {
            let _ = pad.unlink(&peer);
        }
        gst::PadProbeReturn::Remove
    });
}

/// Sets an element (or bin) to NULL and removes it from `parent`, logging failures.
pub(crate) fn remove_element(parent: &gst::Bin, element: &gst::Element) {
    if element.set_state(gst::State::Null).is_err() {
        tracing::warn!(element = %element.name(), "failed to set NULL before removal");
    }
    if parent.remove(element).is_err() {
        tracing::warn!(element = %element.name(), "element was not in the expected bin");
    }
}
