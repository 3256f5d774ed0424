//! Taps: a live track's RTP, as forwarded, sent to a UDP port on 127.0.0.1 so that a local
//! `gst-launch-1.0 udpsrc port=N caps=… ! rtpvp8depay ! …` can watch it.
//!
//! ```text
//! fwd-<track>.src_N (active, PT 96 VP8 / 111 Opus) ─▶ tap-<track>-<port>: queue (leaky) ─▶ udpsink 127.0.0.1:<port>
//! ```
//!
//! Only loopback: the host is fixed. The queue drops old packets instead of ever blocking the
//! publisher's streaming thread. Opening the tap requests a keyframe, so start the receiver
//! first. A tap goes away with `remove_tap`, when its track is unpublished, or with the room.

use gst::prelude::*;
use tokio::sync::oneshot;

use crate::ids::{TrackId, TrackKind};
use crate::port::{Branches, TrackPort};

/// The only host taps send to.
pub const TAP_HOST: &str = "127.0.0.1";
/// Payload type of tapped VP8.
pub const TAP_VP8_PT: u32 = 96;
/// Payload type of tapped Opus.
pub const TAP_OPUS_PT: u32 = 111;

/// Errors of tap commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TapError {
    /// The track has no forwarder in this room.
    #[error("unknown track {0}")]
    UnknownTrack(TrackId),
    /// Port 0 is not a destination.
    #[error("port must be 1-65535")]
    BadPort,
    /// This track is already tapped to this port.
    #[error("track {0} is already tapped to port {1}")]
    Duplicate(TrackId, u16),
    /// No such tap.
    #[error("no tap of track {0} on that port")]
    UnknownTap(TrackId),
    /// GStreamer refused to build the tap.
    #[error("{0}")]
    Gst(String),
}

/// A running tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapInfo {
    /// The tapped track.
    pub track: TrackId,
    /// Audio or video.
    pub kind: TrackKind,
    /// Destination port on [`TAP_HOST`].
    pub port: u16,
    /// The RTP caps a receiver must set on its `udpsrc`.
    pub caps: String,
}

impl TapInfo {
    /// A `gst-launch-1.0` command that plays the tap.
    pub fn receive_command(&self) -> String {
        let tail = match self.kind {
            TrackKind::Video => "rtpvp8depay ! vp8dec ! videoconvert ! autovideosink",
            TrackKind::Audio => "rtpopusdepay ! opusdec ! audioconvert ! autoaudiosink",
        };
        format!(
            "gst-launch-1.0 udpsrc address={TAP_HOST} port={} caps=\"{}\" ! rtpjitterbuffer latency=50 ! {tail}",
            self.port, self.caps
        )
    }
}

/// Tap work for the media thread.
#[derive(Debug)]
pub(crate) enum Op {
    Add(TrackId, u16, oneshot::Sender<Result<TapInfo, TapError>>),
    /// Remove the taps of a track: one port, or all of them.
    Remove(
        TrackId,
        Option<u16>,
        oneshot::Sender<Result<Vec<TapInfo>, TapError>>,
    ),
    List(oneshot::Sender<Vec<TapInfo>>),
}

#[derive(Debug)]
struct Tap {
    info: TapInfo,
    bin: gst::Bin,
    fwd_pad: gst::Pad,
}

/// The media thread's taps of one room.
#[derive(Debug, Default)]
pub(crate) struct Taps {
    taps: Vec<Tap>,
}

/// Executes a tap command on the media thread.
impl Taps {
    /// Executes a tap command.
    pub(crate) fn handle(&mut self, op: Op, port: &mut dyn TrackPort) {
        match op {
            Op::Add(track, tap_port, reply) => {
                let _ = reply.send(self.add(port, track, tap_port));
            }
            Op::Remove(track, tap_port, reply) => {
                let (gone, keep): (Vec<Tap>, Vec<Tap>) = self.taps.drain(..).partition(|t| {
                    t.info.track == track && tap_port.is_none_or(|p| p == t.info.port)
                });
                self.taps = keep;
                if gone.is_empty() {
                    let _ = reply.send(Err(TapError::UnknownTap(track)));
                    return;
                }
                let infos = gone.iter().map(|t| t.info.clone()).collect();
                for tap in gone {
                    remove(port, tap);
                }
                let _ = reply.send(Ok(infos));
            }
            Op::List(reply) => {
                let _ = reply.send(self.taps.iter().map(|t| t.info.clone()).collect());
            }
        }
    }

    fn add(
        &mut self,
        graph: &mut dyn TrackPort,
        track: TrackId,
        port: u16,
    ) -> Result<TapInfo, TapError> {
        if port == 0 {
            return Err(TapError::BadPort);
        }
        if self
            .taps
            .iter()
            .any(|t| t.info.track == track && t.info.port == port)
        {
            return Err(TapError::Duplicate(track, port));
        }
        let t = graph
            .tracks()
            .into_iter()
            .find(|t| t.id == track)
            .ok_or_else(|| TapError::UnknownTrack(track.clone()))?;
        let (pt, caps) = match t.kind {
        TrackKind::Video => (
            TAP_VP8_PT,
            format!("application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload={TAP_VP8_PT}"),
        ),
        TrackKind::Audio => (
            TAP_OPUS_PT,
            format!("application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,encoding-params=(string)2,payload={TAP_OPUS_PT}"),
        ),
    };
        let gst_err = |e: &dyn std::fmt::Display| TapError::Gst(e.to_string());
        let bin = gst::parse::bin_from_description(
            &format!(
                "queue leaky=downstream max-size-buffers=300 max-size-bytes=0 max-size-time=0 \
             ! udpsink host={TAP_HOST} port={port} sync=false async=false"
            ),
            true,
        )
        .map_err(|e| gst_err(&e))?;
        bin.set_property("name", format!("tap-{track}-{port}"));
        let pipeline = graph.pipeline().clone();
        let drop_bin = || crate::teardown::remove_element(pipeline.upcast_ref(), bin.upcast_ref());
        pipeline.add(&bin).map_err(|e| gst_err(&e))?;
        if let Err(e) = bin.sync_state_with_parent() {
            drop_bin();
            return Err(gst_err(&e));
        }
        let sink = bin.static_pad("sink").expect("tap bin has a ghost sink");
        let Some(fwd_pad) = graph.source_pad(&track, pt) else {
            drop_bin();
            return Err(TapError::Gst("forwarder refused a pad".into()));
        };
        if let Err(e) = fwd_pad.link(&sink) {
            graph.release(&track, &fwd_pad);
            drop_bin();
            return Err(gst_err(&e));
        }
        graph.open(&track, &fwd_pad);
        let info = TapInfo {
            track,
            kind: t.kind,
            port,
            caps,
        };
        tracing::info!(track = %info.track, port, "tap added");
        self.taps.push(Tap {
            info: info.clone(),
            bin,
            fwd_pad,
        });
        Ok(info)
    }
}

fn remove(port: &mut dyn TrackPort, tap: Tap) {
    port.release(&tap.info.track, &tap.fwd_pad);
    crate::teardown::remove_element(port.pipeline().upcast_ref(), tap.bin.upcast_ref());
    tracing::info!(track = %tap.info.track, port = tap.info.port, "tap removed");
}

impl Branches for Taps {
    /// The track is being unpublished: remove its taps (before its forwarder goes).
    fn track_gone(&mut self, track: &TrackId, port: &mut dyn TrackPort) {
        let (gone, keep): (Vec<Tap>, Vec<Tap>) =
            self.taps.drain(..).partition(|t| &t.info.track == track);
        self.taps = keep;
        for tap in gone {
            remove(port, tap);
        }
    }

    /// An element of tap `name` posted an error: remove that tap, keep the room.
    fn branch_failed(&mut self, name: &str, _reason: &str, port: &mut dyn TrackPort) {
        if let Some(pos) = self.taps.iter().position(|t| t.bin.name() == name) {
            let tap = self.taps.remove(pos);
            remove(port, tap);
        }
    }

    /// The room is closing: remove every tap.
    fn shutdown(&mut self, port: &mut dyn TrackPort) {
        for tap in std::mem::take(&mut self.taps) {
            remove(port, tap);
        }
    }
}
