//! `GstLaminaForwarder` implementation. See the module docs in `mod.rs` for the contract.
//!
//! Lock order (take them in this order; most paths take only one at a time):
//! 1. `LaminaForwarder::settings`
//! 2. `LaminaForwarder::state`
//! 3. `LaminaForwarderPad::state` (pad.rs)
//!
//! No mutex is held across `push`, `push_event`, `store_sticky_event`, `add_pad`/`remove_pad`,
//! `child_added`/`child_removed` or a signal emission. The streaming thread collects what to push
//! per pad under the pad's lock, then pushes without any lock, so releasing a pad from another
//! thread never waits for the streaming thread. Statistics are atomics.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::keyframe::{KeyUnitRequest, Throttle, FORCE_KEY_UNIT};
use super::pad::Plan;
use super::rewrite::Input;

/// Debug category `laminaforwarder`.
pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "laminaforwarder",
        gst::DebugColorFlags::empty(),
        Some("Lamina RTP selective forwarder"),
    )
});

/// Locks `m`, recovering the data if another thread panicked while holding it.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

const PROP_KEYFRAME_MIN_INTERVAL: &str = "keyframe-min-interval";
const PROP_FORWARDED_PACKETS: &str = "forwarded-packets";
const PROP_FORWARDED_BYTES: &str = "forwarded-bytes";
const PROP_KEYFRAME_REQUESTS: &str = "keyframe-requests";
const PROP_KEYFRAME_REQUESTS_DROPPED: &str = "keyframe-requests-dropped";
const SIGNAL_REQUEST_KEYFRAME: &str = "request-keyframe";

const DEFAULT_KEYFRAME_MIN_INTERVAL_MS: u32 = 500;

/// Structure name of the upstream retransmission request of rtpjitterbuffer/rtpsession.
const RETRANSMISSION_REQUEST: &str = "GstRTPRetransmissionRequest";

#[derive(Debug, Clone, Copy)]
struct Settings {
    keyframe_min_interval_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            keyframe_min_interval_ms: DEFAULT_KEYFRAME_MIN_INTERVAL_MS,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// Caps of the sink pad (set when the CAPS event arrives, before the pad stores it).
    sink_caps: Option<gst::Caps>,
    clock_rate: Option<u32>,
    is_audio: bool,
    segment: gst::FormattedSegment<gst::ClockTime>,
    keyframe_throttle: Throttle,
    invalid_rtp_logged: bool,
    /// Next index for `src_%u` when the caller does not name the pad.
    next_pad_index: u32,
}

impl State {
    /// Forgets the stream (on start and stop); keeps pad numbering.
    fn reset_stream(&mut self) {
        *self = State {
            next_pad_index: self.next_pad_index,
            ..State::default()
        };
    }
}

#[derive(Debug, Default)]
struct Stats {
    forwarded_packets: AtomicU64,
    forwarded_bytes: AtomicU64,
    keyframe_requests: AtomicU64,
    keyframe_requests_dropped: AtomicU64,
}

/// Implementation of [`super::LaminaForwarder`].
#[derive(Debug)]
pub struct LaminaForwarder {
    sinkpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
    stats: Stats,
}

/// Header fields the forwarder needs from an input packet, or `None` if it is not valid RTP.
fn rtp_header(buffer: &gst::BufferRef) -> Option<(u32, u16, u32)> {
    let rtp = gst_rtp::RTPBuffer::from_buffer_readable(buffer).ok()?;
    Some((rtp.ssrc(), rtp.seq(), rtp.timestamp()))
}

/// Writes the planned header fields into `buffer` (copy-on-write of the header memory).
fn rewrite_buffer(mut buffer: gst::Buffer, plan: &Plan) -> Result<gst::Buffer, glib::BoolError> {
    {
        let buf = buffer.make_mut();
        if plan.discont {
            buf.set_flags(gst::BufferFlags::DISCONT);
        }
        let mut rtp = gst_rtp::RTPBuffer::from_buffer_writable(buf)?;
        if let Some(pt) = plan.pt {
            rtp.set_payload_type(pt);
        }
        rtp.set_ssrc(plan.ssrc);
        rtp.set_seq(plan.seq);
        rtp.set_timestamp(plan.ts);
    }
    Ok(buffer)
}

/// Events a src pad received from downstream that the forwarder handles itself.
enum UpstreamEvent {
    KeyUnit(KeyUnitRequest),
    Retransmission(gst::Structure),
    Other,
}

impl LaminaForwarder {
    /// Runs `f` on the forwarder owning a pad, catching panics; `fallback()` if the pad has no
    /// forwarder parent (anymore).
    fn with_parent<R>(
        parent: Option<&gst::Object>,
        fallback: impl FnOnce() -> R,
        f: impl FnOnce(&Self) -> R,
    ) -> R {
        if parent.is_some_and(|p| p.is::<super::LaminaForwarder>()) {
            Self::catch_panic_pad_function(parent, fallback, f)
        } else {
            fallback()
        }
    }

    fn src_pads(&self) -> Vec<super::LaminaForwarderPad> {
        self.obj()
            .src_pads()
            .into_iter()
            .filter_map(|p| p.downcast::<super::LaminaForwarderPad>().ok())
            .collect()
    }

    /// `Ok` unless the sink pad itself is flushing (the element is stopping or seeking).
    fn upstream_result(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        if self.sinkpad.pad_flags().contains(gst::PadFlags::FLUSHING) {
            Err(gst::FlowError::Flushing)
        } else {
            Ok(gst::FlowSuccess::Ok)
        }
    }

    fn sink_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some((ssrc, seq, ts)) = rtp_header(&buffer) else {
            let first = !std::mem::replace(&mut lock(&self.state).invalid_rtp_logged, true);
            if first {
                gst::warning!(CAT, imp = self, "dropping invalid RTP packet {buffer:?}");
            } else {
                gst::log!(CAT, imp = self, "dropping invalid RTP packet {buffer:?}");
            }
            return self.upstream_result();
        };

        let (input_caps, clock_rate, running_time) = {
            let state = lock(&self.state);
            let running_time = buffer
                .pts()
                .and_then(|pts| state.segment.to_running_time(pts));
            (state.sink_caps.clone(), state.clock_rate, running_time)
        };
        let input = Input {
            ssrc,
            seq,
            ts,
            running_time_ns: running_time.map(gst::ClockTime::nseconds),
            clock_rate,
        };

        let plans: Vec<(super::LaminaForwarderPad, Plan)> = self
            .src_pads()
            .into_iter()
            .filter_map(|pad| {
                let plan = pad.imp().plan(&input, input_caps.as_ref())?;
                Some((pad, plan))
            })
            .collect();

        // No lock is held from here on.
        let count = plans.len();
        let mut buffer = Some(buffer);
        for (i, (pad, plan)) in plans.into_iter().enumerate() {
            // The last pad gets the input buffer itself, the others a copy.
            let out = if i + 1 == count {
                buffer.take()
            } else {
                buffer.as_ref().map(|b| b.copy())
            };
            let Some(out) = out else { break };
            if let Some(caps) = &plan.caps {
                if pad.current_caps().as_ref() != Some(caps) {
                    // A failure here shows up again as the push result below.
                    pad.push_event(gst::event::Caps::new(caps));
                }
            }
            let out = match rewrite_buffer(out, &plan) {
                Ok(out) => out,
                Err(err) => {
                    gst::warning!(CAT, obj = pad, "cannot rewrite packet: {err}");
                    continue;
                }
            };
            let size = out.size() as u64;
            match pad.push(out) {
                Ok(_) => {
                    self.stats.forwarded_packets.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .forwarded_bytes
                        .fetch_add(size, Ordering::Relaxed);
                }
                Err(err) => self.swallow_flow_error(&pad, err),
            }
        }
        self.upstream_result()
    }

    /// A subscriber's flow error never reaches the publisher: log it once per pad and kind.
    fn swallow_flow_error(&self, pad: &super::LaminaForwarderPad, err: gst::FlowError) {
        if pad.imp().first_flow_error(err) {
            match err {
                gst::FlowError::Flushing | gst::FlowError::NotLinked => {
                    gst::info!(CAT, obj = pad, "push returned {err:?}, ignored")
                }
                _ => gst::warning!(
                    CAT,
                    obj = pad,
                    "push returned {err:?}; ignored, the publisher and other pads continue"
                ),
            }
        } else {
            gst::log!(CAT, obj = pad, "push returned {err:?}, ignored");
        }
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        gst::log!(CAT, imp = self, "sink event {event:?}");
        match event.view() {
            gst::EventView::Caps(ev) => {
                let caps = ev.caps_owned();
                self.set_sink_caps(&caps);
                for pad in self.src_pads() {
                    let event = pad.imp().input_caps_changed(&caps);
                    pad.push_event(event);
                }
                // Subscribers never refuse the publisher's caps.
                return true;
            }
            gst::EventView::Segment(ev) => {
                if let Some(segment) = ev.segment().downcast_ref::<gst::ClockTime>() {
                    lock(&self.state).segment = segment.clone();
                } else {
                    gst::warning!(CAT, imp = self, "non-TIME segment, running time unknown");
                    lock(&self.state).segment = gst::FormattedSegment::new();
                }
            }
            gst::EventView::FlushStop(_) => {
                lock(&self.state).segment = gst::FormattedSegment::new();
            }
            _ => (),
        }
        for pad in self.src_pads() {
            pad.push_event(event.clone());
        }
        true
    }

    fn set_sink_caps(&self, caps: &gst::Caps) {
        let s = caps.structure(0);
        let clock_rate = s
            .and_then(|s| s.get::<i32>("clock-rate").ok())
            .and_then(|r| u32::try_from(r).ok())
            .filter(|r| *r > 0);
        let is_audio = s.and_then(|s| s.get::<&str>("media").ok()) == Some("audio");
        gst::debug!(CAT, imp = self, "input caps {caps}");
        let mut state = lock(&self.state);
        state.sink_caps = Some(caps.clone());
        state.clock_rate = clock_rate;
        state.is_audio = is_audio;
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            // Answer from the template: a subscriber's PT/SSRC never constrains the publisher.
            gst::QueryViewMut::Caps(q) => {
                let templ = pad.pad_template_caps();
                let caps = match q.filter() {
                    Some(filter) => {
                        filter.intersect_with_mode(&templ, gst::CapsIntersectMode::First)
                    }
                    None => templ,
                };
                q.set_result(&caps);
                true
            }
            gst::QueryViewMut::AcceptCaps(q) => {
                let ok = q.caps().is_subset(&pad.pad_template_caps());
                q.set_result(ok);
                true
            }
            gst::QueryViewMut::Allocation(_) => false,
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }

    fn src_query(&self, pad: &super::LaminaForwarderPad, query: &mut gst::QueryRef) -> bool {
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

    fn src_event(&self, pad: &super::LaminaForwarderPad, event: gst::Event) -> bool {
        let kind = match event.view() {
            gst::EventView::CustomUpstream(ev) => match ev.structure() {
                Some(s) if s.name() == FORCE_KEY_UNIT => {
                    KeyUnitRequest::parse(s).map_or(UpstreamEvent::Other, UpstreamEvent::KeyUnit)
                }
                Some(s) if s.name() == RETRANSMISSION_REQUEST => {
                    UpstreamEvent::Retransmission(s.to_owned())
                }
                _ => UpstreamEvent::Other,
            },
            _ => UpstreamEvent::Other,
        };
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
            UpstreamEvent::Other => self.sinkpad.push_event(event),
        }
    }

    /// Sends a force-key-unit event upstream unless one went out less than
    /// `keyframe-min-interval` ago; returns whether it was sent.
    fn send_keyframe_request(&self, request: KeyUnitRequest, reason: &str) -> bool {
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

    /// Called by a pad when its `active` turns on: a subscriber starting mid-stream needs a
    /// keyframe (not for audio).
    pub(super) fn keyframe_for_new_subscriber(&self, pad: &super::LaminaForwarderPad) {
        if lock(&self.state).is_audio {
            return;
        }
        let reason = format!("{} activated", pad.name());
        self.send_keyframe_request(KeyUnitRequest::default(), &reason);
    }

    /// Replays the sink pad's sticky events onto a new src pad, with its rewritten caps.
    fn replay_sticky_events(&self, pad: &super::LaminaForwarderPad, caps: Option<gst::Event>) {
        // Collect first: the pad's object lock is held during the foreach.
        let mut events = Vec::new();
        self.sinkpad.sticky_events_foreach(|event| {
            events.push(event.clone());
            ControlFlow::Continue(gst::EventForeachAction::Keep)
        });
        let mut caps = caps;
        for event in events {
            let event = if event.type_() == gst::EventType::Caps {
                match caps.take() {
                    Some(caps) => caps,
                    None => continue,
                }
            } else {
                if event.type_() > gst::EventType::Caps {
                    // Caps known but not yet stored on the sink pad: keep the sticky order.
                    if let Some(caps) = caps.take() {
                        let _ = pad.store_sticky_event(&caps);
                    }
                }
                event
            };
            if let Err(err) = pad.store_sticky_event(&event) {
                gst::debug!(CAT, obj = pad, "not replaying {event:?}: {err:?}");
            }
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for LaminaForwarder {
    const NAME: &'static str = "GstLaminaForwarder";
    type Type = super::LaminaForwarder;
    type ParentType = gst::Element;
    type Interfaces = (gst::ChildProxy,);

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass
            .pad_template("sink")
            .expect("the sink template is registered in pad_templates()");
        let sinkpad = gst::Pad::builder_from_template(&templ)
            .chain_function(|_pad, parent, buffer| {
                LaminaForwarder::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.sink_chain(buffer),
                )
            })
            .event_function(|_pad, parent, event| {
                LaminaForwarder::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_event(event),
                )
            })
            .query_function(|pad, parent, query| {
                LaminaForwarder::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_query(pad, query),
                )
            })
            .flags(gst::PadFlags::NEED_PARENT)
            .build();
        Self {
            sinkpad,
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(State::default()),
            stats: Stats::default(),
        }
    }
}

impl ObjectImpl for LaminaForwarder {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder(PROP_KEYFRAME_MIN_INTERVAL)
                    .nick("Keyframe min interval")
                    .blurb(
                        "Minimum time in milliseconds between two keyframe requests sent \
                         upstream; requests arriving sooner are dropped (0 = no throttling)",
                    )
                    .default_value(DEFAULT_KEYFRAME_MIN_INTERVAL_MS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_FORWARDED_PACKETS)
                    .nick("Forwarded packets")
                    .blurb("Packets pushed successfully, summed over all src pads")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_FORWARDED_BYTES)
                    .nick("Forwarded bytes")
                    .blurb("Bytes of the packets counted in forwarded-packets")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_KEYFRAME_REQUESTS)
                    .nick("Keyframe requests")
                    .blurb("Force-key-unit requests sent upstream to the publisher")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_KEYFRAME_REQUESTS_DROPPED)
                    .nick("Keyframe requests dropped")
                    .blurb("Keyframe requests dropped by the keyframe-min-interval throttle")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![glib::subclass::Signal::builder(SIGNAL_REQUEST_KEYFRAME)
                .action()
                .class_handler(|args| {
                    let element = args
                        .first()
                        .and_then(|v| v.get::<super::LaminaForwarder>().ok());
                    if let Some(element) = element {
                        element.imp().send_keyframe_request(
                            KeyUnitRequest::default(),
                            SIGNAL_REQUEST_KEYFRAME,
                        );
                    }
                    None
                })
                .build()]
        });
        SIGNALS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            PROP_KEYFRAME_MIN_INTERVAL => {
                lock(&self.settings).keyframe_min_interval_ms =
                    value.get().expect("type checked upstream");
            }
            other => unreachable!("unknown writable property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let stat = |c: &AtomicU64| c.load(Ordering::Relaxed).to_value();
        match pspec.name() {
            PROP_KEYFRAME_MIN_INTERVAL => lock(&self.settings).keyframe_min_interval_ms.to_value(),
            PROP_FORWARDED_PACKETS => stat(&self.stats.forwarded_packets),
            PROP_FORWARDED_BYTES => stat(&self.stats.forwarded_bytes),
            PROP_KEYFRAME_REQUESTS => stat(&self.stats.keyframe_requests),
            PROP_KEYFRAME_REQUESTS_DROPPED => stat(&self.stats.keyframe_requests_dropped),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        self.obj()
            .add_pad(&self.sinkpad)
            .expect("a new element accepts its always sink pad");
    }
}

impl GstObjectImpl for LaminaForwarder {}

impl ElementImpl for LaminaForwarder {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Lamina RTP forwarder",
                "Filter/Network/RTP",
                "Forwards one RTP stream to N subscribers without decoding: per-pad gating, \
                 PT/SSRC/sequence/timestamp rewriting, isolated flow errors, throttled keyframe \
                 requests",
                "Lamina developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::new_empty_simple("application/x-rtp");
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("valid sink template"),
                gst::PadTemplate::with_gtype(
                    "src_%u",
                    gst::PadDirection::Src,
                    gst::PadPresence::Request,
                    &caps,
                    super::LaminaForwarderPad::static_type(),
                )
                .expect("valid src template"),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        let obj = self.obj();
        let name = {
            let mut state = lock(&self.state);
            match name {
                Some(name) => {
                    let Some(index) = name
                        .strip_prefix("src_")
                        .and_then(|i| i.parse::<u32>().ok())
                    else {
                        gst::warning!(CAT, imp = self, "invalid pad name {name}");
                        return None;
                    };
                    state.next_pad_index = state.next_pad_index.max(index.saturating_add(1));
                    name.to_owned()
                }
                None => {
                    let name = format!("src_{}", state.next_pad_index);
                    state.next_pad_index = state.next_pad_index.saturating_add(1);
                    name
                }
            }
        };
        if obj.static_pad(&name).is_some() {
            gst::warning!(CAT, imp = self, "pad {name} already exists");
            return None;
        }

        let pad = gst::PadBuilder::<super::LaminaForwarderPad>::from_template(templ)
            .name(name.as_str())
            // No NEED_PARENT here: the pad must be activated before add_pad. A released pad
            // (no parent) answers events and queries with false.
            .event_function(|pad, parent, event| {
                LaminaForwarder::with_parent(parent, || false, |this| this.src_event(pad, event))
            })
            .query_function(|pad, parent, query| {
                LaminaForwarder::with_parent(parent, || false, |this| this.src_query(pad, query))
            })
            .build();

        let sink_caps = lock(&self.state).sink_caps.clone();
        let caps_event = pad.imp().set_input_caps(sink_caps);

        // Active before add_pad, so a running element never gets a flushing pad.
        if let Err(err) = pad.set_active(true) {
            gst::warning!(CAT, obj = pad, "cannot activate: {err}");
            return None;
        }
        if let Err(err) = obj.add_pad(&pad) {
            gst::warning!(CAT, obj = pad, "cannot add: {err}");
            return None;
        }
        // After add_pad, so a concurrent CAPS event reaches this pad or is in the replay.
        self.replay_sticky_events(&pad, caps_event);
        gst::debug!(CAT, obj = pad, "new subscriber pad");

        obj.child_added(&pad, &pad.name());
        Some(pad.upcast())
    }

    fn release_pad(&self, pad: &gst::Pad) {
        gst::debug!(CAT, obj = pad, "releasing");
        // The pad becomes flushing: a push in flight on the streaming thread returns Flushing
        // and is swallowed. Deactivating a push-mode src pad does not wait for that thread.
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

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            lock(&self.state).reset_stream();
            for pad in self.src_pads() {
                pad.imp().reset_logged_errors();
            }
        }
        let success = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            lock(&self.state).reset_stream();
        }
        Ok(success)
    }
}

impl ChildProxyImpl for LaminaForwarder {
    fn children_count(&self) -> u32 {
        u32::from(self.obj().num_pads())
    }

    fn child_by_name(&self, name: &str) -> Option<glib::Object> {
        self.obj().static_pad(name).map(|p| p.upcast())
    }

    fn child_by_index(&self, index: u32) -> Option<glib::Object> {
        self.obj()
            .pads()
            .into_iter()
            .nth(index as usize)
            .map(|p| p.upcast())
    }
}
