//! RTP caps for the transceivers webrtcbin answers with.
//!
//! Lamina answers exactly one codec per m-line, with the payload type the client offered:
//! VP8 for video, Opus for audio. webrtcbin 1.22 builds the answer from the transceiver caps, so
//! those caps carry everything the answer must contain: `rtcp-fb-*` fields for the feedback we
//! want, `extmap-<id>` fields for the header extensions we keep (it drops every extmap that is
//! not in the caps), and, on sending m-lines, a fixed `ssrc`.

use gst_sdp::SDPMediaRef;
use gstlamina::forwarder::MAX_ONE_BYTE_ID;

use crate::ids::TrackKind;

/// Header extension: transport-wide congestion control sequence numbers.
pub(crate) use gstlamina::forwarder::TWCC_URI as EXT_TWCC;
/// Header extension: client-to-mixer audio level.
pub(crate) const EXT_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// Header extension: the RID of a simulcast stream (RFC 8852).
pub(crate) const EXT_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// Header extension: the RID of the stream an RTX stream repairs (RFC 8852).
pub(crate) const EXT_REPAIRED_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
/// Header extension: the m-line's mid (RFC 8843); browsers require it next to the RID one.
pub(crate) const EXT_MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

/// A published m-line's answer caps, and what the forwarder needs to tell its simulcast
/// streams apart.
#[derive(Debug, Clone)]
pub(crate) struct Published {
    /// The codec.
    pub codec: Codec,
    /// Caps for `add-transceiver(recvonly, caps)`.
    pub caps: gst::Caps,
    /// Simulcast layers (RIDs) received on the m-line; empty without simulcast.
    pub rids: Vec<String>,
    /// The offer's id of the RID header extension, when simulcast is answered.
    pub rid_ext: Option<u32>,
}

/// Feedback kept on the publisher (receiving) side.
const PUBLISH_FB: &[&str] = &[
    "rtcp-fb-nack",
    "rtcp-fb-nack-pli",
    "rtcp-fb-ccm-fir",
    "rtcp-fb-transport-cc",
];
/// Feedback kept on the subscriber (sending) side: loss and keyframe requests, and
/// transport-wide congestion control for the downlink estimate. (webrtcbin drops `nack` again
/// from the answer of a transceiver without `do-nack`.)
const SUBSCRIBE_FB: &[&str] = &[
    "rtcp-fb-nack",
    "rtcp-fb-nack-pli",
    "rtcp-fb-ccm-fir",
    "rtcp-fb-transport-cc",
];

/// The codec a published track carries, as chosen from its publisher's offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Codec {
    /// Audio or video.
    pub kind: TrackKind,
    /// Upper-case encoding name (`VP8`, `OPUS`).
    pub encoding_name: String,
    /// RTP clock rate.
    pub clock_rate: i32,
}

/// Media kind of an SDP m-line, if audio or video.
pub(crate) fn media_kind(media: &SDPMediaRef) -> Option<TrackKind> {
    match media.media() {
        Some("audio") => Some(TrackKind::Audio),
        Some("video") => Some(TrackKind::Video),
        _ => None,
    }
}

fn supported(kind: TrackKind, name: &str, clock_rate: i32) -> bool {
    match kind {
        TrackKind::Video => name.eq_ignore_ascii_case("VP8") && clock_rate == 90000,
        TrackKind::Audio => name.eq_ignore_ascii_case("OPUS") && clock_rate == 48000,
    }
}

/// The offered formats of an m-line as (pt, caps structure named `application/x-rtp`).
fn offered_formats(media: &SDPMediaRef) -> Vec<(i32, gst::Structure)> {
    media
        .formats()
        .filter_map(|f| f.parse::<i32>().ok())
        .filter_map(|pt| {
            let caps = media.caps_from_media(pt)?;
            let mut s = caps.structure(0)?.to_owned();
            s.set_name("application/x-rtp");
            Some((pt, s))
        })
        .collect()
}

fn codec_of(kind: TrackKind, s: &gst::StructureRef) -> Option<Codec> {
    let name = s.get::<&str>("encoding-name").ok()?;
    let clock_rate = s.get::<i32>("clock-rate").ok()?;
    supported(kind, name, clock_rate).then(|| Codec {
        kind,
        encoding_name: name.to_ascii_uppercase(),
        clock_rate,
    })
}

/// Keeps only the RTP basics, the fmtp parameters and the listed feedback fields.
fn filter_fields(s: &mut gst::Structure, keep_fb: &[&str]) {
    let drop: Vec<String> = s
        .fields()
        .filter(|f| {
            (f.starts_with("rtcp-fb-") && !keep_fb.contains(&f.as_str()))
                || f.starts_with("extmap-")
                || f.starts_with("a-")
                || f.starts_with("rid-")
                || *f == "ssrc"
        })
        .map(|f| f.to_string())
        .collect();
    for f in drop {
        s.remove_field(f.as_str());
    }
}

/// `a=extmap` lines of an m-line (and of the session) as (id, uri).
fn extmaps<'a>(
    media: &'a SDPMediaRef,
    session: &'a gst_sdp::SDPMessageRef,
) -> impl Iterator<Item = (u32, &'a str)> + 'a {
    media
        .attributes()
        .chain(session.attributes())
        .filter(|a| a.key() == "extmap")
        .filter_map(|a| {
            let mut parts = a.value()?.split_whitespace();
            let id = parts.next()?.split('/').next()?.parse::<u32>().ok()?;
            Some((id, parts.next()?))
        })
}

/// Caps for `add-transceiver(recvonly, caps)` on a client's sendonly m-line: the first supported
/// codec of the offer with the offer's PT, keyframe/TWCC feedback and the TWCC/audio-level
/// extmaps under the offer's ids. `None` when the m-line offers no supported codec.
///
/// `rids` are the simulcast layers the offer sends (`OfferSummary`'s `MLine::rids`). When there
/// are some and the offer maps the RID extension, the answer receives them: `rid-<id>=recv`
/// fields and `a-simulcast=recv <ids>` become `a=rid:<id> recv` and `a=simulcast:recv …`
/// (webrtcbin 1.22 copies them into the answer), with the RID, repaired-RID and MID extmaps.
/// Without the RID extension simulcast is not answered and the browser sends one stream.
pub(crate) fn publisher_caps(
    media: &SDPMediaRef,
    session: &gst_sdp::SDPMessageRef,
    rids: &[String],
) -> Option<Published> {
    let kind = media_kind(media)?;
    let (_, mut s, codec) = offered_formats(media)
        .into_iter()
        .find_map(|(pt, s)| codec_of(kind, &s).map(|c| (pt, s, c)))?;
    filter_fields(&mut s, PUBLISH_FB);
    let rid_ext = extmaps(media, session)
        .find(|(_, uri)| *uri == EXT_RID)
        .map(|(id, _)| id)
        .filter(|_| kind == TrackKind::Video && !rids.is_empty());
    for (id, uri) in extmaps(media, session) {
        let keep = uri == EXT_TWCC
            || (kind == TrackKind::Audio && uri == EXT_AUDIO_LEVEL)
            || (rid_ext.is_some() && [EXT_RID, EXT_REPAIRED_RID, EXT_MID].contains(&uri));
        if keep {
            s.set(format!("extmap-{id}").as_str(), uri);
        }
    }
    let rids = if rid_ext.is_some() {
        rids.to_vec()
    } else {
        Vec::new()
    };
    if !rids.is_empty() {
        for rid in &rids {
            s.set(format!("rid-{rid}").as_str(), "recv");
        }
        s.set("a-simulcast", format!("recv {}", rids.join(";")));
    }
    Some(Published {
        codec,
        caps: gst::Caps::builder_full().structure(s).build(),
        rids,
        rid_ext,
    })
}

/// A sending (subscriber) m-line's `codec-preferences`.
#[derive(Debug, Clone)]
pub(crate) struct Subscribed {
    /// The subscriber's payload type for the codec.
    pub pt: u32,
    /// The caps.
    pub caps: gst::Caps,
    /// The subscriber's one-byte id of the TWCC header extension, when it offered one and
    /// `twcc` was asked for.
    pub twcc_ext: Option<u32>,
}

/// Caps for the `codec-preferences` of a sending (subscriber) m-line: the offered format of
/// `codec` with the subscriber's PT, keyframe feedback, and the fixed `ssrc` we forward with;
/// with `twcc`, also the offer's transport-cc feedback and extmap (a one-byte id, 1–14).
/// `None` when the subscriber did not offer that codec.
pub(crate) fn subscriber_caps(
    media: &SDPMediaRef,
    session: &gst_sdp::SDPMessageRef,
    codec: &Codec,
    ssrc: u32,
    twcc: bool,
) -> Option<Subscribed> {
    if media_kind(media)? != codec.kind {
        return None;
    }
    let (pt, mut s) = offered_formats(media)
        .into_iter()
        .find(|(_, s)| codec_of(codec.kind, s).as_ref() == Some(codec))?;
    let twcc_ext = extmaps(media, session)
        .find(|(id, uri)| *uri == EXT_TWCC && (1..=u32::from(MAX_ONE_BYTE_ID)).contains(id))
        .map(|(id, _)| id)
        .filter(|_| twcc && s.has_field("rtcp-fb-transport-cc"));
    let keep: &[&str] = if twcc_ext.is_some() {
        SUBSCRIBE_FB
    } else {
        &SUBSCRIBE_FB[..3]
    };
    filter_fields(&mut s, keep);
    if let Some(id) = twcc_ext {
        s.set(format!("extmap-{id}").as_str(), EXT_TWCC);
    }
    s.set("ssrc", ssrc);
    Some(Subscribed {
        pt: pt as u32,
        caps: gst::Caps::builder_full().structure(s).build(),
        twcc_ext,
    })
}

/// Whether the m-line offers an `rtx` format for payload type `pt` (`a=fmtp:<rtx> apt=<pt>`).
pub(crate) fn offers_rtx(media: &SDPMediaRef, pt: u32) -> bool {
    offered_formats(media).iter().any(|(_, s)| {
        s.get::<&str>("encoding-name")
            .is_ok_and(|n| n.eq_ignore_ascii_case("RTX"))
            && s.get::<&str>("apt")
                .ok()
                .and_then(|a| a.parse::<u32>().ok())
                == Some(pt)
    })
}

/// Caps that make webrtcbin answer an m-line `inactive`: its first offered format, nothing else.
pub(crate) fn inactive_caps(media: &SDPMediaRef) -> Option<gst::Caps> {
    let (_, mut s) = offered_formats(media).into_iter().next()?;
    filter_fields(&mut s, &[]);
    Some(gst::Caps::builder_full().structure(s).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 100\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\n\
a=rtpmap:96 H264/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
a=rtpmap:100 VP8/90000\r\na=rtcp-fb:100 nack\r\na=rtcp-fb:100 nack pli\r\na=rtcp-fb:100 goog-remb\r\n";

    fn parse() -> gst_sdp::SDPMessage {
        gst::init().unwrap();
        gst_sdp::SDPMessage::parse_buffer(OFFER.as_bytes()).unwrap()
    }

    #[test]
    fn publisher_audio_keeps_pt_fb_and_extmaps() {
        let sdp = parse();
        let media = sdp.media(0).unwrap();
        let p = publisher_caps(media, &sdp, &[]).unwrap();
        assert_eq!(p.codec.encoding_name, "OPUS");
        assert!(p.rids.is_empty());
        let s = p.caps.structure(0).unwrap();
        assert_eq!(s.get::<i32>("payload").unwrap(), 111);
        assert!(s.has_field("rtcp-fb-transport-cc"));
        assert_eq!(s.get::<&str>("extmap-1").unwrap(), EXT_AUDIO_LEVEL);
        assert_eq!(s.get::<&str>("extmap-3").unwrap(), EXT_TWCC);
        assert!(!s.has_field("extmap-4"));
    }

    #[test]
    fn publisher_simulcast_receives_the_rids_with_their_extensions() {
        gst::init().unwrap();
        let offer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n\
a=extmap:13 urn:3gpp:video-orientation\r\n\
a=rtpmap:96 VP8/90000\r\na=rid:l send\r\na=rid:m send\r\na=rid:h send\r\n\
a=simulcast:send l;m;h\r\n";
        let sdp = gst_sdp::SDPMessage::parse_buffer(offer.as_bytes()).unwrap();
        let media = sdp.media(0).unwrap();
        let rids: Vec<String> = ["l", "m", "h"].map(String::from).to_vec();
        let p = publisher_caps(media, &sdp, &rids).unwrap();
        assert_eq!((p.rids.clone(), p.rid_ext), (rids.clone(), Some(10)));
        let s = p.caps.structure(0).unwrap();
        assert_eq!(s.get::<&str>("rid-l").unwrap(), "recv");
        assert_eq!(s.get::<&str>("a-simulcast").unwrap(), "recv l;m;h");
        assert_eq!(s.get::<&str>("extmap-10").unwrap(), EXT_RID);
        assert_eq!(s.get::<&str>("extmap-11").unwrap(), EXT_REPAIRED_RID);
        assert_eq!(s.get::<&str>("extmap-4").unwrap(), EXT_MID);
        assert!(!s.has_field("extmap-13"));
        // Without the RID extension there is no simulcast to answer.
        let bare = offer.replace(
            "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n",
            "",
        );
        let sdp = gst_sdp::SDPMessage::parse_buffer(bare.as_bytes()).unwrap();
        let p = publisher_caps(sdp.media(0).unwrap(), &sdp, &rids).unwrap();
        assert!(p.rids.is_empty() && p.rid_ext.is_none());
        assert!(!p.caps.structure(0).unwrap().has_field("a-simulcast"));
    }

    #[test]
    fn subscriber_video_picks_offered_vp8_pt() {
        let sdp = parse();
        let media = sdp.media(1).unwrap();
        let vp8 = Codec {
            kind: TrackKind::Video,
            encoding_name: "VP8".into(),
            clock_rate: 90000,
        };
        let sub = subscriber_caps(media, &sdp, &vp8, 4242, true).unwrap();
        assert_eq!(sub.pt, 100);
        // Without transport-cc feedback offered for VP8, no TWCC.
        assert_eq!(sub.twcc_ext, None);
        let s = sub.caps.structure(0).unwrap();
        assert_eq!(s.get::<u32>("ssrc").unwrap(), 4242);
        assert!(s.has_field("rtcp-fb-nack-pli"));
        assert!(s.has_field("rtcp-fb-nack"));
        assert!(!s.has_field("rtcp-fb-goog-remb"));
        let opus = Codec {
            kind: TrackKind::Audio,
            encoding_name: "OPUS".into(),
            clock_rate: 48000,
        };
        assert!(subscriber_caps(media, &sdp, &opus, 1, true).is_none());
        // Audio offered with transport-cc: kept when asked for, under the offer's id.
        let audio = sdp.media(0).unwrap();
        let sub = subscriber_caps(audio, &sdp, &opus, 7, true).unwrap();
        assert_eq!(sub.twcc_ext, Some(3));
        let s = sub.caps.structure(0).unwrap();
        assert_eq!(s.get::<&str>("extmap-3").unwrap(), EXT_TWCC);
        assert!(s.has_field("rtcp-fb-transport-cc"));
        let sub = subscriber_caps(audio, &sdp, &opus, 7, false).unwrap();
        assert_eq!(sub.twcc_ext, None);
        let s = sub.caps.structure(0).unwrap();
        assert!(!s.has_field("extmap-3") && !s.has_field("rtcp-fb-transport-cc"));
    }

    #[test]
    fn rtx_is_found_by_its_apt() {
        let sdp = parse();
        let media = sdp.media(1).unwrap();
        assert!(offers_rtx(media, 96), "97 is rtx with apt=96");
        assert!(!offers_rtx(media, 100), "no rtx for VP8 in this offer");
    }
}
