//! Loss repair inside one peer's webrtcbin: the receive path (uplink) and the send path
//! (downlink), set up once per peer when its bin is built. `docs/loss-repair.md` has the
//! webrtcbin 1.22 behaviour this relies on.
//!
//! - **Uplink.** rtpbin's `request-jitterbuffer` returns a [`REPAIR_FACTORY`] (`laminarepair`)
//!   instead of an `rtpjitterbuffer` for every received SSRC: packets are forwarded at once, and
//!   gaps of video streams are asked for with NACKs (`do-retransmission`, set from the kind of
//!   track the offer announced for the SSRC). The negotiation sets `do-nack` on video m-lines,
//!   so the answer carries the offer's `rtx` payload type with `apt=`, and webrtcbin's own
//!   `rtprtxreceive` de-wraps the publisher's RTX before it reaches `laminarepair`, which
//!   fills the hole.
//! - **Downlink.** webrtcbin's `request-aux-sender` puts a [`RTX_FACTORY`] (`laminartx`) after
//!   its `rtprtxsend`; its RTX maps come from each answer ([`RtxMaps`]: the `ssrc-group:FID`
//!   and `apt=` webrtcbin wrote; `rtprtxsend`'s `ssrc-map` cannot be read back). A
//!   subscriber's NACKs become `GstRTPRetransmissionRequest` events in its rtpsession; `laminartx` answers them with RTX from its history (packets as forwarded to
//!   this subscriber: its own SSRC, sequence numbers and timestamps), at most
//!   [`NACK_BUDGET_PER_SEC`] a second, and `rtprtxsend` never sees them.
//!
//! Counters ([`RepairStats`]) come from the elements themselves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gst::prelude::*;

use crate::ids::TrackKind;

/// The pass-through receive buffer of the `lamina` plugin.
pub const REPAIR_FACTORY: &str = "laminarepair";
/// The retransmission sender of the `lamina` plugin.
pub const RTX_FACTORY: &str = "laminartx";
/// GType names of the two elements: elements are recognised by type (a string compare), not by
/// `gst_element_get_factory` (which read freed memory while the server re-registered the
/// plugin on every start; fixed, but the type needs no factory at all).
const REPAIR_TYPE: &str = "GstLaminaRepair";
const RTX_TYPE: &str = "GstLaminaRtx";

fn is(e: &gst::Element, type_name: &str) -> bool {
    e.type_().name() == type_name
}

/// Retransmission requests one subscriber may make per second (burst of the same size).
pub const NACK_BUDGET_PER_SEC: u32 = 1000;

/// A room's repair counters of peers already removed (their elements are gone).
#[derive(Debug, Default)]
pub struct NackCounters {
    retired: Mutex<RepairStats>,
}

impl NackCounters {
    /// Keeps the element counters of a peer's bin that is about to go.
    pub(crate) fn retire(&self, bin: &gst::Bin) {
        let gone = RepairStats::from_elements(bin);
        let mut r = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        r.add(&gone);
    }
}

/// Loss-repair figures, summed over streams.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RepairStats {
    /// Uplink: packets found missing and never received.
    pub uplink_lost: u64,
    /// Uplink: NACKs (per packet) sent to the publisher.
    pub uplink_nacks: u64,
    /// Uplink: missing packets that arrived after a NACK.
    pub uplink_repaired: u64,
    /// Downlink: retransmission requests from subscribers.
    pub downlink_requests: u64,
    /// Downlink: requests dropped by the per-subscriber budget.
    pub downlink_requests_dropped: u64,
    /// Downlink: requests for packets not (or no longer) kept.
    pub downlink_not_cached: u64,
    /// Downlink: packets retransmitted (as RTX).
    pub downlink_retransmitted: u64,
}

impl RepairStats {
    /// Adds `o` field by field.
    pub fn add(&mut self, o: &RepairStats) {
        self.uplink_lost += o.uplink_lost;
        self.uplink_nacks += o.uplink_nacks;
        self.uplink_repaired += o.uplink_repaired;
        self.downlink_requests += o.downlink_requests;
        self.downlink_requests_dropped += o.downlink_requests_dropped;
        self.downlink_not_cached += o.downlink_not_cached;
        self.downlink_retransmitted += o.downlink_retransmitted;
    }

    /// The field-by-field maximum of `self` and `o`.
    pub fn max(&mut self, o: &RepairStats) {
        self.uplink_lost = self.uplink_lost.max(o.uplink_lost);
        self.uplink_nacks = self.uplink_nacks.max(o.uplink_nacks);
        self.uplink_repaired = self.uplink_repaired.max(o.uplink_repaired);
        self.downlink_requests = self.downlink_requests.max(o.downlink_requests);
        self.downlink_requests_dropped = self
            .downlink_requests_dropped
            .max(o.downlink_requests_dropped);
        self.downlink_not_cached = self.downlink_not_cached.max(o.downlink_not_cached);
        self.downlink_retransmitted = self.downlink_retransmitted.max(o.downlink_retransmitted);
    }

    /// The room's totals: the counters of every `laminarepair` and `laminartx` inside `bin`
    /// (the room's pipeline) plus those of peers already removed.
    pub fn collect(bin: &gst::Bin, nacks: &NackCounters) -> Self {
        let mut s = Self::from_elements(bin);
        s.add(&nacks.retired.lock().unwrap_or_else(|e| e.into_inner()));
        s
    }

    fn from_elements(bin: &gst::Bin) -> Self {
        let mut s = Self::default();
        for e in bin.iterate_recurse().into_iter().flatten() {
            let repair = is(&e, REPAIR_TYPE);
            if !repair && !is(&e, RTX_TYPE) {
                continue;
            }
            let st = e.property::<gst::Structure>("stats");
            let get = |k: &str| st.get::<u64>(k).unwrap_or(0);
            if repair {
                s.uplink_lost += get("num-lost");
                s.uplink_nacks += get("rtx-count");
                s.uplink_repaired += get("rtx-success-count");
            } else {
                s.downlink_requests += get("num-requests");
                s.downlink_requests_dropped += get("num-dropped");
                s.downlink_not_cached += get("num-not-cached");
                s.downlink_retransmitted += get("num-rtx-packets");
            }
        }
        s
    }
}

/// The RTX maps of one peer's send path, from its latest answer, for its `laminartx` (which may
/// be created after the answer, when webrtcbin first sets up its send session).
#[derive(Debug, Default)]
pub(crate) struct RtxMaps {
    maps: Mutex<Option<(gst::Structure, gst::Structure)>>,
    /// Primary SSRC → the RTX SSRC its first answer announced.
    rtx_ssrcs: Mutex<HashMap<u32, u32>>,
}

impl RtxMaps {
    /// Rewrites an answer so that every sending stream keeps the RTX SSRC of its first answer.
    /// webrtcbin 1.22 draws a new random RTX SSRC for every m-line in every answer; Chrome keeps
    /// the RTX SSRC it first learned for a receiver and ignores RTX on the new one (seen in
    /// the end-to-end loss test after a renegotiation: 1200 NACKs, no RTX counted). Returns
    /// `None` when nothing changed.
    pub(crate) fn stabilise(&self, answer: &str) -> Option<String> {
        let mut known = self.rtx_ssrcs.lock().unwrap_or_else(|e| e.into_inner());
        let mut swaps: Vec<(String, String)> = Vec::new();
        for line in answer.lines() {
            let Some(group) = line.trim_end().strip_prefix("a=ssrc-group:FID ") else {
                continue;
            };
            let ids: Vec<u32> = group.split(' ').filter_map(|x| x.parse().ok()).collect();
            let [primary, rtx] = ids[..] else { continue };
            let first = *known.entry(primary).or_insert(rtx);
            if first != rtx {
                swaps.push((rtx.to_string(), first.to_string()));
            }
        }
        if swaps.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(answer.len());
        for line in answer.split_inclusive('\n') {
            let mut line = line.to_string();
            if line.starts_with("a=ssrc") {
                for (new, old) in &swaps {
                    line = line
                        .replace(&format!(":{new} "), &format!(":{old} "))
                        .replace(&format!(" {new}\r"), &format!(" {old}\r"))
                        .replace(&format!(" {new}\n"), &format!(" {old}\n"));
                }
            }
            out.push_str(&line);
        }
        Some(out)
    }

    /// Takes the maps from an answer (`a=ssrc-group:FID <ssrc> <rtx ssrc>` and `a=fmtp:<rtx pt>
    /// apt=<pt>` of its sending m-lines) and gives them to the peer's `laminartx`, if it exists.
    pub(crate) fn update(&self, bin: &gst::Bin, answer: &gst_sdp::SDPMessageRef) {
        let maps = rtx_maps(answer);
        *self.maps.lock().unwrap_or_else(|e| e.into_inner()) = Some(maps.clone());
        if let Some(rtx) = bin
            .iterate_recurse()
            .into_iter()
            .flatten()
            .find(|e| is(e, RTX_TYPE))
        {
            apply(&rtx, &maps);
        }
    }

    fn apply_to(&self, rtx: &gst::Element) {
        let maps = self.maps.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(maps) = maps {
            apply(rtx, &maps);
        }
    }
}

fn apply(rtx: &gst::Element, (ssrcs, pts): &(gst::Structure, gst::Structure)) {
    rtx.set_property("ssrc-map", ssrcs);
    rtx.set_property("payload-type-map", pts);
}

/// `application/x-rtp-ssrc-map` and `application/x-rtp-pt-map` of an answer's sending m-lines.
fn rtx_maps(answer: &gst_sdp::SDPMessageRef) -> (gst::Structure, gst::Structure) {
    let mut ssrcs = gst::Structure::new_empty("application/x-rtp-ssrc-map");
    let mut pts = gst::Structure::new_empty("application/x-rtp-pt-map");
    for media in answer.medias() {
        for a in media.attributes() {
            let Some(v) = a.value() else { continue };
            match a.key() {
                "ssrc-group" => {
                    let mut it = v.split_whitespace();
                    if it.next() != Some("FID") {
                        continue;
                    }
                    let ids: Vec<u32> = it.filter_map(|x| x.parse().ok()).collect();
                    if let [ssrc, rtx] = ids[..] {
                        ssrcs.set(ssrc.to_string().as_str(), rtx);
                    }
                }
                "fmtp" => {
                    let Some((pt, params)) = v.split_once(' ') else {
                        continue;
                    };
                    let apt = params
                        .split(';')
                        .find_map(|p| p.trim().strip_prefix("apt="))
                        .and_then(|x| x.parse::<u32>().ok());
                    if let (Ok(rtx_pt), Some(apt)) = (pt.parse::<u32>(), apt) {
                        pts.set(apt.to_string().as_str(), rtx_pt);
                    }
                }
                _ => {}
            }
        }
    }
    (ssrcs, pts)
}

/// Connects the repair set-up to a new peer's webrtcbin (before it has any stream). The
/// handlers live as long as the webrtcbin and its bin.
///
/// `kind_of` names the kind of the track an SSRC carries (from the offers): only video is asked
/// for again (Opus has no RTX; a NACK for it can never be answered). webrtcbin sets
/// `do-retransmission` from the transceiver too, but not reliably for every SSRC of a bundled
/// session, so this decides last.
/// A `laminartx` for webrtcbin's `request-aux-sender` (see the module docs; `downlink.rs`
/// puts it in front of the downlink estimator).
pub(crate) fn rtx_sender() -> Option<gst::Element> {
    gst::ElementFactory::make(RTX_FACTORY)
        .property("max-requests-per-sec", NACK_BUDGET_PER_SEC)
        .build()
        .ok()
}

pub(crate) fn install(
    bin: &gst::Bin,
    webrtc: &gst::Element,
    maps: Arc<RtxMaps>,
    kind_of: impl Fn(u32) -> Option<TrackKind> + Send + Sync + 'static,
) {
    if let Some(rtpbin) = webrtc
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("rtpbin"))
    {
        rtpbin.connect("request-jitterbuffer", false, |_| {
            let repair = gst::ElementFactory::make(REPAIR_FACTORY).build().ok()?;
            Some(repair.to_value())
        });
        // Runs after webrtcbin's own handler (connected when webrtcbin built its rtpbin).
        rtpbin.connect("new-jitterbuffer", false, move |args| {
            let jb = args.get(1).and_then(|v| v.get::<gst::Element>().ok())?;
            let ssrc = args.get(3).and_then(|v| v.get::<u32>().ok())?;
            if is(&jb, REPAIR_TYPE) {
                let video = kind_of(ssrc) == Some(TrackKind::Video);
                jb.set_property("do-retransmission", video);
            }
            None
        });
    } else {
        tracing::warn!("webrtcbin without an rtpbin: receive path keeps rtpjitterbuffer");
    }
    bin.connect_deep_element_added(move |_, _, element| {
        if is(element, RTX_TYPE) {
            maps.apply_to(element);
        } else if is(element, "GstRtpRtxSend") {
            // laminartx answers every request for a mapped SSRC: rtprtxsend's own history of
            // the same packets would only hold memory (where send_path.rs could not take it
            // out of the path).
            element.set_property("max-size-packets", 1u32);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtx_ssrc_of_a_stream_stays_what_its_first_answer_said() {
        let m = RtxMaps::default();
        let first = "m=video 9 X 96 97\r\na=ssrc-group:FID 10 20\r\na=ssrc:10 cname:c\r\na=ssrc:20 cname:c\r\n";
        assert_eq!(m.stabilise(first), None);
        let second = "m=video 9 X 96 97\r\na=ssrc-group:FID 10 30\r\na=ssrc:10 cname:c\r\na=ssrc:30 cname:c\r\n\
m=video 9 X 96 97\r\na=ssrc-group:FID 11 31\r\na=ssrc:11 cname:c\r\na=ssrc:31 cname:c\r\n";
        let fixed = m.stabilise(second).unwrap();
        assert!(fixed.contains("a=ssrc-group:FID 10 20\r\n"), "{fixed}");
        assert!(fixed.contains("a=ssrc:20 cname:c\r\n"), "{fixed}");
        assert!(!fixed.contains(":30 "), "{fixed}");
        assert!(
            fixed.contains("a=ssrc-group:FID 11 31\r\n"),
            "a new stream keeps its own"
        );
    }

    #[test]
    fn rtx_maps_come_from_fid_groups_and_apt() {
        gst::init().unwrap();
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:3\r\na=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=ssrc-group:FID 179663093 3908554074\r\n\
a=ssrc:179663093 cname:x\r\na=ssrc:3908554074 cname:x\r\n";
        let msg = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()).unwrap();
        let (ssrcs, pts) = rtx_maps(&msg);
        assert_eq!(ssrcs.get::<u32>("179663093").unwrap(), 3908554074);
        assert_eq!(pts.get::<u32>("96").unwrap(), 97);
    }
}
