//! `GstLaminaForwarderPad`: one request src pad of `laminaforwarder`, i.e. one subscriber.
//!
//! The pad owns its settings (`active`, `pt`, `ssrc`, `twcc-ext-id`, `twcc-in-caps`, `layer`)
//! and its per-subscriber rewriting state in one mutex, [`LaminaForwarderPad::state`] (last in
//! the element's lock order, see `imp.rs`). It never holds that mutex across a push, an event
//! send, a sticky-event store or a notify. Its layer selection (wanted and current simulcast
//! layer) is routed by the element (`simulcast.rs`); the pad keeps a copy of `layer` so the
//! always sink pad's packets skip it.

use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::caps::forwarded_caps;
use super::imp::{lock, CAT};
use super::rewrite::{Input, Rewriter};
use super::twcc;

/// Pad property: whether buffers are forwarded to this pad.
pub(super) const PROP_ACTIVE: &str = "active";
/// Pad property: payload type to write (0 = keep).
pub(super) const PROP_PT: &str = "pt";
/// Pad property: SSRC to write (0 = keep).
pub(super) const PROP_SSRC: &str = "ssrc";
/// Pad property: one-byte header extension id of the transport-wide-cc extension in the output
/// (0 = off).
pub(super) const PROP_TWCC_EXT_ID: &str = "twcc-ext-id";
/// Pad property: whether the caps announce `twcc-ext-id` as `extmap-<id>`.
pub(super) const PROP_TWCC_IN_CAPS: &str = "twcc-in-caps";
/// Pad property: the simulcast layer (RID) wanted ("" = the always sink pad's stream).
pub(super) const PROP_LAYER: &str = "layer";
/// Pad property: while a switch to `layer` waits for its keyframe, forward nothing.
pub(super) const PROP_DROP_WHILE_SWITCHING: &str = "drop-while-switching";
/// Read-only pad property: the simulcast layer forwarded now ("" = none).
pub(super) const PROP_CURRENT_LAYER: &str = "current-layer";

const DEFAULT_ACTIVE: bool = false;
const DEFAULT_PT: u32 = 0;
const DEFAULT_SSRC: u32 = 0;
const MAX_PT: u32 = 127;
const DEFAULT_TWCC_EXT_ID: u32 = 0;
const DEFAULT_TWCC_IN_CAPS: bool = true;

#[derive(Debug, Clone, Copy)]
struct PadSettings {
    active: bool,
    pt: u32,
    ssrc: u32,
    /// `twcc-ext-id`, 0..=14.
    twcc_ext_id: u32,
    /// `twcc-in-caps`.
    twcc_in_caps: bool,
}

impl Default for PadSettings {
    fn default() -> Self {
        Self {
            active: DEFAULT_ACTIVE,
            pt: DEFAULT_PT,
            ssrc: DEFAULT_SSRC,
            twcc_ext_id: DEFAULT_TWCC_EXT_ID,
            twcc_in_caps: DEFAULT_TWCC_IN_CAPS,
        }
    }
}

#[derive(Debug)]
struct PadState {
    settings: PadSettings,
    /// The `layer` property; packets of the always sink pad are not forwarded unless empty.
    layer: String,
    rewriter: Rewriter,
    /// Last input caps this pad was told about (used to re-store caps from a property setter).
    input_caps: Option<gst::Caps>,
    /// The rewritten caps must be pushed (again) before the next buffer. Set by the `pt`/`ssrc`/
    /// `twcc-ext-id`/`twcc-in-caps` setters and for new pads; cleared only by the streaming
    /// thread when it pushes them.
    caps_dirty: bool,
    /// Flow errors already logged at warning level for this pad.
    logged_errors: Vec<gst::FlowError>,
}

impl Default for PadState {
    fn default() -> Self {
        Self {
            settings: PadSettings::default(),
            layer: String::new(),
            rewriter: Rewriter::new(),
            input_caps: None,
            caps_dirty: true,
            logged_errors: Vec::new(),
        }
    }
}

impl PadSettings {
    /// The caps of this pad for `input_caps`.
    fn output_caps(&self, input_caps: &gst::CapsRef) -> gst::Caps {
        let announced = if self.twcc_in_caps {
            self.twcc_ext_id
        } else {
            0
        };
        crate::rtp::add_twcc_extmap(forwarded_caps(input_caps, self.pt, self.ssrc), announced)
    }
}

impl PadState {
    fn caps_event(&self, input_caps: &gst::CapsRef) -> gst::Event {
        gst::event::Caps::new(&self.settings.output_caps(input_caps))
    }
}

/// What the streaming thread must do for one active pad and one input packet.
#[derive(Debug)]
pub(super) struct Plan {
    /// Rewritten caps to push before the buffer unless the pad already has them.
    pub caps: Option<gst::Caps>,
    /// Payload type to write, `None` to keep.
    pub pt: Option<u8>,
    /// SSRC to write.
    pub ssrc: u32,
    /// Sequence number to write.
    pub seq: u16,
    /// RTP timestamp to write.
    pub ts: u32,
    /// Whether the buffer starts a new output mapping (set DISCONT).
    pub discont: bool,
    /// One-byte header extension id the TWCC element must have (0 = leave extensions alone).
    pub twcc_ext_id: u8,
}

/// Implementation of [`super::LaminaForwarderPad`].
#[derive(Debug, Default)]
pub struct LaminaForwarderPad {
    state: Mutex<PadState>,
}

#[glib::object_subclass]
impl ObjectSubclass for LaminaForwarderPad {
    const NAME: &'static str = "GstLaminaForwarderPad";
    type Type = super::LaminaForwarderPad;
    type ParentType = gst::Pad;
}

impl ObjectImpl for LaminaForwarderPad {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecBoolean::builder(PROP_ACTIVE)
                    .nick("Active")
                    .blurb(
                        "Forward buffers to this pad; while false the pad is gated and gets \
                         only events. Turning it on requests a keyframe upstream (throttled)",
                    )
                    .default_value(DEFAULT_ACTIVE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder(PROP_PT)
                    .nick("Payload type")
                    .blurb("RTP payload type written into forwarded packets and caps (0 = keep)")
                    .maximum(MAX_PT)
                    .default_value(DEFAULT_PT)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder(PROP_SSRC)
                    .nick("SSRC")
                    .blurb("RTP SSRC written into forwarded packets and caps (0 = keep)")
                    .default_value(DEFAULT_SSRC)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder(PROP_TWCC_EXT_ID)
                    .nick("TWCC extension id")
                    .blurb(
                        "One-byte RTP header extension id of transport-wide-cc \
                         (draft-holmer-rmcat-transport-wide-cc-extensions-01) as the subscriber \
                         negotiated it: announced as extmap-<id> in the caps, and every packet \
                         gets a TWCC element with this id for rtpsession to fill (0 = off: \
                         the publisher's TWCC element is turned into padding)",
                    )
                    .maximum(u32::from(twcc::MAX_ONE_BYTE_ID))
                    .default_value(DEFAULT_TWCC_EXT_ID)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder(PROP_TWCC_IN_CAPS)
                    .nick("TWCC in caps")
                    .blurb(
                        "Announce twcc-ext-id as extmap-<id> in the caps (rtpfunnel then writes \
                         a sequence number into every packet, and rtpsession numbers them). \
                         false when something between this pad and rtpsession announces it \
                         instead (laminartx's twcc-ext-id): rtpsession's number is the one \
                         that counts, and rtpfunnel's write is saved",
                    )
                    .default_value(DEFAULT_TWCC_IN_CAPS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder(PROP_LAYER)
                    .nick("Layer")
                    .blurb(
                        "Simulcast layer (RID of a sink_%u pad) to forward; switches on the \
                         layer's next keyframe (requested). \"\" forwards the always sink pad",
                    )
                    .default_value(Some(""))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder(PROP_DROP_WHILE_SWITCHING)
                    .nick("Drop while switching")
                    .blurb(
                        "While a switch to layer waits for the layer's keyframe, forward nothing \
                         of the current layer (for a subscriber whose link is dropping packets: \
                         the wait frees it for the keyframe). Off: the current layer is \
                         forwarded until the switch",
                    )
                    .default_value(false)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder(PROP_CURRENT_LAYER)
                    .nick("Current layer")
                    .blurb("Simulcast layer forwarded now (\"\" = none yet)")
                    .default_value(Some(""))
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            PROP_ACTIVE => {
                let active = value.get::<bool>().expect("type checked upstream");
                let activated = {
                    let mut state = lock(&self.state);
                    let was = state.settings.active;
                    state.settings.active = active;
                    if active && !was {
                        state.rewriter.mark_gap();
                    }
                    active && !was
                };
                gst::debug!(CAT, imp = self, "active = {active}");
                if let Some(element) = self.forwarder() {
                    element
                        .imp()
                        .src_pad_active_changed(&self.obj(), active, activated);
                }
            }
            PROP_LAYER => {
                let layer = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_default();
                match self.forwarder() {
                    Some(element) => element.imp().set_wanted_layer(&self.obj(), &layer),
                    None => self.store_layer(&layer),
                }
            }
            PROP_DROP_WHILE_SWITCHING => {
                let on = value.get::<bool>().expect("type checked upstream");
                gst::debug!(CAT, imp = self, "drop-while-switching = {on}");
                if let Some(element) = self.forwarder() {
                    element.imp().set_drop_while_switching(&self.obj(), on);
                }
            }
            PROP_PT | PROP_SSRC | PROP_TWCC_EXT_ID | PROP_TWCC_IN_CAPS => {
                let caps_event = {
                    let mut state = lock(&self.state);
                    let old = state.settings;
                    match pspec.name() {
                        PROP_PT => state.settings.pt = value.get().expect("type checked"),
                        PROP_SSRC => state.settings.ssrc = value.get().expect("type checked"),
                        PROP_TWCC_EXT_ID => {
                            state.settings.twcc_ext_id = value.get().expect("type checked")
                        }
                        _ => state.settings.twcc_in_caps = value.get().expect("type checked"),
                    }
                    let new = state.settings;
                    let changed = old.pt != new.pt
                        || old.ssrc != new.ssrc
                        || old.twcc_ext_id != new.twcc_ext_id
                        || old.twcc_in_caps != new.twcc_in_caps;
                    if changed {
                        state.caps_dirty = true;
                    }
                    match (&state.input_caps, changed) {
                        (Some(caps), true) => Some(state.caps_event(caps)),
                        _ => None,
                    }
                };
                gst::debug!(CAT, imp = self, "{} = {value:?}", pspec.name());
                if let Some(event) = caps_event {
                    // Re-store now so `caps` is right at once; the streaming thread pushes the
                    // authoritative version before the next buffer (`caps_dirty`).
                    if let Err(err) = self.obj().store_sticky_event(&event) {
                        gst::debug!(CAT, imp = self, "caps not stored: {err:?}");
                    }
                }
            }
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            PROP_LAYER => return lock(&self.state).layer.to_value(),
            PROP_DROP_WHILE_SWITCHING => {
                return self
                    .forwarder()
                    .is_some_and(|e| e.imp().drop_while_switching(&self.obj()))
                    .to_value()
            }
            PROP_CURRENT_LAYER => {
                return self
                    .forwarder()
                    .map(|e| e.imp().current_layer(&self.obj()))
                    .unwrap_or_default()
                    .to_value()
            }
            _ => (),
        }
        let settings = lock(&self.state).settings;
        match pspec.name() {
            PROP_ACTIVE => settings.active.to_value(),
            PROP_PT => settings.pt.to_value(),
            PROP_SSRC => settings.ssrc.to_value(),
            PROP_TWCC_EXT_ID => settings.twcc_ext_id.to_value(),
            PROP_TWCC_IN_CAPS => settings.twcc_in_caps.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for LaminaForwarderPad {}

impl PadImpl for LaminaForwarderPad {}

impl LaminaForwarderPad {
    fn forwarder(&self) -> Option<super::LaminaForwarder> {
        self.obj()
            .parent()
            .and_then(|p| p.downcast::<super::LaminaForwarder>().ok())
    }

    /// Records new input caps and returns the rewritten CAPS event to push on this pad.
    pub(super) fn input_caps_changed(&self, input_caps: &gst::Caps) -> gst::Event {
        let mut state = lock(&self.state);
        state.input_caps = Some(input_caps.clone());
        state.caps_event(input_caps)
    }

    /// Sets the initial input caps of a new pad; returns the rewritten CAPS event to replay.
    pub(super) fn set_input_caps(&self, input_caps: Option<gst::Caps>) -> Option<gst::Event> {
        let mut state = lock(&self.state);
        state.input_caps = input_caps;
        state.input_caps.as_ref().map(|c| state.caps_event(c))
    }

    /// Stores the `layer` property (the element routes it, see `set_wanted_layer`).
    pub(super) fn store_layer(&self, layer: &str) {
        let mut state = lock(&self.state);
        if state.layer != layer {
            state.layer = layer.to_owned();
        }
    }

    /// Decides what to do with one packet of the always sink pad; `None` when the pad is gated,
    /// wants a simulcast layer, or the packet is stale for this pad. `input_caps` are the sink
    /// pad's current caps.
    pub(super) fn plan(&self, input: &Input, input_caps: Option<&gst::Caps>) -> Option<Plan> {
        let mut state = lock(&self.state);
        if !state.layer.is_empty() {
            return None;
        }
        Self::plan_locked(&mut state, input, input_caps)
    }

    /// Decides what to do with one packet of the pad's current simulcast layer; `switched` when
    /// the pad switched to that layer with this packet (starts a new output mapping, DISCONT).
    /// `input_caps` are the normalised layer caps.
    pub(super) fn plan_layer(
        &self,
        input: &Input,
        input_caps: Option<&gst::Caps>,
        switched: bool,
    ) -> Option<Plan> {
        let mut state = lock(&self.state);
        if switched {
            state.rewriter.mark_gap();
        }
        Self::plan_locked(&mut state, input, input_caps)
    }

    fn plan_locked(
        state: &mut PadState,
        input: &Input,
        input_caps: Option<&gst::Caps>,
    ) -> Option<Plan> {
        if !state.settings.active {
            return None;
        }
        let out = state.rewriter.rewrite(input)?;
        let caps = match input_caps {
            Some(c) if state.caps_dirty => {
                state.caps_dirty = false;
                state.input_caps = Some(c.clone());
                Some(state.settings.output_caps(c))
            }
            _ => None,
        };
        let settings = state.settings;
        Some(Plan {
            caps,
            pt: (settings.pt != 0).then(|| u8::try_from(settings.pt).unwrap_or(127)),
            ssrc: if settings.ssrc != 0 {
                settings.ssrc
            } else {
                input.ssrc
            },
            seq: out.seq,
            ts: out.ts,
            discont: out.resynced,
            twcc_ext_id: u8::try_from(settings.twcc_ext_id).unwrap_or(0),
        })
    }

    /// The input `(ssrc, seq)` behind an output sequence number, for retransmission requests.
    pub(super) fn input_for(&self, out_seq: u16) -> Option<(u32, u16)> {
        lock(&self.state).rewriter.input_for(out_seq)
    }

    /// Returns true the first time `err` is seen on this pad (so it is logged once).
    pub(super) fn first_flow_error(&self, err: gst::FlowError) -> bool {
        let mut state = lock(&self.state);
        if state.logged_errors.contains(&err) {
            false
        } else {
            state.logged_errors.push(err);
            true
        }
    }

    /// Forgets which flow errors were logged (on a restart of the element).
    pub(super) fn reset_logged_errors(&self) {
        lock(&self.state).logged_errors.clear();
    }
}
