//! Helpers of the `laminaforwarder` simulcast tests (`forwarder_simulcast.rs`,
//! `forwarder_layer_drop.rs`): hand-built VP8/H264 packets with the RID extension, layers
//! feeding `sink_%u` pads, subscribers on src pads, bus messages.
#![allow(dead_code)]

use gst::prelude::*;
use gst_check::Harness;

use crate::support::*;

/// Header extension id of the RID in these tests.
pub const RID_EXT: u8 = 3;
pub const SSRC_L: u32 = 0x1111;
pub const SSRC_M: u32 = 0x2222;
pub const SSRC_H: u32 = 0x3333;
/// 33 ms per frame at 90 kHz.
pub const TICKS_PER_FRAME: u32 = 2970;

/// How a packet carries its RID.
#[derive(Debug, Clone, Copy)]
pub enum Rid<'a> {
    None,
    /// One-byte header extension (0xBEDE) with this id.
    One(u8, &'a str),
    /// Two-byte header extension (0x100x) with this id.
    Two(u8, &'a str),
}

/// Codec payloads: VP8 (a descriptor with S=1, PID=0, then the payload header with P) or H264
/// (a keyframe is an FU-A start of an IDR, a delta frame a non-IDR slice).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Codec {
    Vp8,
    H264,
}

/// An RTP packet: PT 96, payload `[codec bytes.., tag, seq]` so the test can tell layers apart.
pub fn packet(
    codec: Codec,
    (ssrc, seq, ts, pts_ms): (u32, u16, u32, u64),
    rid: Rid<'_>,
    key: bool,
    tag: u8,
) -> gst::Buffer {
    let (bits, mut ext) = match rid {
        Rid::None => (0u16, Vec::new()),
        Rid::One(id, r) => {
            let len = u8::try_from(r.len()).expect("short rid");
            let mut e = vec![(id << 4) | (len - 1)];
            e.extend_from_slice(r.as_bytes());
            (0xBEDE, e)
        }
        Rid::Two(id, r) => {
            let mut e = vec![id, u8::try_from(r.len()).expect("short rid")];
            e.extend_from_slice(r.as_bytes());
            (0x1000, e)
        }
    };
    while ext.len() % 4 != 0 {
        ext.push(0);
    }
    let x = if matches!(rid, Rid::None) { 0 } else { 0x10 };
    let mut data = vec![0x80 | x, 96];
    data.extend_from_slice(&seq.to_be_bytes());
    data.extend_from_slice(&ts.to_be_bytes());
    data.extend_from_slice(&ssrc.to_be_bytes());
    if x != 0 {
        data.extend_from_slice(&bits.to_be_bytes());
        data.extend_from_slice(&u16::try_from(ext.len() / 4).unwrap().to_be_bytes());
        data.extend_from_slice(&ext);
    }
    match (codec, key) {
        (Codec::Vp8, true) => data.extend_from_slice(&[0x10, 0x00]),
        (Codec::Vp8, false) => data.extend_from_slice(&[0x10, 0x01]),
        (Codec::H264, true) => data.extend_from_slice(&[0x7c, 0x85]),
        (Codec::H264, false) => data.extend_from_slice(&[0x41, 0x9a]),
    }
    data.extend_from_slice(&[tag, seq as u8]);
    let mut buf = gst::Buffer::from_mut_slice(data);
    buf.get_mut()
        .expect("new buffer")
        .set_pts(gst::ClockTime::from_mseconds(pts_ms));
    buf
}

pub fn layer_caps(codec: Codec, ssrc: u32, rid: &str) -> String {
    let name = match codec {
        Codec::Vp8 => "VP8",
        Codec::H264 => "H264",
    };
    format!(
        "application/x-rtp, media=(string)video, encoding-name=(string){name}, \
         clock-rate=(int)90000, payload=(int)96, ssrc=(uint){ssrc}, rid=(string){rid}, \
         extmap-3=(string)urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
    )
}

/// What feeds a layer sink pad.
pub enum Feed {
    Harness(Harness),
    /// A plain src pad linked to a pad requested with `request_pad_simple` (a harness would
    /// release its pad again at teardown, a GLib critical once the test released it).
    Pad(gst::Pad),
}

/// Links a new plain src pad to a new `sink_%u` pad of `el` and sends the stream's events.
pub fn plain_feed(el: &gst::Element, stream_id: &str, caps: &str) -> (gst::Pad, gst::Pad) {
    let sink = el.request_pad_simple("sink_%u").expect("layer sink pad");
    let src = gst::Pad::builder(gst::PadDirection::Src)
        .event_function(|_, _, _| true)
        .build();
    src.set_active(true).expect("activate");
    src.link(&sink).expect("link");
    src.push_event(gst::event::StreamStart::new(stream_id));
    let caps: gst::Caps = caps.parse().expect("caps");
    src.push_event(gst::event::Caps::new(&caps));
    src.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    (src, sink)
}

/// One simulcast layer of the publisher, feeding a `sink_%u` pad.
pub struct Layer {
    pub feed: Feed,
    pub codec: Codec,
    pub ssrc: u32,
    pub rid: &'static str,
    pub two_byte: bool,
    /// Packets that still carry the RID extension.
    pub rid_packets: u32,
    pub tag: u8,
    pub base_ts: u32,
    pub seq: u16,
}

impl Layer {
    pub fn new(el: &gst::Element, pad: &str, rid: &'static str, ssrc: u32) -> Self {
        Self::with(el, pad, rid, ssrc, Codec::Vp8, false)
    }

    pub fn with(
        el: &gst::Element,
        pad: &str,
        rid: &'static str,
        ssrc: u32,
        codec: Codec,
        two_byte: bool,
    ) -> Self {
        let mut h = Harness::with_element(el, Some(pad), None);
        h.set_src_caps_str(&layer_caps(codec, ssrc, rid));
        Self::fed_by(Feed::Harness(h), rid, ssrc, codec, two_byte)
    }

    /// A VP8 layer on a new `sink_%u` pad fed by a plain src pad; returns it and the sink pad.
    pub fn plain(el: &gst::Element, rid: &'static str, ssrc: u32) -> (Self, gst::Pad) {
        let (src, sink) = plain_feed(
            el,
            &format!("{rid}-{ssrc}"),
            &layer_caps(Codec::Vp8, ssrc, rid),
        );
        (
            Self::fed_by(Feed::Pad(src), rid, ssrc, Codec::Vp8, false),
            sink,
        )
    }

    pub fn fed_by(feed: Feed, rid: &'static str, ssrc: u32, codec: Codec, two_byte: bool) -> Self {
        Self {
            feed,
            codec,
            ssrc,
            rid,
            two_byte,
            rid_packets: 3,
            tag: rid.as_bytes()[0],
            base_ts: ssrc.wrapping_mul(1000),
            seq: (ssrc as u16).wrapping_mul(7),
        }
    }

    /// Sends frame `frame` (one packet, at 33 ms per frame).
    pub fn send(&mut self, frame: u32, key: bool) {
        let rid = match (self.rid_packets, self.two_byte) {
            (0, _) => Rid::None,
            (_, false) => Rid::One(RID_EXT, self.rid),
            (_, true) => Rid::Two(RID_EXT, self.rid),
        };
        self.rid_packets = self.rid_packets.saturating_sub(1);
        let buf = packet(
            self.codec,
            (
                self.ssrc,
                self.seq,
                self.base_ts.wrapping_add(TICKS_PER_FRAME * frame),
                33 * u64::from(frame),
            ),
            rid,
            key,
            self.tag,
        );
        self.seq = self.seq.wrapping_add(1);
        self.push_raw(buf);
    }

    pub fn push_raw(&mut self, buf: gst::Buffer) {
        let result = match &mut self.feed {
            Feed::Harness(h) => h.push(buf),
            Feed::Pad(p) => p.push(buf),
        };
        assert_eq!(result, Ok(gst::FlowSuccess::Ok));
    }

    pub fn h(&mut self) -> &mut Harness {
        match &mut self.feed {
            Feed::Harness(h) => h,
            Feed::Pad(_) => panic!("not fed by a harness"),
        }
    }

    pub fn key_unit_requests(&mut self) -> usize {
        drain_key_unit_requests(self.h()).len()
    }
}

/// A forwarder reading RIDs from extension 3, accepting `rids`, with a bus for its messages and
/// keyframe requests throttled far beyond the test's duration.
pub fn simulcast_forwarder(rids: &str) -> (gst::Element, gst::Bus) {
    let el = forwarder();
    el.set_property("rid-extension-id", u32::from(RID_EXT));
    el.set_property("rids", rids);
    el.set_property("keyframe-min-interval", 60_000u32);
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    (el, bus)
}

/// A subscriber harness on `src` with the given layer, SSRC 4242, active.
pub fn subscriber(el: &gst::Element, src: &str, layer: &str) -> Harness {
    let h = Harness::with_element(el, None, Some(src));
    let p = pad(el, src);
    p.set_property("ssrc", 4242u32);
    p.set_property("layer", layer);
    p.set_property("active", true);
    h
}

/// All queued element messages' structures.
pub fn messages(bus: &gst::Bus) -> Vec<gst::Structure> {
    std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Element]))
        .filter_map(|m| m.structure().map(|s| s.to_owned()))
        .collect()
}

pub fn named<'a>(msgs: &'a [gst::Structure], name: &str) -> Vec<&'a gst::Structure> {
    msgs.iter().filter(|s| s.name() == name).collect()
}

pub fn layers_values(msgs: &[gst::Structure]) -> Vec<String> {
    named(msgs, "lamina-layers")
        .iter()
        .map(|s| s.get::<String>("layers").expect("layers field"))
        .collect()
}

pub fn current_layer(el: &gst::Element, src: &str) -> String {
    pad(el, src).property::<String>("current-layer")
}

/// `(tag, seq, ts, discont)` of the buffers queued on `h`.
pub fn pulled(h: &mut Harness) -> Vec<(u8, u16, u32, bool)> {
    std::iter::from_fn(|| h.try_pull())
        .map(|b| {
            let p = payload(&b);
            let hd = hdr(&b);
            assert_eq!(hd.ssrc, 4242, "rewritten SSRC");
            (
                p[p.len() - 2],
                hd.seq,
                hd.ts,
                b.flags().contains(gst::BufferFlags::DISCONT),
            )
        })
        .collect()
}
