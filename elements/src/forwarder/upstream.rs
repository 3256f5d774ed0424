//! Upstream handling of `laminaforwarder`: events and queries arriving on its src pads from
//! subscribers (force-key-unit requests throttled, retransmission requests translated back to the
//! input SSRC and sequence number, transport-wide-cc feedback reports dropped) and the keyframe
//! requests the element sends to the publisher.
//!
//! A src pad with a simulcast `layer` sends upstream on a layer sink pad instead of `sink`:
//! force-key-unit requests and other events on the sink pad of its current layer (its wanted
//! layer while it has none), retransmission requests on the sink pad whose stream has the
//! translated SSRC.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::{lock, LaminaForwarder, CAT};
use super::keyframe::{KeyUnitRequest, FORCE_KEY_UNIT};
use super::simulcast::RouteLayers;
use super::twcc::TWCC_PACKETS_EVENT;

/// Structure name of the upstream retransmission request of rtpjitterbuffer/rtpsession.
const RETRANSMISSION_REQUEST: &str = "GstRTPRetransmissionRequest";

/// Events a src pad received from downstream that the forwarder handles itself.
enum UpstreamEvent {
    KeyUnit(KeyUnitRequest),
    Retransmission(gst::Structure),
    /// Dropped here.
    SubscriberOnly,
    Other,
}

impl LaminaForwarder {
    pub(super) fn src_query(
        &self,
        pad: &super::LaminaForwarderPad,
        query: &mut gst::QueryRef,
    ) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Caps(q) => {
                let caps = pad
                    .current_caps()
                    .unwrap_or_else(|| pad.pad_template_caps());
                let caps = match q.filter() {
                    Some(filter) => {
                        filter.intersect_with_mode(&caps, gst::CapsIntersectMode::First)
                    }
                    None => caps,
                };
                q.set_result(&caps);
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }

    pub(super) fn src_event(&self, pad: &super::LaminaForwarderPad, event: gst::Event) -> bool {
        let kind = match event.view() {
            gst::EventView::CustomUpstream(ev) => match ev.structure() {
                Some(s) if s.name() == FORCE_KEY_UNIT => {
                    KeyUnitRequest::parse(s).map_or(UpstreamEvent::Other, UpstreamEvent::KeyUnit)
                }
                Some(s) if s.name() == RETRANSMISSION_REQUEST => {
                    UpstreamEvent::Retransmission(s.to_owned())
                }
                // The subscriber's TWCC packets describe its link, no business of the publisher:
                // passed on, they crossed every forwarder into the publisher's session, where the
                // SSRC and payload demuxers deep-copied them (about 145 nested structures): half
                // of the server's instructions in a room of 4 (docs/performance.md §3).
                Some(s) if s.name() == TWCC_PACKETS_EVENT => UpstreamEvent::SubscriberOnly,
                _ => UpstreamEvent::Other,
            },
            _ => UpstreamEvent::Other,
        };
        let layers = lock(&self.simulcast).route_layers(pad);
        if let Some(RouteLayers {
            wanted: Some(wanted),
            current,
        }) = layers
        {
            return self.layer_src_event(pad, event, kind, current.unwrap_or(wanted));
        }
        match kind {
            UpstreamEvent::KeyUnit(request) => {
                // Re-built: the subscriber side may have added its (rewritten) ssrc/payload.
                self.send_keyframe_request(request, pad.name().as_str());
                true
            }
            UpstreamEvent::Retransmission(mut s) => {
                let out_seq = s
                    .get::<u32>("seqnum")
                    .ok()
                    .and_then(|v| u16::try_from(v).ok());
                match out_seq.and_then(|seq| pad.imp().input_for(seq)) {
                    Some((ssrc, seq)) => {
                        s.set("seqnum", u32::from(seq));
                        s.set("ssrc", ssrc);
                        self.sinkpad.push_event(gst::event::CustomUpstream::new(s))
                    }
                    None => false,
                }
            }
            UpstreamEvent::SubscriberOnly => true,
            UpstreamEvent::Other => self.sinkpad.push_event(event),
        }
    }

    /// [`Self::src_event`] for a src pad with a simulcast layer; `layer` is its current layer,
    /// else its wanted one.
    fn layer_src_event(
        &self,
        pad: &super::LaminaForwarderPad,
        event: gst::Event,
        kind: UpstreamEvent,
        layer: std::sync::Arc<str>,
    ) -> bool {
        match kind {
            UpstreamEvent::KeyUnit(request) => {
                self.request_layer_keyframe(&layer, request, pad.name().as_str());
                true
            }
            UpstreamEvent::Retransmission(mut s) => {
                let out_seq = s
                    .get::<u32>("seqnum")
                    .ok()
                    .and_then(|v| u16::try_from(v).ok());
                let Some((ssrc, seq)) = out_seq.and_then(|seq| pad.imp().input_for(seq)) else {
                    return false;
                };
                let Some(sink) = lock(&self.simulcast).sink_for_ssrc(ssrc) else {
                    return false;
                };
                s.set("seqnum", u32::from(seq));
                s.set("ssrc", ssrc);
                sink.push_event(gst::event::CustomUpstream::new(s))
            }
            UpstreamEvent::SubscriberOnly => true,
            UpstreamEvent::Other => {
                let sink = lock(&self.simulcast).route_sink(pad);
                sink.unwrap_or_else(|| self.sinkpad.clone())
                    .push_event(event)
            }
        }
    }

    /// Sends a force-key-unit event upstream unless one went out less than
    /// `keyframe-min-interval` ago; returns whether it was sent.
    pub(super) fn send_keyframe_request(&self, request: KeyUnitRequest, reason: &str) -> bool {
        let interval =
            Duration::from_millis(u64::from(lock(&self.settings).keyframe_min_interval_ms));
        let allowed = lock(&self.state)
            .keyframe_throttle
            .allow(Instant::now(), interval);
        if !allowed {
            self.stats
                .keyframe_requests_dropped
                .fetch_add(1, Ordering::Relaxed);
            gst::debug!(CAT, imp = self, "keyframe request ({reason}) throttled");
            return false;
        }
        self.stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
        gst::debug!(CAT, imp = self, "requesting keyframe upstream ({reason})");
        if !self.sinkpad.push_event(request.to_event()) {
            gst::debug!(CAT, imp = self, "keyframe request not handled upstream");
        }
        true
    }

    /// The `request-keyframe` action: one request upstream of the always sink pad, and one per
    /// simulcast layer an active output forwards or waits for (each throttled as usual).
    pub(super) fn request_keyframe_everywhere(&self) {
        let layers = lock(&self.simulcast).served_layers();
        if layers.is_empty() {
            self.send_keyframe_request(KeyUnitRequest::default(), "request-keyframe");
            return;
        }
        for rid in layers {
            self.request_layer_keyframe(&rid, KeyUnitRequest::default(), "request-keyframe");
        }
    }

    /// Called by a pad when its `active` turns on: a subscriber starting mid-stream needs a
    /// keyframe (not for audio).
    pub(super) fn keyframe_for_new_subscriber(&self, pad: &super::LaminaForwarderPad) {
        if lock(&self.state).is_audio {
            return;
        }
        let reason = format!("{} activated", pad.name());
        self.send_keyframe_request(KeyUnitRequest::default(), &reason);
    }
}
