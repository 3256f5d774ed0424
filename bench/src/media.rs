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
    /// Frames per second (numerator).
    pub fps: u32,
    /// Denominator of the frame rate (1 but for a simulcast layer's fractional rate).
    pub fps_den: u32,
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
            fps_den: 1,
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
    /// The simulcast layers, low to high (empty unless [`add_layers`] ran): `l` and `m` are
    /// loops of their own, `h` is [`MediaSet::video`].
    pub layers: Arc<Vec<Layer>>,
}

/// The RIDs of the simulcast layers, low to high quality (the order Lamina reads them in, and
/// the order of the synthetic publishers' `a=simulcast:send`).
pub const RIDS: [&str; 3] = ["l", "m", "h"];

/// One simulcast layer a synthetic publisher sends.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Its RID (one of [`RIDS`]).
    pub rid: &'static str,
    /// Its VP8 frames in decode order; frame 0 is a keyframe.
    pub video: Arc<Vec<Frame>>,
    /// Sent on every `every`-th tick of the base frame rate ([`MediaSet::fps`]).
    pub every: u32,
    /// Average bitrate of the loop, kbit/s.
    pub kbps: f64,
}

impl MediaSet {
    /// Average video bitrate of the loop in kbit/s.
    pub fn video_kbps(&self) -> f64 {
        let bytes: usize = self.video.iter().map(|f| f.data.len()).sum();
        bytes as f64 * 8.0 * self.fps as f64 / self.video.len().max(1) as f64 / 1000.0
    }
}

/// Index of the first keyframe of `frames` at or after `from` (wrapping to 0).
pub fn next_keyframe(frames: &[Frame], from: usize) -> usize {
    (from..frames.len()).find(|&i| frames[i].key).unwrap_or(0)
}

/// Average bitrate of a VP8 loop played at `fps`, kbit/s.
fn loop_kbps(frames: &[Frame], fps: f64) -> f64 {
    let bytes: usize = frames.iter().map(|f| f.data.len()).sum();
    bytes as f64 * 8.0 * fps / frames.len().max(1) as f64 / 1000.0
}

/// Adds the simulcast layers to `media` (made with `spec`), generating the `l` and `m` loops
/// into `dir` first when missing. The layers keep the packet rates of a browser's 720p
/// simulcast relative to its top layer (`h` at ~8 packets per frame, `m` ~3, `l` 1: `l` ≈ 1/8
/// and `m` ≈ 1/3 of `h`'s packets) while `h` stays the loop every other scenario sends (~2
/// packets per frame at 30 fps), so that what the subscribers receive is the same as without
/// simulcast: `m` is a quarter of the picture at half the frame rate and 28 % of the bitrate
/// (1–2 packets per frame, 15 fps), `l` a sixteenth at a quarter of the frame rate and a tenth
/// of the bitrate (1 packet per frame, 7.5 fps); keyframes every 2 s in every layer.
pub fn add_layers(dir: &Path, media: &mut MediaSet, spec: VideoSpec) -> Result<(), MediaError> {
    let even = |v: u32| (v + 1) & !1;
    let mut layers = Vec::new();
    for (rid, div, every, kbps) in [
        ("l", 4, 4, spec.kbps / 10),
        ("m", 2, 2, spec.kbps * 28 / 100),
    ] {
        let layer = VideoSpec {
            kbps,
            fps: spec.fps,
            fps_den: every,
            width: even(spec.width / div),
            height: even(spec.height / div),
            gop: spec.gop / every,
            seconds: spec.seconds,
        };
        let video = prepare_video(dir, layer)?;
        let fps = f64::from(spec.fps) / f64::from(every);
        layers.push(Layer {
            rid,
            kbps: loop_kbps(&video, fps),
            video: Arc::new(video),
            every,
        });
    }
    layers.push(Layer {
        rid: "h",
        kbps: media.video_kbps(),
        video: media.video.clone(),
        every: 1,
    });
    media.layers = Arc::new(layers);
    Ok(())
}

/// Loads the media files for `spec` from `dir`, generating them first when missing.
pub fn prepare(dir: &Path, spec: VideoSpec) -> Result<MediaSet, MediaError> {
    std::fs::create_dir_all(dir)?;
    let audio = dir.join(format!("opus-48k-stereo-20ms-{}s.ivf", spec.seconds));
    let video = prepare_video(dir, spec)?;
    if !audio.exists() {
        let desc = format!(
            "audiotestsrc wave=pink-noise volume=0.3 num-buffers={n} samplesperbuffer=960 \
             ! audio/x-raw,rate=48000,channels=2 ! opusenc bitrate=48000 frame-size=20 \
             ! appsink name=sink sync=false",
            n = 50 * spec.seconds,
        );
        encode(&desc, &audio, b"OPUS", 0, 0, 50)?;
    }
    Ok(MediaSet {
        video: Arc::new(video),
        audio: Arc::new(read_ivf(&audio, false)?),
        fps: spec.fps,
        layers: Arc::default(),
    })
}

/// Loads the VP8 loop for `spec` from `dir`, generating it first when missing.
fn prepare_video(dir: &Path, spec: VideoSpec) -> Result<Vec<Frame>, MediaError> {
    std::fs::create_dir_all(dir)?;
    let rate = if spec.fps_den == 1 {
        format!("{}fps", spec.fps)
    } else {
        format!("{}-{}fps", spec.fps, spec.fps_den)
    };
    let video = dir.join(format!(
        "vp8-{}x{}-{rate}-{}k-gop{}-{}s.ivf",
        spec.width, spec.height, spec.kbps, spec.gop, spec.seconds
    ));
    let fps = f64::from(spec.fps) / f64::from(spec.fps_den.max(1));
    if !video.exists() {
        // vp8enc's CBR misses the target depending on content and size: re-encode with a
        // corrected target (at most 4 times) until the loop's real bitrate is within 8 %.
        let mut target = f64::from(spec.kbps);
        for _ in 0..4 {
            let desc = format!(
                "videotestsrc pattern=smpte horizontal-speed=2 num-buffers={n} \
                 ! video/x-raw,format=I420,width={w},height={h},framerate={fps}/{den} \
                 ! vp8enc target-bitrate={bps} end-usage=cbr deadline=1 cpu-used=4 \
                 keyframe-max-dist={gop} keyframe-mode=disabled lag-in-frames=0 threads=2 \
                 ! appsink name=sink sync=false",
                n = (fps * f64::from(spec.seconds)).round() as u32,
                w = spec.width,
                h = spec.height,
                fps = spec.fps,
                den = spec.fps_den.max(1),
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
    let frames = read_ivf(&video, true)?;
    if !frames.first().is_some_and(|f| f.key) {
        return Err(MediaError::Format(video));
    }
    Ok(frames)
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
