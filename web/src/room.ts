// The room: Phoenix channel signalling + the Membrane WebRTC endpoint + the tiles.
//
// Signalling is the Membrane videoroom protocol: channel "room:<id>" on socket "/socket", the
// library's media events travel as channel event "mediaEvent" with payload {data: "<json>"}.
// One tile per remote endpoint (camera and microphone play in one MediaStream), plus one tile
// per screen share track. The room chat is a channel event of its own ("chat", see chat.ts),
// which the Membrane library never sees.
//
// Reconnection (reconnect.ts): a "session" is one socket + channel + WebRTCEndpoint (+ its peer
// connection). When any of them drops, the session is torn down (listeners removed, peer
// connection closed, channel left, socket disconnected), the remote tiles go, and a new session
// joins again after a back-off with the same name and the same local MediaStreamTracks. Events
// of an ended session are ignored (every handler checks that its session is the current one).

import { Channel, Socket } from "phoenix";
import { Endpoint, SimulcastConfig, TrackContext, TrackEncoding, WebRTCEndpoint } from "@jellyfish-dev/membrane-webrtc-js";

import {
  EndpointMetadata,
  JOIN_ERROR_MESSAGES,
  LOCAL_SCREEN_TILE_ID,
  LOCAL_TILE_ID,
  SCREENSHARING_CONSTRAINTS,
  SIMULCAST_ENCODINGS,
  SIMULCAST_MIN_PIXELS,
  TEST_SCREENSHARING_CONSTRAINTS,
  TrackMetadata,
} from "./consts";
import * as chat from "./chat";
import { ChatMessage, ChatResult } from "./chat";
import { LocalMedia, getLocalMedia } from "./local_media";
import { LayerInfo, QualityChoice, choiceLayer } from "./quality";
import { QualityMonitor, QualityTarget } from "./quality_monitor";
import { QualityView } from "./quality_widget";
import * as reconnect from "./reconnect";
import { checkSimulcastAnswer } from "./simulcast";
import * as remote from "./room_remote";
import {
  LocalTrack,
  Participant,
  ReconnectRecord,
  RemoteTrack,
  RemoteTrackInfo,
  RoomOptions,
  RoomState,
  RoomTimings,
} from "./room_types";
import * as ui from "./room_ui";

export type { ReconnectRecord, RemoteTrackInfo, RoomOptions, RoomState, RoomTimings } from "./room_types";

/** One attempt at being in the room: socket, channel, endpoint and its peer connection(s). */
interface Session {
  readonly id: number;
  readonly socket: Socket;
  readonly channel: Channel;
  readonly webrtc: WebRTCEndpoint;
  readonly socketRefs: string[];
  /** Peer connections the endpoint created (closed when the session ends). */
  readonly pcs: RTCPeerConnection[];
  readonly startedAt: number;
  connectedAt: number | null;
}

/** Give-up time: the option, or in test mode `?reconnect_giveup_ms=` of the page URL, or 1 min. */
function giveUpMs(opts: RoomOptions): number {
  if (opts.reconnectGiveUpMs && opts.reconnectGiveUpMs > 0) return opts.reconnectGiveUpMs;
  if (opts.test) {
    const v = Number(new URLSearchParams(window.location.search).get("reconnect_giveup_ms"));
    if (Number.isFinite(v) && v > 0) return v;
  }
  return reconnect.RECONNECT_GIVE_UP_MS;
}

/** The library keeps its RTCPeerConnection in a private field (and never closes it). */
function endpointConnection(w: WebRTCEndpoint): RTCPeerConnection | undefined {
  return (w as unknown as { connection?: RTCPeerConnection }).connection;
}

export class Room {
  readonly roomId: string;
  readonly displayName: string;
  state: RoomState = "idle";
  endpointId: string | null = null;
  readonly timings: RoomTimings = {
    joinStart: null,
    channelJoined: null,
    connected: null,
    firstTrackReady: null,
    firstRemoteFrame: null,
  };
  /** Errors shown to the user, oldest first (tests read them). */
  readonly errors: string[] = [];
  /** Chat messages received, oldest first (at most chat.MAX_CHAT_SHOWN). */
  readonly chatMessages: ChatMessage[] = [];
  /** Every connection loss, oldest first, with when it was reconnected. */
  readonly reconnects: ReconnectRecord[] = [];
  /**
   * The server's last estimate of this page's receive bandwidth (`bandwidthEstimation` media
   * event, bit/s) and when it came (Date.now()); null in a new session until one comes.
   */
  bandwidthEstimate: { bps: number; at: number } | null = null;

  private readonly opts: RoomOptions;
  private session: Session | null = null;
  private sessionCount = 0;
  /** Attempts stopped ("Rejoin" shown). */
  private gaveUp = false;
  private readonly backoff: reconnect.Backoff;
  private readonly peerWatch = new reconnect.PeerWatch();
  private retryTimer: number | null = null;
  private watchTimer: number | null = null;
  private readonly quality: QualityMonitor;
  private readonly onOnline = () => this.retryNow();
  private localMedia: LocalMedia | null = null;
  private readonly local: { audio: LocalTrack | null; camera: LocalTrack | null; screen: LocalTrack | null } = {
    audio: null,
    camera: null,
    screen: null,
  };
  private readonly participants = new Map<string, Participant>();
  private readonly remoteTracks = new Map<string, RemoteTrack>();
  private screenShareStarting = false;
  /** What the last negotiation said of the camera's simulcast (simulcast.ts), per session. */
  private simulcastVerdict: ReturnType<typeof checkSimulcastAnswer> = "none";
  /** A server refused the simulcast and this browser cannot renegotiate with it: no more simulcast. */
  private simulcastRefused = false;
  /** The camera was published in simulcast layers (last session); null before publishing it. */
  private cameraSimulcast: boolean | null = null;

  constructor(opts: RoomOptions) {
    this.opts = opts;
    this.roomId = opts.roomId;
    this.displayName = opts.displayName;
    this.backoff = new reconnect.Backoff({ giveUpAfterMs: giveUpMs(opts) });
    this.quality = new QualityMonitor(
      () => this.qualitySource(),
      (tileId, choice) => void this.pickQuality(tileId, choice),
    );
    ui.setAutoplayBlockedHandler(() => ui.showAudioUnlock(true));
  }

  // ------------------------------------------------------------------------------------------
  // Lifecycle

  async join(): Promise<void> {
    if (this.state !== "idle") return;
    this.state = "joining";
    this.timings.joinStart = Date.now();
    ui.setRoomName(this.roomId);
    ui.setStatus("Starting camera and microphone…", "joining");

    this.localMedia = await getLocalMedia(this.opts.media);
    if (this.state !== "joining") {
      // Left (or failed) while waiting for devices.
      this.localMedia.stream.getTracks().forEach((t) => t.stop());
      this.localMedia.dispose();
      return;
    }
    if (this.localMedia.problems.length > 0) {
      ui.showNotice(`${this.localMedia.problems.join(". ")}. You can still see and hear the others.`);
    }
    const { audio, video, stream } = this.localMedia;
    if (audio) this.local.audio = { trackId: null, track: audio, stream, metadata: { type: "audio", active: true } };
    if (video) this.local.camera = { trackId: null, track: video, stream, metadata: { type: "camera", active: true } };
    ui.addTile(LOCAL_TILE_ID, "local", `${this.displayName} (you)`, null);
    ui.setTileStream(LOCAL_TILE_ID, stream);
    ui.setTileMedia(LOCAL_TILE_ID, audio ? "on" : "none", video ? "on" : "none");
    this.renderParticipants();

    window.addEventListener("online", this.onOnline);
    this.watchTimer = window.setInterval(() => this.watch(), 1000);
    this.quality.start();
    ui.setStatus("Joining…", "joining");
    this.startSession();
    this.renderControls();
  }

  /** Leave button: tell the server, close everything, show the "left" panel. */
  leave(): void {
    if (this.state === "left") return;
    if (this.state === "connected" && this.session) {
      try {
        this.session.webrtc.disconnect(); // sends the "disconnect" media event
      } catch (err) {
        console.warn("lamina: disconnect failed", err);
      }
    }
    this.state = "left";
    this.teardown();
    ui.setStatus("Left the room", "left");
    ui.showLeft(this.opts.rejoinUrl);
  }

  /** A failure that reconnecting cannot fix (join refused, removed by the server). */
  private fail(message: string): void {
    if (this.state === "left" || (this.state === "failed" && !this.gaveUp)) return;
    this.state = "failed";
    this.gaveUp = false;
    this.showError(message);
    this.teardown();
    ui.setStatus("Disconnected", "failed");
    ui.showLeft(this.opts.rejoinUrl);
  }

  /** Stops local media, drops tiles, ends the session (no reconnects). */
  private teardown(): void {
    this.clearRetry();
    if (this.watchTimer !== null) window.clearInterval(this.watchTimer);
    this.watchTimer = null;
    window.removeEventListener("online", this.onOnline);
    this.quality.stop();
    if (this.session) this.endSession(this.session);
    reconnect.hideReconnectBanner();
    for (const lt of [this.local.audio, this.local.camera, this.local.screen]) lt?.track.stop();
    this.localMedia?.dispose();
    this.local.audio = this.local.camera = this.local.screen = null;
    this.clearRemote();
    ui.removeAllTiles();
    ui.showAudioUnlock(false);
    this.renderParticipants();
    this.renderControls();
    chat.setChatEnabled(false);
  }

  private showError(message: string): void {
    this.errors.push(message);
    ui.showError(message);
  }

  // ------------------------------------------------------------------------------------------
  // Sessions and reconnection

  /** Opens a socket, joins the channel and connects a fresh endpoint. */
  private startSession(): void {
    const socket = new Socket("/socket", { params: {} });
    const s: Session = {
      id: ++this.sessionCount,
      socket,
      channel: socket.channel(`room:${this.roomId}`, {}),
      webrtc: new WebRTCEndpoint(),
      socketRefs: [],
      pcs: [],
      startedAt: Date.now(),
      connectedAt: null,
    };
    this.session = s;
    this.bandwidthEstimate = null;
    this.simulcastVerdict = "none";
    this.peerWatch.reset();
    this.quality.reset();
    const live = () => this.session === s;
    const { channel } = s;

    channel.on("mediaEvent", (payload: { data?: unknown }) => {
      if (!live()) return;
      if (typeof payload?.data !== "string") {
        console.warn("lamina: mediaEvent without string data", payload);
        return;
      }
      try {
        s.webrtc.receiveMediaEvent(payload.data);
      } catch (err) {
        // The library throws on events it cannot place (unknown endpoint/track): keep going.
        console.error("lamina: media event failed", err, payload.data);
      }
    });
    channel.on("chat", (payload: unknown) => {
      if (live()) this.onChat(payload);
    });
    // Sent by some servers when our endpoint crashed; the channel then closes.
    channel.on("error", (payload: { message?: string }) => {
      if (live()) this.connectionLost(payload?.message || "the server reported an error");
    });
    channel.onError(() => {
      // The socket dropped (Phoenix errors its channels first), or the room crashed (phx_error).
      if (live()) this.connectionLost("the connection to the room dropped");
    });
    channel.onClose(() => {
      if (live()) this.connectionLost("the server closed the room");
    });
    s.socketRefs.push(
      socket.onError(() => {
        if (live()) this.connectionLost("cannot reach the server");
      }),
      socket.onClose(() => {
        if (live()) this.connectionLost("the connection to the server closed");
      }),
    );
    this.setupWebRTCHandlers(s);
    socket.connect();

    channel
      .join(reconnect.RECONNECT_ATTEMPT_TIMEOUT_MS - 1000)
      .receive("ok", () => {
        if (!live() || (this.state !== "joining" && this.state !== "reconnecting")) return;
        if (this.timings.channelJoined === null) this.timings.channelJoined = Date.now();
        const metadata: EndpointMetadata = { displayName: this.displayName };
        s.webrtc.connect(metadata);
      })
      .receive("error", (resp: { reason?: string } | undefined) => {
        if (!live()) return;
        const reason = resp?.reason ?? "unknown error";
        if (this.state === "reconnecting" && reconnect.isRetriableJoinRefusal(reason)) {
          this.connectionLost(`the server refused the join (${reason})`);
          return;
        }
        const text = JOIN_ERROR_MESSAGES[reason] ?? `Cannot join the room: ${reason}.`;
        // channel.leave() (in teardown) stops Phoenix from retrying the join forever.
        this.fail(text);
      })
      .receive("timeout", () => {
        if (live()) this.connectionLost("the server did not answer");
      });
  }

  /** Remembers the endpoint's peer connection (created lazily by the library) to close it later. */
  private capturePc(s: Session): void {
    const pc = endpointConnection(s.webrtc);
    if (!pc || s.pcs.includes(pc)) return;
    s.pcs.push(pc);
    // After each negotiation (the answer applied): see whether the server took the simulcast.
    pc.addEventListener("signalingstatechange", () => {
      if (pc.signalingState === "stable" && this.session === s) this.afterNegotiation(pc);
    });
  }

  /** Simulcast of the camera: on unless `?simulcast=0`, or a server refused it and this browser could not cope. */
  private simulcastWanted(): boolean {
    return this.opts.simulcast !== false && !this.simulcastRefused;
  }

  /**
   * The camera goes out in simulcast layers (SIMULCAST_ENCODINGS) when it is large enough
   * (SIMULCAST_MIN_PIXELS); the screen and the microphone in one encoding.
   */
  private simulcastConfig(lt: LocalTrack): SimulcastConfig | undefined {
    if (lt !== this.local.camera) return undefined;
    const { width, height } = lt.track.getSettings();
    const large = !!width && !!height && width * height >= SIMULCAST_MIN_PIXELS;
    this.cameraSimulcast = this.simulcastWanted() && large;
    if (this.simulcastWanted() && !large) console.info(`lamina: camera ${width}x${height}: one encoding (simulcast from 960x540)`);
    return this.cameraSimulcast ? { enabled: true, activeEncodings: [...SIMULCAST_ENCODINGS] } : undefined;
  }

  /** How the camera is sent (test hooks): simulcast asked for, decided, and the server's answer. */
  simulcastState(): { enabled: boolean; refused: boolean; camera: boolean | null; answer: string } {
    return {
      enabled: this.opts.simulcast !== false,
      refused: this.simulcastRefused,
      camera: this.cameraSimulcast,
      answer: this.simulcastVerdict,
    };
  }

  /**
   * After each negotiation: did the server take the camera's simulcast? If it did not, the
   * camera goes on in one encoding (simulcast.ts); a browser that could not renegotiate then
   * joins again without simulcast (for the rest of this Room).
   */
  private afterNegotiation(pc: RTCPeerConnection): void {
    const cam = this.local.camera;
    if (!cam || !this.cameraSimulcast) return;
    const verdict = checkSimulcastAnswer(pc, cam.track);
    if (verdict === this.simulcastVerdict || verdict === "none") return;
    this.simulcastVerdict = verdict;
    if (verdict === "refused") console.info("lamina: the server does not take simulcast: the camera goes out in one encoding");
    if (verdict === "stuck") {
      this.simulcastRefused = true;
      this.connectionLost("the server does not take simulcast", "joining again with one camera encoding");
    }
  }

  /** Ends a session for good: no listener of it fires again, nothing of it stays open. */
  private endSession(s: Session): void {
    if (this.session === s) this.session = null;
    s.socket.off(s.socketRefs.splice(0));
    this.capturePc(s);
    s.webrtc.removeAllListeners();
    try {
      s.webrtc.cleanUp();
    } catch {
      /* nothing to clean */
    }
    // cleanUp() forgets the peer connection without closing it.
    for (const pc of s.pcs.splice(0)) {
      try {
        pc.close();
      } catch {
        /* already closed */
      }
    }
    for (const ev of ["mediaEvent", "chat", "error"]) s.channel.off(ev);
    try {
      s.channel.leave();
    } catch {
      /* already closed */
    }
    s.socket.disconnect();
    for (const lt of [this.local.audio, this.local.camera, this.local.screen]) if (lt) lt.trackId = null;
  }

  /** Removes every remote participant, track and tile (their endpoints are gone with the session). */
  private clearRemote(): void {
    for (const id of Array.from(this.participants.keys())) remote.removeParticipant(this.participants, this.remoteTracks, id);
    for (const rt of this.remoteTracks.values()) {
      if (rt.type === "screensharing") ui.removeTile(rt.trackId);
    }
    this.remoteTracks.clear();
    this.participants.clear();
  }

  /**
   * The socket, the channel or the media connection dropped (or an attempt failed): end the
   * session, drop the others' tiles and schedule the next attempt.
   */
  private connectionLost(reason: string, detail?: string): void {
    if (this.state !== "joining" && this.state !== "connected" && this.state !== "reconnecting") return;
    const now = Date.now();
    console.warn(`lamina: connection lost: ${reason}${detail ? ` (${detail})` : ""}`);
    if (this.session) this.endSession(this.session);
    this.clearRetry();
    this.clearRemote();
    if (this.state !== "reconnecting") {
      this.state = "reconnecting";
      this.endpointId = null;
      const why = detail ? `${reason}: ${detail}` : reason;
      this.reconnects.push({ lostAt: now, reason: why, attempts: 0, reconnectedAt: null, endpointId: null });
      chat.setChatEnabled(false);
      this.renderParticipants();
      this.renderControls();
    }
    this.backoff.begin(now);
    const delay = this.backoff.next(now);
    if (delay === null) {
      this.giveUp(reason);
      return;
    }
    ui.setStatus("Reconnecting…", "reconnecting");
    reconnect.showReconnecting(reason, this.backoff.attempt, delay);
    this.retryTimer = window.setTimeout(() => {
      this.retryTimer = null;
      this.attempt();
    }, delay);
  }

  private attempt(): void {
    if (this.state !== "reconnecting" || this.session) return;
    const rec = this.reconnects[this.reconnects.length - 1];
    if (rec) rec.attempts += 1;
    this.startSession();
  }

  /** The browser is back online: try at once instead of waiting for the back-off. */
  private retryNow(): void {
    if (this.state !== "reconnecting" || this.retryTimer === null) return;
    this.clearRetry();
    this.attempt();
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) window.clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private giveUp(reason: string): void {
    this.state = "failed";
    this.gaveUp = true;
    const minutes = Math.round(this.backoff.giveUpAfterMs / 60_000);
    const seconds = Math.round(this.backoff.giveUpAfterMs / 1000);
    const span = minutes === 1 ? "a minute" : minutes > 1 ? `${minutes} minutes` : `${seconds} s`;
    const message = `Could not reconnect to the room for ${span} (${reason}).`;
    this.errors.push(message);
    ui.setStatus("Disconnected", "failed");
    reconnect.showGaveUp(message, () => this.rejoin());
    this.renderControls();
  }

  /** "Rejoin" after giving up: start over with a fresh back-off (same tracks, no device prompt). */
  rejoin(): void {
    if (this.state !== "failed" || !this.gaveUp) return;
    this.gaveUp = false;
    this.backoff.reset();
    this.state = "reconnecting";
    this.reconnects.push({ lostAt: Date.now(), reason: "rejoin", attempts: 0, reconnectedAt: null, endpointId: null });
    ui.setStatus("Reconnecting…", "reconnecting");
    reconnect.showReconnecting("rejoining", 1, 0);
    this.backoff.begin(Date.now());
    this.backoff.next(Date.now());
    this.attempt();
  }

  /** Once a second: attempt time-out, peer connection state, back-off reset when stable. */
  private watch(): void {
    const s = this.session;
    const now = Date.now();
    if (!s) return;
    const attempting = this.state === "joining" || this.state === "reconnecting";
    if (attempting && now - s.startedAt > reconnect.RECONNECT_ATTEMPT_TIMEOUT_MS) {
      this.connectionLost("the server did not answer in time");
      return;
    }
    if (this.state !== "connected") return;
    this.capturePc(s);
    const pc = endpointConnection(s.webrtc) ?? s.pcs[s.pcs.length - 1];
    const lost = this.peerWatch.observe(pc ? pc.connectionState : null, now);
    if (lost) {
      this.connectionLost(lost);
      return;
    }
    if (s.connectedAt !== null && now - s.connectedAt >= reconnect.RECONNECT_STABLE_MS && this.backoff.since !== null) {
      this.backoff.reset();
    }
  }

  /** Test hook: drops the WebSocket under the Phoenix client, as a network cut would. */
  testCutSocket(): boolean {
    const conn = (this.session?.socket as unknown as { conn?: WebSocket } | undefined)?.conn;
    if (!conn) return false;
    conn.close(4000, "test: connection cut");
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // WebRTC endpoint events

  private setupWebRTCHandlers(s: Session): void {
    const w = s.webrtc;
    const live = () => this.session === s;

    w.on("sendMediaEvent", (mediaEvent: string) => {
      if (!live()) return;
      this.capturePc(s);
      s.channel.push("mediaEvent", { data: mediaEvent });
    });

    w.on("connected", (endpointId: string, otherEndpoints: Endpoint[]) => {
      if (!live() || (this.state !== "joining" && this.state !== "reconnecting")) return;
      const rejoined = this.state === "reconnecting";
      this.state = "connected";
      this.gaveUp = false;
      this.endpointId = endpointId;
      s.connectedAt = Date.now();
      if (this.timings.connected === null) this.timings.connected = s.connectedAt;
      ui.setStatus("Connected", "connected");
      if (rejoined) {
        const rec = this.reconnects[this.reconnects.length - 1];
        if (rec) {
          rec.reconnectedAt = s.connectedAt;
          rec.endpointId = endpointId;
        }
        reconnect.hideReconnectBanner();
        ui.clearError(); // what the server said before the loss is over
      }
      // The same MediaStreamTracks every session: a rejoin never asks for the devices again.
      for (const lt of [this.local.audio, this.local.camera, this.local.screen]) {
        if (!lt) continue;
        lt.trackId = w.addTrack(lt.track, lt.stream, { ...lt.metadata }, this.simulcastConfig(lt));
      }
      for (const ep of otherEndpoints) remote.addParticipant(this.participants, ep);
      this.renderParticipants();
      this.renderControls();
      chat.setChatEnabled(true);
    });

    w.on("endpointAdded", (ep: Endpoint) => {
      if (!live()) return;
      remote.addParticipant(this.participants, ep);
      this.renderParticipants();
    });

    w.on("endpointUpdated", (ep: Endpoint) => {
      if (!live()) return;
      const p = this.participants.get(ep.id);
      if (!p) return remote.addParticipant(this.participants, ep);
      p.name = remote.displayNameOf(ep);
      ui.setTileName(p.id, p.name);
      for (const rt of this.remoteTracks.values()) {
        if (rt.endpointId === ep.id && rt.type === "screensharing") ui.setTileName(rt.trackId, `${p.name} (screen)`);
      }
      this.renderParticipants();
    });

    w.on("endpointRemoved", (ep: Endpoint) => {
      if (!live()) return;
      remote.removeParticipant(this.participants, this.remoteTracks, ep.id);
      this.renderParticipants();
    });

    w.on("trackAdded", (ctx: TrackContext) => {
      if (!live() || !ctx) return;
      const endpointId = ctx.endpoint.id;
      const rt: RemoteTrack = {
        trackId: ctx.trackId,
        endpointId,
        type: remote.trackType(ctx.metadata),
        ctx,
        track: null,
        choice: "auto",
      };
      this.remoteTracks.set(ctx.trackId, rt);
      ctx.on("voiceActivityChanged", (c: TrackContext) => {
        if (live() && this.participants.has(endpointId)) ui.setTileSpeaking(endpointId, c.vadStatus === "speech");
      });
      ctx.on("encodingChanged", () => {
        if (live()) this.onEncodingChanged(ctx.trackId);
      });
      remote.renderTrackState(this.remoteTracks, rt);
    });

    w.on("trackReady", (ctx: TrackContext) => {
      if (!live() || !ctx || !ctx.track) return;
      this.capturePc(s);
      let rt = this.remoteTracks.get(ctx.trackId);
      if (!rt) {
        rt = { trackId: ctx.trackId, endpointId: ctx.endpoint.id, type: remote.trackType(ctx.metadata), ctx, track: null, choice: "auto" };
        this.remoteTracks.set(ctx.trackId, rt);
      }
      rt.track = ctx.track;
      if (this.timings.firstTrackReady === null) this.timings.firstTrackReady = Date.now();
      if (rt.type === "screensharing") {
        const owner = this.participants.get(rt.endpointId);
        const name = owner ? owner.name : remote.displayNameOf(ctx.endpoint);
        ui.addTile(rt.trackId, "screen", `${name} (screen)`, rt.endpointId);
        ui.setTileTrackIds(rt.trackId, [rt.trackId]);
        ui.setTileMedia(rt.trackId, "none", "on");
        const stream = new MediaStream([ctx.track]);
        ui.setTileStream(rt.trackId, stream);
        this.watchFirstFrame(rt.trackId);
      } else {
        const p = this.participants.get(rt.endpointId) ?? remote.addParticipant(this.participants, ctx.endpoint);
        // At most one track per kind in the main tile: a newer one replaces the old.
        for (const [id, t] of p.tileTracks) {
          if (t.kind === ctx.track.kind && id !== rt.trackId) p.tileTracks.delete(id);
        }
        p.tileTracks.set(rt.trackId, ctx.track);
        remote.refreshParticipantStream(p, (id) => this.watchFirstFrame(id));
      }
      remote.renderTrackState(this.remoteTracks, rt);
    });

    w.on("trackRemoved", (ctx: TrackContext) => {
      if (!live() || !ctx) return;
      const rt = this.remoteTracks.get(ctx.trackId);
      this.remoteTracks.delete(ctx.trackId);
      const type = rt?.type ?? remote.trackType(ctx.metadata);
      if (type === "screensharing") {
        ui.removeTile(ctx.trackId);
        return;
      }
      const p = this.participants.get(ctx.endpoint.id);
      if (!p) return;
      if (p.tileTracks.delete(ctx.trackId)) remote.refreshParticipantStream(p, (id) => this.watchFirstFrame(id));
      remote.renderParticipantMedia(this.remoteTracks, p.id);
    });

    w.on("trackUpdated", (ctx: TrackContext) => {
      if (!live() || !ctx) return;
      const rt = this.remoteTracks.get(ctx.trackId);
      if (!rt) return;
      rt.type = remote.trackType(ctx.metadata) === "unknown" ? rt.type : remote.trackType(ctx.metadata);
      remote.renderTrackState(this.remoteTracks, rt);
    });

    w.on("bandwidthEstimationChanged", (estimation: bigint | number) => {
      // Typed bigint, but it is the number of the JSON media event.
      const bps = Number(estimation);
      if (live() && Number.isFinite(bps)) this.bandwidthEstimate = { bps, at: Date.now() };
    });

    w.on("connectionError", (message: string) => {
      // A failed peer connection, or an `error` media event: 0.5.3 then calls disconnect(),
      // which sends the "disconnect" media event (let it go out: the reconnect waits a microtask).
      if (!live()) return;
      const ours = message === "Connection failed" || message === "Ice connection failed";
      if (!ours) this.showError(`Media connection problem: ${message}`);
      queueMicrotask(() => {
        if (live()) this.connectionLost(ours ? "the media connection failed" : "the server ended the session", message);
      });
    });

    w.on("disconnected", () => {
      // Our own endpoint was removed by the server.
      if (live()) this.fail("You were removed from the room.");
    });
  }

  // ------------------------------------------------------------------------------------------
  // Connection quality

  /** What the quality monitor samples: the session's peer connection, and every tile's tracks. */
  private qualitySource(): { pcs: RTCPeerConnection[]; targets: QualityTarget[] } {
    const s = this.session;
    if (!s || this.state !== "connected") return { pcs: [], targets: [] };
    this.capturePc(s);
    const targets: QualityTarget[] = [];
    const own = [this.local.audio, this.local.camera].filter((lt): lt is LocalTrack => !!lt);
    targets.push({
      tileId: LOCAL_TILE_ID,
      direction: "outbound",
      trackIds: own.map((lt) => lt.track.id),
      videoActive: !!this.local.camera?.metadata.active,
    });
    if (this.local.screen) {
      const trackIds = [this.local.screen.track.id];
      targets.push({ tileId: LOCAL_SCREEN_TILE_ID, direction: "outbound", trackIds, videoActive: true });
    }
    for (const p of this.participants.values()) {
      let videoActive = false;
      for (const id of p.tileTracks.keys()) {
        const rt = this.remoteTracks.get(id);
        if (rt?.track?.kind === "video" && remote.isActive(rt.ctx.metadata)) videoActive = true;
      }
      targets.push({
        tileId: p.id,
        direction: "inbound",
        trackIds: Array.from(p.tileTracks.values()).map((t) => t.id),
        videoActive,
        ...this.layerOf(p.id),
      });
    }
    for (const rt of this.remoteTracks.values()) {
      if (rt.type !== "screensharing" || !rt.track) continue;
      const videoActive = remote.isActive(rt.ctx.metadata);
      targets.push({ tileId: rt.trackId, direction: "inbound", trackIds: [rt.track.id], videoActive, ...this.layerOf(rt.trackId) });
    }
    return { pcs: s.pcs.filter((pc) => pc.connectionState !== "closed"), targets };
  }

  /** The last quality sample and level of every tile (test hooks). */
  qualityViews(): QualityView[] {
    return this.quality.views();
  }

  /** A remote tile's received layer (badge) and, for a simulcast video, the picker's choice. */
  private layerOf(tileId: string): { layer: LayerInfo; picker: QualityChoice | null } {
    const rt = remote.tileVideoTrack(this.remoteTracks, this.participants, tileId);
    return {
      layer: { encoding: rt?.ctx.encoding ?? null, reason: rt?.ctx.encodingReason ?? null },
      picker: rt && remote.isSimulcast(rt) ? rt.choice : null,
    };
  }

  /** The server switched the layer it forwards of a remote track: update its tile's badge now. */
  private onEncodingChanged(trackId: string): void {
    const rt = this.remoteTracks.get(trackId);
    if (!rt) return;
    const tileId = rt.type === "screensharing" ? rt.trackId : rt.endpointId;
    if (remote.tileVideoTrack(this.remoteTracks, this.participants, tileId) !== rt) return;
    this.quality.update(tileId, this.layerOf(tileId));
  }

  /**
   * The quality picker of a remote tile (and the test hook): asks the server for a layer of the
   * tile's video ("auto" asks for "h"; the server lowers it by itself when this page's bandwidth
   * is short). Returns what was sent, or null without such a track (or when not connected).
   */
  pickQuality(tileId: string, choice: QualityChoice): { trackId: string; variant: TrackEncoding } | null {
    const s = this.session;
    if (this.state !== "connected" || !s) return null;
    const rt = remote.tileVideoTrack(this.remoteTracks, this.participants, tileId);
    if (!rt) return null;
    rt.choice = choice;
    const variant = choiceLayer(choice);
    s.webrtc.setTargetTrackEncoding(rt.trackId, variant);
    this.quality.update(tileId, this.layerOf(tileId));
    return { trackId: rt.trackId, variant };
  }

  // ------------------------------------------------------------------------------------------
  // Chat

  private onChat(payload: unknown): void {
    const msg = chat.parseChatMessage(payload);
    if (!msg) {
      console.warn("lamina: malformed chat message", payload);
      return;
    }
    this.chatMessages.push(msg);
    if (this.chatMessages.length > chat.MAX_CHAT_SHOWN) this.chatMessages.shift();
    chat.showChatMessage(msg, msg.from === this.endpointId);
  }

  /** Sends a chat message; resolves with the server's verdict (errors are shown too). */
  sendChat(text: string): Promise<ChatResult> {
    const refuse = (reason: string): ChatResult => {
      chat.showChatError(chat.CHAT_ERROR_MESSAGES[reason] ?? `Message not sent: ${reason}.`);
      return { ok: false, reason };
    };
    const session = this.session;
    if (this.state !== "connected" || !session) return Promise.resolve(refuse("not_connected"));
    return new Promise((resolve) => {
      session.channel
        .push("chat", { text })
        .receive("ok", () => {
          chat.showChatError(null);
          resolve({ ok: true });
        })
        .receive("error", (resp: { reason?: unknown } | undefined) => {
          const reason = typeof resp?.reason === "string" ? resp.reason : "unknown error";
          resolve(refuse(reason));
        })
        .receive("timeout", () => resolve(refuse("timeout")));
    });
  }

  // ------------------------------------------------------------------------------------------
  // Participants and tiles

  private renderParticipants(): void {
    const names = [`${this.displayName} (you)`];
    for (const p of this.participants.values()) names.push(p.name);
    ui.setParticipants(this.state === "left" || this.state === "failed" ? [] : names);
  }

  private renderControls(): void {
    ui.renderControls({
      connected: this.state === "connected",
      hasMic: !!this.local.audio,
      micOn: !!this.local.audio?.metadata.active,
      hasCamera: !!this.local.camera,
      cameraOn: !!this.local.camera?.metadata.active,
      screenSupported: !!navigator.mediaDevices?.getDisplayMedia,
      sharing: !!this.local.screen || this.screenShareStarting,
    });
    // Leaving stays possible while reconnecting or after giving up.
    if (this.state === "reconnecting" || (this.state === "failed" && this.gaveUp)) {
      const leave = document.getElementById("leave-button");
      if (leave instanceof HTMLButtonElement) leave.disabled = false;
    }
  }

  /** Records the time the first remote video frame was presented (for the join-latency metric). */
  private watchFirstFrame(tileId: string): void {
    remote.watchFirstFrame(this.timings, () => this.state === "connected", tileId);
  }

  // ------------------------------------------------------------------------------------------
  // Controls

  toggleMic(): void {
    this.setLocalActive("audio", !this.local.audio?.metadata.active);
  }

  toggleCamera(): void {
    this.setLocalActive("camera", !this.local.camera?.metadata.active);
  }

  /** Mute/unmute (audio) or camera off/on: `track.enabled` plus a metadata update for the others. */
  setLocalActive(which: "audio" | "camera", active: boolean): void {
    const lt = which === "audio" ? this.local.audio : this.local.camera;
    if (!lt || this.state !== "connected") return;
    lt.track.enabled = active;
    lt.metadata = { ...lt.metadata, active };
    if (lt.trackId && this.session) this.session.webrtc.updateTrackMetadata(lt.trackId, { ...lt.metadata });
    if (which === "audio") ui.setTileMedia(LOCAL_TILE_ID, active ? "on" : "off", null);
    else ui.setTileMedia(LOCAL_TILE_ID, null, active ? "on" : "off");
    this.renderControls();
  }

  /**
   * Device switch mid-call: publishes `track` instead of the microphone or camera track (the
   * sender's track is replaced, no renegotiation), stops the old one and shows the new one in
   * the local tile; later rejoins publish the new one. While reconnecting it is only swapped
   * (the next session publishes it). False (nothing changed, the caller keeps `track`) when
   * there is no such track, or the library cannot replace it yet (before the first negotiation).
   */
  async replaceLocalTrack(which: "audio" | "camera", track: MediaStreamTrack): Promise<boolean> {
    const lt = which === "audio" ? this.local.audio : this.local.camera;
    if (!lt || track.kind !== lt.track.kind || track.readyState === "ended") return false;
    track.enabled = lt.metadata.active;
    const s = this.session;
    if (this.state === "connected" && s && lt.trackId) {
      let ok = false;
      try {
        ok = await s.webrtc.replaceTrack(lt.trackId, track, { ...lt.metadata });
      } catch {
        ok = false; // no peer connection yet
      }
      if (!ok || s !== this.session || lt !== (which === "audio" ? this.local.audio : this.local.camera)) return false;
    } else if (this.state !== "reconnecting") {
      return false;
    }
    const old = lt.track;
    lt.track = track;
    // One stream for the local tile and the msid of both tracks (a new one: srcObject re-evaluated).
    const stream = new MediaStream([this.local.audio?.track, this.local.camera?.track].filter((t): t is MediaStreamTrack => !!t));
    for (const l of [this.local.audio, this.local.camera]) if (l) l.stream = stream;
    ui.setTileStream(LOCAL_TILE_ID, stream);
    old.stop();
    return true;
  }

  async toggleScreenShare(): Promise<void> {
    if (this.local.screen) this.stopScreenShare();
    else await this.startScreenShare();
  }

  async startScreenShare(): Promise<void> {
    if (this.state !== "connected" || this.local.screen || this.screenShareStarting) return;
    this.screenShareStarting = true;
    this.renderControls();
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia(
        this.opts.test ? TEST_SCREENSHARING_CONSTRAINTS : SCREENSHARING_CONSTRAINTS,
      );
    } catch (err) {
      this.screenShareStarting = false;
      this.renderControls();
      const name = err instanceof DOMException ? err.name : "";
      if (name !== "NotAllowedError" && name !== "AbortError") {
        this.showError(`Cannot share the screen: ${err instanceof Error ? err.message : String(err)}`);
      }
      return;
    }
    this.screenShareStarting = false;
    const track = stream.getVideoTracks()[0];
    const session = this.session;
    if (!track || this.state !== "connected" || !session) {
      stream.getTracks().forEach((t) => t.stop());
      this.renderControls();
      return;
    }
    const metadata: TrackMetadata = { type: "screensharing", active: true };
    const trackId = session.webrtc.addTrack(track, stream, { ...metadata });
    this.local.screen = { trackId, track, stream, metadata };
    // The browser's own "Stop sharing" bar ends the track.
    track.addEventListener("ended", () => this.stopScreenShare());
    ui.addTile(LOCAL_SCREEN_TILE_ID, "local-screen", `${this.displayName} (your screen)`, null);
    ui.setTileMedia(LOCAL_SCREEN_TILE_ID, "none", "on");
    ui.setTileStream(LOCAL_SCREEN_TILE_ID, stream);
    this.renderControls();
  }

  stopScreenShare(): void {
    const lt = this.local.screen;
    if (!lt) return;
    this.local.screen = null;
    if (lt.trackId && this.state === "connected") this.removeLocalTrack(lt.trackId, 0);
    lt.track.stop();
    ui.removeTile(LOCAL_SCREEN_TILE_ID);
    this.renderControls();
  }

  /**
   * `removeTrack` throws (without changing the library's state) while the track has no sender
   * yet, i.e. before the first negotiation created the peer connection: retry a little later.
   */
  private removeLocalTrack(trackId: string, attempt: number, session: Session | null = this.session): void {
    if (this.state !== "connected" || !session || session !== this.session) return;
    try {
      session.webrtc.removeTrack(trackId);
    } catch (err) {
      if (attempt >= 40) {
        console.warn("lamina: removeTrack failed", err);
        return;
      }
      window.setTimeout(() => this.removeLocalTrack(trackId, attempt + 1, session), 250);
    }
  }

  unlockAudio(): void {
    ui.showAudioUnlock(false);
    ui.replayAll();
  }

  // ------------------------------------------------------------------------------------------
  // Introspection (test hooks and debugging)

  remoteTrackInfos(): RemoteTrackInfo[] {
    return remote.remoteTrackInfos(this.remoteTracks, this.participants);
  }

  /** The video track a remote tile shows (its camera, or the shared screen), null without one. */
  tileVideoTrackInfo(tileId: string): RemoteTrackInfo | null {
    const rt = remote.tileVideoTrack(this.remoteTracks, this.participants, tileId);
    return rt ? remote.remoteTrackInfo(rt, this.participants) : null;
  }

  /** The local MediaStreamTracks' ids (the same before and after a reconnect). */
  localMediaTrackIds(): { audio: string | null; camera: string | null; screen: string | null } {
    return {
      audio: this.local.audio?.track.id ?? null,
      camera: this.local.camera?.track.id ?? null,
      screen: this.local.screen?.track.id ?? null,
    };
  }

  localTrackIds(): { audio: string | null; camera: string | null; screen: string | null } {
    return {
      audio: this.local.audio?.trackId ?? null,
      camera: this.local.camera?.trackId ?? null,
      screen: this.local.screen?.trackId ?? null,
    };
  }
}
