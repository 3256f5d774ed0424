// Acquisition of the local camera and microphone, with graceful fallbacks, plus synthetic
// media for tests (a coloured canvas and a sine tone unique to each participant).

import { MEDIA_CONSTRAINTS, TEST_AUDIO_CONSTRAINTS, TEST_VIDEO_CONSTRAINTS } from "./consts";

export interface LocalMediaRequest {
  audio: boolean;
  video: boolean;
  /** Test mode: small frames, no audio processing. */
  test: boolean;
  /** Test mode: camera capture size and rate instead of the small test default (`?capture=WxH@fps`). */
  capture?: { width: number; height: number; fps: number } | null;
  /** Test mode: generate media instead of opening devices. */
  synth?: { hue: number; toneHz: number; width: number; height: number; fps: number } | null;
}

export interface LocalMedia {
  /** One stream holding the microphone and camera tracks that could be opened (maybe none). */
  stream: MediaStream;
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
  /** Human readable problems, e.g. "Camera unavailable: permission denied". */
  problems: string[];
  /** Stops synthetic generators (no-op for devices). */
  dispose: () => void;
}

function describe(err: unknown): string {
  if (err instanceof DOMException) {
    switch (err.name) {
      case "NotAllowedError":
        return "permission denied";
      case "NotFoundError":
        return "no device found";
      case "NotReadableError":
        return "device is busy or unreadable";
      case "OverconstrainedError":
        return "no device matches the requested settings";
      default:
        return err.message || err.name;
    }
  }
  return String(err);
}

async function gum(constraints: MediaStreamConstraints): Promise<MediaStream> {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new DOMException("This browser cannot capture media (insecure page or no support)", "NotSupportedError");
  }
  return navigator.mediaDevices.getUserMedia(constraints);
}

export async function getLocalMedia(req: LocalMediaRequest): Promise<LocalMedia> {
  if (req.synth) return synthMedia(req);

  const audioC: boolean | MediaTrackConstraints = req.test ? TEST_AUDIO_CONSTRAINTS : (MEDIA_CONSTRAINTS.audio ?? true);
  const c = req.test ? req.capture : null;
  const videoC: boolean | MediaTrackConstraints = c
    ? { width: { ideal: c.width }, height: { ideal: c.height }, frameRate: { ideal: c.fps } }
    : req.test
      ? TEST_VIDEO_CONSTRAINTS
      : (MEDIA_CONSTRAINTS.video ?? true);
  const problems: string[] = [];
  let audio: MediaStreamTrack | null = null;
  let video: MediaStreamTrack | null = null;

  if (req.audio && req.video) {
    try {
      const s = await gum({ audio: audioC, video: videoC });
      audio = s.getAudioTracks()[0] ?? null;
      video = s.getVideoTracks()[0] ?? null;
    } catch {
      // Fall through: try each device on its own so that one broken device does not block the other.
    }
  }
  if (req.audio && !audio) {
    try {
      audio = (await gum({ audio: audioC })).getAudioTracks()[0] ?? null;
    } catch (err) {
      problems.push(`Microphone unavailable: ${describe(err)}`);
    }
  }
  if (req.video && !video) {
    try {
      video = (await gum({ video: videoC })).getVideoTracks()[0] ?? null;
    } catch (err) {
      problems.push(`Camera unavailable: ${describe(err)}`);
    }
  }
  const stream = new MediaStream([audio, video].filter((t): t is MediaStreamTrack => t !== null));
  return { stream, audio, video, problems, dispose: () => undefined };
}

/** Canvas video in one hue (with a moving bar so frames differ) and an oscillator tone. */
function synthMedia(req: LocalMediaRequest): LocalMedia {
  const s = req.synth!;
  const tracks: MediaStreamTrack[] = [];
  const stops: Array<() => void> = [];
  let audio: MediaStreamTrack | null = null;
  let video: MediaStreamTrack | null = null;

  if (req.video) {
    const canvas = document.createElement("canvas");
    canvas.width = s.width;
    canvas.height = s.height;
    const ctx = canvas.getContext("2d")!;
    let n = 0;
    const draw = () => {
      ctx.fillStyle = `hsl(${s.hue}, 80%, 50%)`;
      ctx.fillRect(0, 0, s.width, s.height);
      ctx.fillStyle = "rgba(0,0,0,0.6)";
      const bar = Math.max(4, Math.floor(s.width / 16));
      ctx.fillRect((n * 4) % s.width, 0, bar, Math.floor(s.height / 6));
      n++;
    };
    draw();
    // setInterval rather than requestAnimationFrame: keeps drawing in background/headless tabs.
    const timer = window.setInterval(draw, Math.round(1000 / s.fps));
    stops.push(() => window.clearInterval(timer));
    video = canvas.captureStream(s.fps).getVideoTracks()[0];
    tracks.push(video);
  }
  if (req.audio) {
    const ac = new AudioContext();
    const osc = ac.createOscillator();
    osc.frequency.value = s.toneHz;
    const gain = ac.createGain();
    gain.gain.value = 0.3;
    const dest = ac.createMediaStreamDestination();
    osc.connect(gain).connect(dest);
    osc.start();
    void ac.resume();
    stops.push(() => void ac.close());
    audio = dest.stream.getAudioTracks()[0];
    tracks.unshift(audio);
  }
  return {
    stream: new MediaStream(tracks),
    audio,
    video,
    problems: [],
    dispose: () => stops.forEach((f) => f()),
  };
}
