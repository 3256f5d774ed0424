// Test-only hooks, installed only when the room URL has `test=1`.
//
// The WebRTC library keeps its RTCPeerConnection private. To read receive statistics without
// touching the library, the page replaces the global RTCPeerConnection constructor (before the
// library creates one) with a subclass that only records its instances.

import { chatEntries } from "./chat";
import type { ChatResult } from "./chat";
import type { Lobby } from "./lobby";
import type { Room } from "./room";
import { setSynthGain } from "./local_media";
import * as ui from "./room_ui";

const peerConnections: RTCPeerConnection[] = [];

export function installPeerConnectionRecorder(): void {
  const Original = window.RTCPeerConnection;
  if (!Original || (Original as unknown as { __laminaRecorded?: boolean }).__laminaRecorded) return;
  class RecordedPeerConnection extends Original {
    static __laminaRecorded = true;
    constructor(config?: RTCConfiguration) {
      super(config);
      peerConnections.push(this);
    }
  }
  window.RTCPeerConnection = RecordedPeerConnection as unknown as typeof RTCPeerConnection;
}

export interface InboundStats {
  framesDecoded: number;
  frameWidth: number;
  frameHeight: number;
  packetsReceived: number;
  bytesReceived: number;
  totalSamplesReceived: number;
  totalAudioEnergy: number;
}

export interface TileStats {
  tileId: string;
  kind: string;
  endpointId: string | null;
  displayName: string;
  trackIds: string[];
  /** The tile's <video> element is playing (not paused, has data). */
  playing: boolean;
  video: InboundStats | null;
  audio: InboundStats | null;
}

function emptyStats(): InboundStats {
  return {
    framesDecoded: 0,
    frameWidth: 0,
    frameHeight: 0,
    packetsReceived: 0,
    bytesReceived: 0,
    totalSamplesReceived: 0,
    totalAudioEnergy: 0,
  };
}

/** inbound-rtp statistics of every recorded peer connection, summed per MediaStreamTrack id. */
async function inboundByTrack(): Promise<Map<string, InboundStats>> {
  const out = new Map<string, InboundStats>();
  for (const pc of peerConnections) {
    if (pc.connectionState === "closed") continue;
    let report: RTCStatsReport;
    try {
      report = await pc.getStats();
    } catch {
      continue;
    }
    report.forEach((s: Record<string, unknown>) => {
      if (s.type !== "inbound-rtp" || typeof s.trackIdentifier !== "string") return;
      const acc = out.get(s.trackIdentifier) ?? emptyStats();
      const n = (k: string) => (typeof s[k] === "number" ? (s[k] as number) : 0);
      acc.framesDecoded += n("framesDecoded");
      acc.frameWidth = Math.max(acc.frameWidth, n("frameWidth"));
      acc.frameHeight = Math.max(acc.frameHeight, n("frameHeight"));
      acc.packetsReceived += n("packetsReceived");
      acc.bytesReceived += n("bytesReceived");
      acc.totalSamplesReceived += n("totalSamplesReceived");
      acc.totalAudioEnergy += n("totalAudioEnergy");
      out.set(s.trackIdentifier, acc);
    });
  }
  return out;
}

/** Average colour of the centre of a tile's video (to check that media is routed to the right tile). */
function tileColour(tileId: string): [number, number, number] | null {
  const video = document.querySelector<HTMLVideoElement>(`.tile[data-tile-id="${CSS.escape(tileId)}"] video`);
  if (!video || video.videoWidth === 0) return null;
  const c = document.createElement("canvas");
  c.width = 16;
  c.height = 16;
  const ctx = c.getContext("2d", { willReadFrequently: true });
  if (!ctx) return null;
  // Lower half of the frame (the moving bar of synthetic video is in the top sixth).
  const vw = video.videoWidth;
  const vh = video.videoHeight;
  ctx.drawImage(video, vw / 4, vh / 2, vw / 2, vh / 3, 0, 0, 16, 16);
  const d = ctx.getImageData(0, 0, 16, 16).data;
  let r = 0;
  let g = 0;
  let b = 0;
  for (let i = 0; i < d.length; i += 4) {
    r += d[i];
    g += d[i + 1];
    b += d[i + 2];
  }
  const px = d.length / 4;
  return [Math.round(r / px), Math.round(g / px), Math.round(b / px)];
}

/**
 * Dominant frequency (Hz) of the audio a tile plays, measured with an AnalyserNode over
 * `windowMs` (to check that each tile plays its owner's test tone). Null without audio.
 */
async function tileTone(tileId: string, windowMs = 400): Promise<number | null> {
  const video = document.querySelector<HTMLVideoElement>(`.tile[data-tile-id="${CSS.escape(tileId)}"] video`);
  const stream = video && video.srcObject instanceof MediaStream ? video.srcObject : null;
  const track = stream?.getAudioTracks()[0];
  if (!track) return null;
  const ac = new AudioContext();
  try {
    const src = ac.createMediaStreamSource(new MediaStream([track]));
    const analyser = ac.createAnalyser();
    analyser.fftSize = 4096;
    analyser.smoothingTimeConstant = 0.5;
    src.connect(analyser);
    await ac.resume();
    await new Promise((r) => setTimeout(r, windowMs));
    const data = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(data);
    let best = 0;
    for (let i = 1; i < data.length; i++) if (data[i] > data[best]) best = i;
    if (!Number.isFinite(data[best]) || data[best] < -90) return null; // silence
    return (best * ac.sampleRate) / analyser.fftSize;
  } finally {
    void ac.close();
  }
}

export function installTestHooks(getRoom: () => Room | null): void {
  const api = {
    get room() {
      return getRoom();
    },
    state: () => getRoom()?.state ?? "idle",
    endpointId: () => getRoom()?.endpointId ?? null,
    timings: () => ({ ...(getRoom()?.timings ?? {}) }),
    errors: () => [...(getRoom()?.errors ?? [])],
    tiles: () => ui.tileInfos(),
    remoteTracks: () => getRoom()?.remoteTrackInfos() ?? [],
    localTracks: () => getRoom()?.localTrackIds() ?? null,
    peerConnections: () =>
      peerConnections.map((pc) => ({
        connectionState: pc.connectionState,
        iceConnectionState: pc.iceConnectionState,
        signalingState: pc.signalingState,
      })),
    tileColour,
    tileTone,
    /** Mutes (0) or unmutes (0.3) the synthetic microphone tone (`synth=1`). */
    setToneGain: (value: number) => setSynthGain(value),
    /** The active speaker's tile id (the last participant whose speech started). */
    activeSpeaker: () => ui.activeSpeakerTile(),
    /** Chat messages received ({from, name, text, at}), oldest first. */
    chat: () => [...(getRoom()?.chatMessages ?? [])],
    /** The chat panel as the user reads it (name, time, text, own), from the DOM. */
    chatEntries,
    /** Sends a chat message as the form does; resolves with the server's verdict. */
    sendChat: (text: string): Promise<ChatResult> =>
      getRoom()?.sendChat(text) ?? Promise.resolve({ ok: false, reason: "no room" }),
    /** The local MediaStreamTracks' ids (unchanged by a reconnect). */
    localMediaTracks: () => getRoom()?.localMediaTrackIds() ?? null,
    /** Every connection loss: {lostAt, reason, attempts, reconnectedAt, endpointId}. */
    reconnects: () => (getRoom()?.reconnects ?? []).map((r) => ({ ...r })),
    /** Closes the page's WebSocket under the Phoenix client (a network cut); false without one. */
    cutSocket: () => getRoom()?.testCutSocket() ?? false,
    /** "Rejoin" after giving up (as the banner's button does). */
    rejoin: () => getRoom()?.rejoin(),
    /** Connection quality per tile: {tileId, level, reasons, sample} (see quality.ts). */
    quality: () => getRoom()?.qualityViews() ?? [],
    /** Per remote tile: who it is and what it receives (inbound-rtp via the track ids). */
    async stats(): Promise<TileStats[]> {
      const room = getRoom();
      if (!room) return [];
      const byTrack = await inboundByTrack();
      const infos = room.remoteTrackInfos();
      return ui
        .tileInfos()
        .filter((t) => t.kind === "remote" || t.kind === "screen")
        .map((t) => {
          const result: TileStats = {
            tileId: t.id,
            kind: t.kind,
            endpointId: t.endpointId,
            displayName: t.name,
            trackIds: t.trackIds,
            playing: t.playing,
            video: null,
            audio: null,
          };
          for (const info of infos) {
            if (info.tileId !== t.id || !info.mediaTrackId || !info.kind) continue;
            const s = byTrack.get(info.mediaTrackId) ?? emptyStats();
            if (info.kind === "video") result.video = s;
            else if (info.kind === "audio") result.audio = s;
          }
          return result;
        });
    },
  };
  (window as unknown as { lamina: typeof api }).lamina = api;
}

/**
 * Test hooks of the lobby and the tile grid, added to `window.lamina` (test mode only):
 * `lobby()` (the lobby's state, null once joined or when skipped), `layout(screens, w, h)`
 * (the grid layout function: one rect per tile, `screens[i]` true for a shared screen) and
 * `tileRects()` (the grid's and each tile's rect on the page, with its camera-off placeholder
 * and muted-microphone icon visibility).
 */
export function installLobbyTestHooks(getLobby: () => Lobby | null): void {
  const w = window as unknown as { lamina?: Record<string, unknown> };
  const visible = (e: Element | null) => {
    if (!e) return false;
    const r = e.getBoundingClientRect();
    const cs = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && cs.display !== "none" && cs.visibility !== "hidden";
  };
  const rect = (e: Element) => {
    const r = e.getBoundingClientRect();
    return { x: r.x, y: r.y, w: r.width, h: r.height };
  };
  const extra = {
    lobby: () => getLobby()?.info() ?? null,
    layout: (screens: boolean[], width: number, height: number) => ui.computeLayout(screens, width, height),
    tileRects: () => {
      const g = document.getElementById("videos-grid");
      return {
        grid: g ? rect(g) : null,
        viewport: { w: window.innerWidth, h: window.innerHeight },
        tiles: Array.from(document.querySelectorAll<HTMLElement>("#videos-grid .tile")).map((t) => ({
          id: t.dataset.tileId ?? "",
          kind: t.dataset.kind ?? "",
          name: t.dataset.name ?? "",
          ...rect(t),
          placeholder: visible(t.querySelector(".placeholder")),
          initials: t.querySelector(".initials")?.textContent ?? "",
          placeholderColour: t.querySelector(".placeholder") ? getComputedStyle(t.querySelector(".placeholder")!).backgroundColor : "",
          micOffIcon: visible(t.querySelector(".badge-mic-off")),
          cameraOffIcon: visible(t.querySelector(".badge-camera-off")),
        })),
      };
    },
  };
  w.lamina = Object.assign(w.lamina ?? {}, extra);
}
