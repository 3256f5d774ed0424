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
  layoutGrid();
}

/** The person's name of a tile label: "Alice (you)" and "Alice (screen)" → "Alice". */
function personName(name: string): string {
  return name.replace(/\s*\((you|screen|your screen)\)\s*$/, "").trim();
}

/** Up to two initials of a name ("Ana Lúcia" → "AL", "bob" → "B"). */
export function initials(name: string): string {
  const parts = personName(name).split(/\s+/).filter(Boolean);
  const letters = parts.slice(0, 2).map((p) => Array.from(p)[0] ?? "");
  return letters.join("").toUpperCase() || "?";
}

/** A stable hue (0-359) for a name: the background of its camera-off placeholder. */
export function nameHue(name: string): number {
  let h = 0;
  for (const ch of personName(name).toLowerCase()) h = (h * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
  return h % 360;
}

// ------------------------------------------------------------------------------------------
// Grid layout: every tile gets an absolute position so that 1-16 tiles fill the grid area
// (as large as they can be, between 4:3 and 16:9), and a shared screen takes the main area
// with the other tiles in a strip beside (landscape) or below (portrait) it.

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export const GRID_GAP = 6;
/** Below this width tiles stop shrinking and the grid scrolls. */
const MIN_TILE_W = 96;

/** Best columns for `n` cells in W x H: the largest tile with an aspect in [minA, maxA]. */
function bestFit(n: number, W: number, H: number, gap: number, minA: number, maxA: number, minW: number) {
  let best = { cols: 1, rows: n, w: 0, h: 0 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const cw = (W - gap * (cols - 1)) / cols;
    const ch = (H - gap * (rows - 1)) / rows;
    if (cw <= 0 || ch <= 0) continue;
    const a = Math.min(maxA, Math.max(minA, cw / ch));
    // The tile of aspect a that fits the cell.
    const w = Math.min(cw, ch * a);
    const h = w / a;
    if (w * h > best.w * best.h + 0.5) best = { cols, rows, w, h };
  }
  if (best.w < minW) {
    // Too many for the area: fixed minimum size, as many columns as fit, the grid scrolls.
    const w = Math.min(minW, W);
    const cols = Math.max(1, Math.floor((W + gap) / (w + gap)));
    best = { cols, rows: Math.ceil(n / cols), w, h: w / maxA };
  }
  return best;
}

/** Cells of `n` tiles packed in the box (x0, y0, W, H), centred, the last row centred too. */
function gridRects(n: number, x0: number, y0: number, W: number, H: number, gap: number, minA: number, maxA: number, minW: number): Rect[] {
  if (n === 0) return [];
  const { cols, rows, w, h } = bestFit(n, W, H, gap, minA, maxA, minW);
  const blockW = cols * w + (cols - 1) * gap;
  const blockH = rows * h + (rows - 1) * gap;
  const left = x0 + Math.max(0, (W - blockW) / 2);
  const top = y0 + Math.max(0, (H - blockH) / 2);
  const out: Rect[] = [];
  for (let i = 0; i < n; i++) {
    const row = Math.floor(i / cols);
    const col = i % cols;
    const inRow = row === rows - 1 ? n - row * cols : cols;
    const shift = ((cols - inRow) * (w + gap)) / 2;
    out.push({ x: left + shift + col * (w + gap), y: top + row * (h + gap), w, h });
  }
  return out;
}

/**
 * Positions of tiles (in order) in a W x H grid area. `screen[i]`: tile i is a shared screen.
 * Pure (the e2e tests check it for 1-16 tiles through the test hooks).
 */
export function computeLayout(screen: boolean[], W: number, H: number, gap = GRID_GAP): Rect[] {
  const n = screen.length;
  if (n === 0 || W <= 0 || H <= 0) return [];
  const screens = screen.map((s, i) => (s ? i : -1)).filter((i) => i >= 0);
  if (screens.length === 0) return gridRects(n, 0, 0, W, H, gap, 4 / 3, 16 / 9, Math.min(MIN_TILE_W, W));
  const others = screen.map((s, i) => (s ? -1 : i)).filter((i) => i >= 0);
  const out: Rect[] = new Array(n);
  const k = others.length;
  let main: Rect = { x: 0, y: 0, w: W, h: H };
  if (k > 0) {
    if (W >= H * 1.1) {
      // Strip on the right, one column; it scrolls when too many.
      const stripW = Math.round(Math.min(320, Math.max(140, W * 0.22)));
      main = { x: 0, y: 0, w: W - stripW - gap, h: H };
      const cellH = (H - gap * (k - 1)) / k;
      const h = Math.max(72, Math.min(cellH, (stripW * 3) / 4));
      const w = Math.min(stripW, (h * 16) / 9);
      const total = k * h + (k - 1) * gap;
      const top = Math.max(0, (H - total) / 2);
      others.forEach((idx, j) => {
        out[idx] = { x: main.w + gap + (stripW - w) / 2, y: top + j * (h + gap), w, h };
      });
    } else {
      // Strip below, one row; it scrolls when too many.
      const stripH = Math.round(Math.min(180, Math.max(70, H * 0.22)));
      main = { x: 0, y: 0, w: W, h: H - stripH - gap };
      const cellW = (W - gap * (k - 1)) / k;
      const w = Math.max(110, Math.min(cellW, (stripH * 16) / 9));
      const h = Math.min(stripH, (w * 3) / 4);
      const total = k * w + (k - 1) * gap;
      const left = Math.max(0, (W - total) / 2);
      others.forEach((idx, j) => {
        out[idx] = { x: left + j * (w + gap), y: main.h + gap + (stripH - h) / 2, w, h };
      });
    }
  }
  // Screens fill the main area (object-fit: contain inside).
  gridRects(screens.length, main.x, main.y, main.w, main.h, gap, 0.5, 3, 1).forEach((r, j) => {
    out[screens[j]] = r;
  });
  return out;
}

const isScreenTile = (t: HTMLElement) => t.dataset.kind === "screen" || t.dataset.kind === "local-screen";

/** Below this grid width (px) the active speaker's tile goes first (phones, narrow windows). */
export const SMALL_GRID_W = 600;

/** The tile of the participant who spoke last (VAD), while it exists. */
let activeSpeaker: string | null = null;

/**
 * Tiles in layout order: on a small grid the active speaker's camera tile first (a shared
 * screen keeps its place: it is laid out large anyway). Pure.
 */
export function speakerFirst<T extends { dataset: DOMStringMap }>(tiles: T[], active: string | null, small: boolean): T[] {
  if (!small || active === null) return tiles;
  const i = tiles.findIndex((t) => t.dataset.tileId === active && t.dataset.kind === "remote");
  if (i <= 0) return tiles;
  return [tiles[i], ...tiles.slice(0, i), ...tiles.slice(i + 1)];
}

/** Lays the tiles out in the grid's current size (on every tile change and resize). */
export function layoutGrid(): void {
  const g = document.getElementById("videos-grid");
  if (!g) return;
  const W = g.clientWidth;
  const H = g.clientHeight;
  if (W === 0 || H === 0) return; // hidden: laid out when it gets a size (ResizeObserver)
  const all = Array.from(g.querySelectorAll<HTMLElement>(".tile"));
  const tiles = speakerFirst(all, activeSpeaker, W < SMALL_GRID_W);
  const rects = computeLayout(tiles.map(isScreenTile), W, H);
  g.dataset.layout = tiles.some(isScreenTile) ? "screen" : "grid";
  tiles.forEach((t, i) => {
    const r = rects[i];
    if (!r) return;
    t.style.left = `${Math.round(r.x)}px`;
    t.style.top = `${Math.round(r.y)}px`;
    t.style.width = `${Math.floor(r.w)}px`;
    t.style.height = `${Math.floor(r.h)}px`;
  });
}

let gridObserver: ResizeObserver | null = null;
function observeGrid(): void {
  if (gridObserver || typeof ResizeObserver === "undefined") return;
  const g = document.getElementById("videos-grid");
  if (!g) return;
  gridObserver = new ResizeObserver(() => layoutGrid());
  gridObserver.observe(g);
}

// ------------------------------------------------------------------------------------------
// Audio output of every tile (setSinkId where supported).

let audioOutput = "";

/** Plays every tile's audio (now and later ones) on output `deviceId` ("" = default). */
export function setAudioOutput(deviceId: string): void {
  audioOutput = deviceId;
  grid()
    .querySelectorAll<HTMLElement>(".tile")
    .forEach((t) => applySink(t));
}

function applySink(tile: HTMLElement): void {
  if (tile.dataset.kind !== "remote" && tile.dataset.kind !== "screen") return;
  const v = tile.querySelector("video") as HTMLVideoElement & { setSinkId?: (id: string) => Promise<void>; sinkId?: string };
  if (typeof v.setSinkId !== "function" || (v.sinkId ?? "") === audioOutput) return;
  v.setSinkId(audioOutput).catch((err: unknown) => console.warn("lamina: setSinkId failed", err));
}

/** The tracks the local tile shows (the local camera and microphone), for the device panel. */
export function localTileTracks(): MediaStreamTrack[] {
  const v = grid().querySelector<HTMLVideoElement>('.tile[data-kind="local"] video');
  return v && v.srcObject instanceof MediaStream ? v.srcObject.getTracks() : [];
}

// ------------------------------------------------------------------------------------------
// Room status listeners (called synchronously from setStatus).

const statusListeners: Array<(state: string) => void> = [];

/** Calls `fn` with the new state on every setStatus (e.g. "connected"). */
export function onStatus(fn: (state: string) => void): void {
  statusListeners.push(fn);
}

// ------------------------------------------------------------------------------------------
// Copy link

/** The "Copy link" button copies `url` (the room URL without the display name). */
export function setupCopyLink(url: string): void {
  const button = document.getElementById("copy-link-button") as HTMLButtonElement | null;
  if (!button) return;
  button.hidden = false;
  button.dataset.url = url;
  const label = button.textContent ?? "Copy link";
  let timer: number | null = null;
  button.addEventListener("click", async () => {
    let ok = false;
    try {
      await navigator.clipboard.writeText(url);
      ok = true;
    } catch {
      // No clipboard API (insecure page) or no permission: the old way.
      const ta = document.createElement("textarea");
      ta.value = url;
      ta.setAttribute("readonly", "");
      ta.style.position = "fixed";
      ta.style.opacity = "0";
      document.body.appendChild(ta);
      ta.select();
      try {
        ok = document.execCommand("copy");
      } catch {
        ok = false;
      }
      ta.remove();
    }
    button.dataset.copied = String(ok);
    button.textContent = ok ? "Link copied" : "Copy failed";
    if (!ok) window.prompt("Copy the room link:", url);
    if (timer !== null) window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      button.textContent = label;
    }, 2000);
  });
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
  for (const fn of statusListeners) {
    try {
      fn(state);
    } catch (err) {
      console.error("lamina: status listener failed", err);
    }
  }
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
  applySink(tile);
  observeGrid();
  updateGridCount();
  return tile;
}

export function hasTile(id: string): boolean {
  return tileEl(id) !== null;
}

export function removeTile(id: string): void {
  const tile = tileEl(id);
  if (!tile) return;
  if (activeSpeaker === id) activeSpeaker = null;
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
  tile.style.setProperty("--avatar-hue", String(nameHue(name)));
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
  // The last one to start speaking stays the active speaker until someone else speaks.
  if (speaking && activeSpeaker !== id) {
    activeSpeaker = id;
    layoutGrid();
  }
}

/** The active speaker's tile id (for the test hooks). */
export function activeSpeakerTile(): string | null {
  return activeSpeaker;
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
