//! Keyframe requests: the upstream force-key-unit event and the throttle (one per element for
//! the always sink pad, one per simulcast layer sink pad).
//!
//! The event is built and parsed by structure name (`GstForceKeyUnit`) with the field types of
//! `gst_video_event_new_upstream_force_key_unit`, so no gstreamer-video dependency is needed.
//! Upstream, the publisher's rtpsession turns it into RTCP PLI (FIR when `all-headers` is true
//! and the sender announced `ccm fir`).

use std::time::{Duration, Instant};

/// Structure name of upstream force-key-unit events.
pub const FORCE_KEY_UNIT: &str = "GstForceKeyUnit";

/// The fields of a force-key-unit request that the forwarder passes upstream.
///
/// A subscriber's event may also carry `ssrc`/`payload` in the subscriber's (rewritten) numbering;
/// those are dropped, the publisher-side demuxers add the right ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyUnitRequest {
    /// Running time the keyframe is wanted at (`None` = as soon as possible).
    pub running_time: Option<gst::ClockTime>,
    /// Ask for all headers (rtpsession sends FIR instead of PLI when supported).
    pub all_headers: bool,
    /// Request counter, as in `gst_video_event_new_upstream_force_key_unit`.
    pub count: u32,
}

impl KeyUnitRequest {
    /// Reads a request from an event structure; `None` if it is not a force-key-unit.
    pub fn parse(s: &gst::StructureRef) -> Option<Self> {
        if s.name() != FORCE_KEY_UNIT {
            return None;
        }
        Some(Self {
            running_time: s
                .get::<u64>("running-time")
                .ok()
                .filter(|t| *t != u64::MAX)
                .map(gst::ClockTime::from_nseconds),
            all_headers: s.get::<bool>("all-headers").unwrap_or(false),
            count: s.get::<u32>("count").unwrap_or(0),
        })
    }

    /// The upstream custom event carrying this request.
    pub fn to_event(self) -> gst::Event {
        let s = gst::Structure::builder(FORCE_KEY_UNIT)
            .field(
                "running-time",
                self.running_time.map_or(u64::MAX, gst::ClockTime::nseconds),
            )
            .field("all-headers", self.all_headers)
            .field("count", self.count)
            .build();
        gst::event::CustomUpstream::new(s)
    }
}

/// Lets at most one keyframe request through per interval.
#[derive(Debug, Default, Clone)]
pub struct Throttle {
    last_sent: Option<Instant>,
}

impl Throttle {
    /// Whether a request at `now` may go out; if so, it starts a new interval.
    pub fn allow(&mut self, now: Instant, interval: Duration) -> bool {
        match self.last_sent {
            Some(last) if now.saturating_duration_since(last) < interval => false,
            _ => {
                self.last_sent = Some(now);
                true
            }
        }
    }

    /// Time since the last request that went out, `None` if none did.
    pub fn since_last(&self, now: Instant) -> Option<Duration> {
        self.last_sent
            .map(|last| now.saturating_duration_since(last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_lets_one_request_per_interval() {
        let mut t = Throttle::default();
        let start = Instant::now();
        let ms = Duration::from_millis;
        assert!(t.allow(start, ms(500)));
        assert!(!t.allow(start + ms(1), ms(500)));
        assert!(!t.allow(start + ms(499), ms(500)));
        assert!(t.allow(start + ms(500), ms(500)));
        // The interval restarts at the last request that went out.
        assert!(!t.allow(start + ms(900), ms(500)));
        assert!(t.allow(start + ms(1000), ms(500)));
        // Zero interval: never throttled.
        assert!(t.allow(start + ms(1000), Duration::ZERO));
        assert_eq!(t.since_last(start + ms(1300)), Some(ms(300)));
        assert_eq!(Throttle::default().since_last(start), None);
    }

    #[test]
    fn request_round_trips_and_drops_subscriber_fields() {
        gst::init().expect("gst init");
        let from_subscriber = gst::Structure::builder(FORCE_KEY_UNIT)
            .field("running-time", 5_000_000u64)
            .field("all-headers", true)
            .field("count", 3u32)
            .field("ssrc", 4242u32)
            .field("payload", 100u32)
            .build();
        let req = KeyUnitRequest::parse(&from_subscriber).expect("a key unit request");
        assert_eq!(
            req,
            KeyUnitRequest {
                running_time: Some(gst::ClockTime::from_mseconds(5)),
                all_headers: true,
                count: 3
            }
        );
        let event = req.to_event();
        assert_eq!(event.type_(), gst::EventType::CustomUpstream);
        let s = event.structure().expect("structure");
        assert!(!s.has_field("ssrc") && !s.has_field("payload"));
        assert_eq!(KeyUnitRequest::parse(s), Some(req));

        let fresh = KeyUnitRequest::default().to_event();
        let s = fresh.structure().expect("structure");
        assert_eq!(s.get::<u64>("running-time"), Ok(u64::MAX));
        assert_eq!(s.get::<bool>("all-headers"), Ok(false));
        assert_eq!(
            KeyUnitRequest::parse(&gst::Structure::new_empty("GstOther")),
            None
        );
    }
}
