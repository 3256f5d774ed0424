//! [`Peer`]: the media thread's state of one participant: its bin, its transport's
//! negotiation facts and what each of its m-lines is used for.

use std::collections::BTreeMap;

use crate::forwarding::Link;
use crate::ids::TrackId;
use crate::peer_bin::PeerBin;
use crate::transport::Transport;

/// A sending (subscriber) m-line: webrtcbin's `sink_<k>`, which a forwarder output links to
/// straight, past the peer bin's boundary (no ghost pad: one pad push less per forwarded copy).
#[derive(Debug)]
pub(crate) struct SubSlot {
    /// webrtcbin's request pad.
    pub sink: gst::Pad,
    /// The m-line's transceiver.
    pub transceiver: gst_webrtc::WebRTCRTPTransceiver,
    /// The forwarder output feeding it, if any.
    pub link: Option<Link>,
}

/// What an m-line of a peer is used for.
#[derive(Debug)]
pub(crate) enum MLine {
    /// The client sends track `track` here.
    Publish {
        /// The published track.
        track: TrackId,
        /// The m-line's transceiver.
        transceiver: gst_webrtc::WebRTCRTPTransceiver,
    },
    /// We send (or sent) a remote track here.
    Subscribe(SubSlot),
    /// Answered inactive.
    Inactive(Option<gst_webrtc::WebRTCRTPTransceiver>),
}

impl MLine {
    /// The m-line's transceiver, if it has one.
    pub(crate) fn transceiver(&self) -> Option<&gst_webrtc::WebRTCRTPTransceiver> {
        match self {
            MLine::Publish { transceiver, .. } => Some(transceiver),
            MLine::Subscribe(slot) => Some(&slot.transceiver),
            MLine::Inactive(t) => t.as_ref(),
        }
    }
}

/// One participant on the media thread.
#[derive(Debug)]
pub(crate) struct Peer {
    /// Its `peer-<id>` bin, webrtcbin and callbacks.
    pub pb: PeerBin,
    /// Its transport's negotiation facts.
    pub transport: Transport,
    /// m-line index → use.
    pub mlines: BTreeMap<u32, MLine>,
}

impl Peer {
    /// A peer with no m-lines yet.
    pub(crate) fn new(pb: PeerBin) -> Self {
        Self {
            pb,
            transport: Transport::default(),
            mlines: BTreeMap::new(),
        }
    }

    /// The links of its subscriber m-lines.
    pub(crate) fn links(&self) -> impl Iterator<Item = &Link> {
        self.mlines.values().filter_map(|m| match m {
            MLine::Subscribe(SubSlot {
                link: Some(link), ..
            }) => Some(link),
            _ => None,
        })
    }
}
