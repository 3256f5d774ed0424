//! Simulcast on `laminaforwarder`: the request sink pads `sink_%u` (GType
//! `GstLaminaForwarderSinkPad`, one per layer SSRC), their chain and events, and the element's
//! side of the src pads' layer selection (`layer`, `current-layer`, keyframe requests per layer,
//! the `lamina-layers` and `lamina-layer-switched` messages). The state is in `simulcast.rs`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::caps::forwarded_caps;
use super::codec::Codec;
use super::imp::{lock, LaminaForwarder, CAT};
use super::keyframe::KeyUnitRequest;
use super::simulcast::{LayerKeyframe, Verdict};
use super::twcc;

/// Sink pad property: the layer's RID.
pub(super) const PROP_RID: &str = "rid";
/// Element message: the set of active layers changed.
pub const MESSAGE_LAYERS: &str = "lamina-layers";
/// Element message: a src pad switched layer.
pub const MESSAGE_LAYER_SWITCHED: &str = "lamina-layer-switched";

/// Implementation of [`super::LaminaForwarderSinkPad`]. Its state lives in the element.
#[derive(Debug, Default)]
pub struct LaminaForwarderSinkPad;

#[glib::object_subclass]
impl ObjectSubclass for LaminaForwarderSinkPad {
    const NAME: &'static str = "GstLaminaForwarderSinkPad";
    type Type = super::LaminaForwarderSinkPad;
    type ParentType = gst::Pad;
}

impl ObjectImpl for LaminaForwarderSinkPad {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![glib::ParamSpecString::builder(PROP_RID)
                .nick("RID")
                .blurb(
                    "RTP stream id (simulcast layer) of this pad's packets: learned from the \
                     RID header extension (rid-extension-id) unless set; setting it overrides \
                     learning, setting \"\" learns again. Empty while unknown",
                )
                .mutable_playing()
                .build()]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            PROP_RID => {
                let rid = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|r| !r.is_empty());
                match self.forwarder() {
                    Some(element) => element.imp().set_layer_sink_rid(&self.obj(), rid),
                    None => gst::warning!(CAT, imp = self, "rid set on a released pad"),
                }
            }
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            PROP_RID => self
                .forwarder()
                .map(|e| e.imp().layer_sink_rid(self.obj().upcast_ref()))
                .unwrap_or_default()
                .to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for LaminaForwarderSinkPad {}

impl PadImpl for LaminaForwarderSinkPad {}

impl LaminaForwarderSinkPad {
    fn forwarder(&self) -> Option<super::LaminaForwarder> {
        self.obj()
            .parent()
            .and_then(|p| p.downcast::<super::LaminaForwarder>().ok())
    }
}

/// The caps every src pad gets from the layers: [`forwarded_caps`] without `ssrc` (each layer
/// has its own; a src pad writes its `ssrc` property).
fn layer_caps(input: &gst::CapsRef) -> gst::Caps {
    let mut caps = forwarded_caps(input, 0, 0);
    if let Some(s) = caps.make_mut().structure_mut(0) {
        s.remove_field("ssrc");
    }
    caps
}

/// What a layer sink's event becomes on the src pads.
enum Downstream {
    Nothing,
    /// The same event on every src pad.
    All(gst::Event),
    /// New layer caps, rewritten per src pad.
    Caps(gst::Caps),
}

impl LaminaForwarder {
    /// Creates, registers and adds a `sink_%u` pad.
    pub(super) fn request_layer_sink(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
    ) -> Option<gst::Pad> {
        let obj = self.obj();
        let name =
            self.request_pad_name("sink_", name, &self.simulcast, |s| &mut s.next_sink_index)?;
        let pad = gst::PadBuilder::<super::LaminaForwarderSinkPad>::from_template(templ)
            .name(name.as_str())
            .chain_function(|pad, parent, buffer| {
                LaminaForwarder::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.layer_chain(pad.upcast_ref(), buffer),
                )
            })
            .event_function(|pad, parent, event| {
                LaminaForwarder::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.layer_event(pad.upcast_ref(), event),
                )
            })
            .query_function(|pad, parent, query| {
                LaminaForwarder::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_query(pad.upcast_ref(), query),
                )
            })
            .flags(gst::PadFlags::NEED_PARENT)
            .build();
        let pad: gst::Pad = pad.upcast();
        lock(&self.simulcast).add_sink(pad.clone());
        // Activated by add_pad when the element is running.
        if let Err(err) = obj.add_pad(&pad) {
            gst::warning!(CAT, obj = pad, "cannot add: {err}");
            lock(&self.simulcast).remove_sink(&pad);
            return None;
        }
        gst::debug!(CAT, obj = pad, "new layer sink pad");
        obj.child_added(&pad, &pad.name());
        Some(pad)
    }

    /// Forgets and removes a `sink_%u` pad.
    pub(super) fn release_layer_sink(&self, pad: &gst::Pad) {
        // Forgotten first: a packet still in the chain is dropped as released. No lock is held
        // while deactivating, which waits for the pad's streaming thread to leave the chain.
        lock(&self.simulcast).remove_sink(pad);
        if let Err(err) = pad.set_active(false) {
            gst::warning!(CAT, obj = pad, "cannot deactivate: {err}");
        }
        let obj = self.obj();
        if let Err(err) = obj.remove_pad(pad) {
            gst::warning!(CAT, obj = pad, "cannot remove: {err}");
            return;
        }
        obj.child_removed(pad, &pad.name());
    }

    /// `Ok` unless the layer sink pad itself is flushing.
    fn layer_result(&self, pad: &gst::Pad) -> Result<gst::FlowSuccess, gst::FlowError> {
        if pad.pad_flags().contains(gst::PadFlags::FLUSHING) {
            Err(gst::FlowError::Flushing)
        } else {
            Ok(gst::FlowSuccess::Ok)
        }
    }

    pub(super) fn layer_chain(
        &self,
        pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let now = Instant::now();
        let routed = {
            let Ok(rtp) = gst_rtp::RTPBuffer::from_buffer_readable(&buffer) else {
                self.drop_invalid(&buffer);
                return self.layer_result(pad);
            };
            lock(&self.simulcast).on_packet(pad, &rtp, buffer.pts(), now)
        };
        // No lock is held from here on.
        match routed.verdict {
            Verdict::Forward => (),
            Verdict::UnknownRid => {
                self.stats
                    .dropped_unknown_rid
                    .fetch_add(1, Ordering::Relaxed);
                gst::log!(
                    CAT,
                    obj = pad,
                    "dropping packet: RID unknown or not accepted"
                );
            }
            verdict => gst::log!(CAT, obj = pad, "dropping packet: {verdict:?}"),
        }
        if let Some(layers) = &routed.layers_changed {
            gst::debug!(CAT, imp = self, "active layers: {layers:?}");
            self.post_element_message(
                gst::Structure::builder(MESSAGE_LAYERS)
                    .field("layers", layers)
                    .build(),
            );
        }
        if let Some(sink) = &routed.keyframe_request {
            self.stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            gst::debug!(
                CAT,
                obj = sink,
                "requesting keyframe upstream (switch pending)"
            );
            sink.push_event(KeyUnitRequest::default().to_event());
        }
        if let (Verdict::Forward, Some(input)) = (routed.verdict, &routed.input) {
            let plans = routed
                .targets
                .into_iter()
                .filter_map(|(pad, switched)| {
                    let plan = pad
                        .imp()
                        .plan_layer(input, routed.caps.as_ref(), switched)?;
                    Some((pad, plan))
                })
                .collect();
            self.push_plans(buffer, plans, routed.twcc_in_id);
        }
        for (pad, rid) in routed.switched {
            self.stats.layer_switches.fetch_add(1, Ordering::Relaxed);
            gst::debug!(CAT, obj = pad, "switched to layer {rid}");
            self.post_element_message(
                gst::Structure::builder(MESSAGE_LAYER_SWITCHED)
                    .field("pad", pad.name().as_str())
                    .field("layer", &*rid)
                    .build(),
            );
        }
        self.layer_result(pad)
    }

    fn post_element_message(&self, structure: gst::Structure) {
        let obj = self.obj();
        let message = gst::message::Element::builder(structure).src(&*obj).build();
        // Fails only without a bus (an element outside any pipeline).
        let _ = obj.post_message(message);
    }

    pub(super) fn layer_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        gst::log!(CAT, obj = pad, "layer sink event {event:?}");
        let downstream = match event.view() {
            gst::EventView::StreamStart(_) => {
                let mut sc = lock(&self.simulcast);
                if sc.stream_start.is_none() {
                    sc.stream_start = Some(event.clone());
                    Downstream::All(event.clone())
                } else {
                    Downstream::Nothing
                }
            }
            gst::EventView::Caps(ev) => {
                let caps = ev.caps();
                let codec = Codec::from_caps(caps);
                let clock_rate = caps
                    .structure(0)
                    .and_then(|s| s.get::<i32>("clock-rate").ok())
                    .and_then(|r| u32::try_from(r).ok())
                    .filter(|r| *r > 0);
                let twcc_id = twcc::id_from_caps(caps);
                let normalised = layer_caps(caps);
                gst::debug!(CAT, obj = pad, "layer caps {caps}");
                let mut sc = lock(&self.simulcast);
                if let Some(sink) = sc.sink_mut(pad) {
                    sink.codec = codec;
                    sink.clock_rate = clock_rate;
                    sink.twcc_id = twcc_id;
                }
                if sc.caps.as_ref() != Some(&normalised) {
                    sc.caps = Some(normalised.clone());
                    Downstream::Caps(normalised)
                } else {
                    Downstream::Nothing
                }
            }
            gst::EventView::Segment(ev) => {
                let mut sc = lock(&self.simulcast);
                match ev.segment().downcast_ref::<gst::ClockTime>() {
                    Some(segment) => {
                        if let Some(sink) = sc.sink_mut(pad) {
                            sink.segment = segment.clone();
                        }
                        if sc.segment.as_ref().map(|(s, _)| s) != Some(segment) {
                            let forwarded = if super::sink::is_plain(segment) {
                                super::sink::PLAIN_SEGMENT.clone()
                            } else {
                                event.clone()
                            };
                            sc.segment = Some((segment.clone(), forwarded.clone()));
                            Downstream::All(forwarded)
                        } else {
                            Downstream::Nothing
                        }
                    }
                    None => {
                        gst::warning!(CAT, obj = pad, "non-TIME segment, running time unknown");
                        if let Some(sink) = sc.sink_mut(pad) {
                            sink.segment = gst::FormattedSegment::new();
                        }
                        Downstream::Nothing
                    }
                }
            }
            gst::EventView::FlushStop(_) => {
                if let Some(sink) = lock(&self.simulcast).sink_mut(pad) {
                    sink.segment = gst::FormattedSegment::new();
                    sink.eos = false;
                }
                Downstream::Nothing
            }
            gst::EventView::Eos(_) => {
                let mut sc = lock(&self.simulcast);
                if let Some(sink) = sc.sink_mut(pad) {
                    sink.eos = true;
                }
                if sc.all_sinks_eos() && !sc.eos_sent {
                    sc.eos_sent = true;
                    Downstream::All(event.clone())
                } else {
                    Downstream::Nothing
                }
            }
            // Flushes, tags, gaps, packet-lost notices, ... of one layer are no business of
            // the subscribers.
            _ => Downstream::Nothing,
        };
        match downstream {
            Downstream::Nothing => (),
            Downstream::All(event) => {
                for pad in self.src_pads().iter() {
                    pad.push_event(event.clone());
                }
            }
            Downstream::Caps(caps) => {
                for pad in self.src_pads().iter() {
                    let event = pad.imp().input_caps_changed(&caps);
                    pad.push_event(event);
                }
            }
        }
        // A layer sink never refuses the publisher's events.
        true
    }

    /// Stores the sticky events forwarded from the layer sinks on a new src pad; false if there
    /// are none (no layer sink got a stream-start yet).
    pub(super) fn replay_layer_events(&self, pad: &super::LaminaForwarderPad) -> bool {
        let (stream_start, caps, segment) = {
            let sc = lock(&self.simulcast);
            let Some(stream_start) = sc.stream_start.clone() else {
                return false;
            };
            (
                stream_start,
                sc.caps.clone(),
                sc.segment.as_ref().map(|(_, e)| e.clone()),
            )
        };
        let caps = caps.and_then(|c| pad.imp().set_input_caps(Some(c)));
        for event in std::iter::once(stream_start).chain(caps).chain(segment) {
            if let Err(err) = pad.store_sticky_event(&event) {
                gst::debug!(CAT, obj = pad, "not replaying {event:?}: {err:?}");
            }
        }
        true
    }

    fn set_layer_sink_rid(&self, pad: &super::LaminaForwarderSinkPad, rid: Option<String>) {
        gst::debug!(CAT, obj = pad, "rid = {rid:?}");
        let result = lock(&self.simulcast).set_sink_rid(pad.upcast_ref(), rid.as_deref());
        if let Err(err) = result {
            gst::warning!(CAT, obj = pad, "rid not set: {err}");
        }
    }

    fn layer_sink_rid(&self, pad: &gst::Pad) -> String {
        lock(&self.simulcast)
            .sink(pad)
            .and_then(|s| s.rid.as_deref().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Asks for a keyframe of layer `rid` on its sink pad, through that pad's throttle; returns
    /// whether a request went out.
    pub(super) fn request_layer_keyframe(
        &self,
        rid: &str,
        request: KeyUnitRequest,
        reason: &str,
    ) -> bool {
        let outcome = lock(&self.simulcast).request_keyframe(rid, Instant::now());
        match outcome {
            LayerKeyframe::Send(sink) => {
                self.stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                gst::debug!(CAT, obj = sink, "requesting keyframe of {rid} ({reason})");
                if !sink.push_event(request.to_event()) {
                    gst::debug!(CAT, obj = sink, "keyframe request not handled upstream");
                }
                true
            }
            LayerKeyframe::Throttled => {
                self.stats
                    .keyframe_requests_dropped
                    .fetch_add(1, Ordering::Relaxed);
                gst::debug!(
                    CAT,
                    imp = self,
                    "keyframe request of {rid} ({reason}) throttled"
                );
                false
            }
            LayerKeyframe::NoSink => {
                gst::debug!(
                    CAT,
                    imp = self,
                    "no sink pad for layer {rid} yet ({reason})"
                );
                false
            }
        }
    }

    /// A src pad's `layer` was set: route it, store it on the pad and ask for a keyframe of the
    /// wanted layer if the pad is active and does not forward that layer yet.
    pub(super) fn set_wanted_layer(&self, pad: &super::LaminaForwarderPad, layer: &str) {
        let wanted: Option<Arc<str>> = (!layer.is_empty()).then(|| Arc::from(layer));
        let request = {
            let mut sc = lock(&self.simulcast);
            let request = sc.set_wanted(pad, wanted);
            // Under the simulcast lock (it comes first), so concurrent setters stay consistent.
            pad.imp().store_layer(layer);
            request
        };
        gst::debug!(CAT, obj = pad, "layer = {layer:?}");
        if let Some(rid) = request {
            let reason = format!("{} wants {rid}", pad.name());
            self.request_layer_keyframe(&rid, KeyUnitRequest::default(), &reason);
        }
    }

    /// A src pad's `active` was set; `activated` when it turned on (asks for a keyframe of its
    /// wanted layer, or of the always sink pad's stream).
    pub(super) fn src_pad_active_changed(
        &self,
        pad: &super::LaminaForwarderPad,
        active: bool,
        activated: bool,
    ) {
        let wanted = lock(&self.simulcast).set_route_active(pad, active);
        if activated {
            match wanted {
                Some(rid) => {
                    let reason = format!("{} activated", pad.name());
                    self.request_layer_keyframe(&rid, KeyUnitRequest::default(), &reason);
                }
                None => self.keyframe_for_new_subscriber(pad),
            }
        }
    }

    /// Sets a src pad's `drop-while-switching`.
    pub(super) fn set_drop_while_switching(&self, pad: &super::LaminaForwarderPad, on: bool) {
        lock(&self.simulcast).set_drop_while_switching(pad, on);
    }

    /// A src pad's `drop-while-switching`.
    pub(super) fn drop_while_switching(&self, pad: &super::LaminaForwarderPad) -> bool {
        lock(&self.simulcast).drop_while_switching(pad)
    }

    /// The `current-layer` of a src pad ("" if none).
    pub(super) fn current_layer(&self, pad: &super::LaminaForwarderPad) -> String {
        lock(&self.simulcast)
            .route_layers(pad)
            .and_then(|l| l.current.as_deref().map(str::to_owned))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_caps_drop_ssrc_and_publisher_fields() {
        gst::init().expect("gst init");
        let input: gst::Caps = "application/x-rtp, media=(string)video, \
             encoding-name=(string)VP8, clock-rate=(int)90000, payload=(int)96, \
             ssrc=(uint)1111, rid=(string)h, extmap-4=(string)urn:x"
            .parse()
            .expect("caps");
        let expected: gst::Caps = "application/x-rtp, media=(string)video, \
             encoding-name=(string)VP8, clock-rate=(int)90000, payload=(int)96"
            .parse()
            .expect("caps");
        assert_eq!(layer_caps(&input), expected);
    }
}
