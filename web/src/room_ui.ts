// DOM helpers of the room page. No signalling or WebRTC logic lives here.

export type TileKind = "local" | "local-screen" | "remote" | "screen";
/** "on": track present and active; "off": present but muted/disabled; "none": no such track. */
export type MediaState = "on" | "off" | "none";

export interface TileInfo {
  id: string;
  kind: TileKind;
  endpointId: string | null;
  name: string;
  mic: MediaState;
  camera: MediaState;
  speaking: boolean;
  trackIds: string[];
  videoTracks: number;
  audioTracks: number;
  playing: boolean;
}

const el = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing element #${id}`);
  return e as T;
};

function grid(): HTMLElement {
  return el("videos-grid");
}

function tileEl(id: string): HTMLElement | null {
  return grid().querySelector<HTMLElement>(`.tile[data-tile-id="${CSS.escape(id)}"]`);
}

function updateGridCount(): void {
  const n = grid().querySelectorAll(".tile").length;
  grid().dataset.count = String(n);
  grid().dataset.many = String(n > 9);
}

function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters = parts.slice(0, 2).map((p) => Array.from(p)[0] ?? "");
  return letters.join("").toUpperCase() || "?";
}

/** Room id from the page URL `/room/<id>`. */
export function getRoomId(): string {
  const m = window.location.pathname.match(/^\/room\/([^/]+)\/?$/);
  if (!m) throw new Error("Not a room URL (expected /room/<room id>)");
  return decodeURIComponent(m[1]);
}

export function setRoomName(name: string): void {
  el("room-name").textContent = name;
  document.title = `${name} · Lamina`;
}

export function setStatus(text: string, state: string): void {
  el("room-status").textContent = text;
  el("room").dataset.state = state;
}

export function addTile(id: string, kind: TileKind, name: string, endpointId: string | null): HTMLElement {
  const existing = tileEl(id);
  if (existing) return existing;
  const template = el<HTMLTemplateElement>("tile-template");
  const tile = (template.content.firstElementChild as HTMLElement).cloneNode(true) as HTMLElement;
  tile.dataset.tileId = id;
  tile.dataset.kind = kind;
  if (endpointId) tile.dataset.endpointId = endpointId;
  const video = tile.querySelector("video") as HTMLVideoElement;
  // Local previews must never play back our own microphone.
  video.muted = kind === "local" || kind === "local-screen";
  if (kind === "screen" || kind === "local-screen") tile.dataset.camera = "off";
  grid().appendChild(tile);
  setTileName(id, name);
  updateGridCount();
  return tile;
}

export function hasTile(id: string): boolean {
  return tileEl(id) !== null;
}

export function removeTile(id: string): void {
  const tile = tileEl(id);
  if (!tile) return;
  const video = tile.querySelector("video") as HTMLVideoElement;
  video.srcObject = null;
  tile.remove();
  updateGridCount();
}

export function removeAllTiles(): void {
  grid()
    .querySelectorAll<HTMLElement>(".tile")
    .forEach((t) => removeTile(t.dataset.tileId ?? ""));
}

export function setTileName(id: string, name: string): void {
  const tile = tileEl(id);
  if (!tile) return;
  (tile.querySelector(".name") as HTMLElement).textContent = name;
  (tile.querySelector(".initials") as HTMLElement).textContent = initials(name);
  tile.dataset.name = name;
}

let onAutoplayBlocked: (() => void) | null = null;

/** Called when the browser refuses to start unmuted playback without a user gesture. */
export function setAutoplayBlockedHandler(fn: () => void): void {
  onAutoplayBlocked = fn;
}

function play(video: HTMLVideoElement): void {
  const p = video.play();
  if (p)
    p.catch((err: DOMException) => {
      if (err && err.name === "NotAllowedError" && onAutoplayBlocked) onAutoplayBlocked();
    });
}

/** Plays `stream` in the tile's single <video> element (video and audio together). */
export function setTileStream(id: string, stream: MediaStream | null): void {
  const tile = tileEl(id);
  if (!tile) return;
  const video = tile.querySelector("video") as HTMLVideoElement;
  // A stream without tracks never gets data: as srcObject it would hold the page's load event.
  const src = stream && stream.getTracks().length > 0 ? stream : null;
  if (video.srcObject !== src) video.srcObject = src;
  if (src) play(video);
}

/** Retries playback of every tile (after a user gesture). */
export function replayAll(): void {
  grid()
    .querySelectorAll("video")
    .forEach((v) => {
      if (v.srcObject) play(v);
    });
}

export function setTileMedia(id: string, mic: MediaState | null, camera: MediaState | null): void {
  const tile = tileEl(id);
  if (!tile) return;
  if (mic !== null) tile.dataset.mic = mic;
  if (camera !== null) tile.dataset.camera = camera;
}

export function setTileSpeaking(id: string, speaking: boolean): void {
  const tile = tileEl(id);
  if (!tile) return;
  tile.dataset.speaking = String(speaking);
  tile.classList.toggle("speaking", speaking);
}

export function setTileTrackIds(id: string, trackIds: string[]): void {
  const tile = tileEl(id);
  if (!tile) return;
  tile.dataset.trackIds = trackIds.join(" ");
}

export function tileInfos(): TileInfo[] {
  return Array.from(grid().querySelectorAll<HTMLElement>(".tile")).map((tile) => {
    const video = tile.querySelector("video") as HTMLVideoElement;
    const stream = video.srcObject instanceof MediaStream ? video.srcObject : null;
    return {
      id: tile.dataset.tileId ?? "",
      kind: (tile.dataset.kind ?? "remote") as TileKind,
      endpointId: tile.dataset.endpointId ?? null,
      name: tile.dataset.name ?? "",
      mic: (tile.dataset.mic ?? "none") as MediaState,
      camera: (tile.dataset.camera ?? "none") as MediaState,
      speaking: tile.dataset.speaking === "true",
      trackIds: (tile.dataset.trackIds ?? "").split(" ").filter(Boolean),
      videoTracks: stream ? stream.getVideoTracks().length : 0,
      audioTracks: stream ? stream.getAudioTracks().length : 0,
      playing: !!stream && !video.paused && video.readyState >= 2,
    };
  });
}

export function setParticipants(names: string[]): void {
  const list = el("participants-list");
  list.replaceChildren(
    ...names.map((n) => {
      const li = document.createElement("li");
      li.textContent = n;
      return li;
    }),
  );
  el("participants-count").textContent = String(names.length);
}

export function showError(message: string): void {
  const banner = el("error-banner");
  banner.textContent = message;
  banner.hidden = false;
}

export function clearError(): void {
  const banner = el("error-banner");
  banner.textContent = "";
  banner.hidden = true;
}

export function showNotice(message: string | null): void {
  const banner = el("notice-banner");
  banner.textContent = message ?? "";
  banner.hidden = !message;
}

export interface ControlHandlers {
  toggleMic: () => void;
  toggleCamera: () => void;
  toggleScreen: () => void;
  leave: () => void;
  unlockAudio: () => void;
}

export function setupControls(h: ControlHandlers): void {
  el("mic-button").addEventListener("click", h.toggleMic);
  el("camera-button").addEventListener("click", h.toggleCamera);
  el("screen-button").addEventListener("click", h.toggleScreen);
  el("leave-button").addEventListener("click", h.leave);
  el("audio-unlock-button").addEventListener("click", h.unlockAudio);
}

export interface ControlState {
  connected: boolean;
  hasMic: boolean;
  micOn: boolean;
  hasCamera: boolean;
  cameraOn: boolean;
  screenSupported: boolean;
  sharing: boolean;
}

export function renderControls(s: ControlState): void {
  const mic = el<HTMLButtonElement>("mic-button");
  mic.disabled = !s.connected || !s.hasMic;
  mic.textContent = !s.hasMic ? "No microphone" : s.micOn ? "Mute" : "Unmute";
  mic.setAttribute("aria-pressed", String(s.hasMic && !s.micOn));

  const cam = el<HTMLButtonElement>("camera-button");
  cam.disabled = !s.connected || !s.hasCamera;
  cam.textContent = !s.hasCamera ? "No camera" : s.cameraOn ? "Camera off" : "Camera on";
  cam.setAttribute("aria-pressed", String(s.hasCamera && !s.cameraOn));

  const screen = el<HTMLButtonElement>("screen-button");
  screen.disabled = !s.connected || !s.screenSupported;
  screen.textContent = s.sharing ? "Stop sharing" : "Share screen";
  screen.setAttribute("aria-pressed", String(s.sharing));

  el<HTMLButtonElement>("leave-button").disabled = !s.connected;
}

export function showAudioUnlock(show: boolean): void {
  el("audio-unlock-button").hidden = !show;
}

export function showLeft(rejoinUrl: string): void {
  el("left-panel").hidden = false;
  el<HTMLAnchorElement>("rejoin-link").href = rejoinUrl;
  document.querySelector<HTMLElement>(".stage")!.hidden = true;
  document.querySelector<HTMLElement>(".controls")!.hidden = true;
}
