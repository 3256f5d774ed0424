//! Helpers for taking links apart without deadlocks (docs/webrtcbin.md §4.1 "Safe removal order").
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

/// How long the media thread waits for a publisher pad to become idle when it diverts it.
const DIVERT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Moves a publisher's stream off its forwarder without ever leaving the webrtcbin src pad
/// unlinked (NOT_LINKED or FLUSHING would travel back into the shared ICE transport and stop
/// it): `ghost` is the peer bin's ghost of the webrtcbin src pad; inside an IDLE probe on that
/// src pad the pad is relinked to a new fakesink in `bin` and the ghost is removed. Waits (at
/// most a second) for the probe; returns whether it ran, i.e. whether the forwarder may go.
pub(crate) fn divert_to_discard(bin: &gst::Bin, ghost: &gst::Pad) -> bool {
    let Some(target) = ghost
        .downcast_ref::<gst::GhostPad>()
        .and_then(|g| g.target())
    else {
        return false;
    };
    let Ok(sink) = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
    else {
        return false;
    };
    if bin.add(&sink).is_err() || sink.sync_state_with_parent().is_err() {
        let _ = bin.remove(&sink);
        return false;
    }
    let sinkpad = sink.static_pad("sink").expect("fakesink has a sink pad");
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (bin2, ghost2) = (bin.clone(), ghost.clone());
    target.add_probe(gst::PadProbeType::IDLE, move |pad, _| {
        if let Some(internal) = pad.peer() {
            let _ = pad.unlink(&internal);
        }
        let _ = pad.link(&sinkpad);
        let _ = bin2.remove_pad(&ghost2);
        let _ = tx.send(());
        gst::PadProbeReturn::Remove
    });
    rx.recv_timeout(DIVERT_TIMEOUT).is_ok()
}
