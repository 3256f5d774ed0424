//! Pre-encoded media: VP8 and Opus generated once with GStreamer into IVF-framed files under
//! `target/bench-media/`, loaded into memory and replayed in a loop by the synthetic peers, so
//! the load generator spends no CPU on encoding.
//!
//! File format: the IVF container (32-byte `DKIF` header, then per frame a 12-byte header with
//! the frame size and a 64-bit timestamp). Video uses the `VP80` fourcc; the Opus file uses the
//! same framing with an `OPUS` fourcc, one 20 ms Opus packet per frame.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gst::prelude::*;

/// Failures making or reading media files.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// GStreamer failed while encoding.
    #[error("gstreamer: {0}")]
    Gst(String),
    /// File I/O.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not IVF or holds no frames.
    #[error("bad media file {0}")]
    Format(PathBuf),
}

/// Parameters of the generated video.
#[derive(Debug, Clone, Copy)]
pub struct VideoSpec {
    /// Target bitrate in kbit/s.
    pub kbps: u32,
    /// Frames per second.
    pub fps: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames between keyframes.
    pub gop: u32,
    /// Length of the loop in seconds.
    pub seconds: u32,
}

impl Default for VideoSpec {
    fn default() -> Self {
        Self {
            kbps: 500,
            fps: 30,
            width: 480,
            height: 270,
            gop: 60,
            seconds: 10,
        }
    }
}

/// One encoded frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Encoded bytes (a VP8 frame or one Opus packet).
    pub data: Arc<[u8]>,
    /// VP8 keyframe (always false for Opus).
    pub key: bool,
}

/// The media every synthetic publisher replays.
#[derive(Debug, Clone)]
pub struct MediaSet {
    /// VP8 frames in decode order; frame 0 is a keyframe.
    pub video: Arc<Vec<Frame>>,
    /// Opus packets, 20 ms each.
    pub audio: Arc<Vec<Frame>>,
    /// Video frame rate.
    pub fps: u32,
}

impl MediaSet {
    /// Average video bitrate of the loop in kbit/s.
    pub fn video_kbps(&self) -> f64 {
        let bytes: usize = self.video.iter().map(|f| f.data.len()).sum();
        bytes as f64 * 8.0 * self.fps as f64 / self.video.len().max(1) as f64 / 1000.0
    }

    /// Index of the first keyframe at or after `from` (wrapping to 0).
    pub fn next_keyframe(&self, from: usize) -> usize {
        (from..self.video.len())
            .find(|&i| self.video[i].key)
            .unwrap_or(0)
    }
}

/// Loads the media files for `spec` from `dir`, generating them first when missing.
pub fn prepare(dir: &Path, spec: VideoSpec) -> Result<MediaSet, MediaError> {
    std::fs::create_dir_all(dir)?;
    let video = dir.join(format!(
        "vp8-{}x{}-{}fps-{}k-gop{}-{}s.ivf",
        spec.width, spec.height, spec.fps, spec.kbps, spec.gop, spec.seconds
    ));
    let audio = dir.join(format!("opus-48k-stereo-20ms-{}s.ivf", spec.seconds));
    if !video.exists() {
        // vp8enc's CBR misses the target depending on content and size: re-encode with a
        // corrected target (at most 4 times) until the loop's real bitrate is within 8 %.
        let mut target = f64::from(spec.kbps);
        for _ in 0..4 {
            let desc = format!(
                "videotestsrc pattern=smpte horizontal-speed=2 num-buffers={n} \
                 ! video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 \
                 ! vp8enc target-bitrate={bps} end-usage=cbr deadline=1 cpu-used=4 \
                 keyframe-max-dist={gop} keyframe-mode=disabled lag-in-frames=0 threads=2 \
                 ! appsink name=sink sync=false",
                n = spec.fps * spec.seconds,
                w = spec.width,
                h = spec.height,
                fps = spec.fps,
                bps = (target * 1000.0) as u32,
                gop = spec.gop,
            );
            encode(&desc, &video, b"VP80", spec.width, spec.height, spec.fps)?;
            let bytes: usize = read_ivf(&video, true)?.iter().map(|f| f.data.len()).sum();
            let real = bytes as f64 * 8.0 / f64::from(spec.seconds) / 1000.0;
            if (real / f64::from(spec.kbps) - 1.0).abs() < 0.08 {
                break;
            }
            target *= f64::from(spec.kbps) / real;
        }
    }
    if !audio.exists() {
        let desc = format!(
            "audiotestsrc wave=pink-noise volume=0.3 num-buffers={n} samplesperbuffer=960 \
             ! audio/x-raw,rate=48000,channels=2 ! opusenc bitrate=48000 frame-size=20 \
             ! appsink name=sink sync=false",
            n = 50 * spec.seconds,
        );
        encode(&desc, &audio, b"OPUS", 0, 0, 50)?;
    }
    let video = read_ivf(&video, true)?;
    if !video.first().is_some_and(|f| f.key) {
        return Err(MediaError::Format(dir.to_path_buf()));
    }
    Ok(MediaSet {
        video: Arc::new(video),
        audio: Arc::new(read_ivf(&audio, false)?),
        fps: spec.fps,
    })
}

/// Runs `desc` (ending in an appsink named `sink`) to EOS and writes every buffer as an IVF
/// frame into `path` (via a temp file, so a crash never leaves a half file behind).
fn encode(
    desc: &str,
    path: &Path,
    fourcc: &[u8; 4],
    w: u32,
    h: u32,
    rate: u32,
) -> Result<(), MediaError> {
    let _ = gst::init();
    let pipeline = gst::parse::launch(desc)
        .map_err(|e| MediaError::Gst(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| MediaError::Gst("not a pipeline".into()))?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| MediaError::Gst("no appsink".into()))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| MediaError::Gst(e.to_string()))?;
    let mut frames: Vec<Vec<u8>> = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        if let Some(buf) = sample.buffer() {
            let map = buf
                .map_readable()
                .map_err(|e| MediaError::Gst(e.to_string()))?;
            frames.push(map.as_slice().to_vec());
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    if frames.is_empty() {
        return Err(MediaError::Gst(format!("no output from: {desc}")));
    }
    let mut out = Vec::new();
    out.extend_from_slice(b"DKIF");
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&(w as u16).to_le_bytes());
    out.extend_from_slice(&(h as u16).to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(i as u64).to_le_bytes());
        out.extend_from_slice(f);
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, out)?;
    std::fs::rename(tmp, path)?;
    Ok(())
}

/// Reads the frames of an IVF file; `vp8` marks keyframes from the VP8 frame tag.
pub fn read_ivf(path: &Path, vp8: bool) -> Result<Vec<Frame>, MediaError> {
    let bytes = std::fs::read(path)?;
    let bad = || MediaError::Format(path.to_path_buf());
    if bytes.len() < 32 || &bytes[..4] != b"DKIF" {
        return Err(bad());
    }
    let header = u16::from_le_bytes([bytes[6], bytes[7]]) as usize;
    let mut at = header;
    let mut frames = Vec::new();
    while at + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().map_err(|_| bad())?) as usize;
        at += 12;
        let data = bytes.get(at..at + len).ok_or_else(bad)?;
        at += len;
        // VP8 frame tag: bit 0 of the first byte is 0 for a keyframe.
        let key = vp8 && data.first().is_some_and(|b| b & 1 == 0);
        frames.push(Frame {
            data: Arc::from(data),
            key,
        });
    }
    if frames.is_empty() {
        return Err(bad());
    }
    Ok(frames)
}
