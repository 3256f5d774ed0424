//! [`OfferPlan`]: what the room decided for one offer.

use lamina_protocol::ids::TrackId;
use lamina_protocol::sdp::{self, OfferSummary, SdpError};

/// What the room decided for one offer of a peer. The offer is parsed once, by the room
/// ([`sdp::summarize`]); its [`OfferSummary`] travels with it, so the media graph reads the
/// m-lines' mids, directions and SSRCs, the ICE ufrag and the DTLS fingerprint from here
/// (GStreamer still parses the text for `webrtcbin`).
#[derive(Debug, Clone, PartialEq)]
pub struct OfferPlan {
    /// The offer SDP as the client sent it.
    pub sdp: String,
    /// The summary of `sdp`.
    pub summary: OfferSummary,
    /// The client's own sending m-lines (`sendonly` in the offer), mid → track id.
    pub publish: Vec<(String, TrackId)>,
    /// The client's receiving m-lines (`recvonly`), mid → remote track to send on it, or `None`
    /// to answer it `inactive`.
    pub subscribe: Vec<(String, Option<TrackId>)>,
}

impl OfferPlan {
    /// A plan for `sdp`, summarising it.
    pub fn new(
        sdp: String,
        publish: Vec<(String, TrackId)>,
        subscribe: Vec<(String, Option<TrackId>)>,
    ) -> Result<Self, SdpError> {
        let summary = sdp::summarize(&sdp)?;
        Ok(Self {
            sdp,
            summary,
            publish,
            subscribe,
        })
    }

    /// What the plan wants on the m-line with this mid.
    pub fn want(&self, mid: &str) -> Want<'_> {
        use lamina_protocol::sdp::Direction;
        let Some(m) = self.summary.mline(mid) else {
            return Want::Inactive;
        };
        match m.direction {
            Direction::SendOnly => self
                .publish
                .iter()
                .find(|(x, _)| x == mid)
                .map_or(Want::Inactive, |(_, t)| Want::Publish(t)),
            Direction::RecvOnly => self
                .subscribe
                .iter()
                .find_map(|(x, t)| (x == mid).then_some(t.as_ref()).flatten())
                .map_or(Want::Inactive, Want::Subscribe),
            _ => Want::Inactive,
        }
    }
}

/// What a plan wants for one m-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want<'a> {
    /// The client publishes this track here.
    Publish(&'a TrackId),
    /// The server sends this remote track here.
    Subscribe(&'a TrackId),
    /// Answer it `inactive`.
    Inactive,
}
