//! ICE helpers: the libnice settings of a server agent, and the libnice restart workaround (the
//! ufrag comes from the offer's summary).
//!
//! webrtcbin 1.22 applies a remote ICE restart (new ice-ufrag/pwd) to libnice with
//! `set_remote_credentials` only; libnice then keeps the old candidate pair, because the new
//! one has the same priority (docs/webrtcbin.md §3.3). Calling `nice_agent_restart_stream` on the
//! `NiceAgent` behind the webrtcbin before `set-remote-description` makes libnice drop the old
//! remote candidates and check list, so it re-checks and selects the new pair.

use glib::prelude::*;
use glib::translate::ToGlibPtr;

#[link(name = "nice")]
unsafe extern "C" {
    fn nice_agent_restart_stream(
        agent: *mut glib::gobject_ffi::GObject,
        stream_id: u32,
    ) -> glib::ffi::gboolean;
}

/// With `bundle-policy=max-bundle` webrtcbin has exactly one ICE stream, id 1.
pub(crate) const BUNDLE_STREAM_ID: u32 = 1;

/// The `NiceAgent` behind a webrtcbin's `ice-agent` (a `GstWebRTCNice`), if it exposes one.
pub(crate) fn nice_agent(ice: &gst_webrtc::WebRTCICE) -> Option<glib::Object> {
    ice.find_property("agent")?;
    ice.property::<Option<glib::Object>>("agent")
}

/// libnice's ICE pacing timer (Ta) on a server agent, ms.
const STUN_PACING_MS: u32 = 5;

/// Sets up a server's `NiceAgent`:
/// - no UPnP-IGD port mapping (on by default): it runs SSDP discovery (sockets, netlink dumps,
///   HTTP header parsing) on the pc thread of every peer, useless for a server and ~9 % of the
///   server's CPU in a 1→4 room (lamina-bench profile);
/// - the pacing timer Ta at 5 ms: libnice sends a connectivity check (a triggered one included)
///   at most once per tick, 20 ms by default. A server has a handful of pairs per peer, so 5 ms
///   (RFC 8445's floor for RTP) takes ~15 ms off each connection's set-up
///   (docs/performance.md §6).
pub(crate) fn tune_agent(agent: &glib::Object) {
    if agent.find_property("upnp").is_some() {
        agent.set_property("upnp", false);
    }
    if agent.find_property("stun-pacing-timer").is_some() {
        agent.set_property("stun-pacing-timer", STUN_PACING_MS);
    }
}

/// Restarts ICE stream `stream_id` of a `NiceAgent`: new local credentials, remote candidates
/// and check list dropped. Returns libnice's result.
pub(crate) fn restart_stream(agent: &glib::Object, stream_id: u32) -> bool {
    if agent.type_().name() != "NiceAgent" {
        return false;
    }
    let ptr: *mut glib::gobject_ffi::GObject = agent.to_glib_none().0;
    // SAFETY: `agent` is a live NiceAgent (type checked above) and we hold a reference for the
    // duration of the call; libnice takes its own agent lock internally.
    unsafe { nice_agent_restart_stream(ptr, stream_id) != 0 }
}
