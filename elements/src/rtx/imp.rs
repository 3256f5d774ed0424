//! `GstLaminaRtx` implementation. See the module docs in `mod.rs` for the contract.
//!
//! One mutex (`state`) holds the maps, the histories and the budget. The streaming thread takes
//! it once per packet to store a reference; a request takes it to look the packet up and build
//! the RTX packet. It is never held across a push or an event.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_rtp::prelude::*;

use super::history::History;
use super::loss::{is_newer, LossWindow};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "laminartx",
        gst::DebugColorFlags::empty(),
        Some("Lamina RTX sender"),
    )
});

const PROP_SSRC_MAP: &str = "ssrc-map";
const PROP_PT_MAP: &str = "payload-type-map";
const PROP_MAX_REQUESTS: &str = "max-requests-per-sec";
const PROP_MAX_AGE: &str = "max-age";
const DEFAULT_MAX_AGE_MS: u32 = 1000;
const PROP_STATS: &str = "stats";
const PROP_LOSS_WINDOW: &str = "loss-window";
const DEFAULT_LOSS_WINDOW_MS: u32 = 200;
const PROP_LOSS_FRACTION: &str = "loss-fraction";
const PROP_FORWARD_UNMAPPED: &str = "forward-unmapped";
const PROP_TWCC_EXT_ID: &str = "twcc-ext-id";
const DEFAULT_MAX_REQUESTS: u32 = 1000;
const RETRANSMISSION_REQUEST: &str = "GstRTPRetransmissionRequest";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// RTX target of one SSRC.
#[derive(Debug)]
struct Stream {
    rtx_ssrc: u32,
    next_rtx_seq: u16,
    history: History<gst::Buffer>,
    /// The newest sequence number asked for (requests for older ones are repeats or late).
    highest_asked: Option<u16>,
    /// Sequence number of the last DISCONT packet (a layer switch): losses before it belong to
    /// the old layer and are not counted again in the loss share.
    switched_at: Option<u16>,
}

#[derive(Debug, Default)]
struct Counters {
    requests: u64,
    rtx_packets: u64,
    not_cached: u64,
    dropped: u64,
}

#[derive(Debug)]
struct State {
    ssrc_map: Option<gst::Structure>,
    pt_map: Option<gst::Structure>,
    /// Original PT → RTX PT.
    pts: HashMap<u8, u8>,
    /// Original SSRC → its RTX stream (only SSRCs with a mapping are kept).
    streams: HashMap<u32, Stream>,
    max_per_sec: u32,
    max_age_ms: u32,
    tokens: f64,
    last_refill: Option<Instant>,
    counters: Counters,
    loss: LossWindow,
    /// Requests for SSRCs without a mapping go upstream (else they end here).
    forward_unmapped: bool,
    /// `twcc-ext-id`: announced as `extmap-<id>` in the caps passed downstream (0 = off).
    twcc_ext_id: u32,
    /// The last caps from upstream, as they came.
    caps: Option<gst::Caps>,
    /// `twcc-ext-id` changed after caps went downstream: push them again before the next packet.
    caps_dirty: bool,
}

impl Default for State {
    fn default() -> Self {
        Self {
            ssrc_map: None,
            pt_map: None,
            pts: HashMap::new(),
            streams: HashMap::new(),
            max_per_sec: DEFAULT_MAX_REQUESTS,
            max_age_ms: DEFAULT_MAX_AGE_MS,
            tokens: f64::from(DEFAULT_MAX_REQUESTS),
            last_refill: None,
            counters: Counters::default(),
            loss: LossWindow::new(u64::from(DEFAULT_LOSS_WINDOW_MS) * 1_000_000),
            forward_unmapped: true,
            twcc_ext_id: 0,
            caps: None,
            caps_dirty: false,
        }
    }
}

impl State {
    /// The caps to pass downstream for upstream's `caps`.
    fn output_caps(&self, caps: gst::Caps) -> gst::Caps {
        crate::rtp::add_twcc_extmap(caps, self.twcc_ext_id)
    }

    fn take_token(&mut self, now: Instant) -> bool {
        let rate = f64::from(self.max_per_sec);
        if let Some(last) = self.last_refill {
            self.tokens =
                (self.tokens + now.saturating_duration_since(last).as_secs_f64() * rate).min(rate);
        }
        self.last_refill = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Rebuilds `streams` from the SSRC map (histories of SSRCs still mapped are kept).
    fn apply_ssrc_map(&mut self) {
        let mut streams = std::mem::take(&mut self.streams);
        if let Some(map) = &self.ssrc_map {
            for (field, value) in map.iter() {
                let (Ok(ssrc), Ok(rtx_ssrc)) = (field.parse::<u32>(), value.get::<u32>()) else {
                    continue;
                };
                let stream = match streams.remove(&ssrc) {
                    Some(mut s) => {
                        s.rtx_ssrc = rtx_ssrc;
                        s
                    }
                    None => Stream {
                        rtx_ssrc,
                        next_rtx_seq: rand_seq(ssrc ^ rtx_ssrc),
                        history: History::new(u64::from(self.max_age_ms) * 1_000_000),
                        highest_asked: None,
                        switched_at: None,
                    },
                };
                self.streams.insert(ssrc, stream);
            }
        }
    }

    fn apply_pt_map(&mut self) {
        self.pts.clear();
        if let Some(map) = &self.pt_map {
            for (field, value) in map.iter() {
                if let (Ok(pt), Ok(rtx)) = (field.parse::<u8>(), value.get::<u32>()) {
                    if let Ok(rtx) = u8::try_from(rtx) {
                        self.pts.insert(pt, rtx);
                    }
                }
            }
        }
    }
}

/// A starting RTX sequence number derived from the SSRCs (RFC 3550 wants it unpredictable;
/// SRTP protects it anyway).
fn rand_seq(x: u32) -> u16 {
    let h = x.wrapping_mul(0x9E37_79B1);
    (h >> 16) as u16
}

/// Implementation of [`super::LaminaRtx`].
#[derive(Debug)]
pub struct LaminaRtx {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    state: Mutex<State>,
}

/// The RTX packet for `original` (RFC 4588 section 4): same timestamp and marker, RTX PT/SSRC and
/// sequence number, payload = original sequence number + original payload. Header extensions
/// and padding are not carried over.
fn rtx_packet(
    original: &gst::Buffer,
    rtx_pt: u8,
    rtx_ssrc: u32,
    rtx_seq: u16,
) -> Option<gst::Buffer> {
    let rtp = gst_rtp::RTPBuffer::from_buffer_readable(original).ok()?;
    let payload = rtp.payload().ok()?;
    let csrcs: Vec<u32> = (0..rtp.csrc_count()).filter_map(|i| rtp.csrc(i)).collect();
    let mut out =
        gst::Buffer::new_rtp_with_sizes(payload.len() as u32 + 2, 0, csrcs.len() as u8).ok()?;
    {
        let out_ref = out.get_mut()?;
        let mut w = gst_rtp::RTPBuffer::from_buffer_writable(out_ref).ok()?;
        w.set_payload_type(rtx_pt);
        w.set_ssrc(rtx_ssrc);
        w.set_seq(rtx_seq);
        w.set_timestamp(rtp.timestamp());
        w.set_marker(rtp.is_marker());
        for (i, c) in csrcs.iter().enumerate() {
            w.set_csrc(i as u8, *c);
        }
        let p = w.payload_mut().ok()?;
        p[..2].copy_from_slice(&rtp.seq().to_be_bytes());
        p[2..].copy_from_slice(payload);
    }
    {
        let out_ref = out.get_mut()?;
        out_ref.set_pts(original.pts());
        out_ref.set_dts(original.dts());
    }
    Some(out)
}

impl LaminaRtx {
    fn sink_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut window_closed = false;
        let mut state = lock(&self.state);
        let caps = match (state.caps_dirty, &state.caps) {
            (true, Some(caps)) => Some(state.output_caps(caps.clone())),
            _ => None,
        };
        state.caps_dirty = false;
        if let Some((ssrc, seq)) = crate::rtp::ssrc_and_seq(&buffer) {
            let State { streams, loss, .. } = &mut *state;
            if let Some(stream) = streams.get_mut(&ssrc) {
                let now = gst::get_timestamp().nseconds();
                if buffer.flags().contains(gst::BufferFlags::DISCONT) {
                    // A new mapping (the forwarder switched layers on a keyframe): the
                    // receiver's decoder starts afresh here, earlier packets are obsolete.
                    stream.history.clear();
                    stream.switched_at = Some(seq);
                }
                stream.history.store(seq, buffer.clone(), now);
                window_closed = loss.sent(now).is_some();
            }
        }
        drop(state);
        if let Some(caps) = caps {
            gst::debug!(CAT, imp = self, "caps again for twcc-ext-id: {caps}");
            self.srcpad.push_event(gst::event::Caps::new(&caps));
        }
        if window_closed {
            self.obj().notify(PROP_LOSS_FRACTION);
        }
        self.srcpad.push(buffer)
    }

    /// Handles one request; `true` when it was ours (answered or not).
    fn handle_request(&self, s: &gst::StructureRef) -> bool {
        let (Ok(ssrc), Ok(seq)) = (s.get::<u32>("ssrc"), s.get::<u32>("seqnum")) else {
            return false;
        };
        let seq = seq as u16;
        let rtx = {
            let mut state = lock(&self.state);
            if !state.streams.contains_key(&ssrc) {
                // Not a stream of ours: let upstream (rtprtxsend, the forwarder) see it.
                return false;
            }
            state.counters.requests += 1;
            let State { streams, loss, .. } = &mut *state;
            let stream = streams.get_mut(&ssrc).expect("checked above");
            let since_switch = stream
                .switched_at
                .is_none_or(|at| at == seq || is_newer(seq, Some(at)));
            if since_switch && is_newer(seq, stream.highest_asked) {
                stream.highest_asked = Some(seq);
                loss.asked();
            }
            if !state.take_token(Instant::now()) {
                state.counters.dropped += 1;
                return true;
            }
            let State { streams, pts, .. } = &mut *state;
            let stream = streams.get_mut(&ssrc).expect("checked above");
            let found = stream.history.get(seq).and_then(|orig| {
                let pt = gst_rtp::RTPBuffer::from_buffer_readable(orig)
                    .ok()?
                    .payload_type();
                let rtx_pt = *pts.get(&pt)?;
                let packet = rtx_packet(orig, rtx_pt, stream.rtx_ssrc, stream.next_rtx_seq)?;
                stream.next_rtx_seq = stream.next_rtx_seq.wrapping_add(1);
                Some(packet)
            });
            match found {
                Some(p) => {
                    state.counters.rtx_packets += 1;
                    Some(p)
                }
                None => {
                    state.counters.not_cached += 1;
                    None
                }
            }
        };
        if let Some(packet) = rtx {
            gst::log!(CAT, imp = self, "resending {seq} of {ssrc:08x}");
            if let Err(e) = self.srcpad.push(packet) {
                gst::debug!(CAT, imp = self, "RTX push: {e:?}");
            }
        }
        true
    }

    /// Caps from upstream go on with `twcc-ext-id` announced; other events pass.
    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        if let gst::EventView::Caps(c) = event.view() {
            let caps = c.caps_owned();
            let out = {
                let mut state = lock(&self.state);
                state.caps = Some(caps.clone());
                state.caps_dirty = false;
                (state.twcc_ext_id != 0).then(|| state.output_caps(caps))
            };
            if let Some(out) = out {
                return self.srcpad.push_event(gst::event::Caps::new(&out));
            }
        }
        gst::Pad::event_default(pad, Some(&*self.obj()), event)
    }

    fn src_event(&self, event: gst::Event) -> bool {
        if event.type_() == gst::EventType::CustomUpstream {
            if let Some(s) = event.structure() {
                if s.name() == RETRANSMISSION_REQUEST
                    && (self.handle_request(s) || !lock(&self.state).forward_unmapped)
                {
                    return true;
                }
            }
        }
        self.sinkpad.push_event(event)
    }

    fn stats(&self) -> gst::Structure {
        let state = lock(&self.state);
        let c = &state.counters;
        gst::Structure::builder("application/x-lamina-rtx-stats")
            .field("num-requests", c.requests)
            .field("num-rtx-packets", c.rtx_packets)
            .field("num-not-cached", c.not_cached)
            .field("num-dropped", c.dropped)
            .build()
    }
}

#[glib::object_subclass]
impl ObjectSubclass for LaminaRtx {
    const NAME: &'static str = "GstLaminaRtx";
    type Type = super::LaminaRtx;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").expect("sink"))
            .chain_function(|_pad, parent, buffer| {
                LaminaRtx::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.sink_chain(buffer),
                )
            })
            .event_function(|pad, parent, event| {
                LaminaRtx::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_event(pad, event),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        let srcpad = gst::Pad::builder_from_template(&klass.pad_template("src").expect("src"))
            .event_function(|_pad, parent, event| {
                LaminaRtx::catch_panic_pad_function(parent, || false, |this| this.src_event(event))
            })
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        Self {
            sinkpad,
            srcpad,
            state: Mutex::new(State::default()),
        }
    }
}

impl ObjectImpl for LaminaRtx {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecBoxed::builder::<gst::Structure>(PROP_SSRC_MAP)
                    .nick("SSRC map")
                    .blurb("application/x-rtp-ssrc-map: <ssrc>=(uint)<rtx ssrc>")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>(PROP_PT_MAP)
                    .nick("Payload type map")
                    .blurb("application/x-rtp-pt-map: <pt>=(uint)<rtx pt>")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder(PROP_MAX_REQUESTS)
                    .nick("Max requests per second")
                    .blurb("Retransmission requests served per second (burst of the same size)")
                    .minimum(1)
                    .default_value(DEFAULT_MAX_REQUESTS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder(PROP_MAX_AGE)
                    .nick("Max age")
                    .blurb(
                        "Milliseconds a sent packet stays available for retransmission (at most \
                         the last 512 per SSRC); applies to SSRCs mapped afterwards",
                    )
                    .minimum(1)
                    .maximum(60_000)
                    .default_value(DEFAULT_MAX_AGE_MS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder(PROP_LOSS_WINDOW)
                    .nick("Loss window")
                    .blurb(
                        "Milliseconds over which loss-fraction is measured (longer while fewer \
                         than 10 packets were sent); 0 turns the measurement off",
                    )
                    .maximum(60_000)
                    .default_value(DEFAULT_LOSS_WINDOW_MS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder(PROP_LOSS_FRACTION)
                    .nick("Loss fraction")
                    .blurb(
                        "Share of the packets sent on mapped SSRCs in the last loss window that \
                         the receiver asked for (first requests only); notified as each window \
                         closes",
                    )
                    .minimum(0.0)
                    .maximum(1.0)
                    .read_only()
                    .build(),
                glib::ParamSpecBoolean::builder(PROP_FORWARD_UNMAPPED)
                    .nick("Forward unmapped requests")
                    .blurb(
                        "Pass retransmission requests for SSRCs without a mapping upstream \
                         (false: drop them, as rtprtxsend does when it is upstream)",
                    )
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder(PROP_TWCC_EXT_ID)
                    .nick("TWCC extension id")
                    .blurb(
                        "One-byte header extension id of transport-wide-cc announced as \
                         extmap-<id> in the caps passed downstream, so that rtpsession numbers \
                         the packets that carry that element (0 = pass caps as they come)",
                    )
                    .maximum(u32::from(crate::rtp::MAX_ONE_BYTE_ID))
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>(PROP_STATS)
                    .nick("Statistics")
                    .blurb("num-requests, num-rtx-packets, num-not-cached, num-dropped")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut state = lock(&self.state);
        match pspec.name() {
            PROP_SSRC_MAP => {
                state.ssrc_map = value.get().expect("type checked");
                state.apply_ssrc_map();
            }
            PROP_PT_MAP => {
                state.pt_map = value.get().expect("type checked");
                state.apply_pt_map();
            }
            PROP_MAX_AGE => state.max_age_ms = value.get().expect("type checked"),
            PROP_FORWARD_UNMAPPED => state.forward_unmapped = value.get().expect("type checked"),
            PROP_LOSS_WINDOW => {
                let ms: u32 = value.get().expect("type checked");
                state.loss = LossWindow::new(u64::from(ms) * 1_000_000);
            }
            PROP_TWCC_EXT_ID => {
                let id = value.get().expect("type checked");
                if id != state.twcc_ext_id {
                    state.twcc_ext_id = id;
                    state.caps_dirty = state.caps.is_some();
                }
            }
            PROP_MAX_REQUESTS => {
                state.max_per_sec = value.get().expect("type checked");
                state.tokens = state.tokens.min(f64::from(state.max_per_sec));
            }
            other => unreachable!("unknown writable property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            PROP_SSRC_MAP => lock(&self.state).ssrc_map.to_value(),
            PROP_PT_MAP => lock(&self.state).pt_map.to_value(),
            PROP_MAX_REQUESTS => lock(&self.state).max_per_sec.to_value(),
            PROP_MAX_AGE => lock(&self.state).max_age_ms.to_value(),
            PROP_LOSS_WINDOW => ((lock(&self.state).loss.window_ns / 1_000_000) as u32).to_value(),
            PROP_LOSS_FRACTION => lock(&self.state).loss.last.to_value(),
            PROP_FORWARD_UNMAPPED => lock(&self.state).forward_unmapped.to_value(),
            PROP_TWCC_EXT_ID => lock(&self.state).twcc_ext_id.to_value(),
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

impl GstObjectImpl for LaminaRtx {}

impl ElementImpl for LaminaRtx {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Lamina RTX sender",
                "Filter/Network/RTP",
                "Answers retransmission requests with RTX (RFC 4588) from a history indexed by \
                 sequence number, whatever order packets were sent in; bounded requests per second",
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
        if transition == gst::StateChange::PausedToReady {
            let mut state = lock(&self.state);
            let age = u64::from(state.max_age_ms) * 1_000_000;
            for s in state.streams.values_mut() {
                s.history = History::new(age);
            }
        }
        self.parent_change_state(transition)
    }
}
