//! The records behind [`Simulcast`](super::Simulcast): one per layer sink pad
//! ([`LayerSink`]), per layer by RID ([`Layer`]) and per src pad ([`Route`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::codec::Codec;
use super::super::keyframe::Throttle;
use super::keyframes::KEYFRAME_RETRY;

/// One `sink_%u` pad: one SSRC of the publisher, carrying one layer once its RID is known.
#[derive(Debug)]
pub(in crate::forwarder) struct LayerSink {
    /// Unique per element (never reused).
    pub(super) id: u64,
    pub pad: gst::Pad,
    /// Learned from the RID header extension or set through the pad's `rid` property.
    pub rid: Option<Arc<str>>,
    /// `rid` was set by the application: the header extension is ignored.
    pub(super) rid_from_app: bool,
    /// Serial of the moment this pad claimed its RID; among pads with one RID, the latest claim
    /// owns the layer.
    pub(super) claimed_at: u64,
    pub codec: Codec,
    pub clock_rate: Option<u32>,
    /// Id of the TWCC header extension in the pad's caps (0 = none), see `twcc.rs`.
    pub twcc_id: u8,
    pub segment: gst::FormattedSegment<gst::ClockTime>,
    /// SSRC of the last packet (retransmission requests go to the pad with their SSRC).
    pub ssrc: Option<u32>,
    pub(super) throttle: Throttle,
    /// The last keyframe request for this layer was throttled: retry after the interval.
    pub(super) keyframe_owed: bool,
    pub eos: bool,
}

impl LayerSink {
    pub(super) fn reset_stream(&mut self) {
        if !self.rid_from_app {
            self.rid = None;
        }
        self.codec = Codec::Other;
        self.clock_rate = None;
        self.twcc_id = 0;
        self.segment = gst::FormattedSegment::new();
        self.ssrc = None;
        self.throttle = Throttle::default();
        self.keyframe_owed = false;
        self.eos = false;
    }

    /// Whether a keyframe request may go out now for a pending switch: throttled requests are
    /// retried after the interval, sent ones after `max(interval, KEYFRAME_RETRY)`.
    pub(super) fn keyframe_due(&mut self, now: Instant, interval: Duration) -> bool {
        let wait = if self.keyframe_owed {
            interval
        } else {
            interval.max(KEYFRAME_RETRY)
        };
        let due = self.throttle.since_last(now).is_none_or(|t| t >= wait);
        if due && self.throttle.allow(now, interval) {
            self.keyframe_owed = false;
            true
        } else {
            false
        }
    }
}

/// One layer, by RID.
#[derive(Debug)]
pub(super) struct Layer {
    pub(super) rid: Arc<str>,
    /// The layer sink whose packets are this layer's (`LayerSink::id`).
    pub(super) owner: Option<u64>,
    /// Serial of the first claim (learning order, for `active-layers` without `rids`).
    pub(super) learned: Option<u64>,
    pub(super) last_packet: Option<Instant>,
    pub(super) active: bool,
    pub(super) watchers: u32,
    pub(super) pending: u32,
    /// Bytes of the layer's packets received (forwarded or not), for `layer-bytes`.
    pub(super) bytes: u64,
}

/// The layer selection of one src pad.
#[derive(Debug)]
pub(in crate::forwarder) struct Route {
    pub pad: super::super::LaminaForwarderPad,
    /// Mirror of the pad's `active`.
    pub(super) active: bool,
    /// The pad's `layer` (`None` = "", the always sink pad's stream).
    pub(super) wanted: Option<Arc<str>>,
    /// The layer the pad forwards now.
    pub(super) current: Option<Arc<str>>,
    /// Mirror of the pad's `drop-while-switching`.
    pub(super) drop_while_switching: bool,
}

impl Route {
    /// Whether the pad takes packets of its current layer now: not while it waits for another
    /// layer with `drop-while-switching` on.
    pub(super) fn forwards_current(&self) -> bool {
        !(self.drop_while_switching && self.wanted.is_some() && self.wanted != self.current)
    }
}

pub(super) fn layer_index(layers: &[Layer], rid: &str) -> Option<usize> {
    layers.iter().position(|l| &*l.rid == rid)
}

pub(super) fn ensure_layer(layers: &mut Vec<Layer>, rid: &Arc<str>) -> usize {
    layer_index(layers, rid).unwrap_or_else(|| {
        layers.push(Layer {
            rid: rid.clone(),
            owner: None,
            learned: None,
            last_packet: None,
            active: false,
            watchers: 0,
            pending: 0,
            bytes: 0,
        });
        layers.len() - 1
    })
}
