// Test-only hooks, installed only when the room URL has `test=1`.
//
// The WebRTC library keeps its RTCPeerConnection private. To read receive statistics without
// touching the library, the page replaces the global RTCPeerConnection constructor (before the
// library creates one) with a subclass that only records its instances (and the encodings each
// sending transceiver was created with).

import { chatEntries } from "./chat";
import type { ChatResult } from "./chat";
import type { Lobby } from "./lobby";
import type { Room } from "./room";
import type { QualityChoice } from "./quality";
import { setSynthGain } from "./local_media";
import { simulcastLine } from "./simulcast";
import * as ui from "./room_ui";

const peerConnections: RTCPeerConnection[] = [];

/** One encoding as asked for or as the sender has it (a copy of RTCRtpEncodingParameters). */
export interface EncodingInfo {
  rid: string | null;
  active: boolean;
  scaleResolutionDownBy: number | null;
  maxBitrate: number | null;
}

function encodingInfo(e: RTCRtpEncodingParameters): EncodingInfo {
  return {
    rid: e.rid ?? null,
    active: e.active !== false,
    scaleResolutionDownBy: e.scaleResolutionDownBy ?? null,
    maxBitrate: e.maxBitrate ?? null,
  };
}

/** The sendEncodings each transceiver was created with (the library shares and changes its object). */
const requestedEncodings = new WeakMap<RTCRtpTransceiver, EncodingInfo[]>();

export function installPeerConnectionRecorder(): void {
  const Original = window.RTCPeerConnection;
  if (!Original || (Original as unknown as { __laminaRecorded?: boolean }).__laminaRecorded) return;
  class RecordedPeerConnection extends Original {
    static __laminaRecorded = true;
    constructor(config?: RTCConfiguration) {
      super(config);
      peerConnections.push(this);
    }
    addTransceiver(trackOrKind: MediaStreamTrack | string, init?: RTCRtpTransceiverInit): RTCRtpTransceiver {
      const t = super.addTransceiver(trackOrKind, init);
      requestedEncodings.set(t, (init?.sendEncodings ?? []).map(encodingInfo));
      return t;
    }
  }
  window.RTCPeerConnection = RecordedPeerConnection as unknown as typeof RTCPeerConnection;
}

export interface InboundStats {
  framesDecoded: number;
  frameWidth: number;
  frameHeight: number;
  /** Video freezes (inbound-rtp `freezeCount`, `totalFreezesDuration` in seconds). */
  freezeCount: number;
  totalFreezesDuration: number;
  /** Repair (inbound-rtp): keyframes decoded, NACKs and PLIs sent, packets lost. */
  keyFramesDecoded: number;
  nackCount: number;
  pliCount: number;
  packetsLost: number;
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
    freezeCount: 0,
    totalFreezesDuration: 0,
    keyFramesDecoded: 0,
    nackCount: 0,
    pliCount: 0,
    packetsLost: 0,
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
      acc.freezeCount += n("freezeCount");
      acc.totalFreezesDuration += n("totalFreezesDuration");
      acc.keyFramesDecoded += n("keyFramesDecoded");
      acc.nackCount += n("nackCount");
      acc.pliCount += n("pliCount");
      acc.packetsLost += n("packetsLost");
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

/** Per remote tile: what its video receives, and the simulcast layer. */
export interface VideoReceive {
  tileId: string;
  kind: string;
  displayName: string;
  /** The server's id of the tile's video track (null: none announced). */
  trackId: string | null;
  /** Announced as simulcast (`simulcastConfig.enabled`): the tile has a quality picker. */
  simulcast: boolean;
  /** The picker's choice ("auto" until one is picked). */
  choice: QualityChoice | null;
  /** The layer the server says it forwards (`encodingChanged`), null before any. */
  layer: string | null;
  layerReason: string | null;
  /** inbound-rtp of the video track (0 before any). */
  frameWidth: number;
  frameHeight: number;
  framesDecoded: number;
  freezeCount: number;
  totalFreezesDuration: number;
  /** Repair: keyframes decoded, NACKs and PLIs sent, packets lost (inbound-rtp). */
  keyFramesDecoded: number;
  nackCount: number;
  pliCount: number;
  packetsLost: number;
  /** The badge as shown ("1280×720 · h"), null when not shown. */
  badge: string | null;
  badgeTitle: string | null;
}

/** The badge of a tile (quality.ts), null when absent or hidden. */
function badgeOf(tileId: string): { text: string; title: string } | null {
  const b = document.querySelector<HTMLElement>(`.tile[data-tile-id="${CSS.escape(tileId)}"] .quality-badge`);
  if (!b || b.hidden) return null;
  return { text: b.textContent ?? "", title: b.title };
}

/** Per local video track (camera, screen): the sender's encodings, asked for, negotiated and sent. */
export interface SendEncodings {
  type: "camera" | "screensharing";
  mediaTrackId: string;
  /** The sendEncodings the transceiver was created with. */
  requested: EncodingInfo[];
  /** `sender.getParameters().encodings` now (one once a server answered without simulcast). */
  current: EncodingInfo[];
  /** `a=simulcast:` of our offer (e.g. "send l;m;h") and of the server's answer ("recv l;m;h"); null: none. */
  offerSimulcast: string | null;
  answerSimulcast: string | null;
  /** outbound-rtp per encoding. */
  outbound: {
    rid: string | null;
    frameWidth: number;
    frameHeight: number;
    framesEncoded: number;
    keyFramesEncoded: number;
    /** PLIs received for this encoding. */
    pliCount: number;
    bytesSent: number;
    active: boolean | null;
    qualityLimitationReason: string | null;
  }[];
}

async function sendEncodings(room: Room): Promise<SendEncodings[]> {
  const ids = room.localMediaTrackIds();
  const wanted: [SendEncodings["type"], string | null][] = [
    ["camera", ids.camera],
    ["screensharing", ids.screen],
  ];
  const out: SendEncodings[] = [];
  for (const pc of peerConnections) {
    if (pc.connectionState === "closed") continue;
    for (const [type, mediaTrackId] of wanted) {
      if (!mediaTrackId) continue;
      const t = pc.getTransceivers().find((x) => x.sender.track?.id === mediaTrackId);
      if (!t) continue;
      const outbound: SendEncodings["outbound"] = [];
      try {
        const report = await t.sender.getStats();
        report.forEach((st: Record<string, unknown>) => {
          if (st.type !== "outbound-rtp") return;
          const n = (k: string) => (typeof st[k] === "number" ? (st[k] as number) : 0);
          outbound.push({
            rid: typeof st.rid === "string" ? st.rid : null,
            frameWidth: n("frameWidth"),
            frameHeight: n("frameHeight"),
            framesEncoded: n("framesEncoded"),
            keyFramesEncoded: n("keyFramesEncoded"),
            pliCount: n("pliCount"),
            bytesSent: n("bytesSent"),
            active: typeof st.active === "boolean" ? st.active : null,
            qualityLimitationReason: typeof st.qualityLimitationReason === "string" ? st.qualityLimitationReason : null,
          });
        });
      } catch {
        /* closed meanwhile */
      }
      outbound.sort((a, b) => a.frameWidth - b.frameWidth);
      out.push({
        type,
        mediaTrackId,
        requested: requestedEncodings.get(t) ?? [],
        current: t.sender.getParameters().encodings.map(encodingInfo),
        offerSimulcast: simulcastLine(pc.currentLocalDescription?.sdp, t.mid),
        answerSimulcast: simulcastLine(pc.currentRemoteDescription?.sdp, t.mid),
        outbound,
      });
    }
  }
  return out;
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
    /**
     * The port of the TURN relay address this page's selected candidate pair uses (the
     * server's socket whose datagrams reach this page: filtering it shapes the page's
     * downlink only), or null.
     */
    relayPort: async (): Promise<number | null> => {
      for (const pc of peerConnections) {
        if (pc.connectionState !== "connected") continue;
        const report = await pc.getStats();
        let local: string | undefined;
        report.forEach((s) => {
          if (s.type === "transport" && s.selectedCandidatePairId) {
            local = report.get(s.selectedCandidatePairId)?.localCandidateId;
          }
        });
        const cand = local ? report.get(local) : undefined;
        if (cand?.candidateType === "relay" && typeof cand.port === "number") return cand.port;
      }
      return null;
    },
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
    /** Connection quality per tile: {tileId, level, reasons, sample, layer, picker} (see quality.ts). */
    quality: () => getRoom()?.qualityViews() ?? [],
    /**
     * Per local video track (camera, screen): the encodings asked for (rids l/m/h at 4/2/1 with
     * simulcast), the sender's encodings now, `a=simulcast` of offer and answer, outbound-rtp per rid.
     */
    sendEncodings: (): Promise<SendEncodings[]> => {
      const room = getRoom();
      return room ? sendEncodings(room) : Promise.resolve([]);
    },
    /**
     * How the camera is sent: {enabled (not `?simulcast=0`), camera (published in layers: true,
     * one encoding: false, not yet: null), answer ("taken" | "refused" | "stuck" | "none": the
     * server's answer to the layers), refused (joined again without simulcast)}.
     */
    simulcastState: () => getRoom()?.simulcastState() ?? null,
    /** The server's last bandwidth estimate for this page: {bps, at} or null (`bandwidthEstimationChanged`). */
    bandwidthEstimate: () => {
      const e = getRoom()?.bandwidthEstimate;
      return e ? { ...e } : null;
    },
    /**
     * Picks a remote tile's quality as its picker does ("auto" | "h" | "m" | "l"): sends
     * `setTargetTrackVariant`; returns {trackId, variant} sent, or null (no such video track).
     */
    pickQuality: (tileId: string, choice: QualityChoice) => getRoom()?.pickQuality(tileId, choice) ?? null,
    /**
     * Per remote tile: its video track's simulcast state (announced, picked, layer and reason),
     * inbound-rtp frameWidth/frameHeight/framesDecoded/freezeCount/totalFreezesDuration, and
     * the badge as shown.
     */
    async videoReceive(): Promise<VideoReceive[]> {
      const room = getRoom();
      if (!room) return [];
      const byTrack = await inboundByTrack();
      return ui
        .tileInfos()
        .filter((t) => t.kind === "remote" || t.kind === "screen")
        .map((t) => {
          const video = room.tileVideoTrackInfo(t.id);
          const s = video?.mediaTrackId ? (byTrack.get(video.mediaTrackId) ?? emptyStats()) : emptyStats();
          const badge = badgeOf(t.id);
          return {
            tileId: t.id,
            kind: t.kind,
            displayName: t.name,
            trackId: video?.trackId ?? null,
            simulcast: video?.simulcast ?? false,
            choice: video?.choice ?? null,
            layer: video?.encoding ?? null,
            layerReason: video?.encodingReason ?? null,
            frameWidth: s.frameWidth,
            frameHeight: s.frameHeight,
            framesDecoded: s.framesDecoded,
            freezeCount: s.freezeCount,
            totalFreezesDuration: s.totalFreezesDuration,
            keyFramesDecoded: s.keyFramesDecoded,
            nackCount: s.nackCount,
            pliCount: s.pliCount,
            packetsLost: s.packetsLost,
            badge: badge?.text ?? null,
            badgeTitle: badge?.title ?? null,
          };
        });
    },
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
          camera: t.dataset.camera ?? "",
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
