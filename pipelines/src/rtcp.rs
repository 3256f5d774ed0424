//! RTCP timing of a peer's rtpsession (issue #14; figures in docs/performance.md, the
//! GStreamer 1.22 behaviour in docs/webrtcbin.md §9).
//!
//! A bundled webrtcbin has one `GstRtpSession` per peer. On every transmission its RTCP thread
//! sends one compound SR/RR + SDES packet **per internal (sending) SSRC**
//! (`rtpsession.c:generate_rtcp`), and almost all transmissions were early ones: every camera
//! frame the peer publishes with the transport-wide-cc extension asks for early feedback within
//! 100 ms (`process_twcc_packet`), granted about once per bandwidth-derived interval (0.2–0.5 s
//! here; `rtp_session_request_early_rtcp`). So a peer receiving N streams got N SR + SDES
//! packets without report blocks several times a second next to bursts of TWCC packets, while
//! regular reports (with report blocks) starved: a wake-up while an early packet is scheduled
//! is sent as an early one (`is_rtcp_time`), and one was nearly always scheduled. PLIs and
//! NACKs waited for the next allowed early packet (0.2–0.5 s). Reduced size, and three settings on the internal
//! `RTPSession`:
//!
//! - **reduced-size RTCP** (RFC 5506): early packets carry only their feedback (TWCC, NACK,
//!   PLI, FIR). webrtcbin 1.22 sets `rtcp-reduced-size` itself on every description it applies,
//!   to "both m-lines have `a=rtcp-rsize`", but as an answerer it never copies `a=rtcp-rsize`
//!   from the offer, so it was always false; `negotiation.rs` now adds it to the answer where
//!   the offer has it (browsers, str0m and webrtcbin all offer it).
//! - **`rtcp-fraction` = [`RTCP_BANDWIDTH`]** (bit/s): shrinks the bandwidth-derived interval
//!   to a few ms, so feedback goes out when it is asked for and no longer keeps an early packet
//!   scheduled (which starved the regular reports). A timing knob, not a budget: early packets
//!   exist only for feedback requests.
//! - **`twcc-feedback-interval` = [`TWCC_FEEDBACK_INTERVAL`]**: one TWCC packet per 100 ms
//!   instead of one per received marker bit, each sent at once. Feedback then arrives at least
//!   every 100 ms (before: in bursts 2–3 times a second, gaps up to 0.5 s), about the cadence of
//!   a browser's own feedback, so the publisher's congestion controller reacts as quickly as
//!   with a browser peer; the RTCP thread wakes about 10 times a second per publisher instead
//!   of once per camera frame (per-marker feedback sent at once cost 4× the RTCP thread CPU:
//!   docs/performance.md).
//! - **`rtcp-min-interval` = [`REGULAR_INTERVAL`]**: under the (S)AVPF profile the regular
//!   interval is `T_rr` ∈ [0.5, 1.5] × this (`rtp_session_next_timeout`, `is_rtcp_time`;
//!   RFC 4585 §3.5.3); GStreamer's default is 5 s. One second is what browsers use for video
//!   and keeps SRs (lip sync) and RRs (round trip, loss) fresh.
//!
//! Source timeouts keep their 5 s floor whatever the interval (`session_cleanup`).

use gst::prelude::*;

/// Regular (compound SR/RR + SDES) RTCP interval: packets go out every 0.5–1.5 of this.
pub(crate) const REGULAR_INTERVAL: gst::ClockTime = gst::ClockTime::SECOND;

/// RTCP bandwidth, bit/s, from which rtpsession derives its base interval
/// (`avg packet size × members / bandwidth`, `rtp_stats_calculate_rtcp_interval`).
pub(crate) const RTCP_BANDWIDTH: f64 = 10_000_000.0;

/// Transport-wide-cc feedback: one packet for the packets received in each such period,
/// instead of one per received marker bit.
pub(crate) const TWCC_FEEDBACK_INTERVAL: gst::ClockTime = gst::ClockTime::from_mseconds(100);

/// GType name of rtpbin's session element.
const SESSION_TYPE: &str = "GstRtpSession";

/// Configures every rtpsession that appears inside `bin` (a peer's bin). Connect before the
/// peer's first description is applied.
pub(crate) fn install(bin: &gst::Bin) {
    bin.connect_deep_element_added(|_, _, element| {
        if element.type_().name() == SESSION_TYPE {
            configure(element);
        }
    });
    // Sessions that already exist (none for a fresh webrtcbin; sessions come with the first
    // applied description).
    for e in bin.iterate_recurse().into_iter().flatten() {
        if e.type_().name() == SESSION_TYPE {
            configure(&e);
        }
    }
}

/// Applies the RTCP settings to one `GstRtpSession`.
pub(crate) fn configure(session: &gst::Element) {
    let Some(internal) = session.property::<Option<glib::Object>>("internal-session") else {
        tracing::warn!("rtpsession without an internal session: RTCP timing left as is");
        return;
    };
    set_regular_interval(&internal);
    if internal.find_property("rtcp-fraction").is_some() {
        internal.set_property("rtcp-fraction", RTCP_BANDWIDTH);
    }
    if internal.find_property("twcc-feedback-interval").is_some() {
        internal.set_property("twcc-feedback-interval", TWCC_FEEDBACK_INTERVAL.nseconds());
    }
}

fn set_regular_interval(internal: &glib::Object) {
    if internal.find_property("rtcp-min-interval").is_some() {
        internal.set_property("rtcp-min-interval", REGULAR_INTERVAL.nseconds());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_get_the_rtcp_settings() {
        gst::init().unwrap();
        let bin = gst::Bin::new();
        install(&bin);
        let rtpbin = gst::ElementFactory::make("rtpbin").build().unwrap();
        rtpbin.set_property_from_str("rtp-profile", "savpf");
        bin.add(&rtpbin).unwrap();
        // Requesting a session's pad creates its GstRtpSession inside rtpbin.
        let _pad = rtpbin.request_pad_simple("send_rtp_sink_0").unwrap();
        let session = rtpbin.emit_by_name::<Option<glib::Object>>("get-internal-session", &[&0u32]);
        let session = session.expect("session 0");
        assert_eq!(
            session.property::<u64>("rtcp-min-interval"),
            REGULAR_INTERVAL.nseconds()
        );
        assert_eq!(session.property::<f64>("rtcp-fraction"), RTCP_BANDWIDTH);
        assert_eq!(
            session.property::<u64>("twcc-feedback-interval"),
            TWCC_FEEDBACK_INTERVAL.nseconds()
        );
    }
}
