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
  /** Preferred devices (e.g. remembered from the last visit); another one is used if they are gone. */
  audioDeviceId?: string | null;
  videoDeviceId?: string | null;
  /** Media already opened (by the lobby): returned as is instead of opening devices again. */
  preacquired?: LocalMedia | null;
  /**
   * Whether each track starts active (false: joined muted / with the camera off, the track is
   * published disabled with `active: false` metadata). Default: both true.
   */
  initialActive?: { audio: boolean; camera: boolean } | null;
}

export interface LocalMedia {
  /** One stream holding the microphone and camera tracks that could be opened (maybe none). */
  stream: MediaStream;
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
  /** Human readable problems, e.g. "Camera unavailable: permission denied". */
  problems: string[];
  /** Why a requested device could not be opened: the DOMException name (e.g. "NotAllowedError"). */
  failures?: { audio: string | null; video: string | null };
  /** Stops synthetic generators (no-op for devices). */
  dispose: () => void;
}

/** The error's DOMException name ("NotAllowedError", "NotFoundError", ...), or "Error". */
export function errorName(err: unknown): string {
  return err instanceof DOMException || err instanceof Error ? err.name : "Error";
}

export function describe(err: unknown): string {
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

function withDevice(base: boolean | MediaTrackConstraints, deviceId: string | null | undefined, exact: boolean): MediaTrackConstraints | boolean {
  if (!deviceId) return base;
  const c: MediaTrackConstraints = typeof base === "object" ? { ...base } : {};
  c.deviceId = exact ? { exact: deviceId } : { ideal: deviceId };
  return c;
}

/** Microphone constraints of `req`, preferring (or, with `exact`, requiring) `deviceId`. */
export function audioConstraints(req: LocalMediaRequest, deviceId?: string | null, exact = false): boolean | MediaTrackConstraints {
  const base: boolean | MediaTrackConstraints = req.test ? TEST_AUDIO_CONSTRAINTS : (MEDIA_CONSTRAINTS.audio ?? true);
  return withDevice(base, deviceId, exact);
}

/** Camera constraints of `req`, preferring (or, with `exact`, requiring) `deviceId`. */
export function videoConstraints(req: LocalMediaRequest, deviceId?: string | null, exact = false): boolean | MediaTrackConstraints {
  const c = req.test ? req.capture : null;
  const base: boolean | MediaTrackConstraints = c
    ? { width: { ideal: c.width }, height: { ideal: c.height }, frameRate: { ideal: c.fps } }
    : req.test
      ? TEST_VIDEO_CONSTRAINTS
      : (MEDIA_CONSTRAINTS.video ?? true);
  return withDevice(base, deviceId, exact);
}

/** Opens one device of `kind` (exactly `deviceId` if given) with the constraints of `req`. */
export async function openDevice(req: LocalMediaRequest, kind: "audio" | "video", deviceId: string | null): Promise<MediaStreamTrack> {
  const s =
    kind === "audio"
      ? await gum({ audio: audioConstraints(req, deviceId, true) })
      : await gum({ video: videoConstraints(req, deviceId, true) });
  const track = kind === "audio" ? s.getAudioTracks()[0] : s.getVideoTracks()[0];
  if (!track) throw new DOMException("The device gave no track", "NotReadableError");
  return track;
}

/** openDevice, falling back to any device of the kind when `deviceId` is gone. */
async function openPreferred(req: LocalMediaRequest, kind: "audio" | "video", deviceId: string | null | undefined): Promise<MediaStreamTrack> {
  try {
    return await openDevice(req, kind, deviceId ?? null);
  } catch (err) {
    const name = errorName(err);
    if (deviceId && (name === "OverconstrainedError" || name === "NotFoundError")) return openDevice(req, kind, null);
    throw err;
  }
}

export async function getLocalMedia(req: LocalMediaRequest): Promise<LocalMedia> {
  if (req.preacquired) return req.preacquired;
  if (req.synth) return synthMedia(req);

  // Preferred devices are asked for with `exact` (Chrome ignores an `ideal` deviceId); a gone
  // device makes that request fail, and the device of that kind is then opened on its own.
  const audioC = audioConstraints(req, req.audioDeviceId, true);
  const videoC = videoConstraints(req, req.videoDeviceId, true);
  const problems: string[] = [];
  const failures: { audio: string | null; video: string | null } = { audio: null, video: null };
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
      audio = await openPreferred(req, "audio", req.audioDeviceId);
    } catch (err) {
      problems.push(`Microphone unavailable: ${describe(err)}`);
      failures.audio = errorName(err);
    }
  }
  if (req.video && !video) {
    try {
      video = await openPreferred(req, "video", req.videoDeviceId);
    } catch (err) {
      problems.push(`Camera unavailable: ${describe(err)}`);
      failures.video = errorName(err);
    }
  }
  const stream = new MediaStream([audio, video].filter((t): t is MediaStreamTrack => t !== null));
  return { stream, audio, video, problems, failures, dispose: () => undefined };
}

/** The gain of the synthetic tone playing now (the test hooks mute and unmute it). */
let synthGain: GainNode | null = null;

/** Sets the synthetic tone's gain (0 silence, 0.3 the default); false without one. */
export function setSynthGain(value: number): boolean {
  if (!synthGain) return false;
  synthGain.gain.value = value;
  return true;
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
    synthGain = gain;
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
    failures: { audio: null, video: null },
    dispose: () => stops.forEach((f) => f()),
  };
}
