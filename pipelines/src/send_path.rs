//! What Lamina trims from the send paths webrtcbin builds for each of a peer's sink pads: every
//! path starts with a `clocksync` (webrtcbin's sink ghost pad targets its sink pad).

use gst::prelude::*;

/// Name of the sticky event webrtcbin sends into each of its sink pads (the transceiver's mid).
const TOS_EVENT: &str = "GstWebRtcBinUpdateTos";

/// Trims every send path `bin` gets (on `deep-element-added`, so also those of later rounds).
pub(crate) fn trim(bin: &gst::Bin) {
    bin.connect_deep_element_added(|_, _, element| {
        if element.type_().name() == "GstClockSync" {
            trim_clocksync(element);
        }
    });
}

/// - `sync=false`: with `sync=true` the clocksync waits on the clock for each packet's
///   timestamp: pacing for file-like sources, only delay and clock reads for forwarded live
///   RTP.
/// - webrtcbin's per-mid `GstWebRtcBinUpdateTos` sticky event stops here. Only webrtcbin's DSCP
///   probe on nicesink reads it, and that is attached only once a sender or data channel
///   priority is set, which Lamina never does. In a bundle, rtpfunnel re-pushes the custom
///   sticky events of the stream a packet comes from whenever it differs from the previous
///   packet's: with a per-mid event that is nearly every forwarded packet, each time stored and
///   forwarded down the whole send chain to nicesink (9 % of the server's CPU in a room of 8,
///   docs/performance.md §7).
fn trim_clocksync(clocksync: &gst::Element) {
    clocksync.set_property("sync", false);
    let Some(pad) = clocksync.static_pad("sink") else {
        return;
    };
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |_, info| {
        let tos = info.event().is_some_and(|e| {
            e.type_() == gst::EventType::CustomDownstreamSticky
                && e.structure().is_some_and(|s| s.name() == TOS_EVENT)
        });
        if !tos {
            return gst::PadProbeReturn::Ok;
        }
        // Taken and handled: returning `Drop` with the event left in place gave a
        // GStreamer-CRITICAL (`gst_mini_object_unref` of NULL) per event with gstreamer-rs 0.25.
        drop(info.data.take());
        gst::PadProbeReturn::Handled
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Custom sticky events that reach the element after a trimmed `clocksync`, by name.
    fn sticky_names_through_a_send_path_start(events: Vec<gst::Event>) -> Vec<String> {
        let clocksync = gst::ElementFactory::make("clocksync").build().unwrap();
        trim_clocksync(&clocksync);
        assert!(!clocksync.property::<bool>("sync"));
        let mut h = gst_check::Harness::with_element(&clocksync, Some("sink"), Some("src"));
        h.set_src_caps_str("application/x-rtp");
        let criticals = Arc::new(AtomicUsize::new(0));
        let seen = criticals.clone();
        let handler = glib::log_set_handler(
            Some("GStreamer"),
            glib::LogLevels::LEVEL_CRITICAL,
            false,
            false,
            move |_, _, _| {
                seen.fetch_add(1, Ordering::SeqCst);
            },
        );
        for e in events {
            h.push_event(e);
        }
        glib::log_remove_handler(Some("GStreamer"), handler);
        assert_eq!(criticals.load(Ordering::SeqCst), 0, "GStreamer criticals");
        h.push(gst::Buffer::with_size(12).unwrap()).unwrap();
        let mut names = Vec::new();
        while let Some(e) = h.try_pull_event() {
            if e.type_() == gst::EventType::CustomDownstreamSticky {
                names.extend(e.structure().map(|s| s.name().to_string()));
            }
        }
        names
    }

    #[test]
    fn webrtcbins_tos_event_stops_where_a_send_path_starts_and_other_sticky_events_pass() {
        gst::init().unwrap();
        let tos = |mid: &str| {
            gst::event::CustomDownstreamSticky::new(
                gst::Structure::builder(TOS_EVENT).field("mid", mid).build(),
            )
        };
        let other = gst::event::CustomDownstreamSticky::new(gst::Structure::new_empty("Other"));
        assert_eq!(
            sticky_names_through_a_send_path_start(vec![tos("0"), other, tos("1")]),
            ["Other"]
        );
    }
}
