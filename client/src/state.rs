//! What a participant observed ([`ParticipantState`], one [`RemoteTrack`] per remote track) and
//! the hookup of received streams to decoders that count frames into it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_webrtc::WebRTCRTPTransceiver;
use serde_json::Value;

use crate::media;

/// A remote track as this participant sees it.
#[derive(Debug, Clone, Default)]
pub struct RemoteTrack {
    /// Owner endpoint id.
    pub endpoint: String,
    /// Metadata from `tracksAdded` / `trackUpdated`.
    pub metadata: Value,
    /// The simulcast layers (RIDs, low to high) `tracksAdded` announced; `None` for a
    /// single-encoding track.
    pub simulcast: Option<Vec<String>>,
    /// The mid the last answer mapped it to.
    pub mid: Option<String>,
    /// Decoded video frames or audio buffers.
    pub frames: u64,
    /// When the first decoded frame arrived.
    pub first_frame: Option<Instant>,
    /// When the last decoded frame arrived.
    pub last_frame: Option<Instant>,
    /// Longest interval between two decoded frames.
    pub max_gap: Duration,
    /// Every interval between two decoded frames longer than [`STALL`]: when the frame that
    /// ended it was decoded, and its length (at most [`MAX_STALLS`] kept, the first ones).
    pub stalls: Vec<(Instant, Duration)>,
    /// Width and height of the last decoded video frame.
    pub size: Option<(u32, u32)>,
    /// Every change of the decoded video size: when the first frame of the new size was
    /// decoded, width, height (the first frame counts as a change).
    pub sizes: Vec<(Instant, u32, u32)>,
    /// The simulcast layer the server last said it sends of this track (`encodingSwitched`),
    /// with its reason.
    pub encoding: Option<(String, String)>,
}

/// Shortest interval between two decoded frames recorded in [`RemoteTrack::stalls`] (a 15
/// frames/s camera decodes one every ~67 ms).
pub const STALL: Duration = Duration::from_millis(200);
/// Most entries [`RemoteTrack::stalls`] keeps.
pub const MAX_STALLS: usize = 1000;

/// An `encodingSwitched` the participant received.
#[derive(Debug, Clone)]
pub struct EncodingSwitch {
    /// When it arrived.
    pub at: Instant,
    /// The remote track.
    pub track_id: String,
    /// The layer (RID) now sent.
    pub encoding: String,
    /// Why: `"other"`, `"encoding_inactive"`, `"low_bandwidth"`.
    pub reason: String,
}

/// Everything the participant observed.
#[derive(Debug, Clone)]
pub struct ParticipantState {
    /// Own endpoint id (from `connected`).
    pub id: String,
    /// When `connect` was sent.
    pub joined_at: Instant,
    /// Other endpoints: id → metadata.
    pub endpoints: BTreeMap<String, Value>,
    /// Remote tracks announced and not removed: id → track.
    pub tracks: BTreeMap<String, RemoteTrack>,
    /// `error` media events received.
    pub errors: Vec<String>,
    /// `offerData` received.
    pub rounds: u32,
    /// `sdpAnswer` received.
    pub answers: u32,
    /// Last mid → track id map from the server.
    pub mid_to_track: BTreeMap<String, String>,
    /// Media event types received, in order.
    pub log: Vec<String>,
    /// Keyframes encoded so far per own video track id.
    pub sent_keyframes: BTreeMap<String, u64>,
    /// `vadNotification`s received: when, track id, speech (true) or silence.
    pub vad: Vec<(Instant, String, bool)>,
    /// `encodingSwitched` events received, in order (the latest per track is also
    /// [`RemoteTrack::encoding`]).
    pub encoding_switches: Vec<EncodingSwitch>,
    /// The last `bandwidthEstimation` (bit/s).
    pub bandwidth_estimation: Option<u64>,
    /// Every `bandwidthEstimation` received, in order: when it arrived, bit/s (the first
    /// 10 000).
    pub bandwidth_estimations: Vec<(Instant, u64)>,
    /// Keyframes encoded so far per own simulcast video track and layer: track id → RID →
    /// count (their sum is in `sent_keyframes`).
    pub sent_layer_keyframes: BTreeMap<String, BTreeMap<String, u64>>,
    /// The SDP text of the last `sdpAnswer` (as the server sent it).
    pub last_answer: Option<String>,
    /// TWCC feedback packets (RTCP RTPFB, FMT 15) the participant sent: what the server's
    /// downlink estimate is made of.
    pub twcc_feedback_sent: u64,
    /// Errors and warnings posted on the participant's pipeline bus (e.g. a decoder that
    /// could not decode a frame), as `<element>: <message>`.
    pub bus_errors: Vec<String>,
}

impl ParticipantState {
    /// The decoded width of remote track `track`, 0 before its first frame.
    pub fn width(&self, track: &str) -> u32 {
        self.tracks
            .get(track)
            .and_then(|t| t.size)
            .map_or(0, |(w, _)| w)
    }

    /// Remote tracks of `endpoint` that decoded at least `min_frames`.
    pub fn playing(&self, endpoint: &str, min_frames: u64) -> usize {
        self.tracks
            .values()
            .filter(|t| t.endpoint == endpoint && t.frames >= min_frames)
            .count()
    }

    /// Total decoded frames of all remote tracks.
    pub fn total_frames(&self) -> u64 {
        self.tracks.values().map(|t| t.frames).sum()
    }
}

/// Locks the participant state, recovering it if a holder panicked.
pub(crate) fn lock(state: &Mutex<ParticipantState>) -> std::sync::MutexGuard<'_, ParticipantState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Links every incoming stream of `webrtc` to a decoder that counts frames for its track.
pub(crate) fn connect_decoders(
    pipeline: &gst::Pipeline,
    webrtc: &gst::Element,
    state: &Arc<Mutex<ParticipantState>>,
    keyframe_on_loss: bool,
) {
    let pipeline = pipeline.downgrade();
    let state = state.clone();
    webrtc.connect_pad_added(move |_, pad| {
        if pad.direction() != gst::PadDirection::Src {
            return;
        }
        let Some(pipeline) = pipeline.upgrade() else {
            return;
        };
        let mid = pad
            .property::<Option<WebRTCRTPTransceiver>>("transceiver")
            .and_then(|t| t.mid())
            .map(|m| m.to_string())
            .unwrap_or_default();
        let video = pad
            .current_caps()
            .and_then(|c| c.structure(0).and_then(|s| s.get::<String>("media").ok()))
            .is_some_and(|m| m == "video");
        let track = lock(&state)
            .mid_to_track
            .get(&mid)
            .cloned()
            .unwrap_or_else(|| format!("mid:{mid}"));
        let counter_state = state.clone();
        let on_frame = move |size: Option<(u32, u32)>| {
            let now = Instant::now();
            let mut s = lock(&counter_state);
            let t = s.tracks.entry(track.clone()).or_default();
            t.frames += 1;
            if let Some(last) = t.last_frame {
                let gap = now - last;
                t.max_gap = t.max_gap.max(gap);
                if gap > STALL && t.stalls.len() < MAX_STALLS {
                    t.stalls.push((now, gap));
                }
            }
            t.first_frame.get_or_insert(now);
            t.last_frame = Some(now);
            if let Some((w, h)) = size {
                if t.size != size {
                    t.sizes.push((now, w, h));
                }
                t.size = size;
            }
        };
        let Ok(bin) = media::decoder(video, keyframe_on_loss, on_frame) else {
            return;
        };
        if pipeline.add(&bin).is_err() {
            return;
        }
        let _ = bin.sync_state_with_parent();
        if let Some(sink) = bin.static_pad("sink") {
            if pad.link(&sink).is_err() {
                tracing::warn!(%mid, "client could not link a received stream");
            }
        }
    });
}
