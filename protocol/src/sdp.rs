//! A small, pure summary of an SDP offer: its m-lines (kind, mid, direction, SSRCs), its ICE
//! ufrag and its DTLS fingerprint.
//!
//! This is the one place Lamina reads an offer: the room decides from it which remote track
//! goes on which m-line, and the media graph gets it with the offer (ufrag for ICE restarts,
//! fingerprint for DTLS authentication, SSRCs for the kind of each received stream). The SDP
//! work proper is done by GStreamer's `webrtcbin`.

use crate::TrackKind;

/// Most m-lines accepted in one offer.
pub const MAX_MLINES: usize = 64;

/// Direction of an m-line, as the offerer wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendonly`: the client publishes on it.
    SendOnly,
    /// `a=recvonly`: the client wants to receive on it.
    RecvOnly,
    /// `a=sendrecv` (or no direction attribute): refused by this server.
    SendRecv,
    /// `a=inactive`: a removed track.
    Inactive,
}

/// One m-line of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MLine {
    /// Position in the SDP (0-based).
    pub index: usize,
    /// Audio or video; `None` for other media (e.g. `application`).
    pub kind: Option<TrackKind>,
    /// Its `a=mid`.
    pub mid: String,
    /// Its direction.
    pub direction: Direction,
    /// SSRCs announced with `a=ssrc:<ssrc> …` (each once, in order).
    pub ssrcs: Vec<u32>,
    /// Simulcast layers the client sends on a `sendonly` video m-line: the RIDs of
    /// `a=simulcast:send …` (first alternative of each stream, `~` paused ones included) that
    /// also have an `a=rid:<id> send` line, in the offer's order. Empty without simulcast, and
    /// when fewer than two valid RIDs are left (see [`MAX_RIDS`], [`valid_rid`]).
    pub rids: Vec<String>,
}

/// Most simulcast layers read from one m-line.
pub const MAX_RIDS: usize = 4;

/// Whether `rid` is a RID this server accepts: 1–16 characters of `[A-Za-z0-9_-]` (RFC 8851's
/// syntax, with a length limit).
pub fn valid_rid(rid: &str) -> bool {
    (1..=16).contains(&rid.len())
        && rid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The send RIDs of an m-line from its `a=simulcast` value and its `a=rid` values.
fn send_rids(simulcast: Option<&str>, rid_lines: &[&str]) -> Vec<String> {
    let Some(value) = simulcast else {
        return Vec::new();
    };
    // `send l;m;h` or `send l;m;h recv x`: the list after `send`.
    let mut words = value.split_whitespace();
    let mut list = None;
    while let Some(w) = words.next() {
        if w == "send" {
            list = words.next();
            break;
        }
    }
    let declared_send = |rid: &str| {
        rid_lines.iter().any(|l| {
            let mut f = l.split_whitespace();
            f.next() == Some(rid) && f.next() == Some("send")
        })
    };
    let mut rids: Vec<String> = Vec::new();
    for stream in list.unwrap_or("").split(';') {
        let first = stream.split(',').next().unwrap_or("");
        let rid = first.strip_prefix('~').unwrap_or(first);
        if valid_rid(rid) && declared_send(rid) && !rids.iter().any(|r| r == rid) {
            rids.push(rid.to_owned());
        }
        if rids.len() == MAX_RIDS {
            break;
        }
    }
    if rids.len() < 2 {
        rids.clear();
    }
    rids
}

/// What the room needs to know about an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSummary {
    /// The first `a=ice-ufrag` (session or media level).
    pub ice_ufrag: Option<String>,
    /// The first `a=fingerprint` value (session level, else the first m-line that has one).
    pub fingerprint: Option<String>,
    /// The m-lines in order.
    pub mlines: Vec<MLine>,
}

impl OfferSummary {
    /// The m-line with this mid.
    pub fn mline(&self, mid: &str) -> Option<&MLine> {
        self.mlines.iter().find(|m| m.mid == mid)
    }
}

/// Why an offer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// It does not start with `v=0`.
    #[error("not an SDP (must start with v=0)")]
    NotSdp,
    /// It has no m-line.
    #[error("offer has no m-lines")]
    NoMLines,
    /// It has more than [`MAX_MLINES`] m-lines.
    #[error("offer has too many m-lines (limit {MAX_MLINES})")]
    TooManyMLines,
    /// An m-line has no `a=mid`.
    #[error("m-line {0} has no a=mid")]
    MissingMid(usize),
    /// Two m-lines share a mid.
    #[error("duplicate mid {0}")]
    DuplicateMid(String),
    /// An m-line is `sendrecv`, which the Membrane protocol never uses.
    #[error("m-line {0} is sendrecv; only sendonly, recvonly or inactive are accepted")]
    SendRecv(usize),
    /// A sending or receiving audio/video m-line offers only codecs the server cannot forward.
    #[error("m-line {0} offers no supported codec (Opus for audio, VP8 for video)")]
    NoSupportedCodec(usize),
}

/// What the offered formats of an m-line allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codecs {
    /// A supported codec is offered.
    Supported,
    /// Every format is known (static payload type or `a=rtpmap`) and none is supported.
    Unsupported,
    /// Some format is neither static nor mapped: nothing can be concluded.
    Unknown,
}

/// Classifies an m-line from its payload types and its `a=rtpmap` values (`<pt> <name>/<rate>…`).
fn codecs(kind: Option<TrackKind>, formats: &[&str], rtpmaps: &[&str]) -> Codecs {
    let Some(kind) = kind else {
        return Codecs::Unknown;
    };
    let wanted = match kind {
        TrackKind::Audio => "opus/48000",
        TrackKind::Video => "vp8/90000",
    };
    let mut all_known = true;
    for pt in formats {
        let map = rtpmaps
            .iter()
            .filter_map(|m| m.split_once(' '))
            .find(|(p, _)| p == pt)
            .map(|(_, codec)| codec.to_ascii_lowercase());
        match map {
            Some(codec) if codec == wanted || codec.starts_with(&format!("{wanted}/")) => {
                return Codecs::Supported
            }
            Some(_) => {}
            // Static payload types (RFC 3551) are never Opus or VP8.
            None => all_known &= pt.parse::<u8>().is_ok_and(|pt| pt < 35),
        }
    }
    if all_known {
        Codecs::Unsupported
    } else {
        Codecs::Unknown
    }
}

/// Summarises an offer's text.
pub fn summarize(sdp: &str) -> Result<OfferSummary, SdpError> {
    let mut lines = sdp.lines().map(|l| l.trim_end_matches('\r'));
    if lines.next().map(str::trim) != Some("v=0") {
        return Err(SdpError::NotSdp);
    }
    let mut ice_ufrag = None;
    let mut fingerprint = None;
    struct Partial<'a> {
        kind: Option<TrackKind>,
        mid: Option<String>,
        direction: Direction,
        formats: Vec<&'a str>,
        rtpmaps: Vec<&'a str>,
        ssrcs: Vec<u32>,
        simulcast: Option<&'a str>,
        rid_lines: Vec<&'a str>,
    }
    let mut parts: Vec<Partial<'_>> = Vec::new();
    for line in lines {
        if let Some(media) = line.strip_prefix("m=") {
            if parts.len() == MAX_MLINES {
                return Err(SdpError::TooManyMLines);
            }
            let mut fields = media.split(' ');
            let kind = match fields.next() {
                Some("audio") => Some(TrackKind::Audio),
                Some("video") => Some(TrackKind::Video),
                _ => None,
            };
            parts.push(Partial {
                kind,
                mid: None,
                direction: Direction::SendRecv,
                formats: fields.skip(2).filter(|f| !f.is_empty()).collect(),
                rtpmaps: Vec::new(),
                ssrcs: Vec::new(),
                simulcast: None,
                rid_lines: Vec::new(),
            });
        } else if let Some(attr) = line.strip_prefix("a=") {
            let (name, value) = attr.split_once(':').unwrap_or((attr, ""));
            match (name, parts.last_mut()) {
                ("ice-ufrag", _) if ice_ufrag.is_none() => ice_ufrag = Some(value.to_owned()),
                ("mid", Some(p)) => p.mid = Some(value.to_owned()),
                ("sendonly", Some(p)) => p.direction = Direction::SendOnly,
                ("recvonly", Some(p)) => p.direction = Direction::RecvOnly,
                ("sendrecv", Some(p)) => p.direction = Direction::SendRecv,
                ("inactive", Some(p)) => p.direction = Direction::Inactive,
                ("rtpmap", Some(p)) => p.rtpmaps.push(value),
                ("simulcast", Some(p)) => p.simulcast = Some(value),
                ("rid", Some(p)) if p.rid_lines.len() < 16 => p.rid_lines.push(value),
                ("fingerprint", _) if fingerprint.is_none() => fingerprint = Some(value.to_owned()),
                ("ssrc", Some(p)) => {
                    let ssrc = value.split(' ').next().and_then(|v| v.parse().ok());
                    if let Some(ssrc) = ssrc.filter(|s| !p.ssrcs.contains(s)) {
                        p.ssrcs.push(ssrc);
                    }
                }
                _ => {}
            }
        }
    }
    if parts.is_empty() {
        return Err(SdpError::NoMLines);
    }
    // Structural errors first, then codecs.
    let unusable = parts.iter().position(|p| {
        matches!(p.direction, Direction::SendOnly | Direction::RecvOnly)
            && codecs(p.kind, &p.formats, &p.rtpmaps) == Codecs::Unsupported
    });
    let mut mlines = Vec::with_capacity(parts.len());
    for (index, p) in parts.into_iter().enumerate() {
        let mid = p.mid.ok_or(SdpError::MissingMid(index))?;
        if mlines.iter().any(|m: &MLine| m.mid == mid) {
            return Err(SdpError::DuplicateMid(mid));
        }
        if p.direction == Direction::SendRecv {
            return Err(SdpError::SendRecv(index));
        }
        let rids = if p.direction == Direction::SendOnly && p.kind == Some(TrackKind::Video) {
            send_rids(p.simulcast, &p.rid_lines)
        } else {
            Vec::new()
        };
        mlines.push(MLine {
            index,
            kind: p.kind,
            mid,
            direction: p.direction,
            ssrcs: p.ssrcs,
            rids,
        });
    }
    if let Some(index) = unusable {
        return Err(SdpError::NoSupportedCodec(index));
    }
    Ok(OfferSummary {
        ice_ufrag,
        fingerprint,
        mlines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str =
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:abcd\r\na=mid:0\r\na=sendonly\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:abcd\r\na=mid:1\r\na=sendonly\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=recvonly\r\n";

    #[test]
    fn summarizes_browser_offer() {
        let s = summarize(OFFER).unwrap();
        assert_eq!(s.ice_ufrag.as_deref(), Some("abcd"));
        assert_eq!(s.mlines.len(), 3);
        assert_eq!(s.mlines[0].kind, Some(TrackKind::Audio));
        assert_eq!(s.mlines[2].direction, Direction::RecvOnly);
        assert_eq!(s.mline("1").unwrap().index, 1);
        assert_eq!(s.fingerprint, None);
    }

    #[test]
    fn reads_fingerprint_and_ssrcs() {
        let offer = "v=0\r\na=fingerprint:sha-256 AB:CD\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:0\r\na=sendonly\r\n\
            a=ssrc-group:FID 11 12\r\na=ssrc:11 cname:x\r\na=ssrc:11 msid:a b\r\n\
            a=ssrc:12 cname:x\r\na=ssrc:bad cname:x\r\n";
        let s = summarize(offer).unwrap();
        assert_eq!(s.fingerprint.as_deref(), Some("sha-256 AB:CD"));
        assert_eq!(s.mlines[0].ssrcs, vec![11, 12]);
    }

    #[test]
    fn reads_simulcast_rids() {
        let offer = |extra: &str| {
            format!(
                "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendonly\r\n\
                 a=rid:l send\r\na=rid:m send\r\na=rid:h send\r\n{extra}"
            )
        };
        let rids = |extra: &str| summarize(&offer(extra)).unwrap().mlines[0].rids.clone();
        // Chrome's shape, a paused layer, alternatives.
        assert_eq!(rids("a=simulcast:send l;m;h\r\n"), ["l", "m", "h"]);
        assert_eq!(rids("a=simulcast:send l;~m;h\r\n"), ["l", "m", "h"]);
        assert_eq!(rids("a=simulcast:send l,m;h recv x\r\n"), ["l", "h"]);
        // Undeclared or invalid RIDs are skipped; fewer than two layers is no simulcast.
        assert_eq!(rids("a=simulcast:send l;q;h\r\n"), ["l", "h"]);
        assert!(rids("a=simulcast:send l;x$\r\n").is_empty());
        assert!(rids("a=simulcast:recv l;m\r\n").is_empty());
        assert!(rids("").is_empty());
        // Not on a receiving m-line.
        let recv = offer("a=simulcast:send l;m;h\r\n").replace("sendonly", "recvonly");
        assert!(summarize(&recv).unwrap().mlines[0].rids.is_empty());
        assert!(valid_rid("h_1-x") && !valid_rid("") && !valid_rid(&"a".repeat(17)));
    }

    #[test]
    fn refuses_broken_offers() {
        assert_eq!(summarize("hello"), Err(SdpError::NotSdp));
        assert_eq!(summarize("v=0\r\ns=-\r\n"), Err(SdpError::NoMLines));
        assert_eq!(
            summarize("v=0\r\nm=audio 9 RTP 0\r\na=sendonly\r\n"),
            Err(SdpError::MissingMid(0))
        );
        assert_eq!(
            summarize("v=0\r\nm=audio 9 RTP 0\r\na=mid:0\r\na=sendrecv\r\n"),
            Err(SdpError::SendRecv(0))
        );
        assert_eq!(
            summarize("v=0\r\nm=audio 9 RTP 0\r\na=mid:0\r\na=sendonly\r\nm=audio 9 RTP 0\r\na=mid:0\r\na=sendonly\r\n"),
            Err(SdpError::DuplicateMid("0".into()))
        );
        let mut many = String::from("v=0\r\n");
        for i in 0..1000 {
            many.push_str(&format!("m=video 9 RTP 96\r\na=mid:{i}\r\na=recvonly\r\n"));
        }
        assert_eq!(summarize(&many), Err(SdpError::TooManyMLines));
    }

    #[test]
    fn refuses_m_lines_offering_only_unsupported_codecs() {
        let offer = |m: &str| format!("v=0\r\n{m}a=mid:0\r\na=recvonly\r\n");
        // H265 only; Opus on a video m-line; static PCMU/PCMA.
        for m in [
            "m=video 9 UDP/TLS/RTP/SAVPF 98\r\na=rtpmap:98 H265/90000\r\n",
            "m=video 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n",
            "m=audio 9 UDP/TLS/RTP/SAVPF 0 8\r\n",
        ] {
            assert_eq!(
                summarize(&offer(m)),
                Err(SdpError::NoSupportedCodec(0)),
                "{m}"
            );
        }
        // A supported codec among others, and formats nothing is known about, pass.
        for m in [
            "m=video 9 UDP/TLS/RTP/SAVPF 98 96\r\na=rtpmap:98 H265/90000\r\na=rtpmap:96 vp8/90000\r\n",
            "m=audio 9 UDP/TLS/RTP/SAVPF 0 111\r\na=rtpmap:111 OPUS/48000/2\r\n",
            "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\n",
        ] {
            assert!(summarize(&offer(m)).is_ok(), "{m}");
        }
        // Inactive m-lines are not checked.
        let inactive =
            "v=0\r\nm=video 9 RTP 98\r\na=rtpmap:98 H265/90000\r\na=mid:0\r\na=inactive\r\n";
        assert!(summarize(inactive).is_ok());
    }
}
