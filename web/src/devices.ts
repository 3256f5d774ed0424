// Media devices: listing (enumerateDevices), the remembered choices (localStorage), pickers
// (<select> elements), the audio output (setSinkId where supported) and a microphone level
// meter (WebAudio AnalyserNode). Used by the lobby and by the in-room device panel.

import { LocalMediaRequest, describe, openDevice } from "./local_media";

export type DeviceKind = "audioinput" | "videoinput" | "audiooutput";

const STORAGE_KEYS: Record<DeviceKind, string> = {
  audioinput: "lamina.device.audioinput",
  videoinput: "lamina.device.videoinput",
  audiooutput: "lamina.device.audiooutput",
};

/** The device chosen last time (any visit), or null. */
export function savedDevice(kind: DeviceKind): string | null {
  try {
    return localStorage.getItem(STORAGE_KEYS[kind]) || null;
  } catch {
    return null; // storage disabled
  }
}

/** Remembers the choice for the next visit (null forgets it). */
export function saveDevice(kind: DeviceKind, deviceId: string | null): void {
  try {
    if (deviceId) localStorage.setItem(STORAGE_KEYS[kind], deviceId);
    else localStorage.removeItem(STORAGE_KEYS[kind]);
  } catch {
    /* storage disabled: not remembered */
  }
}

export interface DeviceLists {
  audioinput: MediaDeviceInfo[];
  videoinput: MediaDeviceInfo[];
  audiooutput: MediaDeviceInfo[];
}

/** Every device by kind (labels are empty until the page was allowed to capture). */
export async function listDevices(): Promise<DeviceLists> {
  const out: DeviceLists = { audioinput: [], videoinput: [], audiooutput: [] };
  if (!navigator.mediaDevices?.enumerateDevices) return out;
  let all: MediaDeviceInfo[] = [];
  try {
    all = await navigator.mediaDevices.enumerateDevices();
  } catch {
    return out;
  }
  const seen = new Set<string>();
  for (const d of all) {
    if (!(d.kind in out)) continue;
    // Without permission every device has the id "": list it once, as "Camera 1" etc.
    const key = `${d.kind}/${d.deviceId}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out[d.kind as DeviceKind].push(d);
  }
  return out;
}

/** Whether the browser can pick the audio output of media elements. */
export function sinkSupported(): boolean {
  return typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;
}

/** Sends the element's audio to the output `deviceId` ("" = system default); false if it failed. */
export async function setSink(el: HTMLMediaElement, deviceId: string): Promise<boolean> {
  const e = el as HTMLMediaElement & { setSinkId?: (id: string) => Promise<void>; sinkId?: string };
  if (typeof e.setSinkId !== "function") return false;
  if (e.sinkId === deviceId) return true;
  try {
    await e.setSinkId(deviceId);
    return true;
  } catch (err) {
    console.warn("lamina: setSinkId failed", err);
    return false;
  }
}

const KIND_NAMES: Record<DeviceKind, string> = { audioinput: "Microphone", videoinput: "Camera", audiooutput: "Speaker" };

/**
 * Fills a picker with `devices` and selects `selected` (or the first one). With no device the
 * picker shows `emptyText` and is disabled. Returns the selected device id ("" if none).
 */
export function fillPicker(
  select: HTMLSelectElement,
  kind: DeviceKind,
  devices: MediaDeviceInfo[],
  selected: string | null,
  emptyText: string,
): string {
  const options = devices.map((d, i) => {
    const o = document.createElement("option");
    o.value = d.deviceId;
    o.textContent = d.label || `${KIND_NAMES[kind]} ${i + 1}`;
    return o;
  });
  if (options.length === 0) {
    const o = document.createElement("option");
    o.value = "";
    o.textContent = emptyText;
    options.push(o);
  }
  select.replaceChildren(...options);
  select.disabled = devices.length === 0;
  const want = selected && devices.some((d) => d.deviceId === selected) ? selected : (devices[0]?.deviceId ?? "");
  select.value = want;
  return want;
}

/** The device id a live track was opened on, or null. */
export function trackDeviceId(track: MediaStreamTrack | null): string | null {
  if (!track) return null;
  try {
    return track.getSettings().deviceId || null;
  } catch {
    return null;
  }
}

/**
 * Level of a microphone track, 0..1 (-60 dBFS..0 dBFS, fast attack, slow release), measured
 * with an AnalyserNode every 50 ms; `onLevel` is called with each value.
 */
export class LevelMeter {
  level = 0;
  private ctx: AudioContext | null = null;
  private source: MediaStreamAudioSourceNode | null = null;
  private timer: number | null = null;
  private readonly onLevel: (level: number) => void;

  constructor(onLevel: (level: number) => void) {
    this.onLevel = onLevel;
  }

  /** Measures `track` (null: nothing, level 0). */
  attach(track: MediaStreamTrack | null): void {
    this.detach();
    if (!track || typeof AudioContext === "undefined") return;
    if (!this.ctx) this.ctx = new AudioContext();
    const ctx = this.ctx;
    void ctx.resume().catch(() => undefined);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    this.source = ctx.createMediaStreamSource(new MediaStream([track]));
    this.source.connect(analyser);
    const data = new Float32Array(analyser.fftSize);
    // setInterval rather than requestAnimationFrame: keeps measuring in background tabs.
    this.timer = window.setInterval(() => {
      analyser.getFloatTimeDomainData(data);
      let sum = 0;
      for (let i = 0; i < data.length; i++) sum += data[i] * data[i];
      const rms = Math.sqrt(sum / data.length);
      const db = rms > 0 ? 20 * Math.log10(rms) : -100;
      const target = track.enabled && track.readyState === "live" ? Math.min(1, Math.max(0, (db + 60) / 60)) : 0;
      this.level = target > this.level ? target : Math.max(target, this.level - 0.08);
      this.onLevel(this.level);
    }, 50);
  }

  /** A user gesture lets a suspended AudioContext run (autoplay policies). */
  resume(): void {
    if (this.ctx && this.ctx.state === "suspended") void this.ctx.resume().catch(() => undefined);
  }

  detach(): void {
    if (this.timer !== null) window.clearInterval(this.timer);
    this.timer = null;
    this.source?.disconnect();
    this.source = null;
    this.level = 0;
    this.onLevel(0);
  }

  close(): void {
    this.detach();
    void this.ctx?.close().catch(() => undefined);
    this.ctx = null;
  }
}

/** Plays a short two-note chime on the output `deviceId` (speaker test). */
export async function playTestSound(deviceId: string): Promise<void> {
  const ctx = new AudioContext();
  try {
    const dest = ctx.createMediaStreamDestination();
    const gain = ctx.createGain();
    gain.connect(dest);
    const t0 = ctx.currentTime + 0.05;
    [660, 880].forEach((hz, i) => {
      const osc = ctx.createOscillator();
      osc.frequency.value = hz;
      osc.connect(gain);
      osc.start(t0 + i * 0.25);
      osc.stop(t0 + i * 0.25 + 0.22);
    });
    gain.gain.setValueAtTime(0.0001, t0);
    gain.gain.exponentialRampToValueAtTime(0.3, t0 + 0.02);
    gain.gain.setValueAtTime(0.3, t0 + 0.45);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.5);
    const audio = new Audio();
    audio.srcObject = dest.stream;
    if (deviceId) await setSink(audio, deviceId);
    await ctx.resume();
    await audio.play();
    await new Promise((r) => setTimeout(r, 700));
    audio.pause();
    audio.srcObject = null;
  } finally {
    void ctx.close();
  }
}

// ------------------------------------------------------------------------------------------
// The in-room device panel ("Devices" button): switch camera, microphone and speaker mid-call.

export interface DevicePanelOptions {
  request: LocalMediaRequest;
  /**
   * Replaces the published microphone or camera track (MediaStreamTrack-level, no
   * renegotiation); null when the Room cannot do it: the choice is then saved for the next join.
   */
  replace: ((which: "audio" | "camera", track: MediaStreamTrack) => Promise<boolean>) | null;
  /** The local tracks being published (from the local tile). */
  localTracks: () => MediaStreamTrack[];
  setSpeaker: (deviceId: string) => void;
}

export function setupDevicePanel(opts: DevicePanelOptions): void {
  const button = document.getElementById("devices-button") as HTMLButtonElement | null;
  const panel = document.getElementById("devices-panel");
  if (!button || !panel) return;
  const q = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
  const camera = q<HTMLSelectElement>("room-camera-select");
  const mic = q<HTMLSelectElement>("room-mic-select");
  const speaker = q<HTMLSelectElement>("room-speaker-select");
  const speakerRow = q<HTMLElement>("room-speaker-row");
  const note = q<HTMLElement>("devices-note");
  let speakerId = savedDevice("audiooutput") ?? "";
  button.hidden = false;
  button.disabled = false;

  const say = (text: string) => {
    note.textContent = text;
    note.hidden = !text;
  };
  const refresh = async () => {
    const ds = await listDevices();
    const tracks = opts.localTracks();
    const cur = (kind: "audio" | "video") => trackDeviceId(tracks.find((t) => t.kind === kind) ?? null);
    fillPicker(camera, "videoinput", ds.videoinput, cur("video") ?? savedDevice("videoinput"), "No camera found");
    fillPicker(mic, "audioinput", ds.audioinput, cur("audio") ?? savedDevice("audioinput"), "No microphone found");
    speakerId = fillPicker(speaker, "audiooutput", ds.audiooutput, speakerId, "System default");
    speakerRow.hidden = !sinkSupported() || ds.audiooutput.length === 0;
  };
  const close = () => {
    panel.hidden = true;
    button.setAttribute("aria-expanded", "false");
  };
  button.addEventListener("click", () => {
    if (!panel.hidden) return close();
    panel.hidden = false;
    button.setAttribute("aria-expanded", "true");
    say("");
    void refresh();
  });
  document.getElementById("devices-close")?.addEventListener("click", close);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !panel.hidden) close();
  });

  const switchTo = async (kind: "audioinput" | "videoinput", deviceId: string) => {
    const media = kind === "audioinput" ? "audio" : "video";
    const old = opts.localTracks().find((t) => t.kind === media) ?? null;
    saveDevice(kind, deviceId || null);
    if (!opts.replace || !old) {
      say(
        old
          ? "Saved: this device is used the next time you join."
          : `You joined without a ${media === "audio" ? "microphone" : "camera"}; this device is used the next time you join.`,
      );
      return;
    }
    if (trackDeviceId(old) === deviceId) return;
    say("Switching…");
    let track: MediaStreamTrack;
    try {
      track = await openDevice(opts.request, media, deviceId || null);
    } catch (err) {
      say(`Cannot open this device: ${describe(err)}.`);
      return;
    }
    track.enabled = old.enabled;
    const ok = await opts.replace(media === "audio" ? "audio" : "camera", track).catch(() => false);
    if (!ok) {
      track.stop();
      say("The device could not be switched; try again in a moment.");
      return;
    }
    say("");
  };
  camera.addEventListener("change", () => void switchTo("videoinput", camera.value));
  mic.addEventListener("change", () => void switchTo("audioinput", mic.value));
  speaker.addEventListener("change", () => {
    speakerId = speaker.value;
    saveDevice("audiooutput", speakerId || null);
    opts.setSpeaker(speakerId);
  });
  navigator.mediaDevices?.addEventListener?.("devicechange", () => {
    if (!panel.hidden) void refresh();
  });
}
