//! GStreamer branches of the client participant: test sources that feed its webrtcbin and
//! decoders that count what arrives.

use gst::prelude::*;

/// Payload type the client offers for VP8.
pub const VP8_PT: u32 = 96;
/// Payload type the client offers for Opus.
pub const OPUS_PT: u32 = 111;

/// RTP caps the client offers for a kind. Video offers what a browser offers for loss: generic
/// NACK (`a=rtcp-fb:<pt> nack`, unless `nack` is false) and keyframe requests (PLI, FIR); the
/// `rtx` format that goes with NACK is added by webrtcbin for a transceiver with `do-nack`
/// (see [`set_nack`]).
pub fn rtp_caps(video: bool, nack: bool) -> gst::Caps {
    if video {
        let mut b = gst::Caps::builder("application/x-rtp")
            .field("media", "video")
            .field("encoding-name", "VP8")
            .field("payload", VP8_PT as i32)
            .field("clock-rate", 90000i32);
        if nack {
            b = b.field("rtcp-fb-nack", true);
        }
        b.field("rtcp-fb-nack-pli", true)
            .field("rtcp-fb-ccm-fir", true)
            .build()
    } else {
        gst::Caps::builder("application/x-rtp")
            .field("media", "audio")
            .field("encoding-name", "OPUS")
            .field("payload", OPUS_PT as i32)
            .field("clock-rate", 48000i32)
            .field("encoding-params", "2")
            .build()
    }
}

/// The RFC 6464 client-to-mixer audio level header extension.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// The id the client gives it (Chrome uses 1 as well).
pub const AUDIO_LEVEL_EXT_ID: u8 = 1;

/// Writes the audio-level extension, with the level `level` holds, into every packet leaving
/// `source` (its `src` pad). The payloader's own extension support is turned off: it would
/// add the extension to its caps as `<direction, uri, attributes>`, which webrtcbin's codec
/// preferences (a plain URI) refuse.
pub fn write_audio_level(source: &gst::Bin, level: std::sync::Arc<std::sync::atomic::AtomicU8>) {
    for e in source.iterate_recurse().into_iter().flatten() {
        if e.find_property("auto-header-extension").is_some() {
            e.set_property("auto-header-extension", false);
        }
    }
    let Some(src) = source.static_pad("src") else {
        return;
    };
    src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(gst::PadProbeData::Buffer(buf)) = info.data.as_mut() {
            let value = level.load(std::sync::atomic::Ordering::Relaxed).min(127);
            let b = buf.make_mut();
            if let Ok(mut rtp) = gst_rtp::RTPBuffer::from_buffer_writable(b) {
                let _ = rtp.add_extension_onebyte_header(AUDIO_LEVEL_EXT_ID, &[value]);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// The transport-wide congestion control header extension
/// (draft-holmer-rmcat-transport-wide-cc-extensions-01): a sequence number over every packet of
/// the transport, which the receiver acknowledges (with arrival times) in TWCC feedback.
pub const TWCC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// The id the client gives it (Chrome uses 3 as well); distinct from the audio-level (1) and
/// simulcast (4, 10, 11) ids, as all m-lines share one bundled transport.
pub const TWCC_EXT_ID: u8 = 3;

/// The `codec-preferences` fields that make webrtcbin 1.22 offer transport-wide congestion
/// control like a browser: `rtcp-fb-transport-cc` becomes `a=rtcp-fb:<pt> transport-cc`,
/// `extmap-<id>` the TWCC `a=extmap` line. Once the answer keeps them, webrtcbin's pt map for
/// the m-line carries the `extmap-<id>` field and its rtpsession, on receiving, reads the
/// transport-wide sequence numbers and sends TWCC feedback (RTCP RTPFB, FMT 15) for them.
pub fn transport_cc_caps(caps: &mut gst::Caps) {
    let caps = caps.make_mut();
    caps.set("rtcp-fb-transport-cc", true);
    caps.set(format!("extmap-{TWCC_EXT_ID}"), TWCC_URI);
}

/// Runs `on_feedback` for every TWCC feedback packet (RTCP RTPFB, FMT 15) `webrtc`'s
/// rtpsessions send: a probe on its rtpbin's `send_rtcp_src_*` pads, before SRTP.
pub fn count_twcc_feedback(webrtc: &gst::Element, on_feedback: impl Fn() + Send + Sync + 'static) {
    let Some(rtpbin) = webrtc
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("rtpbin"))
    else {
        return;
    };
    let on_feedback = std::sync::Arc::new(on_feedback);
    rtpbin.connect_pad_added(move |_, pad| {
        if pad.direction() != gst::PadDirection::Src || !pad.name().starts_with("send_rtcp_src") {
            return;
        }
        let on_feedback = on_feedback.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(buf)) = &info.data {
                if let Ok(map) = buf.map_readable() {
                    for _ in 0..twcc_feedback_packets(&map) {
                        on_feedback();
                    }
                }
            }
            gst::PadProbeReturn::Ok
        });
    });
}

/// The TWCC feedback packets (RTPFB, FMT 15) of a compound RTCP packet.
pub(crate) fn twcc_feedback_packets(mut rtcp: &[u8]) -> usize {
    let mut count = 0;
    while rtcp.len() >= 4 && rtcp[0] >> 6 == 2 {
        if rtcp[1] == 205 && rtcp[0] & 0x1f == 15 {
            count += 1;
        }
        let len = (usize::from(u16::from_be_bytes([rtcp[2], rtcp[3]])) + 1) * 4;
        rtcp = rtcp.get(len..).unwrap_or_default();
    }
    count
}

/// The RFC 8843 MID header extension (what Chrome writes next to the RID).
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// The RFC 8852 RID header extension: the simulcast layer of a stream.
pub const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// The RFC 8852 repaired-RID header extension (offered like Chrome; RTX is never sent here
/// unless the server NACKs).
pub const REPAIRED_RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
/// Extension ids of a simulcast m-line, Chrome's: MID 4, RID 10, repaired RID 11.
pub const MID_EXT_ID: u8 = 4;
/// See [`MID_EXT_ID`].
pub const RID_EXT_ID: u8 = 10;
/// See [`MID_EXT_ID`].
pub const REPAIRED_RID_EXT_ID: u8 = 11;

/// One simulcast layer a simulcast source encodes: RID, downscale factor of the 640x480
/// camera, VP8 target bit rate (bit/s).
#[derive(Debug, Clone, Copy)]
pub struct Layer {
    /// RID.
    pub rid: &'static str,
    /// The camera's width and height divided by this.
    pub scale: u32,
    /// Encoder target, bit/s.
    pub bitrate: u32,
}

/// The layers of a simulcast source, low to high (Chrome's `l`, `m`, `h` at 1/4, 1/2, 1).
pub const SIMULCAST_LAYERS: [Layer; 3] = [
    Layer {
        rid: "l",
        scale: 4,
        bitrate: 100_000,
    },
    Layer {
        rid: "m",
        scale: 2,
        bitrate: 250_000,
    },
    Layer {
        rid: "h",
        scale: 1,
        bitrate: 600_000,
    },
];

/// Size of the camera a simulcast source scales its layers from.
pub const SIMULCAST_SIZE: (u32, u32) = (640, 480);

/// A camera encoded as [`SIMULCAST_LAYERS`], each layer its own payloader with its own SSRC,
/// all merged by an `rtpfunnel` (the bin's `src` pad) onto one m-line.
pub struct SimulcastSource {
    /// The bin; its `src` pad carries the three streams.
    pub bin: gst::Bin,
    /// Per layer (in [`SIMULCAST_LAYERS`] order): RID, SSRC, payloader, its MID extension
    /// (the mid is written once the offer names it: [`SimulcastSource::set_mid`]).
    pub layers: Vec<(&'static str, u32, gst::Element, gst_rtp::RTPHeaderExtension)>,
}

impl SimulcastSource {
    /// Writes `mid` in the MID extension of every layer's packets from now on.
    pub fn set_mid(&self, mid: &str) {
        for (_, _, _, ext) in &self.layers {
            if ext.property::<Option<String>>("mid").as_deref() != Some(mid) {
                ext.set_property("mid", mid);
            }
        }
    }
}

/// A live simulcast camera (see [`SimulcastSource`]): one `videotestsrc` at
/// [`SIMULCAST_SIZE`], 15 frames/s, scaled and VP8-encoded per layer (`deadline=1`, keyframes
/// on request and every 30 s like [`source`]), each `rtpvp8pay` writing the RID
/// (`rtphdrextstreamid`, id [`RID_EXT_ID`]) and MID (`rtphdrextmid`, id [`MID_EXT_ID`])
/// extensions into every packet, like Chrome; `ssrcs` are the layers' SSRCs, low to high.
pub fn simulcast_source(pattern: &str, ssrcs: [u32; 3]) -> Result<SimulcastSource, String> {
    use gst_rtp::prelude::*;
    let (w, h) = SIMULCAST_SIZE;
    let mut desc = format!(
        "videotestsrc is-live=true pattern={pattern} ! video/x-raw,width={w},height={h},framerate=15/1 \
         ! tee name=camera rtpfunnel name=funnel "
    );
    for (layer, ssrc) in SIMULCAST_LAYERS.iter().zip(ssrcs) {
        let Layer {
            rid,
            scale,
            bitrate,
        } = layer;
        desc += &format!(
            "camera. ! queue max-size-buffers=2 leaky=downstream ! videoscale \
             ! video/x-raw,width={},height={} \
             ! vp8enc deadline=1 cpu-used=8 keyframe-max-dist=450 target-bitrate={bitrate} \
             ! rtpvp8pay name=pay_{rid} pt={VP8_PT} ssrc={ssrc} mtu=1200 picture-id-mode=15-bit \
               auto-header-extension=false ! funnel. ",
            w / scale,
            h / scale
        );
    }
    let bin = gst::parse::bin_from_description(&desc, true).map_err(|e| e.to_string())?;
    let mut layers = Vec::new();
    for (layer, ssrc) in SIMULCAST_LAYERS.iter().zip(ssrcs) {
        let pay = bin
            .by_name(&format!("pay_{}", layer.rid))
            .ok_or("simulcast bin without its payloader")?;
        let extension = |factory: &str, id: u8| -> Result<gst_rtp::RTPHeaderExtension, String> {
            let ext = gst::ElementFactory::make(factory)
                .build()
                .map_err(|e| e.to_string())?
                .downcast::<gst_rtp::RTPHeaderExtension>()
                .map_err(|_| format!("{factory} is not an RTP header extension"))?;
            ext.set_id(u32::from(id));
            Ok(ext)
        };
        let rid = extension("rtphdrextstreamid", RID_EXT_ID)?;
        rid.set_property("rid", layer.rid);
        let mid = extension("rtphdrextmid", MID_EXT_ID)?;
        pay.emit_by_name::<()>("add-extension", &[&rid]);
        pay.emit_by_name::<()>("add-extension", &[&mid]);
        layers.push((layer.rid, ssrc, pay, mid));
    }
    Ok(SimulcastSource { bin, layers })
}

/// The payloaders of the simulcast layers by SSRC, for [`route_layer_keyframe_requests`].
pub type LayerPayloaders =
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<u32, gst::Element>>>;

/// Delivers keyframe requests (the server's PLI/FIR about a simulcast layer's SSRC) to that
/// layer's encoder. webrtcbin 1.22's rtpsession turns them into an upstream `GstForceKeyUnit`
/// event with the SSRC, but webrtcbin's own bundle `rtpfunnel` routes it by the SSRC of its
/// input's caps: a transceiver fed several SSRCs (the layers merged by another funnel, whose
/// caps name none) never gets it, and the layer would only start at its next periodic
/// keyframe. So the event is copied where it enters the bundle funnel (rtpbin's
/// `send_rtp_sink_*` pads) into the payloader of the layer named in `layers`.
pub fn route_layer_keyframe_requests(webrtc: &gst::Element, layers: LayerPayloaders) {
    let Some(rtpbin) = webrtc
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("rtpbin"))
    else {
        return;
    };
    rtpbin.connect_pad_added(move |_, pad| {
        if pad.direction() != gst::PadDirection::Sink || !pad.name().starts_with("send_rtp_sink") {
            return;
        }
        let layers = layers.clone();
        pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            let Some(gst::PadProbeData::Event(event)) = &info.data else {
                return gst::PadProbeReturn::Ok;
            };
            let ssrc = event
                .structure()
                .filter(|s| s.name() == "GstForceKeyUnit")
                .and_then(|s| s.get::<u32>("ssrc").ok());
            let payloader = ssrc.and_then(|ssrc| {
                let layers = layers.lock().unwrap_or_else(|e| e.into_inner());
                layers.get(&ssrc).cloned()
            });
            if let Some(src) = payloader.and_then(|p| p.static_pad("src")) {
                src.send_event(event.clone());
            }
            // The original goes on to the bundle funnel, which drops it (dropping it here
            // leaves the pad flagged with pending events, which GStreamer 1.22 trips over).
            gst::PadProbeReturn::Ok
        });
    });
}

/// The `codec-preferences` fields that make webrtcbin 1.22 offer simulcast like Chrome:
/// `rid-<id>=send` and `a-simulcast=send l;m;h` become `a=rid:<id> send` and
/// `a=simulcast:send l;m;h`, `extmap-<id>` the MID, RID and repaired-RID `a=extmap` lines.
pub fn simulcast_caps(caps: &mut gst::Caps) {
    let caps = caps.make_mut();
    for (id, uri) in [
        (MID_EXT_ID, MID_URI),
        (RID_EXT_ID, RID_URI),
        (REPAIRED_RID_EXT_ID, REPAIRED_RID_URI),
    ] {
        caps.set(format!("extmap-{id}"), uri);
    }
    for layer in SIMULCAST_LAYERS {
        caps.set(format!("rid-{}", layer.rid), "send");
    }
    let rids: Vec<&str> = SIMULCAST_LAYERS.iter().map(|l| l.rid).collect();
    caps.set("a-simulcast", format!("send {}", rids.join(";")));
}

/// Turns loss repair on or off for a transceiver, like a browser does for video: with `do-nack`
/// webrtcbin offers an `rtx` payload type (`a=fmtp:<rtx> apt=<pt>`), resends what the server
/// NACKs (sending side) and NACKs gaps itself from its jitter buffer (receiving side).
pub fn set_nack(transceiver: &gst_webrtc::WebRTCRTPTransceiver, on: bool) {
    transceiver.set_property("do-nack", on);
}

/// RTCP bandwidth of the client's RTP sessions, in bytes per second. webrtcbin leaves its
/// rtpsessions at the RFC 3550 default (5 % of an assumed 64 kbit/s, or of what the session
/// sends). With feedback (AVPF), rtpsession sends one early RTCP packet (NACK, PLI) per computed
/// RTCP interval, which at that bandwidth is seconds: most NACKs expire unsent and the repair
/// comes too late. With this budget the interval is a few tens of milliseconds and feedback
/// leaves about as soon as a browser's. (Regular reports still go every `rtcp-min-interval`,
/// ~5 s.)
pub const RTCP_BANDWIDTH: f64 = 125_000.0;

/// How often the client's rtpsessions send TWCC feedback for what they receive (Chrome's
/// default). rtpsession's own default is one feedback per marker bit, i.e. per video frame:
/// under loss the frames' last packets go missing too and feedback dries up exactly when the
/// sender's congestion control needs it.
pub const TWCC_FEEDBACK_INTERVAL: gst::ClockTime = gst::ClockTime::from_mseconds(100);

/// Makes `webrtc`'s loss feedback browser-like: every RTP session it creates gets
/// [`RTCP_BANDWIDTH`] and sends TWCC feedback every [`TWCC_FEEDBACK_INTERVAL`], and its jitter
/// buffers NACK only real gaps (`rtx-next-seqnum=false`:
/// by default they also ask for the next packet whenever it is late, which a frame-paced video
/// sender makes it often).
pub fn browser_like_feedback(webrtc: &gst::Element) {
    let Some(rtpbin) = webrtc
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("rtpbin"))
    else {
        tracing::warn!("client webrtcbin without an rtpbin: RTCP left at its defaults");
        return;
    };
    if let Some(bin) = rtpbin.downcast_ref::<gst::Bin>() {
        bin.connect_element_added(|_, element| {
            if element.type_().name() == "GstRtpSession" {
                // At or above 1.0 the property is an absolute rate (bytes per second).
                element.set_property("rtcp-fraction", RTCP_BANDWIDTH);
                let session = element.property::<glib::Object>("internal-session");
                if session.find_property("twcc-feedback-interval").is_some() {
                    session
                        .set_property("twcc-feedback-interval", TWCC_FEEDBACK_INTERVAL.nseconds());
                }
            }
        });
    }
    rtpbin.connect("new-jitterbuffer", false, |args| {
        let jitterbuffer = args.get(1)?.get::<gst::Element>().ok()?;
        if jitterbuffer.find_property("rtx-next-seqnum").is_some() {
            jitterbuffer.set_property("rtx-next-seqnum", false);
        }
        None
    });
}

/// A live encoded test source ending in an RTP payloader with a fixed `ssrc` (so the offer's
/// `a=ssrc` lines never depend on whether caps already flowed); `pattern` picks the video
/// pattern.
/// Video keyframes come only on request (and every 30 s), so the server's keyframe requests
/// are what makes a new subscriber's video start.
pub fn source(video: bool, pattern: &str, ssrc: u32) -> Result<gst::Bin, String> {
    let desc = if video {
        format!(
            "videotestsrc is-live=true pattern={pattern} ! video/x-raw,width=320,height=240,framerate=15/1 \
             ! vp8enc deadline=1 cpu-used=8 keyframe-max-dist=450 target-bitrate=300000 \
             ! rtpvp8pay pt={VP8_PT} ssrc={ssrc} mtu=1200 picture-id-mode=15-bit"
        )
    } else {
        format!(
            "audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=48000,channels=1 \
             ! opusenc ! rtpopuspay pt={OPUS_PT} ssrc={ssrc}"
        )
    };
    gst::parse::bin_from_description(&desc, true).map_err(|e| e.to_string())
}

/// Why a custom source description cannot be published.
#[derive(Debug, thiserror::Error)]
pub enum CustomSourceError {
    /// `gst::parse` refused the description.
    #[error("cannot parse the pipeline fragment: {0}")]
    Parse(String),
    /// The fragment's last element is not an RTP payloader.
    #[error("the fragment must end in an RTP payloader (e.g. rtpvp8pay, rtpopuspay), not {0}")]
    NoPayloader(String),
    /// The payloader produces another codec than the room forwards for this kind.
    #[error("the payloader {element} does not produce {expected} RTP (the room forwards VP8 video and Opus audio)")]
    Codec {
        /// The payloader's element name.
        element: String,
        /// The encoding the kind requires.
        expected: &'static str,
    },
    /// The participant has stopped.
    #[error("the participant has left")]
    Closed,
}

/// A source bin from a gst-launch style `description` that must end in an RTP payloader for
/// the room's codec of that kind (VP8 for video, Opus for audio). The payloader's `pt` is set
/// to the client's payload type and its `ssrc` to `ssrc` (fixed, so the offer's `a=ssrc` line
/// never depends on caps having flowed). The bin's unlinked src pad is ghosted as `src`.
pub fn custom_source(
    video: bool,
    description: &str,
    ssrc: u32,
) -> Result<gst::Bin, CustomSourceError> {
    let bin = gst::parse::bin_from_description(description, true)
        .map_err(|e| CustomSourceError::Parse(e.to_string()))?;
    let last = bin
        .static_pad("src")
        .and_then(|p| p.downcast::<gst::GhostPad>().ok())
        .and_then(|g| g.target())
        .and_then(|t| t.parent_element())
        .ok_or_else(|| CustomSourceError::NoPayloader("nothing with a free src pad".into()))?;
    let factory = last.factory();
    let name = factory
        .as_ref()
        .map(|f| f.name().to_string())
        .unwrap_or_else(|| last.name().to_string());
    let is_payloader = factory
        .as_ref()
        .and_then(|f| f.metadata(gst::ELEMENT_METADATA_KLASS))
        .is_some_and(|k| k.contains("Payloader"));
    if !is_payloader {
        return Err(CustomSourceError::NoPayloader(name));
    }
    let expected = if video { "VP8" } else { "OPUS" };
    let wanted = gst::Caps::builder("application/x-rtp")
        .field("encoding-name", expected)
        .build();
    let produces = last
        .static_pad("src")
        .is_some_and(|pad| pad.pad_template_caps().can_intersect(&wanted));
    if !produces {
        return Err(CustomSourceError::Codec {
            element: name,
            expected,
        });
    }
    if last.find_property("pt").is_some() {
        last.set_property("pt", if video { VP8_PT } else { OPUS_PT });
    }
    if last.find_property("ssrc").is_some() {
        last.set_property("ssrc", ssrc);
    }
    Ok(bin)
}

/// A decoding sink for a received RTP stream; `on_frame` runs for every decoded buffer, with
/// the width and height of a decoded video frame (`None` for audio). With `keyframe_on_loss`,
/// lost video packets trigger a keyframe request and no frame is decoded until the keyframe
/// arrives (what browsers do).
pub fn decoder(
    video: bool,
    keyframe_on_loss: bool,
    on_frame: impl Fn(Option<(u32, u32)>) + Send + Sync + 'static,
) -> Result<gst::Bin, String> {
    let desc = if video && keyframe_on_loss {
        "rtpvp8depay request-keyframe=true wait-for-keyframe=true ! vp8dec \
         ! fakesink name=sink sync=false async=false"
    } else if video {
        "rtpvp8depay ! vp8dec ! fakesink name=sink sync=false async=false"
    } else {
        "rtpopusdepay ! opusdec ! fakesink name=sink sync=false async=false"
    };
    let bin = gst::parse::bin_from_description(desc, true).map_err(|e| e.to_string())?;
    let sink = bin.by_name("sink").ok_or("decoder bin has no sink")?;
    let pad = sink.static_pad("sink").ok_or("fakesink has no sink pad")?;
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, _| {
        let size = video
            .then(|| pad.current_caps())
            .flatten()
            .and_then(|caps| {
                let s = caps.structure(0)?;
                let (w, h) = (s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?);
                Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?))
            });
        on_frame(size);
        gst::PadProbeReturn::Ok
    });
    Ok(bin)
}

/// Counts the keyframes `source` (a bin ending in a video payloader) encodes: buffers without
/// the delta-unit flag entering its payloader; `on_keyframe` runs for each.
pub fn count_keyframes(source: &gst::Bin, on_keyframe: impl Fn() + Send + Sync + 'static) {
    let payloader = source
        .static_pad("src")
        .and_then(|p| p.downcast::<gst::GhostPad>().ok())
        .and_then(|g| g.target())
        .and_then(|t| t.parent_element());
    if let Some(payloader) = payloader {
        count_payloader_keyframes(&payloader, on_keyframe);
    }
}

/// Runs `on_keyframe` for every keyframe (buffer without the delta-unit flag) entering
/// `payloader`.
pub fn count_payloader_keyframes(
    payloader: &gst::Element,
    on_keyframe: impl Fn() + Send + Sync + 'static,
) {
    if let Some(pad) = payloader.static_pad("sink") {
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                if !b.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                    on_keyframe();
                }
            }
            gst::PadProbeReturn::Ok
        });
    }
}
