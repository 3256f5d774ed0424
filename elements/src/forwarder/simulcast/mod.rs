//! Simulcast state of `laminaforwarder`: the layer sink pads (`sink_%u`) and their RIDs, the
//! layers and their activity, and which layer each src pad wants and gets.
//!
//! Everything lives in one [`Simulcast`] behind `LaminaForwarder::simulcast` (third in the lock
//! order, see `imp.rs`). The streaming thread of a layer sink takes that lock once per packet,
//! decides everything in [`Simulcast::on_packet`] and gets back a [`Routed`]: the pads to push
//! to, the messages to post, the keyframe request to send; it acts on it without any lock.
//!
//! Per layer (by RID) the state keeps two counts, recomputed by [`Simulcast::recount`] whenever a
//! route changes (rare): `watchers` (src pads having the layer as current or wanted layer; zero
//! means its packets are dropped at once) and `pending` (active src pads waiting for one of its
//! keyframes to switch to it; only then are payloads parsed).

use std::sync::Arc;
use std::time::{Duration, Instant};

mod keyframes;
mod layers;
mod routed;

use super::codec::Codec;
use super::keyframe::Throttle;
use super::rewrite::Input;
use super::rid;
use layers::{ensure_layer, layer_index, Layer, LayerSink, Route};
pub(super) use routed::{LayerKeyframe, RouteLayers, Routed, Verdict};

/// Default of the `layer-timeout` property (ms).
pub(super) const DEFAULT_LAYER_TIMEOUT_MS: u32 = 1000;
/// How often, at most, the activity of the layers is checked (on packet arrival).
const ACTIVITY_CHECK: Duration = Duration::from_millis(100);

/// Element settings the layer sinks' streaming threads need (set through element properties).
#[derive(Debug, Clone)]
pub(super) struct Config {
    /// Header extension id of the RID (0 = none).
    pub rid_extension_id: u8,
    /// Accepted RIDs, in the order of the `rids` property (empty = any valid RID).
    pub rids: Vec<Arc<str>>,
    /// `layer-timeout` in ms.
    pub layer_timeout_ms: u32,
    /// Mirror of `keyframe-min-interval`.
    pub keyframe_min_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rid_extension_id: 0,
            rids: Vec::new(),
            layer_timeout_ms: DEFAULT_LAYER_TIMEOUT_MS,
            keyframe_min_interval: Duration::from_millis(u64::from(
                super::properties::DEFAULT_KEYFRAME_MIN_INTERVAL_MS,
            )),
        }
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub(super) struct Simulcast {
    pub config: Config,
    sinks: Vec<LayerSink>,
    layers: Vec<Layer>,
    routes: Vec<Route>,
    /// Next index for `sink_%u` when the caller does not name the pad.
    pub next_sink_index: u32,
    serial: u64,
    last_check: Option<Instant>,
    /// The first stream-start of a layer sink, forwarded to (and replayed on) the src pads.
    pub stream_start: Option<gst::Event>,
    /// Normalised caps of the layers (publisher fields and `ssrc` dropped).
    pub caps: Option<gst::Caps>,
    /// The last segment forwarded from a layer sink, and its event.
    pub segment: Option<(gst::FormattedSegment<gst::ClockTime>, gst::Event)>,
    /// EOS was forwarded (every layer sink got one).
    pub eos_sent: bool,
    /// When the last keyframe request went out on any layer sink (`keyframes.rs`).
    last_layer_request: Option<Instant>,
}

impl Simulcast {
    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn sink_index(&self, pad: &gst::Pad) -> Option<usize> {
        self.sinks.iter().position(|s| s.pad == *pad)
    }

    fn route_index(&self, pad: &super::LaminaForwarderPad) -> Option<usize> {
        self.routes.iter().position(|r| r.pad == *pad)
    }

    /// Forgets the streams (on start and stop): learned RIDs, activity, current layers, the
    /// forwarded sticky events. Keeps the pads, RIDs set by the application and wanted layers.
    pub fn reset_stream(&mut self) {
        for sink in &mut self.sinks {
            sink.reset_stream();
        }
        for route in &mut self.routes {
            route.current = None;
        }
        self.layers.clear();
        self.last_check = None;
        self.stream_start = None;
        self.caps = None;
        self.segment = None;
        self.eos_sent = false;
        self.last_layer_request = None;
        let claimed: Vec<Arc<str>> = self.sinks.iter().filter_map(|s| s.rid.clone()).collect();
        for rid in claimed {
            ensure_layer(&mut self.layers, &rid);
            self.refresh_owner(&rid);
        }
        self.recount();
    }

    // ---- layer sinks ----

    /// Registers a new layer sink pad.
    pub fn add_sink(&mut self, pad: gst::Pad) {
        let id = self.next_serial();
        self.sinks.push(LayerSink {
            id,
            pad,
            rid: None,
            rid_from_app: false,
            claimed_at: 0,
            codec: Codec::Other,
            clock_rate: None,
            twcc_id: 0,
            segment: gst::FormattedSegment::new(),
            ssrc: None,
            throttle: Throttle::default(),
            keyframe_owed: false,
            eos: false,
        });
    }

    /// Forgets a released layer sink pad; its layer passes to the other pad with the RID, if any.
    pub fn remove_sink(&mut self, pad: &gst::Pad) {
        if let Some(i) = self.sink_index(pad) {
            let sink = self.sinks.remove(i);
            if let Some(rid) = sink.rid {
                self.refresh_owner(&rid);
            }
            self.recount();
        }
    }

    pub fn sink(&self, pad: &gst::Pad) -> Option<&LayerSink> {
        self.sink_index(pad).map(|i| &self.sinks[i])
    }

    pub fn sink_mut(&mut self, pad: &gst::Pad) -> Option<&mut LayerSink> {
        self.sink_index(pad).map(|i| &mut self.sinks[i])
    }

    /// Whether every layer sink got EOS (and there is one).
    pub fn all_sinks_eos(&self) -> bool {
        !self.sinks.is_empty() && self.sinks.iter().all(|s| s.eos)
    }

    /// The accepted form of a RID value, `None` if invalid or not in `rids`.
    fn accept(&self, value: &[u8]) -> Option<Arc<str>> {
        if !rid::is_valid_rid(value) {
            return None;
        }
        // Valid RIDs are ASCII.
        let value = std::str::from_utf8(value).ok()?;
        if self.config.rids.is_empty() {
            Some(Arc::from(value))
        } else {
            self.config.rids.iter().find(|r| &***r == value).cloned()
        }
    }

    /// Sets (`Some`) or clears (`None`, back to learning) a layer sink's RID from its `rid`
    /// property. Errors if the RID is not accepted.
    pub fn set_sink_rid(&mut self, pad: &gst::Pad, value: Option<&str>) -> Result<(), String> {
        let Some(i) = self.sink_index(pad) else {
            return Err("not a layer sink of this element".into());
        };
        match value {
            Some(value) => {
                let rid = self
                    .accept(value.as_bytes())
                    .ok_or_else(|| format!("RID {value:?} is invalid or not in rids"))?;
                self.claim(i, rid, true);
            }
            None => {
                let sink = &mut self.sinks[i];
                sink.rid_from_app = false;
                if let Some(old) = sink.rid.take() {
                    self.refresh_owner(&old);
                }
            }
        }
        self.recount();
        Ok(())
    }

    /// Sink `i` takes `rid`: it owns the layer from now on (newest claim wins).
    fn claim(&mut self, i: usize, rid: Arc<str>, from_app: bool) {
        let serial = self.next_serial();
        let sink = &mut self.sinks[i];
        let old = sink.rid.replace(rid.clone());
        sink.rid_from_app = from_app;
        sink.claimed_at = serial;
        let id = sink.id;
        let li = ensure_layer(&mut self.layers, &rid);
        let layer = &mut self.layers[li];
        layer.learned.get_or_insert(serial);
        layer.owner = Some(id);
        if let Some(old) = old.filter(|old| *old != rid) {
            self.refresh_owner(&old);
        }
    }

    /// Recomputes the owner of `rid`: the layer sink with the latest claim of it.
    fn refresh_owner(&mut self, rid: &str) {
        let owner = self
            .sinks
            .iter()
            .filter(|s| s.rid.as_deref() == Some(rid))
            .max_by_key(|s| s.claimed_at)
            .map(|s| s.id);
        if let Some(li) = layer_index(&self.layers, rid) {
            self.layers[li].owner = owner;
        }
    }

    fn owner_sink_index(&self, rid: &str) -> Option<usize> {
        let owner = self.layers[layer_index(&self.layers, rid)?].owner?;
        self.sinks.iter().position(|s| s.id == owner)
    }

    /// The layer sink pad whose last packet had `ssrc` (the layer's owner first).
    pub fn sink_for_ssrc(&self, ssrc: u32) -> Option<gst::Pad> {
        let is_owner = |s: &LayerSink| {
            s.rid
                .as_deref()
                .and_then(|r| layer_index(&self.layers, r))
                .is_some_and(|li| self.layers[li].owner == Some(s.id))
        };
        let matching = || self.sinks.iter().filter(|s| s.ssrc == Some(ssrc));
        matching()
            .find(|s| is_owner(s))
            .or_else(|| matching().next())
            .map(|s| s.pad.clone())
    }

    // ---- src pads ----

    pub fn add_route(&mut self, pad: super::LaminaForwarderPad) {
        self.routes.push(Route {
            pad,
            active: false,
            wanted: None,
            current: None,
            drop_while_switching: false,
        });
    }

    /// Mirrors a src pad's `drop-while-switching`.
    pub fn set_drop_while_switching(&mut self, pad: &super::LaminaForwarderPad, on: bool) {
        if let Some(i) = self.route_index(pad) {
            self.routes[i].drop_while_switching = on;
        }
    }

    /// A src pad's `drop-while-switching`.
    pub fn drop_while_switching(&self, pad: &super::LaminaForwarderPad) -> bool {
        self.route_index(pad)
            .is_some_and(|i| self.routes[i].drop_while_switching)
    }

    pub fn remove_route(&mut self, pad: &super::LaminaForwarderPad) {
        if let Some(i) = self.route_index(pad) {
            self.routes.remove(i);
            self.recount();
        }
    }

    /// Sets a src pad's wanted layer (`None`: back to the always sink pad). Returns the layer to
    /// ask a keyframe of: the wanted one, if the pad is active and does not forward it yet.
    pub fn set_wanted(
        &mut self,
        pad: &super::LaminaForwarderPad,
        layer: Option<Arc<str>>,
    ) -> Option<Arc<str>> {
        let i = self.route_index(pad)?;
        let route = &mut self.routes[i];
        if layer.is_none() {
            route.current = None;
        }
        route.wanted = layer;
        let request = route
            .wanted
            .clone()
            .filter(|w| route.active && route.current.as_ref() != Some(w));
        self.recount();
        request
    }

    /// Mirrors a src pad's `active`. Returns the pad's wanted layer (`None` for a pad without
    /// one).
    pub fn set_route_active(
        &mut self,
        pad: &super::LaminaForwarderPad,
        active: bool,
    ) -> Option<Arc<str>> {
        let i = self.route_index(pad)?;
        let route = &mut self.routes[i];
        let changed = route.active != active;
        route.active = active;
        let wanted = route.wanted.clone();
        if changed {
            self.recount();
        }
        wanted
    }

    /// The layers active src pads forward or wait for (current, else wanted), each once.
    pub fn served_layers(&self) -> Vec<Arc<str>> {
        let mut out: Vec<Arc<str>> = Vec::new();
        for route in self.routes.iter().filter(|r| r.active) {
            if let Some(rid) = route.current.as_ref().or(route.wanted.as_ref()) {
                if !out.contains(rid) {
                    out.push(rid.clone());
                }
            }
        }
        out
    }

    /// The layer selection of a src pad.
    pub fn route_layers(&self, pad: &super::LaminaForwarderPad) -> Option<RouteLayers> {
        let route = &self.routes[self.route_index(pad)?];
        Some(RouteLayers {
            wanted: route.wanted.clone(),
            current: route.current.clone(),
        })
    }

    /// The layer sink pad serving a src pad with a wanted layer: its current layer's, else its
    /// wanted layer's. `None` for a pad without a wanted layer or a layer without sink pad.
    pub fn route_sink(&self, pad: &super::LaminaForwarderPad) -> Option<gst::Pad> {
        let route = &self.routes[self.route_index(pad)?];
        route
            .current
            .as_deref()
            .and_then(|rid| self.owner_sink_index(rid))
            .or_else(|| {
                route
                    .wanted
                    .as_deref()
                    .and_then(|rid| self.owner_sink_index(rid))
            })
            .map(|i| self.sinks[i].pad.clone())
    }

    // ---- layers ----

    /// Recomputes the per-layer counts from the routes and drops layers nobody refers to.
    fn recount(&mut self) {
        let layers = &mut self.layers;
        for layer in layers.iter_mut() {
            layer.watchers = 0;
            layer.pending = 0;
        }
        for route in &self.routes {
            if let Some(current) = &route.current {
                let li = ensure_layer(layers, current);
                layers[li].watchers += 1;
            }
            if let Some(wanted) = route
                .wanted
                .as_ref()
                .filter(|w| route.current.as_ref() != Some(w))
            {
                let li = ensure_layer(layers, wanted);
                layers[li].watchers += 1;
                if route.active {
                    layers[li].pending += 1;
                }
            }
        }
        layers.retain(|l| l.owner.is_some() || l.watchers > 0 || l.active);
    }

    /// Marks layers without packets for `layer-timeout` inactive; true if one was.
    fn expire(&mut self, now: Instant) -> bool {
        let timeout = Duration::from_millis(u64::from(self.config.layer_timeout_ms));
        let mut changed = false;
        for layer in &mut self.layers {
            if layer.active
                && layer
                    .last_packet
                    .is_none_or(|t| now.saturating_duration_since(t) >= timeout)
            {
                layer.active = false;
                changed = true;
            }
        }
        changed
    }

    /// Bytes received per layer so far, as `rid=bytes` pairs, comma-separated, in `rids` order
    /// (else learning order).
    pub fn layer_bytes(&self) -> String {
        let pairs: Vec<String> = self
            .ordered_layers(|_| true)
            .iter()
            .map(|l| format!("{}={}", l.rid, l.bytes))
            .collect();
        pairs.join(",")
    }

    /// The active layers, comma-separated, in `rids` order (else learning order).
    pub fn active_layers(&self) -> String {
        let names: Vec<&str> = self
            .ordered_layers(|l| l.active)
            .iter()
            .map(|l| &*l.rid)
            .collect();
        names.join(",")
    }

    /// The layers `keep` accepts, in `rids` order (else learning order).
    fn ordered_layers(&self, keep: impl Fn(&Layer) -> bool) -> Vec<&Layer> {
        let mut layers: Vec<&Layer> = self.layers.iter().filter(|l| keep(l)).collect();
        layers.sort_by_key(|l| {
            (
                self.config
                    .rids
                    .iter()
                    .position(|r| *r == l.rid)
                    .unwrap_or(usize::MAX),
                l.learned.unwrap_or(u64::MAX),
            )
        });
        layers
    }

    /// Decides what happens to one packet arriving on layer sink `pad` at `now`; see the module
    /// docs. `pts` is the buffer's.
    pub fn on_packet<T>(
        &mut self,
        pad: &gst::Pad,
        rtp: &gst_rtp::RTPBuffer<'_, T>,
        pts: Option<gst::ClockTime>,
        now: Instant,
    ) -> Routed {
        let mut routed = Routed::default();
        let Some(si) = self.sink_index(pad) else {
            routed.verdict = Verdict::Released;
            return routed;
        };

        // Which layer: the pad's RID, learned from the first packet carrying the extension.
        // A RID set by the application overrides the extension.
        let sink = &self.sinks[si];
        let value = if sink.rid_from_app {
            None
        } else {
            rid::extension_value(rtp, self.config.rid_extension_id)
        };
        let rid = match (&sink.rid, value) {
            (Some(rid), None) => rid.clone(),
            (Some(rid), Some(value)) if rid.as_bytes() == value => rid.clone(),
            (None, Some(value)) => match self.accept(value) {
                Some(rid) => {
                    self.claim(si, rid.clone(), false);
                    self.recount();
                    rid
                }
                None => {
                    routed.verdict = Verdict::UnknownRid;
                    return routed;
                }
            },
            // No RID yet, or another RID than the one learned.
            _ => {
                routed.verdict = Verdict::UnknownRid;
                return routed;
            }
        };
        let ssrc = rtp.ssrc();
        self.sinks[si].ssrc = Some(ssrc);
        let Some(mut li) = layer_index(&self.layers, &rid) else {
            routed.verdict = Verdict::Released;
            return routed;
        };
        if self.layers[li].owner != Some(self.sinks[si].id) {
            routed.verdict = Verdict::Superseded;
            return routed;
        }

        // Activity.
        let layer = &mut self.layers[li];
        layer.last_packet = Some(now);
        layer.bytes = layer.bytes.wrapping_add(rtp.buffer().size() as u64);
        let mut changed = !std::mem::replace(&mut layer.active, true);
        if self
            .last_check
            .is_none_or(|t| now.saturating_duration_since(t) >= ACTIVITY_CHECK)
        {
            self.last_check = Some(now);
            changed |= self.expire(now);
        }
        if changed {
            routed.layers_changed = Some(self.active_layers());
        }

        if self.layers[li].watchers == 0 {
            routed.verdict = Verdict::Paused;
            return routed;
        }

        // Switches to this layer, on the first packet of a keyframe.
        if self.layers[li].pending > 0 {
            let codec = self.sinks[si].codec;
            if rtp.payload().is_ok_and(|p| codec.starts_keyframe(p)) {
                for route in &mut self.routes {
                    if route.active
                        && route.wanted.as_ref() == Some(&rid)
                        && route.current.as_ref() != Some(&rid)
                    {
                        route.current = Some(rid.clone());
                        routed.switched.push((route.pad.clone(), rid.clone()));
                    }
                }
                self.recount();
                li = layer_index(&self.layers, &rid).unwrap_or(li);
            }
            if self.layers.get(li).is_some_and(|l| l.pending > 0) {
                routed.keyframe_request = self.keyframe_for_pending(si, now);
            }
        }

        let mut targets = routed::Targets::new();
        for route in &self.routes {
            if route.current.as_ref() == Some(&rid) && route.forwards_current() {
                let switched = routed.switched.iter().any(|(p, _)| *p == route.pad);
                targets.push((route.pad.clone(), switched));
            }
        }
        routed.targets = targets;
        let sink = &self.sinks[si];
        routed.input = Some(Input {
            ssrc,
            seq: rtp.seq(),
            ts: rtp.timestamp(),
            running_time_ns: pts
                .and_then(|pts| sink.segment.to_running_time(pts))
                .map(gst::ClockTime::nseconds),
            clock_rate: sink.clock_rate,
        });
        routed.twcc_in_id = sink.twcc_id;
        routed.caps = self.caps.clone();
        routed
    }
}
