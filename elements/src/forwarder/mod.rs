//! # `laminaforwarder`: one RTP stream in, one gated and rewritten copy per subscriber out
//!
//! The element sits where `tee` would: its always sink pad `sink` takes one publisher's RTP
//! stream (`application/x-rtp`, e.g. a webrtcbin src pad), and each request src pad `src_%u`
//! (a [`LaminaForwarderPad`]) feeds one subscriber. It never decodes.
//!
//! Per src pad (properties, all changeable while PLAYING):
//! - `active` (bool, default false): the pad is *gated* until set to true. A gated pad gets the
//!   stream's events (stream-start, caps, segment, EOS, ...) but no buffers, so nothing is pushed
//!   into a subscriber that is not connected yet. Turning it on requests a keyframe upstream
//!   (video only, throttled like every request).
//! - `pt` (uint 0..=127, default 0 = keep): payload type written into packets and caps.
//! - `ssrc` (uint, default 0 = keep): SSRC written into packets and caps.
//!
//! What each src pad gets:
//! - caps normalised to `application/x-rtp, media, encoding-name, clock-rate, payload=<pt>,
//!   ssrc=<ssrc>` (+ `encoding-params` for audio); publisher fields such as `sprop-*`,
//!   `rtcp-fb-*`, `extmap-*`, `rid-*`, `a-*`, `ssrc-*` are dropped. Changing `pt`/`ssrc`
//!   re-stores the rewritten sticky caps at once, and they are pushed before the next buffer.
//! - packets with PT/SSRC rewritten and sequence numbers/timestamps kept continuous per pad
//!   across gating and across an input source change (new SSRC or sequence jump); the first
//!   packet after such a break carries `DISCONT`. See [`rewrite`] for the arithmetic.
//!
//! Isolation: a flow error on one src pad (not-negotiated, flushing, not-linked, error, ...) is
//! logged once per pad and kind and swallowed; the chain returns OK to the publisher unless the
//! forwarder's own sink pad is flushing. The sink pad answers caps queries with its template, so
//! subscribers never constrain the publisher.
//!
//! Upstream: events from src pads go to the sink pad. Force-key-unit requests (`GstForceKeyUnit`,
//! e.g. a subscriber's PLI/FIR turned into an event by its rtpsession) are throttled per element:
//! at most one per `keyframe-min-interval` ms (default 500) goes upstream, the rest are dropped
//! and counted. Retransmission requests (`GstRTPRetransmissionRequest`) are translated back to
//! the input SSRC and sequence number.
//!
//! Element API:
//! - property `keyframe-min-interval` (uint ms, default 500, 0 = no throttle);
//! - read-only statistics `forwarded-packets`, `forwarded-bytes` (successful pushes, summed over
//!   pads), `keyframe-requests` (sent upstream), `keyframe-requests-dropped` (throttled);
//! - action signal `request-keyframe` (no arguments, no return value): sends one upstream
//!   force-key-unit, subject to the same throttle;
//! - `GstChildProxy` over its pads, so `src_0::active=true` works in `gst-launch-1.0`.
//!
//! Threading: all buffers are pushed from the publisher's streaming thread, so without a `queue`
//! per subscriber a blocking downstream stalls the others; keep pads gated until the subscriber
//! can take data. Request and release pads from any thread while PLAYING; a new pad is activated
//! and gets the sink's sticky events (with its rewritten caps) replayed before it is returned.
//!
//! ```text
//! GST_PLUGIN_PATH=target/debug gst-launch-1.0 \
//!   videotestsrc num-buffers=60 ! vp8enc deadline=1 ! rtpvp8pay pt=96 ! \
//!   laminaforwarder name=f src_0::active=true src_0::pt=100 src_0::ssrc=1234 \
//!   f.src_0 ! queue ! rtpvp8depay ! vp8dec ! fakesink \
//!   f.src_1 ! queue ! fakesink async=false
//! ```
//! `src_1` stays gated: its fakesink sees events and EOS but no buffer, so it must not wait for
//! preroll (`async=false`). Live pipelines (webrtcbin) do not preroll and need no such care.

use gst::glib;
use gst::prelude::*;

mod caps;
mod imp;
mod keyframe;
mod pad;
mod properties;
pub mod rewrite;
mod sink;
mod upstream;

glib::wrapper! {
    /// The `laminaforwarder` element (GType `GstLaminaForwarder`); see the module docs.
    pub struct LaminaForwarder(ObjectSubclass<imp::LaminaForwarder>)
        @extends gst::Element, gst::Object,
        @implements gst::ChildProxy;
}

glib::wrapper! {
    /// A `laminaforwarder` request src pad (GType `GstLaminaForwarderPad`), one per subscriber,
    /// with the properties `active`, `pt` and `ssrc`.
    pub struct LaminaForwarderPad(ObjectSubclass<pad::LaminaForwarderPad>)
        @extends gst::Pad, gst::Object;
}

/// Registers `laminaforwarder` (rank NONE) with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "laminaforwarder",
        gst::Rank::NONE,
        LaminaForwarder::static_type(),
    )
}
