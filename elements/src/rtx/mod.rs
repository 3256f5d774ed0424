//! # `laminartx`: answers retransmission requests from an order-independent history
//!
//! The element is webrtcbin's aux sender (`request-aux-sender`, placed after `rtprtxsend`,
//! which Lamina's server then leaves out of the path) and takes over `rtprtxsend`'s job: it keeps the packets sent on every SSRC that has an RTX mapping and
//! answers `GstRTPRetransmissionRequest` upstream events (a subscriber's NACK, turned into one
//! event per packet by rtpsession) with an RTX packet (RFC 4588: the RTX payload type and SSRC,
//! its own sequence numbers, the original sequence number in front of the payload). Requests
//! for its mapped SSRCs go no further upstream (answered, not kept, or over the budget); other
//! requests pass upstream unchanged unless `forward-unmapped` is false (then they end here, as
//! they would in `rtprtxsend`: the server bypasses `rtprtxsend`), and other events pass.
//!
//! Why not `rtprtxsend` alone: its history (GStreamer 1.22) is a list in arrival order searched
//! by binary search, and its age bound compares the first and last entries' timestamps. An SFU
//! forwards repaired packets late, out of order, and then `rtprtxsend` misses packets it has.
//! Here packet `seq` lives in slot `seq % 512` of its SSRC's [`history`], whatever the order.
//!
//! Properties: `ssrc-map` and `payload-type-map` (the same structures `rtprtxsend` takes:
//! `application/x-rtp-ssrc-map, <ssrc>=(uint)<rtx ssrc>` and
//! `application/x-rtp-pt-map, <pt>=(uint)<rtx pt>`), `max-age` (ms a packet stays available,
//! default 1000; at most 512 per SSRC), `max-requests-per-sec` (a token bucket:
//! requests beyond it are dropped and counted), and the read-only `stats`: `num-requests`,
//! `num-rtx-packets`, `num-not-cached` (asked for a packet not or no longer kept, or not
//! mapped), `num-dropped` (over the budget); `forward-unmapped` (default true); `twcc-ext-id`
//! (0..=14, default 0): when set, the caps passed downstream announce that id as the
//! transport-wide-cc header extension (`extmap-<id>`; pushed again before the next packet when
//! the property changes), which is what makes rtpsession (GStreamer 1.22) number the packets
//! it sends that carry such an element. As webrtcbin's aux sender it sits between `rtpfunnel`
//! and rtpsession: announcing the id here instead of in the caps into the funnel
//! (`laminaforwarder`'s `twcc-in-caps=false`) spares the funnel writing a number of its own
//! into every packet, which rtpsession overwrites.
//!
//! A packet flagged `DISCONT` starts a new mapping of its SSRC (`laminaforwarder` flags the
//! first packet after a simulcast layer switch, a keyframe of the new layer): the history of the
//! SSRC is let go of then, so requests for the old layer's packets, which the receiver's
//! decoder no longer needs, are not answered (`num-not-cached`). On a link that has just
//! started dropping most packets, answering them would crowd out the new layer's keyframe.
//!
//! It also measures the receiver's recent loss ([`loss`]): `loss-fraction` is the share of the
//! packets sent on mapped SSRCs during the last `loss-window` (ms, default 200, 0 = off) that
//! the receiver asked for the first time, notified as each window closes (from the streaming
//! thread, no lock held). Requests for packets from before an SSRC's last DISCONT packet (the
//! old layer, already lost when the switch was decided) are not counted: the share measures
//! the stream as it is now. Lamina's room cuts a subscriber's simulcast layers on it, a round
//! trip after a link starts dropping.
//!
//! The RTX packet is pushed from the thread that delivered the request (rtpsession's RTCP
//! receive thread, which holds no session lock then); pushes from the streaming thread and from
//! there are serialised by the downstream sink pad's stream lock.
//!
//! ```text
//! GST_PLUGIN_PATH=target/debug gst-launch-1.0 \
//!   videotestsrc num-buffers=60 ! vp8enc deadline=1 ! rtpvp8pay pt=96 ssrc=1111 ! \
//!   laminartx ssrc-map="application/x-rtp-ssrc-map,1111=(uint)2222" \
//!     payload-type-map="application/x-rtp-pt-map,96=(uint)97" ! \
//!   rtpvp8depay ! vp8dec ! fakesink
//! ```

use gst::glib;
use gst::prelude::*;

pub mod history;
mod imp;
pub mod loss;

glib::wrapper! {
    /// The `laminartx` element (GType `GstLaminaRtx`); see the module docs.
    pub struct LaminaRtx(ObjectSubclass<imp::LaminaRtx>)
        @extends gst::Element, gst::Object;
}

/// Registers `laminartx` (rank NONE) with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "laminartx",
        gst::Rank::NONE,
        LaminaRtx::static_type(),
    )
}
