//! # `laminavad`: voice activity from the RFC 6464 audio level, without decoding
//!
//! A pass-through element for one RTP audio stream whose packets carry the
//! `urn:ietf:params:rtp-hdrext:ssrc-audio-level` header extension (browsers send it on every
//! Opus packet). It reads each packet's level (-dBov, 0 loudest, 127 silence) and decides, with
//! hysteresis ([`detector`]), when speech starts and ends:
//!
//! - **speech** once packets at or under `threshold` dBov (50) have gone on for `speech-ms`
//!   (150), allowing gaps of up to 100 ms: a cough or a knock is not a speaker;
//! - **silence** once no such packet came for `silence-ms` (800): pauses between words are not
//!   silence.
//!
//! Time is the stream's own (RTP timestamps at the caps' `clock-rate`), so arrival jitter does
//! not matter. On each change the element posts an element message `lamina-vad` with
//! `speech: bool` and `level: uint` on the bus, and the read-only `speaking` property follows.
//! The extension id is `ext-id`, or, when that is 0 (the default), the `extmap-<id>` caps
//! field naming the audio-level URI; without either the element only passes packets.
//!
//! ```text
//! GST_PLUGIN_PATH=target/debug gst-launch-1.0 -m audiotestsrc num-buffers=100 ! opusenc ! \
//!   rtpopuspay ! laminavad ext-id=1 speech-ms=100 ! fakesink
//! ```
//! (passes every packet; `gst-launch-1.0` has no way to add the extension to a stream it pays,
//! so messages appear only with a browser's stream or the harness tests in
//! `elements/tests/vad.rs`, which write it with `RTPBuffer::add_extension_onebyte_header`).

use gst::glib;
use gst::prelude::*;

pub mod detector;
mod imp;

/// The header extension this element reads.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Name of the element message posted on each change.
pub const MESSAGE: &str = "lamina-vad";

glib::wrapper! {
    /// The `laminavad` element (GType `GstLaminaVad`); see the module docs.
    pub struct LaminaVad(ObjectSubclass<imp::LaminaVad>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Registers `laminavad` (rank NONE) with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "laminavad",
        gst::Rank::NONE,
        LaminaVad::static_type(),
    )
}
