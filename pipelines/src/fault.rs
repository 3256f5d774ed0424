//! Fault injection, for tests of failure isolation (docs/design.md §7 "Failure isolation").
//!
//! [`crate::RoomPipeline::inject_fault`] posts a real `gst::message::Error` the way a failing
//! element does, so the whole error path runs as in production: the bus watcher
//! (`bus.rs`) maps an error whose source lies inside `peer-<id>` to that peer (the media
//! thread removes it and reports [`crate::MediaEvent::PeerFailed`]) and any other error to
//! [`crate::MediaEvent::RoomFailed`].
//!
//! - [`Fault::Peer`]: the error comes from the peer's `webrtcbin`, inside its `peer-<id>` bin.
//! - [`Fault::Room`]: the error comes from the room pipeline itself, outside every peer bin.

use gst::prelude::*;

use crate::ids::PeerId;
use crate::peer_bin::bin_name;
use crate::MediaError;

/// Text of injected errors, so logs tell them from real ones.
pub const INJECTED: &str = "injected fault";

/// Where to inject a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An element error inside this peer's bin: only that peer must go.
    Peer(PeerId),
    /// An error of the room pipeline outside any peer bin: the room must close.
    Room,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Peer(p) => write!(f, "peer {p}"),
            Fault::Room => f.write_str("room"),
        }
    }
}

/// The element an injected fault comes from: the peer's webrtcbin (or, failing that, any
/// element of its bin), or the pipeline.
fn source(pipeline: &gst::Pipeline, fault: &Fault) -> Result<gst::Element, MediaError> {
    let Fault::Peer(peer) = fault else {
        return Ok(pipeline.clone().upcast());
    };
    let bin = pipeline
        .by_name(&bin_name(peer))
        .filter(|e| e.parent().as_ref() == Some(pipeline.upcast_ref::<gst::Object>()))
        .and_then(|e| e.downcast::<gst::Bin>().ok())
        .ok_or_else(|| MediaError::UnknownPeer(peer.clone()))?;
    let children = bin.children();
    let webrtc = children.iter().find(|e| {
        e.factory()
            .is_some_and(|f| f.name().as_str() == "webrtcbin")
    });
    webrtc
        .or(children.first())
        .cloned()
        .ok_or_else(|| MediaError::Gst(format!("bin of peer {peer} is empty")))
}

/// Posts an error message for `fault` from the element it names.
pub(crate) fn inject(pipeline: &gst::Pipeline, fault: &Fault) -> Result<(), MediaError> {
    let src = source(pipeline, fault)?;
    tracing::warn!(%fault, src = %src.path_string(), "injecting a fault");
    let msg = gst::message::Error::builder(gst::CoreError::Failed, INJECTED)
        .src(&src)
        .debug(&format!("fault injected into {fault}"))
        .build();
    src.post_message(msg)
        .map_err(|_| MediaError::Gst("the element has no bus: pipeline closed".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::owning_peer;

    fn room_with_peer_bin() -> gst::Pipeline {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::with_name("fault-room");
        let bin = gst::Bin::builder()
            .name(bin_name(&PeerId::from("p1")))
            .build();
        let inner = gst::ElementFactory::make("identity").build().unwrap();
        bin.add(&inner).unwrap();
        pipeline.add(&bin).unwrap();
        pipeline
    }

    fn pop_error(pipeline: &gst::Pipeline) -> gst::Message {
        let bus = pipeline.bus().unwrap();
        bus.timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
            .expect("an error message on the bus")
    }

    #[test]
    fn peer_fault_comes_from_inside_the_peer_bin() {
        let pipeline = room_with_peer_bin();
        inject(&pipeline, &Fault::Peer(PeerId::from("p1"))).unwrap();
        let msg = pop_error(&pipeline);
        let src = msg.src().expect("error has a source");
        assert_eq!(owning_peer(src, &pipeline), Some(PeerId::from("p1")));
        let gst::MessageView::Error(err) = msg.view() else {
            unreachable!("filtered on errors")
        };
        assert_eq!(err.error().message(), INJECTED);
    }

    #[test]
    fn room_fault_comes_from_the_pipeline() {
        let pipeline = room_with_peer_bin();
        inject(&pipeline, &Fault::Room).unwrap();
        let msg = pop_error(&pipeline);
        let src = msg.src().expect("error has a source");
        assert_eq!(owning_peer(src, &pipeline), None);
    }

    #[test]
    fn unknown_peer_is_refused() {
        let pipeline = room_with_peer_bin();
        assert!(matches!(
            inject(&pipeline, &Fault::Peer(PeerId::from("nobody"))),
            Err(MediaError::UnknownPeer(_))
        ));
    }
}
