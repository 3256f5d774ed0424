//! One recording branch: `queue ! depay [! opusparse] ! webmmux ! filesink` in a bin, and the
//! statistics its pad probes keep (see the parent module for how branches are used).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

use super::{RecordedFile, RecordingError};
use crate::ids::{TrackId, TrackKind};

/// Shared between the media thread, the branch's pad probes and its finalizer.
#[derive(Debug)]
pub(super) struct FileStats {
    pub(super) track: TrackId,
    pub(super) kind: TrackKind,
    pub(super) codec: String,
    pub(super) path: PathBuf,
    pub(super) frames: AtomicU64,
    /// Running time of the first / last frame after the `-T0` offset, in ns + 1 (0 = none).
    pub(super) first: AtomicU64,
    pub(super) last: AtomicU64,
    pub(super) finished: AtomicBool,
    pub(super) error: Mutex<Option<String>>,
}

impl FileStats {
    /// The file's progress now (its size read from disk).
    pub(super) fn snapshot(&self) -> RecordedFile {
        let time = |a: &AtomicU64| match a.load(Ordering::Relaxed) {
            0 => None,
            v => Some(Duration::from_nanos(v - 1)),
        };
        RecordedFile {
            track: self.track.clone(),
            kind: self.kind,
            codec: self.codec.clone(),
            path: self.path.clone(),
            bytes: std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
            frames: self.frames.load(Ordering::Relaxed),
            start: time(&self.first),
            end: time(&self.last),
            finished: self.finished.load(Ordering::Acquire),
            error: self.error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// Fresh statistics of the file at `path`.
    pub(super) fn new(track: &TrackId, kind: TrackKind, codec: &str, path: &Path) -> Self {
        Self {
            track: track.clone(),
            kind,
            codec: codec.to_owned(),
            path: path.to_owned(),
            frames: AtomicU64::new(0),
            first: AtomicU64::new(0),
            last: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            error: Mutex::new(None),
        }
    }

    /// Records why the branch failed (the first reason wins).
    pub(super) fn set_error(&self, reason: &str) {
        let mut e = self.error.lock().unwrap_or_else(|e| e.into_inner());
        e.get_or_insert_with(|| reason.to_owned());
    }
}

/// `queue ! depay [! opusparse] ! webmmux ! filesink`, ghosted `sink`; counts frames, records
/// first/last running time and signals EOS at the file sink.
pub(super) fn build_branch(
    name: &str,
    codec: &str,
    path: &Path,
    base: gst::ClockTime,
    stats: &Arc<FileStats>,
) -> Result<(gst::Bin, mpsc::Receiver<()>), RecordingError> {
    let make = |factory: &str| {
        gst::ElementFactory::make(factory)
            .build()
            .map_err(|_| RecordingError::Gst(format!("missing GStreamer element {factory}")))
    };
    let queue = make("queue")?;
    queue.set_property("max-size-buffers", 0u32);
    queue.set_property("max-size-bytes", 0u32);
    queue.set_property("max-size-time", 3_000_000_000u64);
    // A disk that stalls for seconds loses recorded data, never blocks the publisher's
    // streaming thread (which feeds every subscriber of the track).
    queue.set_property_from_str("leaky", "downstream");
    let mut chain = vec![queue];
    if codec.eq_ignore_ascii_case("VP8") {
        let depay = make("rtpvp8depay")?;
        depay.set_property("wait-for-keyframe", true);
        depay.set_property("request-keyframe", true);
        chain.push(depay);
    } else if codec.eq_ignore_ascii_case("OPUS") {
        chain.push(make("rtpopusdepay")?);
        chain.push(make("opusparse")?);
    } else {
        return Err(RecordingError::Gst(format!("cannot record {codec}")));
    }
    let parsed = chain.last().cloned().expect("chain is not empty");
    let mux = make("webmmux")?;
    let sink = make("filesink")?;
    sink.set_property("location", path.to_string_lossy().to_string());
    sink.set_property("async", false);
    sink.set_property("sync", false);
    chain.push(mux);
    chain.push(sink.clone());
    let bin = gst::Bin::builder().name(name).build();
    bin.add_many(&chain)
        .map_err(|e| RecordingError::Gst(e.to_string()))?;
    gst::Element::link_many(&chain).map_err(|e| RecordingError::Gst(e.to_string()))?;
    let target = chain[0].static_pad("sink").expect("queue has a sink pad");
    let ghost = gst::GhostPad::builder_with_target(&target)
        .map_err(|e| RecordingError::Gst(e.to_string()))?
        .name("sink")
        .build();
    bin.add_pad(&ghost)
        .map_err(|e| RecordingError::Gst(e.to_string()))?;

    retime(&chain[0], base);

    // Frames entering the muxer: count them and keep their running time.
    let segment = Mutex::new(gst::FormattedSegment::<gst::ClockTime>::new());
    let s = stats.clone();
    let mux_in = parsed.static_pad("src").expect("parser has a src pad");
    mux_in.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            match &info.data {
                Some(gst::PadProbeData::Event(ev)) => {
                    if let gst::EventView::Segment(seg) = ev.view() {
                        if let Some(seg) = seg.segment().downcast_ref::<gst::ClockTime>() {
                            *segment.lock().unwrap_or_else(|e| e.into_inner()) = seg.clone();
                        }
                    }
                }
                Some(gst::PadProbeData::Buffer(buf)) => {
                    let rt = buf.pts().and_then(|pts| {
                        segment
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .to_running_time(pts)
                    });
                    s.frames.fetch_add(1, Ordering::Relaxed);
                    if let Some(rt) = rt {
                        let v = rt.nseconds() + 1;
                        let _ =
                            s.first
                                .compare_exchange(0, v, Ordering::Relaxed, Ordering::Relaxed);
                        s.last.fetch_max(v, Ordering::Relaxed);
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
    let (tx, rx) = mpsc::sync_channel(1);
    let sink_pad = sink.static_pad("sink").expect("filesink has a sink pad");
    sink_pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(ev)) = &info.data {
            if ev.type_() == gst::EventType::Eos {
                let _ = tx.try_send(());
                return gst::PadProbeReturn::Remove;
            }
        }
        gst::PadProbeReturn::Ok
    });
    Ok((bin, rx))
}

/// A file-name-safe form of an id (`:` and `/` and the like become `_`).
pub fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Name of the pipeline's top-level child holding `obj` when it is a recording or tap branch.
pub(crate) fn owning_branch(obj: &gst::Object, pipeline: &gst::Pipeline) -> Option<String> {
    let mut cur = obj.clone();
    loop {
        let parent = cur.parent()?;
        if parent.as_ptr() == pipeline.upcast_ref::<gst::Object>().as_ptr() {
            let name = cur.name();
            return (name.starts_with("rec-") || name.starts_with("tap-"))
                .then(|| name.to_string());
        }
        cur = parent;
    }
}

/// Rewrites the stream leaving `queue` onto the recording's time base: segments become one
/// fresh TIME segment from 0, buffer timestamps `running time - base`; buffers from before
/// `base` are dropped.
fn retime(queue: &gst::Element, base: gst::ClockTime) {
    let pad = queue.static_pad("src").expect("queue has a src pad");
    let input = Mutex::new(gst::FormattedSegment::<gst::ClockTime>::new());
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            let mut input = input.lock().unwrap_or_else(|e| e.into_inner());
            match &mut info.data {
                Some(gst::PadProbeData::Event(ev)) => {
                    if let gst::EventView::Segment(seg) = ev.view() {
                        if let Some(seg) = seg.segment().downcast_ref::<gst::ClockTime>() {
                            *input = seg.clone();
                        }
                        let fresh = gst::FormattedSegment::<gst::ClockTime>::new();
                        *ev = gst::event::Segment::new(&fresh);
                    }
                }
                Some(gst::PadProbeData::Buffer(buf)) => {
                    let rt = buf.pts().and_then(|pts| input.to_running_time(pts));
                    match rt.and_then(|rt| rt.checked_sub(base)) {
                        Some(t) => {
                            let b = buf.make_mut();
                            b.set_pts(t);
                            b.set_dts(gst::ClockTime::NONE);
                        }
                        None => return gst::PadProbeReturn::Drop,
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_safe("a1b2:c-3d.e/f g"), "a1b2_c-3d.e_f_g");
    }

    #[test]
    fn errors_inside_recording_and_tap_bins_belong_to_that_branch() {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::with_name("room");
        let rec = gst::Bin::builder().name("rec-r1-a:b").build();
        let sink = gst::ElementFactory::make("fakesink").build().unwrap();
        rec.add(&sink).unwrap();
        let tap = gst::Bin::builder().name("tap-a:b-5004").build();
        let fwd = gst::ElementFactory::make("identity")
            .name("fwd-a:b")
            .build()
            .unwrap();
        pipeline
            .add_many([rec.upcast_ref(), tap.upcast_ref(), &fwd])
            .unwrap();
        assert_eq!(
            owning_branch(sink.upcast_ref(), &pipeline).as_deref(),
            Some("rec-r1-a:b")
        );
        assert_eq!(
            owning_branch(tap.upcast_ref(), &pipeline).as_deref(),
            Some("tap-a:b-5004")
        );
        assert_eq!(owning_branch(fwd.upcast_ref(), &pipeline), None);
    }
}
