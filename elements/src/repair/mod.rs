//! # `laminarepair`: a pass-through receive buffer that asks for lost packets
//!
//! The element takes the place of `rtpjitterbuffer` on an SFU's receive path (through rtpbin's
//! `request-jitterbuffer` signal, one element per received SSRC): an SFU does not play media
//! out, so it has no reason to hold packets back. Every packet is pushed at once, in arrival
//! order; a packet that arrives late (reordered, or a retransmission that fills a hole) is
//! pushed when it arrives and the subscribers' own jitter buffers put it in place. What the
//! jitterbuffer did that an SFU needs is kept:
//!
//! - **NACK generation** (`do-retransmission=true`): a sequence gap is asked for at once with a
//!   `GstRTPRetransmissionRequest` upstream event (rtpsession turns it into an RTCP generic
//!   NACK to the publisher; rtprtxreceive maps the RTX answer back to the original stream),
//!   retried every `retry-interval` ms (40) up to `max-retries` times (5), given up after
//!   `max-age` ms (500). A packet given up on is a hole only a keyframe mends: the element
//!   then sends a `GstForceKeyUnit` upstream (rtpsession: PLI), at most once a second, so
//!   subscribers do not each wait for their own timeout.
//! - **duplicate removal**: a sequence number already pushed (a retransmission that came twice)
//!   is dropped.
//! - **loss accounting**: the read-only `stats` structure carries the field names webrtcbin's
//!   `get-stats` reads from a jitterbuffer (`num-lost`, `num-duplicates`, `num-late`,
//!   `rtx-success-count`) plus `num-pushed`, `rtx-count`, `num-reordered`, `num-missing` and
//!   `keyframe-requests`.
//!
//! rtpbin and webrtcbin set `latency`, `do-lost` and `do-retransmission` on every
//! jitterbuffer; `latency` and `do-lost` are accepted and have no effect (nothing is held, no
//! lost-packet events are sent). The arithmetic lives in [`tracker`], free of GStreamer.
//!
//! ```text
//! GST_PLUGIN_PATH=target/debug gst-launch-1.0 \
//!   videotestsrc num-buffers=60 ! vp8enc deadline=1 ! rtpvp8pay ! \
//!   laminarepair do-retransmission=true ! rtpvp8depay ! vp8dec ! fakesink
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;
pub mod tracker;

glib::wrapper! {
    /// The `laminarepair` element (GType `GstLaminaRepair`); see the module docs.
    pub struct LaminaRepair(ObjectSubclass<imp::LaminaRepair>)
        @extends gst::Element, gst::Object;
}

/// Registers `laminarepair` (rank NONE) with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "laminarepair",
        gst::Rank::NONE,
        LaminaRepair::static_type(),
    )
}
