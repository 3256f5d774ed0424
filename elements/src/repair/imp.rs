//! `GstLaminaRepair` implementation. See the module docs in `mod.rs` for the contract.
//!
//! One mutex (`state`) holds the settings and the [`Tracker`]; it is taken once per packet by
//! the streaming thread and briefly by property access, and never held across a push, an event
//! or a signal. Retransmission requests are collected under the lock into a fixed array and
//! sent after it is released.

use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::tracker::{Policy, Tracker, Verdict, MAX_REQUESTS_PER_POLL};

/// Debug category `laminarepair`.
static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "laminarepair",
        gst::DebugColorFlags::empty(),
        Some("Lamina pass-through receive buffer with NACK generation"),
    )
});

const PROP_LATENCY: &str = "latency";
const PROP_DO_LOST: &str = "do-lost";
const PROP_DO_RETRANSMISSION: &str = "do-retransmission";
const PROP_MAX_RETRIES: &str = "max-retries";
const PROP_RETRY_INTERVAL: &str = "retry-interval";
const PROP_MAX_AGE: &str = "max-age";
const PROP_STATS: &str = "stats";

const MS: u64 = 1_000_000;
/// How long rtpsession may hold a NACK before it is dropped (its own default). Shorter
/// deadlines were seen expiring when early RTCP was not allowed at that moment.
const NACK_DEADLINE_MS: u32 = 100;
/// Least time between two keyframe requests for packets lost for good.
const KEYFRAME_MIN_INTERVAL_NS: u64 = 1_000_000_000;

/// Name of the upstream event rtpsession turns into a generic NACK.
const RETRANSMISSION_REQUEST: &str = "GstRTPRetransmissionRequest";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Settings and stream state, under one lock.
#[derive(Debug, Default)]
struct State {
    /// `latency` as set by rtpbin (reported back, not used).
    latency_ms: u32,
    do_lost: bool,
    tracker: Tracker,
    /// When a keyframe was last asked for because a packet was lost for good.
    last_keyframe_request: Option<u64>,
    /// Keyframe requests sent upstream for packets lost for good.
    keyframe_requests: u64,
    /// SSRC of the stream, from its first packet.
    ssrc: Option<u32>,
    invalid_logged: bool,
}

/// Implementation of [`super::LaminaRepair`].
#[derive(Debug)]
pub struct LaminaRepair {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    state: Mutex<State>,
}

impl LaminaRepair {
    fn sink_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some((ssrc, seq)) = crate::rtp::ssrc_and_seq(&buffer) else {
            let first = !std::mem::replace(&mut lock(&self.state).invalid_logged, true);
            if first {
                gst::warning!(CAT, imp = self, "passing on a packet that is not RTP");
            }
            return self.srcpad.push(buffer);
        };
        let now = gst::get_timestamp().nseconds();
        let mut requests = [0u16; MAX_REQUESTS_PER_POLL];
        let mut n = 0;
        let mut want_keyframe = false;
        let verdict = {
            let mut state = lock(&self.state);
            state.ssrc = Some(ssrc);
            let verdict = state.tracker.on_packet(seq, now);
            let lost_before = state.tracker.counters().lost;
            state.tracker.poll(now, |s| {
                requests[n] = s;
                n += 1;
            });
            // A packet given up on leaves a hole that only a keyframe mends: ask for one now
            // rather than after every subscriber's own timeout (at most once a second).
            if state.tracker.policy().request && state.tracker.counters().lost > lost_before {
                let due = state
                    .last_keyframe_request
                    .is_none_or(|t| now.saturating_sub(t) >= KEYFRAME_MIN_INTERVAL_NS);
                if due {
                    state.last_keyframe_request = Some(now);
                    state.keyframe_requests += 1;
                    want_keyframe = true;
                }
            }
            verdict
        };
        for &seq in &requests[..n] {
            self.request_retransmission(ssrc, seq);
        }
        if want_keyframe {
            gst::debug!(
                CAT,
                imp = self,
                "packet lost for good: asking for a keyframe"
            );
            let s = gst::Structure::builder("GstForceKeyUnit")
                .field("running-time", u64::MAX)
                .field("all-headers", false)
                .field("count", 0u32)
                .build();
            let _ = self.sinkpad.push_event(gst::event::CustomUpstream::new(s));
        }
        match verdict {
            Verdict::Forward => self.srcpad.push(buffer),
            Verdict::Duplicate => Ok(gst::FlowSuccess::Ok),
        }
    }

    /// Asks upstream for `seq`. rtpsession sends the NACK early if it may, else with its next
    /// regular RTCP, and drops it if that is after [`NACK_DEADLINE_MS`].
    fn request_retransmission(&self, ssrc: u32, seq: u16) {
        gst::log!(CAT, imp = self, "asking for {seq} of {ssrc:08x}");
        let s = gst::Structure::builder(RETRANSMISSION_REQUEST)
            .field("seqnum", u32::from(seq))
            .field("ssrc", ssrc)
            .field("delay", 0u32)
            .field("deadline", NACK_DEADLINE_MS)
            .field("avg-rtt", 0u32)
            .build();
        let _ = self.sinkpad.push_event(gst::event::CustomUpstream::new(s));
    }

    fn stats(&self) -> gst::Structure {
        let state = lock(&self.state);
        let c = state.tracker.counters();
        gst::Structure::builder("application/x-lamina-repair-stats")
            .field("num-pushed", c.forwarded)
            .field("num-lost", c.lost)
            .field("num-late", c.late)
            .field("num-duplicates", c.duplicates)
            .field("rtx-count", c.requests)
            .field("rtx-success-count", c.repaired)
            .field("num-reordered", c.reordered)
            .field("num-missing", state.tracker.missing() as u64)
            .field("keyframe-requests", state.keyframe_requests)
            .build()
    }

    fn update_policy(&self, f: impl FnOnce(&mut Policy)) {
        let mut state = lock(&self.state);
        let mut policy = state.tracker.policy();
        f(&mut policy);
        state.tracker.set_policy(policy);
    }
}

#[glib::object_subclass]
impl ObjectSubclass for LaminaRepair {
    const NAME: &'static str = "GstLaminaRepair";
    type Type = super::LaminaRepair;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sink_templ = klass.pad_template("sink").expect("sink template");
        let sinkpad = gst::Pad::builder_from_template(&sink_templ)
            .chain_function(|_pad, parent, buffer| {
                LaminaRepair::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.sink_chain(buffer),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        let src_templ = klass.pad_template("src").expect("src template");
        let srcpad = gst::Pad::builder_from_template(&src_templ)
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        Self {
            sinkpad,
            srcpad,
            state: Mutex::new(State::default()),
        }
    }
}

impl ObjectImpl for LaminaRepair {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let defaults = Policy::default();
            vec![
                glib::ParamSpecUInt::builder(PROP_LATENCY)
                    .nick("Latency")
                    .blurb("Accepted for rtpbin; nothing is held back (ms)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder(PROP_DO_LOST)
                    .nick("Do lost")
                    .blurb("Accepted for rtpbin; no lost-packet events are sent")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder(PROP_DO_RETRANSMISSION)
                    .nick("Do retransmission")
                    .blurb("Ask upstream for missing packets (GstRTPRetransmissionRequest)")
                    .default_value(defaults.request)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder(PROP_MAX_RETRIES)
                    .nick("Max retries")
                    .blurb("Most requests for one missing packet")
                    .minimum(1)
                    .maximum(20)
                    .default_value(defaults.max_retries)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder(PROP_RETRY_INTERVAL)
                    .nick("Retry interval")
                    .blurb("Milliseconds between two requests for the same packet")
                    .minimum(1)
                    .maximum(10_000)
                    .default_value((defaults.retry_interval_ns / MS) as u32)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder(PROP_MAX_AGE)
                    .nick("Max age")
                    .blurb("Milliseconds a missing packet is waited for before it counts as lost")
                    .minimum(1)
                    .maximum(60_000)
                    .default_value((defaults.max_age_ns / MS) as u32)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>(PROP_STATS)
                    .nick("Statistics")
                    .blurb(
                        "num-pushed, num-lost, num-late, num-duplicates, rtx-count, \
                         rtx-success-count, num-reordered, num-missing, keyframe-requests",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            PROP_LATENCY => lock(&self.state).latency_ms = value.get().expect("type checked"),
            PROP_DO_LOST => lock(&self.state).do_lost = value.get().expect("type checked"),
            PROP_DO_RETRANSMISSION => {
                let on: bool = value.get().expect("type checked");
                self.update_policy(|p| p.request = on);
            }
            PROP_MAX_RETRIES => {
                let v: u32 = value.get().expect("type checked");
                self.update_policy(|p| p.max_retries = v);
            }
            PROP_RETRY_INTERVAL => {
                let v: u32 = value.get().expect("type checked");
                self.update_policy(|p| p.retry_interval_ns = u64::from(v) * MS);
            }
            PROP_MAX_AGE => {
                let v: u32 = value.get().expect("type checked");
                self.update_policy(|p| p.max_age_ns = u64::from(v) * MS);
            }
            other => unreachable!("unknown writable property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            PROP_LATENCY => lock(&self.state).latency_ms.to_value(),
            PROP_DO_LOST => lock(&self.state).do_lost.to_value(),
            PROP_DO_RETRANSMISSION => lock(&self.state).tracker.policy().request.to_value(),
            PROP_MAX_RETRIES => lock(&self.state).tracker.policy().max_retries.to_value(),
            PROP_RETRY_INTERVAL => {
                ((lock(&self.state).tracker.policy().retry_interval_ns / MS) as u32).to_value()
            }
            PROP_MAX_AGE => {
                ((lock(&self.state).tracker.policy().max_age_ns / MS) as u32).to_value()
            }
            PROP_STATS => self.stats().to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).expect("add sink pad");
        obj.add_pad(&self.srcpad).expect("add src pad");
    }
}

impl GstObjectImpl for LaminaRepair {}

impl ElementImpl for LaminaRepair {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Lamina RTP receive repair",
                "Filter/Network/RTP",
                "Pass-through replacement of rtpjitterbuffer for an SFU: pushes every packet at \
                 once, drops duplicates, asks upstream for lost packets (NACK) and counts losses",
                "Lamina developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        crate::rtp::filter_pad_templates()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            let mut state = lock(&self.state);
            let policy = state.tracker.policy();
            state.tracker = Tracker::new(policy);
            state.ssrc = None;
            state.last_keyframe_request = None;
        }
        self.parent_change_state(transition)
    }
}
