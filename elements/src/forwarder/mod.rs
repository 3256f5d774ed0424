//! # `laminaforwarder`: one RTP stream in, one gated and rewritten copy per subscriber out
//!
//! The element sits where `tee` would: its always sink pad `sink` takes one publisher's RTP
//! stream (`application/x-rtp`, e.g. a webrtcbin src pad), and each request src pad `src_%u`
//! (a [`LaminaForwarderPad`]) feeds one subscriber. It never decodes.
//!
//! Per src pad (properties, all changeable while PLAYING):
//! - `active` (bool, default false): the pad is *gated* until set to true. A gated pad gets the
//!   stream's events (stream-start, caps, segment, EOS, ...) but no buffers, so nothing is pushed
//!   into a subscriber that is not connected yet. Turning it on requests a keyframe upstream
//!   (video only, throttled like every request).
//! - `pt` (uint 0..=127, default 0 = keep): payload type written into packets and caps.
//! - `ssrc` (uint, default 0 = keep): SSRC written into packets and caps.
//! - `twcc-ext-id` (uint 0..=14, default 0 = off): the one-byte header extension id the
//!   subscriber negotiated for transport-wide congestion control (TWCC, URI [`TWCC_URI`]). See
//!   *Transport-wide congestion control* below.
//! - `twcc-in-caps` (bool, default true): whether the caps announce `twcc-ext-id` (see there).
//!
//! What each src pad gets:
//! - caps normalised to `application/x-rtp, media, encoding-name, clock-rate, payload=<pt>,
//!   ssrc=<ssrc>` (+ `encoding-params` for audio); publisher fields such as `sprop-*`,
//!   `rtcp-fb-*`, `extmap-*`, `rid-*`, `a-*`, `ssrc-*` are dropped. Changing `pt`/`ssrc`
//!   re-stores the rewritten sticky caps at once, and they are pushed before the next buffer.
//!   With `twcc-ext-id` set (and `twcc-in-caps`), the caps also carry `extmap-<id>` =
//!   [`TWCC_URI`].
//! - packets with PT/SSRC rewritten and sequence numbers/timestamps kept continuous per pad
//!   across gating and across an input source change (new SSRC or sequence jump); the first
//!   packet after such a break carries `DISCONT`, and only it (a `DISCONT` of the input is
//!   cleared; `laminartx` lets go of the packets before one). See [`rewrite`] for the arithmetic.
//!
//! Isolation: a flow error on one src pad (not-negotiated, flushing, not-linked, error, ...) is
//! logged once per pad and kind and swallowed; the chain returns OK to the publisher unless the
//! forwarder's own sink pad is flushing. The sink pad answers caps queries with its template, so
//! subscribers never constrain the publisher.
//!
//! Upstream: events from src pads go to the sink pad. Force-key-unit requests (`GstForceKeyUnit`,
//! e.g. a subscriber's PLI/FIR turned into an event by its rtpsession) are throttled per element:
//! at most one per `keyframe-min-interval` ms (default 500) goes upstream, the rest are dropped
//! and counted. Retransmission requests (`GstRTPRetransmissionRequest`) are translated back to
//! the input SSRC and sequence number.
//!
//! Element API:
//! - property `keyframe-min-interval` (uint ms, default 500, 0 = no throttle);
//! - read-only statistics `forwarded-packets`, `forwarded-bytes` (successful pushes, summed over
//!   pads), `keyframe-requests` (sent upstream), `keyframe-requests-dropped` (throttled),
//!   `twcc-ext-unrewritable` (see below);
//! - action signal `request-keyframe` (no arguments, no return value): sends one upstream
//!   force-key-unit, subject to the same throttle (simulcast: one per layer that an active
//!   output forwards or waits for, on that layer's sink pad);
//! - `GstChildProxy` over its pads, so `src_0::active=true` works in `gst-launch-1.0`.
//!
//! Threading: all buffers are pushed from the publisher's streaming thread, so without a `queue`
//! per subscriber a blocking downstream stalls the others; keep pads gated until the subscriber
//! can take data. Request and release pads from any thread while PLAYING; a new pad is activated
//! and gets the sink's sticky events (with its rewritten caps) replayed before it is returned.
//!
//! ```text
//! GST_PLUGIN_PATH=target/debug gst-launch-1.0 \
//!   videotestsrc num-buffers=60 ! vp8enc deadline=1 ! rtpvp8pay pt=96 ! \
//!   laminaforwarder name=f src_0::active=true src_0::pt=100 src_0::ssrc=1234 \
//!   f.src_0 ! queue ! rtpvp8depay ! vp8dec ! fakesink \
//!   f.src_1 ! queue ! fakesink async=false
//! ```
//! `src_1` stays gated: its fakesink sees events and EOS but no buffer, so it must not wait for
//! preroll (`async=false`). Live pipelines (webrtcbin) do not preroll and need no such care.
//!
//! ## Transport-wide congestion control
//!
//! The server estimates each subscriber's downlink (`rtpgccbwe`) from its TWCC feedback
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01). The subscriber's `rtpsession`
//! (GStreamer 1.22) numbers the packets it sends itself, but only when its send caps carry
//! `extmap-<id>` = [`TWCC_URI`], and only by overwriting the first one-byte header extension
//! element with that id a packet already has. A src pad with `twcc-ext-id` = *id* (1..=14)
//! provides both:
//! - its caps carry `extmap-<id>` = [`TWCC_URI`] (besides the normalised fields above); changing
//!   the property re-stores them like `pt`/`ssrc`. With `twcc-in-caps=false` they do not: for
//!   a path where something after `rtpfunnel` announces the id to rtpsession instead
//!   (`laminartx`'s `twcc-ext-id`, as Lamina's server does), since `rtpfunnel` writes a number
//!   of its own into every packet of a pad whose caps announce it, which rtpsession then
//!   overwrites;
//! - every packet it pushes carries one one-byte (`0xBEDE`) TWCC element with 2 bytes of data
//!   under *id*. The input's TWCC id comes from the input caps (an `extmap-<n>` field whose value
//!   is the URI; on a simulcast src pad, the caps of the packet's `sink_%u` pad):
//!   - the packet has a one-byte extension block whose first element with the input id has 2
//!     bytes (browsers send this): that element gets the id *id* in place (only the id nibble
//!     changes, the value is kept); an element that had *id* gets the input id (swap). Nothing
//!     to do when both ids are equal. This is the per-packet path: no allocation besides the
//!     copy-on-write of the header the rewrite does anyway;
//!   - no such element, a two-byte (`0x100x`) block, or no extension: the block is rebuilt in
//!     the one-byte form with the other elements kept (a two-byte TWCC element under the input
//!     id gives its value to the new one; an element with *id* gets the input id if that is a
//!     free one-byte id, else it is dropped) and a TWCC element with *id* appended. This may
//!     allocate;
//!   - a malformed block (an element running past its end), a block of another profile, or a
//!     two-byte element the one-byte form cannot hold (id above 14, empty, over 16 bytes): the
//!     packet is forwarded unchanged and counted in the element's read-only statistic
//!     `twcc-ext-unrewritable` (u64).
//!
//! With `twcc-ext-id=0` (the default) the caps are exactly as described above, and the
//! input's TWCC element (the first with the input's TWCC id, if the input caps name one) is
//! turned into padding (zero bytes, in place): the publisher's transport-wide sequence numbers
//! mean nothing on another transport, and a subscriber that uses the same id on its own
//! publishing m-lines would report them back. Other elements are left as they are.
//!
//! ## Simulcast
//!
//! A publisher's simulcast video track comes as 2–4 *layers* (e.g. RIDs `l`, `m`, `h`), each its
//! own SSRC and its own webrtcbin src pad. Link each of them to a request sink pad `sink_%u`
//! (a [`LaminaForwarderSinkPad`]) of one forwarder; each src pad then forwards exactly one layer
//! at a time, as one continuous stream. A single-stream track uses only the always `sink` pad,
//! a simulcast track only `sink_%u` pads. Request and release `sink_%u` from any thread while
//! PLAYING: releasing waits only for the pad's own streaming thread to leave the chain.
//!
//! Layers are named by RID:
//! - element property `rid-extension-id` (uint 0..=255, default 0 = none): the id of the RID
//!   header extension (`urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`, RFC 8852, one-byte
//!   `0xBEDE` or two-byte form) as negotiated. A `sink_%u` pad learns its RID from the first
//!   packet carrying the extension; later packets without it (Chrome sends it only at the start
//!   of each SSRC) are that layer's. Packets carrying another RID are dropped.
//! - sink pad property `rid` (string): set by the application, it overrides learning (the
//!   extension is then ignored; `""` learns again); read, it is the learned or set RID, `""`
//!   while unknown. Packets of a `sink_%u` pad whose RID is unknown are dropped.
//! - element property `rids` (string, default `""`): comma-separated accepted RIDs, e.g.
//!   `"l,m,h"`; empty accepts any RID of 1–16 characters `[A-Za-z0-9_-]`. A packet with another
//!   RID is dropped. Drops of this list and the two above are counted in `dropped-unknown-rid`.
//!   A change applies to RIDs learned or set afterwards.
//! - two `sink_%u` pads with one RID (a layer whose SSRC changed: a new webrtcbin pad): the last
//!   to claim the RID (learned or set), in practice the newer pad, carries the layer; the other
//!   one's packets are dropped. Releasing it hands the layer back to the remaining pad.
//!
//! Per src pad:
//! - `layer` (string, default `""`): `""` forwards the always `sink` pad as above. A RID selects
//!   that layer: the pad keeps forwarding its current layer until the first packet of a
//!   *keyframe* of the wanted layer arrives, then switches (sequence numbers continue, timestamps
//!   follow the running time, the first packet after the switch carries `DISCONT`). A pad with
//!   no current layer yet starts on the wanted layer's first keyframe. Setting `layer` on an
//!   active pad that does not forward that layer yet asks for a keyframe on the layer's sink pad
//!   (force-key-unit, throttled per sink pad by `keyframe-min-interval`); while the switch is
//!   pending, a throttled request is retried on a later packet of the layer once the interval
//!   has passed, and a sent one again after `max(keyframe-min-interval, 500 ms)` without a
//!   keyframe. A request for a layer a pad waits for is held back until 320 ms after the last
//!   request on any layer (Chrome drops requests within 300 ms of the last one it took, and
//!   answers one with keyframes on every layer), then goes out with a packet of the layer.
//!   A gated pad (`active=false`) does not switch; activating it asks for a keyframe of its
//!   wanted layer. Set `ssrc` on such pads: each layer has its own SSRC.
//! - `drop-while-switching` (bool, default false): while a switch waits for the wanted layer's
//!   keyframe, the pad forwards nothing of its current layer (for a subscriber whose link drops
//!   packets: the old layer would crowd out the keyframe). The picture holds still until the
//!   keyframe arrives.
//! - `current-layer` (string, read-only): the layer forwarded now, `""` if none yet.
//!
//! Keyframes are found without decoding, from the `encoding-name` of the layer caps: VP8
//! (RFC 7741), H264 (RFC 6184: IDR or SPS, single NAL, STAP-A, FU-A start), VP9 and AV1; other
//! encodings switch on the next packet. Payloads are parsed only on layers a pad waits for.
//! A packet of a layer no src pad has as current or wanted layer is dropped right away.
//!
//! Layer activity: a layer is active while its packets arrive and inactive after `layer-timeout`
//! ms (uint, default 1000) without any. Timeouts are noticed lazily, when packets of any layer
//! arrive (checked at most every 100 ms); a layer is active again with its next packet.
//! Read-only `active-layers` (string) lists the active RIDs, comma-separated, in `rids` order
//! (learning order when `rids` is empty). The forwarder never switches a pad by itself when its
//! current layer stops: the application picks another one (`layer`) on `lamina-layers`.
//! Read-only `layer-bytes` (string, `rid=bytes` pairs in the same order) counts each layer's
//! received bytes, so reading it twice gives the layers' bitrates.
//!
//! Element messages (`GstMessageElement`, posted from the streaming thread, no lock held):
//! - `lamina-layers`, field `layers` (string, as `active-layers`), whenever the set of active
//!   layers changes;
//! - `lamina-layer-switched`, fields `pad` (string, src pad name) and `layer` (string, RID),
//!   whenever a src pad switches to a layer (not when `layer` is set to `""`).
//!
//! Statistics: `layer-switches` (u64), `dropped-unknown-rid` (u64).
//!
//! Events of the layer sinks: src pads get the first stream-start of any layer, the layer caps
//! (normalised as above without the layer's `ssrc`, pushed again only when they change) and the
//! segment (again only when it changes); a new src pad gets these replayed when the always
//! `sink` pad has none. EOS is forwarded once every `sink_%u` pad got EOS. Other events of one
//! layer (flushes, tags, gaps, packet-lost notices) are not forwarded. Upstream, a src pad with a
//! `layer` sends force-key-unit and other events to the sink pad of its current layer (wanted
//! layer while it has none), and retransmission requests, translated, to the sink pad whose
//! stream has the input SSRC.
//!
//! ```text
//! GST_PLUGIN_PATH=target/debug gst-launch-1.0 -m \
//!   laminaforwarder name=f rids=l,h sink_0::rid=h sink_1::rid=l \
//!     src_0::active=true src_0::layer=h src_0::ssrc=1234 \
//!   videotestsrc num-buffers=60 ! vp8enc deadline=1 ! rtpvp8pay pt=96 ! f.sink_0 \
//!   videotestsrc num-buffers=60 ! video/x-raw,width=160,height=120 ! vp8enc deadline=1 ! \
//!     rtpvp8pay pt=96 ! f.sink_1 \
//!   f.src_0 ! queue ! rtpvp8depay ! vp8dec ! fakesink
//! ```
//! `rtpvp8pay` adds no RID header extension, so the RIDs are set on the pads (`sink_N::rid`,
//! through the child proxy; from code, `pad.set_property("rid", "h")` after requesting it).
//! `-m` shows the `lamina-layers` and `lamina-layer-switched` messages; EOS comes once both
//! layers ended.

use gst::glib;
use gst::prelude::*;

mod caps;
pub mod codec;
mod hdrext;
mod imp;
mod keyframe;
mod layer_sink;
mod pad;
mod properties;
pub mod rewrite;
mod rid;
mod simulcast;
mod sink;
mod twcc;
mod upstream;

pub use layer_sink::{MESSAGE_LAYERS, MESSAGE_LAYER_SWITCHED};
pub use twcc::{MAX_ONE_BYTE_ID, TWCC_PACKETS_EVENT, TWCC_URI};

glib::wrapper! {
    /// The `laminaforwarder` element (GType `GstLaminaForwarder`); see the module docs.
    pub struct LaminaForwarder(ObjectSubclass<imp::LaminaForwarder>)
        @extends gst::Element, gst::Object,
        @implements gst::ChildProxy;
}

glib::wrapper! {
    /// A `laminaforwarder` request src pad (GType `GstLaminaForwarderPad`), one per subscriber,
    /// with the properties `active`, `pt`, `ssrc`, `twcc-ext-id`, `layer`,
    /// `drop-while-switching` and `current-layer`.
    pub struct LaminaForwarderPad(ObjectSubclass<pad::LaminaForwarderPad>)
        @extends gst::Pad, gst::Object;
}

glib::wrapper! {
    /// A `laminaforwarder` request sink pad `sink_%u` (GType `GstLaminaForwarderSinkPad`), one
    /// per simulcast layer SSRC, with the property `rid`.
    pub struct LaminaForwarderSinkPad(ObjectSubclass<layer_sink::LaminaForwarderSinkPad>)
        @extends gst::Pad, gst::Object;
}

/// Registers `laminaforwarder` (rank NONE) with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "laminaforwarder",
        gst::Rank::NONE,
        LaminaForwarder::static_type(),
    )
}
