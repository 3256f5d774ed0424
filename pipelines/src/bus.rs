//! The one bus watcher of a room pipeline: a thread popping the bus with a timeout.
//!
//! Errors whose source lies inside `peer-<id>` become [`Cmd::PeerError`] (the media thread
//! removes that peer and reports `PeerFailed`); any other error is `RoomFailed`. The
//! `lamina-vad` messages of each audio track's `laminavad` become `VoiceActivity`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use gst::prelude::*;
use tokio::sync::mpsc::UnboundedSender;

use gstlamina::forwarder::{MESSAGE_LAYERS, MESSAGE_LAYER_SWITCHED};

use crate::cmd::Cmd;
use crate::ids::PeerId;
use crate::MediaEvent;

/// The peer whose bin contains `obj`, if any (walks up to the child of the pipeline).
pub(crate) fn owning_peer(obj: &gst::Object, pipeline: &gst::Pipeline) -> Option<PeerId> {
    let mut cur = obj.clone();
    loop {
        let parent = cur.parent()?;
        if parent.as_ptr() == pipeline.upcast_ref::<gst::Object>().as_ptr() {
            return cur.name().strip_prefix("peer-").map(PeerId::from);
        }
        cur = parent;
    }
}

/// Starts the watcher thread; it ends when `stop` is set.
pub(crate) fn spawn(
    pipeline: gst::Pipeline,
    cmd: Sender<Cmd>,
    events: UnboundedSender<MediaEvent>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let bus = pipeline.bus().expect("a pipeline always has a bus");
    std::thread::Builder::new()
        .name(format!("bus-{}", pipeline.name()))
        .spawn(move || {
            // Every line this thread logs carries the room's name.
            let span = tracing::info_span!("bus", room = %pipeline.name());
            let _entered = span.enter();
            while !stop.load(Ordering::Acquire) {
                let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
                    continue;
                };
                handle(&pipeline, &msg, &cmd, &events);
            }
        })
}

fn handle(
    pipeline: &gst::Pipeline,
    msg: &gst::Message,
    cmd: &Sender<Cmd>,
    events: &UnboundedSender<MediaEvent>,
) {
    use gst::MessageView;
    match msg.view() {
        MessageView::Error(err) => {
            let reason = format!(
                "{}: {} ({})",
                msg.src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default(),
                err.error(),
                err.debug().unwrap_or_default()
            );
            let peer = msg.src().and_then(|s| owning_peer(s, pipeline));
            tracing::warn!(peer = peer.as_ref().map(|p| p.as_str()), %reason, "pipeline error");
            if let Some(branch) = msg
                .src()
                .and_then(|s| crate::recording::owning_branch(s, pipeline))
            {
                let _ = cmd.send(Cmd::BranchError { branch, reason });
                return;
            }
            match peer {
                Some(peer) => {
                    let _ = cmd.send(Cmd::PeerError { peer, reason });
                }
                None => {
                    let _ = events.send(MediaEvent::RoomFailed { reason });
                }
            }
        }
        MessageView::Element(e) => {
            let Some(s) = e.structure() else {
                return;
            };
            let src = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
            if s.name() == MESSAGE_LAYERS || s.name() == MESSAGE_LAYER_SWITCHED {
                if let Some(track) = src.strip_prefix(crate::forwarder::ELEMENT_PREFIX) {
                    layer_message(crate::ids::TrackId::from(track), s, cmd, events);
                }
                return;
            }
            if s.name() != crate::peer_bin::VAD_MESSAGE {
                return;
            }
            if let (Some(track), Ok(speech)) = (
                src.strip_prefix(crate::peer_bin::VAD_PREFIX),
                s.get::<bool>("speech"),
            ) {
                let _ = events.send(MediaEvent::VoiceActivity {
                    track: crate::ids::TrackId::from(track),
                    speech,
                });
            }
        }
        MessageView::Warning(w) => {
            tracing::debug!(
                src = %msg.src().map(|s| s.path_string().to_string()).unwrap_or_default(),
                "pipeline warning: {}",
                w.error()
            );
        }
        _ => {}
    }
}

/// A simulcast forwarder's message: the layers arriving (→ `LayersActive`) or an output's
/// switch (→ the media thread, which knows whose output it is).
fn layer_message(
    track: crate::ids::TrackId,
    s: &gst::StructureRef,
    cmd: &Sender<Cmd>,
    events: &UnboundedSender<MediaEvent>,
) {
    if s.name() == MESSAGE_LAYERS {
        let layers = s.get::<&str>("layers").unwrap_or_default();
        let layers = layers
            .split(',')
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        let _ = events.send(MediaEvent::LayersActive { track, layers });
    } else if let (Ok(pad), Ok(layer)) = (s.get::<String>("pad"), s.get::<String>("layer")) {
        let _ = cmd.send(Cmd::LayerSwitched { track, pad, layer });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_inside_a_peer_bin_belong_to_that_peer() {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::with_name("room");
        let bin = gst::Bin::builder().name("peer-alice:1").build();
        let inner = gst::Bin::new();
        let deep = gst::ElementFactory::make("identity").build().unwrap();
        inner.add(&deep).unwrap();
        bin.add(&inner).unwrap();
        let fwd = gst::ElementFactory::make("identity")
            .name("fwd-t")
            .build()
            .unwrap();
        pipeline.add_many([bin.upcast_ref(), &fwd]).unwrap();
        assert_eq!(
            owning_peer(deep.upcast_ref(), &pipeline),
            Some(PeerId::from("alice:1"))
        );
        assert_eq!(
            owning_peer(bin.upcast_ref(), &pipeline),
            Some(PeerId::from("alice:1"))
        );
        assert_eq!(owning_peer(fwd.upcast_ref(), &pipeline), None);
        assert_eq!(owning_peer(pipeline.upcast_ref(), &pipeline), None);
    }
}
