//! Optional behaviour of a [`crate::Participant`], for fault-injection tests: rewriting the ICE
//! candidates that cross signalling (to route a participant's media through a lossy relay),
//! browser-like handling of lost video packets, turning loss repair (NACK/RTX) off,
//! publishing video as simulcast, and not offering transport-wide congestion control.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU8;
use std::sync::{Arc, Mutex};

/// Which way a candidate crosses the signalling channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateDirection {
    /// One of the participant's own candidates, on its way to the server.
    ToServer,
    /// One of the server's candidates (trickled or in an answer), on its way to the participant.
    FromServer,
}

/// Rewrites an ICE candidate (`candidate:<foundation> <component> UDP …`) crossing signalling;
/// `None` drops it.
pub type CandidateFilter = Arc<dyn Fn(CandidateDirection, &str) -> Option<String> + Send + Sync>;

/// The real address of each side that a relay at `relay` forwards between.
pub type RelaySide = Arc<Mutex<Option<SocketAddr>>>;

/// A [`CandidateFilter`] routing the first UDP candidate of each side (the server's into
/// `server`, the participant's into `client`) through `relay`, and dropping the others: a
/// test relay then sees every datagram of the media path.
pub fn relay_filter(relay: SocketAddr, server: RelaySide, client: RelaySide) -> CandidateFilter {
    Arc::new(move |dir, c| {
        let real = udp_candidate_addr(c)?;
        let side = match dir {
            CandidateDirection::FromServer => &server,
            CandidateDirection::ToServer => &client,
        };
        let mut side = side.lock().unwrap_or_else(|e| e.into_inner());
        if side.is_some_and(|known| known != real) {
            return None;
        }
        *side = Some(real);
        let mut t: Vec<String> = c.split_whitespace().map(str::to_owned).collect();
        t[4] = relay.ip().to_string();
        t[5] = relay.port().to_string();
        Some(t.join(" "))
    })
}

/// `candidate:<f> <comp> UDP <prio> <addr> <port> typ …` → its address, if UDP.
fn udp_candidate_addr(c: &str) -> Option<SocketAddr> {
    let t: Vec<&str> = c.split_whitespace().collect();
    if t.len() < 6 || !t[2].eq_ignore_ascii_case("udp") {
        return None;
    }
    format!("{}:{}", t[4], t[5]).parse().ok()
}

/// Options of [`crate::Participant::join_with`]; the default is [`crate::Participant::join`]'s
/// behaviour.
#[derive(Clone, Default)]
pub struct ParticipantOptions {
    /// Applied to every candidate crossing signalling, both ways.
    pub candidate_filter: Option<CandidateFilter>,
    /// Browser-like loss handling: a video receiver that detects lost packets asks for a
    /// keyframe (a PLI goes to the server) and shows no frame until one arrives
    /// (`rtpvp8depay request-keyframe=true wait-for-keyframe=true`), so undecodable frames are
    /// not counted.
    pub keyframe_on_loss: bool,
    /// No loss repair: video m-lines offer neither `nack` nor `rtx` (only keyframe requests),
    /// so nothing lost is resent either way. By default the client offers NACK and RTX for
    /// video like a browser; this is the control for tests of the server's repair.
    pub without_nack: bool,
    /// Send the RFC 6464 audio-level header extension (`a=extmap:1`) on the audio track, as
    /// browsers do, with the level (-dBov: 0 loudest, 127 silence) this cell holds when each
    /// packet leaves: voice-activity tests set it to speak or fall silent.
    pub audio_level: Option<Arc<AtomicU8>>,
    /// Publish test-source video (the camera, [`crate::Participant::add_video_track`]) as
    /// simulcast, like Chrome: three VP8 layers `l`/`m`/`h` (160x120, 320x240, 640x480) on one
    /// m-line, each its own SSRC carrying the RID (and MID) header extension; the offer has
    /// `a=rid:<id> send`, `a=simulcast:send l;m;h` and the MID/RID/repaired-RID extmaps, and no
    /// `a=ssrc` lines for the layers.
    pub simulcast: bool,
    /// Offer no transport-wide congestion control on the recvonly m-lines. By default they
    /// offer it like a browser (`a=rtcp-fb:<pt> transport-cc` and the TWCC `a=extmap`), so the
    /// client sends TWCC feedback for what it receives and the server can estimate its
    /// downlink; this is the control for tests that want the receiver silent about it.
    pub without_transport_cc: bool,
    /// The `videotestsrc` pattern of test-source video ([`crate::Participant::add_video_track`]
    /// and the configured camera). `"smpte"` (whose noise strip keeps the encoders at about
    /// their target bit rate, like a busy real camera) for tests of bandwidth; the default
    /// `ball` compresses to a tenth of the target (`"snow"` overshoots it several times).
    /// `None`: `ball` for the first camera, `smpte` for further tracks.
    pub video_pattern: Option<String>,
}

impl std::fmt::Debug for ParticipantOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParticipantOptions")
            .field("candidate_filter", &self.candidate_filter.is_some())
            .field("keyframe_on_loss", &self.keyframe_on_loss)
            .field("without_nack", &self.without_nack)
            .field("audio_level", &self.audio_level)
            .field("simulcast", &self.simulcast)
            .field("without_transport_cc", &self.without_transport_cc)
            .field("video_pattern", &self.video_pattern)
            .finish()
    }
}

/// Applies `filter` to the `a=candidate:` lines of an SDP text.
pub(crate) fn filter_sdp(sdp: &str, filter: &CandidateFilter) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        match bare.strip_prefix("a=") {
            Some(c) if c.starts_with("candidate:") => {
                if let Some(c) = filter(CandidateDirection::FromServer, c) {
                    out.push_str("a=");
                    out.push_str(&c);
                    out.push_str(&line[bare.len()..]);
                }
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_candidates_are_rewritten_or_dropped() {
        let filter: CandidateFilter = Arc::new(|dir, c| {
            assert_eq!(dir, CandidateDirection::FromServer);
            (!c.contains("TCP")).then(|| c.replace("5000", "6000"))
        });
        let sdp = "v=0\r\na=candidate:1 1 UDP 9 127.0.0.1 5000 typ host\r\n\
                   a=candidate:2 1 TCP 9 127.0.0.1 5001 typ host\r\na=mid:0\r\n";
        assert_eq!(
            filter_sdp(sdp, &filter),
            "v=0\r\na=candidate:1 1 UDP 9 127.0.0.1 6000 typ host\r\na=mid:0\r\n"
        );
    }
}
