// The lobby: shown on the room page before the Room exists. A camera preview, a microphone
// level meter, camera / microphone / speaker pickers (remembered in localStorage), switches to
// join with the camera or microphone off, the display name, and a clear message when a device
// is blocked or missing (joining stays possible without it). "Join" hands the opened tracks
// over to the Room (no second getUserMedia).

import {
  DeviceKind,
  DeviceLists,
  LevelMeter,
  fillPicker,
  listDevices,
  playTestSound,
  saveDevice,
  savedDevice,
  sinkSupported,
  trackDeviceId,
} from "./devices";
import { LocalMedia, LocalMediaRequest, describe, errorName, getLocalMedia, openDevice } from "./local_media";
import { MAX_DISPLAY_NAME_LENGTH } from "./consts";
import { initials, nameHue } from "./room_ui";

/** What the user chose in the lobby. The caller owns `media`'s tracks from now on. */
export interface LobbyChoice {
  displayName: string;
  media: LocalMedia;
  micOn: boolean;
  cameraOn: boolean;
  /** Audio output device id ("" = system default). */
  speaker: string;
}

export interface LobbyOptions {
  /** Which devices to open and with which constraints (test mode, synthetic media). */
  request: LocalMediaRequest;
  displayName: string;
  onJoin: (choice: LobbyChoice) => void;
}

/** The lobby as the tests read it (window.lamina.lobby()). */
export interface LobbyInfo {
  shown: boolean;
  ready: boolean;
  cameras: string[];
  microphones: string[];
  speakers: string[];
  selected: { camera: string; microphone: string; speaker: string };
  /** Device ids the open tracks actually use. */
  open: { camera: string | null; microphone: string | null };
  cameraOn: boolean;
  micOn: boolean;
  level: number;
  preview: { videoWidth: number; videoHeight: number; playing: boolean; currentTime: number };
  message: string;
  sinkSupported: boolean;
  joinEnabled: boolean;
}

const NAME_KEY = "lamina.lobby.displayName";

const $ = <T extends HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing element #${id}`);
  return e as T;
};

/** What the user reads for a device that could not be opened (DOMException name). */
function failureText(device: "camera" | "microphone", name: string): string {
  switch (name) {
    case "NotAllowedError":
    case "SecurityError":
      return `access to the ${device} is blocked (permission denied)`;
    case "NotFoundError":
    case "OverconstrainedError":
      return `no ${device} was found`;
    case "NotReadableError":
    case "AbortError":
      return `the ${device} is busy (used by another application?) or cannot be read`;
    case "NotSupportedError":
      return `this page cannot use the ${device} (it must be opened over HTTPS)`;
    case "Ended":
      return `the ${device} was disconnected`;
    default:
      return `the ${device} could not be opened (${name})`;
  }
}

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export class Lobby {
  private readonly opts: LobbyOptions;
  private readonly req: LocalMediaRequest;
  private audio: MediaStreamTrack | null = null;
  private video: MediaStreamTrack | null = null;
  private failures: { audio: string | null; video: string | null } = { audio: null, video: null };
  private micOn = true;
  private cameraOn = true;
  private devices: DeviceLists = { audioinput: [], videoinput: [], audiooutput: [] };
  private selected: Record<DeviceKind, string> = { audioinput: "", videoinput: "", audiooutput: "" };
  private dispose: () => void = () => undefined;
  private readonly meter: LevelMeter;
  private ready = false;
  private busy = false;
  private done = false;
  private readonly onDeviceChange = () => void this.refreshDevices();

  private readonly el = {
    section: $<HTMLElement>("lobby"),
    preview: $<HTMLElement>("lobby-preview"),
    video: $<HTMLVideoElement>("lobby-video"),
    initials: $<HTMLElement>("lobby-initials"),
    form: $<HTMLFormElement>("lobby-form"),
    name: $<HTMLInputElement>("lobby-name"),
    camera: $<HTMLSelectElement>("lobby-camera-select"),
    mic: $<HTMLSelectElement>("lobby-mic-select"),
    speaker: $<HTMLSelectElement>("lobby-speaker-select"),
    speakerRow: $<HTMLElement>("lobby-speaker-row"),
    speakerTest: $<HTMLButtonElement>("lobby-speaker-test"),
    level: $<HTMLElement>("lobby-mic-level"),
    levelBar: $<HTMLElement>("lobby-mic-level-bar"),
    micToggle: $<HTMLButtonElement>("lobby-mic-toggle"),
    cameraToggle: $<HTMLButtonElement>("lobby-camera-toggle"),
    message: $<HTMLElement>("lobby-message"),
    join: $<HTMLButtonElement>("lobby-join"),
  };

  constructor(opts: LobbyOptions) {
    this.opts = opts;
    this.req = opts.request;
    this.meter = new LevelMeter((level) => this.renderLevel(level));
  }

  /** Shows the lobby and opens the devices. */
  async start(): Promise<void> {
    const e = this.el;
    document.getElementById("room")?.setAttribute("data-lobby", "true");
    e.section.hidden = false;
    let name = this.opts.displayName;
    if (!name) {
      try {
        name = localStorage.getItem(NAME_KEY) ?? "";
      } catch {
        /* storage disabled */
      }
    }
    e.name.value = name;
    e.name.maxLength = MAX_DISPLAY_NAME_LENGTH;
    this.renderName();

    e.name.addEventListener("input", () => this.renderName());
    e.camera.addEventListener("change", () => void this.pick("videoinput", e.camera.value));
    e.mic.addEventListener("change", () => void this.pick("audioinput", e.mic.value));
    e.speaker.addEventListener("change", () => void this.pick("audiooutput", e.speaker.value));
    e.speakerTest.addEventListener("click", () => void playTestSound(this.selected.audiooutput));
    e.micToggle.addEventListener("click", () => void this.toggle("audio"));
    e.cameraToggle.addEventListener("click", () => void this.toggle("video"));
    e.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.join();
    });
    // Browsers may hold the AudioContext until a user gesture.
    e.section.addEventListener("pointerdown", () => this.meter.resume());
    navigator.mediaDevices?.addEventListener?.("devicechange", this.onDeviceChange);
    this.render();

    const media = await getLocalMedia({
      ...this.req,
      preacquired: null,
      audioDeviceId: savedDevice("audioinput"),
      videoDeviceId: savedDevice("videoinput"),
    });
    if (this.done) {
      media.stream.getTracks().forEach((t) => t.stop());
      media.dispose();
      return;
    }
    this.dispose = media.dispose;
    this.failures = { audio: media.failures?.audio ?? null, video: media.failures?.video ?? null };
    this.setTrack("audio", media.audio);
    this.setTrack("video", media.video);
    await this.refreshDevices();
    this.ready = true;
    this.render();
  }

  /** Leaves the page from the lobby: stops everything it opened. */
  close(): void {
    if (this.done) return;
    this.done = true;
    this.stopAll();
  }

  info(): LobbyInfo {
    const v = this.el.video;
    const labels = (ds: MediaDeviceInfo[]) => ds.map((d) => d.label);
    return {
      shown: !this.el.section.hidden,
      ready: this.ready,
      cameras: labels(this.devices.videoinput),
      microphones: labels(this.devices.audioinput),
      speakers: labels(this.devices.audiooutput),
      selected: { camera: this.selected.videoinput, microphone: this.selected.audioinput, speaker: this.selected.audiooutput },
      open: { camera: trackDeviceId(this.video), microphone: trackDeviceId(this.audio) },
      cameraOn: this.cameraOn && !!this.video,
      micOn: this.micOn && !!this.audio,
      level: this.meter.level,
      preview: { videoWidth: v.videoWidth, videoHeight: v.videoHeight, playing: !v.paused && v.readyState >= 2, currentTime: v.currentTime },
      message: this.el.message.hidden ? "" : (this.el.message.textContent ?? ""),
      sinkSupported: sinkSupported(),
      joinEnabled: !this.el.join.disabled,
    };
  }

  // ------------------------------------------------------------------------------------------

  private setTrack(kind: "audio" | "video", track: MediaStreamTrack | null): void {
    const old = kind === "audio" ? this.audio : this.video;
    if (old && old !== track) old.stop();
    if (track) {
      track.enabled = kind === "audio" ? this.micOn : this.cameraOn;
      track.addEventListener("ended", () => {
        if (this.done || (kind === "audio" ? this.audio : this.video) !== track) return;
        this.failures[kind] = "Ended";
        this.setTrack(kind, null);
        this.render();
      });
    }
    if (kind === "audio") {
      this.audio = track;
      this.meter.attach(track);
    } else {
      this.video = track;
      const v = this.el.video;
      v.srcObject = track ? new MediaStream([track]) : null;
      if (track) void v.play().catch(() => undefined);
    }
  }

  private async refreshDevices(): Promise<void> {
    this.devices = await listDevices();
    const e = this.el;
    const want = (kind: DeviceKind, track: MediaStreamTrack | null) => trackDeviceId(track) ?? (this.selected[kind] || savedDevice(kind));
    this.selected.videoinput = fillPicker(e.camera, "videoinput", this.devices.videoinput, want("videoinput", this.video), "No camera found");
    this.selected.audioinput = fillPicker(e.mic, "audioinput", this.devices.audioinput, want("audioinput", this.audio), "No microphone found");
    this.selected.audiooutput = fillPicker(
      e.speaker,
      "audiooutput",
      this.devices.audiooutput,
      this.selected.audiooutput || savedDevice("audiooutput"),
      "System default",
    );
    // Without setSinkId (Firefox < 116, Safari) sound goes to the system's output.
    e.speakerRow.hidden = !sinkSupported() || this.devices.audiooutput.length === 0;
    this.render();
  }

  /** A picker changed: open that device (camera, microphone) and remember the choice. */
  private async pick(kind: DeviceKind, deviceId: string): Promise<void> {
    this.selected[kind] = deviceId;
    if (kind === "audiooutput") {
      saveDevice(kind, deviceId);
      return;
    }
    const media = kind === "audioinput" ? "audio" : "video";
    this.busy = true;
    this.render();
    try {
      // Chrome cannot open a second camera while one is open on some systems: release first.
      this.setTrack(media, null);
      const track = await openDevice(this.req, media, deviceId || null);
      if (this.done) {
        track.stop();
        return;
      }
      this.failures[media] = null;
      this.setTrack(media, track);
      saveDevice(kind, deviceId || null);
      // Labels appear once a device was allowed.
      await this.refreshDevices();
    } catch (err) {
      this.failures[media] = errorName(err);
      console.warn(`lamina: cannot open ${media} device`, describe(err));
    } finally {
      this.busy = false;
      this.render();
    }
  }

  /** Microphone / camera switch. With no open device, tries to open it again. */
  private async toggle(media: "audio" | "video"): Promise<void> {
    const track = media === "audio" ? this.audio : this.video;
    if (!track) {
      const kind: DeviceKind = media === "audio" ? "audioinput" : "videoinput";
      if (media === "audio") this.micOn = true;
      else this.cameraOn = true;
      await this.pick(kind, this.selected[kind]);
      return;
    }
    if (media === "audio") this.micOn = !this.micOn;
    else this.cameraOn = !this.cameraOn;
    track.enabled = media === "audio" ? this.micOn : this.cameraOn;
    this.render();
  }

  private join(): void {
    if (this.done || !this.ready || this.busy) return;
    const name = this.el.name.value.trim().slice(0, MAX_DISPLAY_NAME_LENGTH);
    if (!name) {
      this.el.name.focus();
      this.el.name.setCustomValidity("Enter your name to join.");
      this.el.name.reportValidity();
      return;
    }
    try {
      localStorage.setItem(NAME_KEY, name);
    } catch {
      /* storage disabled */
    }
    this.done = true;
    navigator.mediaDevices?.removeEventListener?.("devicechange", this.onDeviceChange);
    this.meter.close();
    const problems: string[] = [];
    if (this.req.audio && !this.audio && this.failures.audio) problems.push(`Microphone unavailable: ${failureText("microphone", this.failures.audio)}`);
    if (this.req.video && !this.video && this.failures.video) problems.push(`Camera unavailable: ${failureText("camera", this.failures.video)}`);
    const { audio, video } = this;
    const media: LocalMedia = {
      stream: new MediaStream([audio, video].filter((t): t is MediaStreamTrack => t !== null)),
      audio,
      video,
      problems,
      failures: { ...this.failures },
      dispose: this.dispose,
    };
    this.el.video.srcObject = null;
    this.el.section.hidden = true;
    document.getElementById("room")?.removeAttribute("data-lobby");
    this.opts.onJoin({
      displayName: name,
      media,
      micOn: !!audio && this.micOn,
      cameraOn: !!video && this.cameraOn,
      speaker: this.selected.audiooutput,
    });
  }

  private stopAll(): void {
    navigator.mediaDevices?.removeEventListener?.("devicechange", this.onDeviceChange);
    this.meter.close();
    this.audio?.stop();
    this.video?.stop();
    this.audio = this.video = null;
    this.dispose();
    this.el.video.srcObject = null;
  }

  // ------------------------------------------------------------------------------------------
  // Rendering

  private renderName(): void {
    const name = this.el.name.value.trim();
    this.el.name.setCustomValidity("");
    this.el.initials.textContent = initials(name || "?");
    this.el.preview.style.setProperty("--avatar-hue", String(nameHue(name)));
  }

  private renderLevel(level: number): void {
    const pct = Math.round(level * 100);
    this.el.levelBar.style.width = `${pct}%`;
    this.el.level.setAttribute("aria-valuenow", String(pct));
    this.el.level.dataset.level = level.toFixed(3);
  }

  private message(): string {
    const parts: string[] = [];
    const { audio: fa, video: fv } = this.failures;
    const wantA = this.req.audio && !this.audio && fa;
    const wantV = this.req.video && !this.video && fv;
    if (wantA && wantV && fa === fv && (fa === "NotAllowedError" || fa === "SecurityError")) {
      parts.push("Access to the camera and microphone is blocked (permission denied).");
      parts.push("You can still join and see and hear the others. To use them, allow the camera and microphone in your browser's site settings (the icon next to the address), then reload.");
      return parts.join(" ");
    }
    if (wantV) parts.push(`${capital(failureText("camera", fv))}.`);
    if (wantA) parts.push(`${capital(failureText("microphone", fa))}.`);
    if (parts.length === 0) return "";
    parts.push(`You can join without ${wantA && wantV ? "them" : "it"} and still see and hear the others.`);
    if (fa === "NotAllowedError" || fv === "NotAllowedError") {
      parts.push("To allow access, use your browser's site settings (the icon next to the address), then reload.");
    }
    return parts.join(" ");
  }

  private render(): void {
    const e = this.el;
    const hasA = !!this.audio;
    const hasV = !!this.video;
    e.preview.dataset.camera = hasV ? (this.cameraOn ? "on" : "off") : "none";
    e.preview.dataset.mic = hasA ? (this.micOn ? "on" : "off") : "none";

    const sw = (b: HTMLButtonElement, has: boolean, on: boolean, what: string, requested: boolean) => {
      b.setAttribute("aria-checked", String(has && on));
      b.dataset.state = has ? (on ? "on" : "off") : "none";
      b.textContent = !requested ? `${what} not used` : !has ? `${what}: try again` : on ? `${what} on` : `${what} off`;
      b.disabled = !requested || this.busy || !this.ready;
      b.title = has ? `Join with the ${what.toLowerCase()} ${on ? "on" : "off"} (click to change)` : `No ${what.toLowerCase()}: click to try again`;
    };
    sw(e.micToggle, hasA, this.micOn, "Microphone", this.req.audio);
    sw(e.cameraToggle, hasV, this.cameraOn, "Camera", this.req.video);
    e.camera.disabled = this.devices.videoinput.length === 0 || this.busy || !this.req.video || !!this.req.synth;
    e.mic.disabled = this.devices.audioinput.length === 0 || this.busy || !this.req.audio || !!this.req.synth;
    e.speaker.disabled = this.devices.audiooutput.length === 0;
    e.level.dataset.muted = String(!hasA || !this.micOn);

    const msg = this.message();
    e.message.textContent = msg;
    e.message.hidden = !msg;
    e.join.disabled = !this.ready || this.busy;
    e.join.textContent = this.ready ? "Join now" : "Starting camera and microphone…";
  }
}
