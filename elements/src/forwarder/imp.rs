//! `GstLaminaForwarder` implementation. See the module docs in `mod.rs` for the contract.
//!
//! Lock order (take them in this order; most paths take only one at a time):
//! 1. `LaminaForwarder::settings`
//! 2. `LaminaForwarder::state`
//! 3. `LaminaForwarder::simulcast` (simulcast.rs)
//! 4. `LaminaForwarderPad::state` (pad.rs)
//!
//! No mutex is held across `push`, `push_event`, `store_sticky_event`, `add_pad`/`remove_pad`,
//! `child_added`/`child_removed` or a signal emission. The streaming thread collects what to push
//! per pad under the pad's lock, then pushes without any lock, so releasing a pad from another
//! thread never waits for the streaming thread. Statistics are atomics.
//!
//! The element's code is split over sibling modules: `sink.rs` (the sink pad's chain, event and
//! query handling), `layer_sink.rs` (the simulcast `sink_%u` pads and layer selection, with the
//! state in `simulcast.rs`), `upstream.rs` (src pad events and queries, keyframe requests) and
//! `properties.rs` (properties, statistics, the `request-keyframe` signal).

use std::ops::ControlFlow;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::keyframe::Throttle;
use super::properties::{Settings, Stats};
use super::simulcast::Simulcast;

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

/// Per-stream state of the element (second in the lock order).
#[derive(Debug, Default)]
pub(super) struct State {
    /// Caps of the sink pad (set when the CAPS event arrives, before the pad stores it).
    pub(super) sink_caps: Option<gst::Caps>,
    /// `clock-rate` of the sink caps, if present and positive.
    pub(super) clock_rate: Option<u32>,
    /// Whether the sink caps say `media=audio` (no keyframe requests for new subscribers).
    pub(super) is_audio: bool,
    /// Id of the TWCC header extension in the sink caps (0 = none), see `twcc.rs`.
    pub(super) twcc_in_id: u8,
    /// The current TIME segment, to compute running times of input packets.
    pub(super) segment: gst::FormattedSegment<gst::ClockTime>,
    /// Throttle of keyframe requests sent upstream.
    pub(super) keyframe_throttle: Throttle,
    /// Whether an invalid RTP packet was already logged as a warning.
    pub(super) invalid_rtp_logged: bool,
    /// Next index for `src_%u` when the caller does not name the pad.
    pub(super) next_pad_index: u32,
    /// The src pads, in the order they were added: replaced (never edited) when a pad is
    /// requested or released, so the streaming thread takes it with a reference count and
    /// fans out without copying the element's pad list per packet.
    pub(super) src_pads: Arc<[super::LaminaForwarderPad]>,
}

impl State {
    /// Forgets the stream (on start and stop); keeps pad numbering and the pads.
    pub(super) fn reset_stream(&mut self) {
        *self = State {
            next_pad_index: self.next_pad_index,
            src_pads: self.src_pads.clone(),
            ..State::default()
        };
    }
}

/// Implementation of [`super::LaminaForwarder`].
#[derive(Debug)]
pub struct LaminaForwarder {
    pub(super) sinkpad: gst::Pad,
    pub(super) settings: Mutex<Settings>,
    pub(super) state: Mutex<State>,
    pub(super) simulcast: Mutex<Simulcast>,
    pub(super) stats: Stats,
}

impl LaminaForwarder {
    /// Runs `f` on the forwarder owning a pad, catching panics; `fallback()` if the pad has no
    /// forwarder parent (anymore).
    pub(super) fn with_parent<R>(
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

    /// The src pads now (see [`State::src_pads`]).
    pub(super) fn src_pads(&self) -> Arc<[super::LaminaForwarderPad]> {
        lock(&self.state).src_pads.clone()
    }

    /// Replays the sink pad's sticky events onto a new src pad, with its rewritten caps; those
    /// forwarded from the layer sinks if the sink pad has no stream-start.
    fn replay_sticky_events(&self, pad: &super::LaminaForwarderPad, caps: Option<gst::Event>) {
        // Collect first: the pad's object lock is held during the foreach.
        let mut events = Vec::new();
        self.sinkpad.sticky_events_foreach(|event| {
            events.push(event.clone());
            ControlFlow::Continue(gst::EventForeachAction::Keep)
        });
        if !events
            .iter()
            .any(|e| e.type_() == gst::EventType::StreamStart)
            && self.replay_layer_events(pad)
        {
            return;
        }
        let mut caps = caps;
        for event in events {
            let event = if event.type_() == gst::EventType::Caps {
                match caps.take() {
                    Some(caps) => caps,
                    None => continue,
                }
            } else {
                // The shared plain segment, as live src pads got it (see `PLAIN_SEGMENT`).
                let plain = match event.view() {
                    gst::EventView::Segment(seg) => seg
                        .segment()
                        .downcast_ref::<gst::ClockTime>()
                        .is_some_and(super::sink::is_plain),
                    _ => false,
                };
                let event = if plain {
                    super::sink::PLAIN_SEGMENT.clone()
                } else {
                    event
                };
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
            simulcast: Mutex::new(Simulcast::default()),
            stats: Stats::default(),
        }
    }
}

impl GstObjectImpl for LaminaForwarder {}

impl LaminaForwarder {
    /// The name of a new request pad `<prefix><n>`: the requested one if it has that form,
    /// else the next index from the pad kind's counter (`counter` of `counters`, taken under
    /// its lock), which moves past every name handed out. `None` (warned) for a malformed or
    /// taken name.
    pub(super) fn request_pad_name<T>(
        &self,
        prefix: &str,
        requested: Option<&str>,
        counters: &Mutex<T>,
        counter: fn(&mut T) -> &mut u32,
    ) -> Option<String> {
        let wanted = match requested {
            Some(name) => {
                let Some(index) = name
                    .strip_prefix(prefix)
                    .and_then(|i| i.parse::<u32>().ok())
                else {
                    gst::warning!(CAT, imp = self, "invalid pad name {name}");
                    return None;
                };
                Some(index)
            }
            None => None,
        };
        let index = {
            let mut guard = lock(counters);
            let next = counter(&mut guard);
            let index = wanted.unwrap_or(*next);
            *next = (*next).max(index.saturating_add(1));
            index
        };
        let name = format!("{prefix}{index}");
        if self.obj().static_pad(&name).is_some() {
            gst::warning!(CAT, imp = self, "pad {name} already exists");
            return None;
        }
        Some(name)
    }
}

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
                    "sink_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &caps,
                    super::LaminaForwarderSinkPad::static_type(),
                )
                .expect("valid layer sink template"),
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
        if templ.direction() == gst::PadDirection::Sink {
            return self.request_layer_sink(templ, name);
        }
        let obj = self.obj();
        let name = self.request_pad_name("src_", name, &self.state, |s| &mut s.next_pad_index)?;

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
        lock(&self.simulcast).add_route(pad.clone());
        if let Err(err) = obj.add_pad(&pad) {
            gst::warning!(CAT, obj = pad, "cannot add: {err}");
            lock(&self.simulcast).remove_route(&pad);
            return None;
        }
        {
            let mut state = lock(&self.state);
            let pads = state
                .src_pads
                .iter()
                .cloned()
                .chain([pad.clone()])
                .collect();
            state.src_pads = pads;
        }
        // After add_pad and the pad list, so a concurrent CAPS event reaches this pad or is in
        // the replay.
        self.replay_sticky_events(&pad, caps_event);
        gst::debug!(CAT, obj = pad, "new subscriber pad");

        obj.child_added(&pad, &pad.name());
        Some(pad.upcast())
    }

    fn release_pad(&self, pad: &gst::Pad) {
        gst::debug!(CAT, obj = pad, "releasing");
        if pad.direction() == gst::PadDirection::Sink {
            self.release_layer_sink(pad);
            return;
        }
        if let Some(src) = pad.downcast_ref::<super::LaminaForwarderPad>() {
            {
                let mut state = lock(&self.state);
                let pads = state
                    .src_pads
                    .iter()
                    .filter(|p| *p != src)
                    .cloned()
                    .collect();
                state.src_pads = pads;
            }
            lock(&self.simulcast).remove_route(src);
        }
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
            lock(&self.simulcast).reset_stream();
            for pad in self.src_pads().iter() {
                pad.imp().reset_logged_errors();
            }
        }
        let success = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            lock(&self.state).reset_stream();
            lock(&self.simulcast).reset_stream();
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
