//! Loss repair inside one peer's webrtcbin: the receive path (uplink) and the send path
//! (downlink), set up once per peer when its bin is built.
//!
//! - **Uplink.** rtpbin's `request-jitterbuffer` returns a [`REPAIR_FACTORY`] (`laminarepair`)
//!   instead of an `rtpjitterbuffer` for every received SSRC: packets are forwarded at once, and
//!   gaps are asked for with NACKs (webrtcbin sets `do-retransmission` from the transceiver's
//!   `do-nack`, which the negotiation sets on video m-lines). The publisher's RTX answers are
//!   de-wrapped by webrtcbin's own `rtprtxreceive` (the answer carries the offer's `rtx`
//!   payload type with `apt=`) before they reach `laminarepair`, which fills the hole.
//! - **Downlink.** A subscriber's NACKs become `GstRTPRetransmissionRequest` events in its
//!   rtpsession and reach webrtcbin's `rtprtxsend`, which keeps the last packets sent on each
//!   SSRC (already carrying the subscriber's own SSRC, sequence numbers and timestamps) and
//!   resends them as RTX. Here its history is bounded by time as well as by count
//!   ([`RTX_HISTORY_MS`], [`RTX_HISTORY_PACKETS`]), and a [`NackBudget`] in front of it bounds the
//!   requests one subscriber can make per second, so a NACK flood costs bounded work.
//!
//! Counters (read by [`RepairStats::collect`]) come from the elements themselves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gst::prelude::*;

/// The pass-through receive buffer of the `lamina` plugin.
pub const REPAIR_FACTORY: &str = "laminarepair";
/// Longest time a sent packet stays available for retransmission.
pub const RTX_HISTORY_MS: u32 = 1000;
/// Most packets per SSRC kept for retransmission.
pub const RTX_HISTORY_PACKETS: u32 = 500;
/// Retransmission requests one subscriber may make per second (burst of the same size).
pub const NACK_BUDGET_PER_SEC: u32 = 1000;

/// A token bucket of retransmission requests.
#[derive(Debug)]
pub struct NackBudget {
    rate: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl NackBudget {
    /// A full bucket of `per_sec` requests refilled at `per_sec` a second.
    pub fn new(per_sec: u32) -> Self {
        Self {
            rate: f64::from(per_sec),
            tokens: f64::from(per_sec),
            last: None,
        }
    }

    /// Takes one request at `now`; `false` when the budget is spent.
    pub fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + refill).min(self.rate);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A room's repair counters that outlive its peers: retransmission requests counted at the
/// budget, and the element counters of peers already removed.
#[derive(Debug, Default)]
pub struct NackCounters {
    /// Requests that reached `rtprtxsend`.
    pub passed: AtomicU64,
    /// Requests dropped because the budget was spent.
    pub dropped: AtomicU64,
    /// Element counters of removed peers.
    retired: Mutex<RepairStats>,
}

impl NackCounters {
    /// Keeps the element counters of a peer's bin that is about to go.
    pub(crate) fn retire(&self, bin: &gst::Bin) {
        let gone = RepairStats::from_elements(bin);
        let mut r = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        r.uplink_lost += gone.uplink_lost;
        r.uplink_nacks += gone.uplink_nacks;
        r.uplink_repaired += gone.uplink_repaired;
        r.downlink_retransmitted += gone.downlink_retransmitted;
    }
}

/// Loss-repair figures of one peer, summed over its streams.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RepairStats {
    /// Uplink: packets found missing and never received.
    pub uplink_lost: u64,
    /// Uplink: NACKs (per packet) sent to the publisher.
    pub uplink_nacks: u64,
    /// Uplink: missing packets that arrived after a NACK.
    pub uplink_repaired: u64,
    /// Downlink: retransmission requests from subscribers that were served or looked up.
    pub downlink_requests: u64,
    /// Downlink: requests dropped by the per-subscriber budget.
    pub downlink_requests_dropped: u64,
    /// Downlink: packets retransmitted (as RTX).
    pub downlink_retransmitted: u64,
}

impl RepairStats {
    /// The room's totals: the counters of every `laminarepair` and `rtprtxsend` inside `bin`
    /// (the room's pipeline) plus those of peers already removed.
    pub fn collect(bin: &gst::Bin, nacks: &NackCounters) -> Self {
        let mut s = Self::from_elements(bin);
        let r = *nacks.retired.lock().unwrap_or_else(|e| e.into_inner());
        s.uplink_lost += r.uplink_lost;
        s.uplink_nacks += r.uplink_nacks;
        s.uplink_repaired += r.uplink_repaired;
        s.downlink_retransmitted += r.downlink_retransmitted;
        s.downlink_requests = nacks.passed.load(Ordering::Relaxed);
        s.downlink_requests_dropped = nacks.dropped.load(Ordering::Relaxed);
        s
    }

    fn from_elements(bin: &gst::Bin) -> Self {
        let mut s = Self::default();
        for e in bin.iterate_recurse().into_iter().flatten() {
            let Some(f) = e.factory() else { continue };
            match f.name().as_str() {
                REPAIR_FACTORY => {
                    let st = e.property::<gst::Structure>("stats");
                    let get = |k: &str| st.get::<u64>(k).unwrap_or(0);
                    s.uplink_lost += get("num-lost");
                    s.uplink_nacks += get("rtx-count");
                    s.uplink_repaired += get("rtx-success-count");
                }
                "rtprtxsend" => {
                    s.downlink_retransmitted += u64::from(e.property::<u32>("num-rtx-packets"));
                }
                _ => {}
            }
        }
        s
    }
}

/// Connects the repair set-up to a new peer's webrtcbin (before it has any stream). The
/// handlers live as long as the webrtcbin and its bin.
pub(crate) fn install(bin: &gst::Bin, webrtc: &gst::Element, nacks: Arc<NackCounters>) {
    if let Some(rtpbin) = webrtc
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("rtpbin"))
    {
        rtpbin.connect("request-jitterbuffer", false, |_| {
            let repair = gst::ElementFactory::make(REPAIR_FACTORY)
                .property("do-retransmission", true)
                .build()
                .ok()?;
            Some(repair.to_value())
        });
    } else {
        tracing::warn!("webrtcbin without an rtpbin: receive path keeps rtpjitterbuffer");
    }
    let budget = Arc::new(Mutex::new(NackBudget::new(NACK_BUDGET_PER_SEC)));
    bin.connect_deep_element_added(move |_, _, element| {
        if element.factory().is_some_and(|f| f.name() == "rtprtxsend") {
            tune_rtx_sender(element, budget.clone(), nacks.clone());
        }
    });
}

/// Bounds `rtprtxsend`'s history and puts the request budget in front of it.
fn tune_rtx_sender(rtx: &gst::Element, budget: Arc<Mutex<NackBudget>>, nacks: Arc<NackCounters>) {
    rtx.set_property("max-size-time", RTX_HISTORY_MS);
    rtx.set_property("max-size-packets", RTX_HISTORY_PACKETS);
    let Some(src) = rtx.static_pad("src") else {
        return;
    };
    src.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        let Some(gst::PadProbeData::Event(ev)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let is_request = ev.type_() == gst::EventType::CustomUpstream
            && ev
                .structure()
                .is_some_and(|s| s.name() == "GstRTPRetransmissionRequest");
        if !is_request {
            return gst::PadProbeReturn::Ok;
        }
        let allowed = budget
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(Instant::now());
        if allowed {
            nacks.passed.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        } else {
            nacks.dropped.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Drop
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn budget_allows_a_burst_then_refills_at_its_rate() {
        let mut b = NackBudget::new(10);
        let t0 = Instant::now();
        assert_eq!((0..20).filter(|_| b.take(t0)).count(), 10);
        assert!(!b.take(t0));
        assert!(b.take(t0 + Duration::from_millis(150)));
        assert_eq!(
            (0..20)
                .filter(|_| b.take(t0 + Duration::from_secs(5)))
                .count(),
            10,
            "the bucket never holds more than one second's worth"
        );
    }
}
