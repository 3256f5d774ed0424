//! # lamina-elements: the GStreamer plugin `lamina`
//!
//! Lamina's own elements, registered under the plugin name `lamina`:
//!
//! - [`forwarder`]: `laminaforwarder`, the selective RTP forwarder that sits between one
//!   publisher's track and its subscribers (gating, PT/SSRC/seq/timestamp rewriting, flow-error
//!   isolation, throttled keyframe requests).
//! - [`repair`]: `laminarepair`, the pass-through receive buffer that replaces `rtpjitterbuffer`
//!   on the server's receive path (no packet held back, duplicates dropped, lost packets asked
//!   for with NACKs, losses counted).
//! - [`rtx`]: `laminartx`, the retransmission sender on each subscriber's send path (answers
//!   NACKs with RTX from a history indexed by sequence number, bounded requests per second).
//!
//! The same code is used two ways: the server links this crate and calls
//! [`plugin_register_static`] once after `gst::init()`, and the cdylib `libgstlamina.so` can be
//! loaded by the GStreamer tools for debugging:
//! `GST_PLUGIN_PATH=target/debug gst-inspect-1.0 laminaforwarder`.
//!
//! Elements own only per-stream state; they know nothing about rooms, peers or tokio. Their API
//! is properties and action signals.

use gst::glib;

pub mod forwarder;
pub mod repair;
mod rtp;
pub mod rtx;

pub use forwarder::{LaminaForwarder, LaminaForwarderPad};
pub use repair::LaminaRepair;
pub use rtx::LaminaRtx;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    forwarder::register(plugin)?;
    repair::register(plugin)?;
    rtx::register(plugin)
}

gst::plugin_define!(
    lamina,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
