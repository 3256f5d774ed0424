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
//
// The Room decides; the parts live in room_session.ts (open/close a session), room_local.ts (our
// tracks), room_roster.ts (the others' endpoints and tracks) and room_ui.ts (the page).

import { Endpoint, TrackEncoding } from "@jellyfish-dev/membrane-webrtc-js";

import { EndpointMetadata, JOIN_ERROR_MESSAGES } from "./consts";
import * as chat from "./chat";
import type { ChatMessage, ChatResult } from "./chat";
import { getLocalMedia } from "./local_media";
import { QualityChoice, choiceLayer } from "./quality";
import { QualityMonitor, QualityTarget } from "./quality_monitor";
import { QualityView } from "./quality_widget";
import * as reconnect from "./reconnect";
import { LocalTracks } from "./room_local";
import { Roster } from "./room_roster";
import { Session, capturePc, closeSession, cutSocket, endpointConnection, openSession } from "./room_session";
import { ReconnectRecord, RemoteTrackInfo, RoomOptions, RoomState, RoomTimings } from "./room_types";
import * as ui from "./room_ui";

export type { ReconnectRecord, RemoteTrackInfo, RoomOptions, RoomState, RoomTimings } from "./room_types";

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
  /** Our microphone, camera and screen. */
  private readonly local: LocalTracks;
  /** The others, as the current session knows them. */
  private readonly roster: Roster;

  constructor(opts: RoomOptions) {
    this.opts = opts;
    this.roomId = opts.roomId;
    this.displayName = opts.displayName;
    this.backoff = new reconnect.Backoff({ giveUpAfterMs: reconnect.giveUpMs(opts.reconnectGiveUpMs, !!opts.test) });
    this.quality = new QualityMonitor(
      () => this.qualitySource(),
      (tileId, choice) => void this.pickQuality(tileId, choice),
    );
    this.local = new LocalTracks(
      {
        displayName: opts.displayName,
        test: !!opts.test,
        connected: () => this.state === "connected",
        reconnecting: () => this.state === "reconnecting",
        endpoint: () => this.session?.webrtc ?? null,
        changed: () => this.renderControls(),
        error: (message) => this.showError(message),
      },
      opts.simulcast !== false,
    );
    this.roster = new Roster({
      timings: this.timings,
      connected: () => this.state === "connected",
      changed: () => this.renderParticipants(),
      layerChanged: (tileId) => this.quality.update(tileId, this.roster.layerOf(tileId)),
    });
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

    const media = await getLocalMedia(this.opts.media);
    if (this.state !== "joining") {
      // Left (or failed) while waiting for devices.
      media.stream.getTracks().forEach((t) => t.stop());
      media.dispose();
      return;
    }
    if (media.problems.length > 0) {
      ui.showNotice(`${media.problems.join(". ")}. You can still see and hear the others.`);
    }
    this.local.adopt(media);
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
    this.local.stop();
    this.roster.clear();
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
    const s = openSession(++this.sessionCount, this.roomId);
    this.session = s;
    this.bandwidthEstimate = null;
    this.local.simulcast.newSession();
    this.peerWatch.reset();
    this.quality.reset();
    const live = () => this.session === s;
    const { channel, socket } = s;

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
      if (live()) chat.receiveChat(this.chatMessages, payload, this.endpointId);
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
    const pc = capturePc(s);
    if (!pc) return;
    // After each negotiation (the answer applied): see whether the server took the simulcast.
    pc.addEventListener("signalingstatechange", () => {
      if (pc.signalingState === "stable" && this.session === s) this.afterNegotiation(pc);
    });
  }

  /** How the camera is sent (test hooks): simulcast asked for, decided, and the server's answer. */
  simulcastState(): { enabled: boolean; refused: boolean; camera: boolean | null; answer: string } {
    return this.local.simulcast.state();
  }

  /**
   * After each negotiation: did the server take the camera's simulcast? A browser that cannot
   * renegotiate without it joins again without simulcast (for the rest of this Room).
   */
  private afterNegotiation(pc: RTCPeerConnection): void {
    if (this.local.afterNegotiation(pc)) {
      this.connectionLost("the server does not take simulcast", "joining again with one camera encoding");
    }
  }

  /** Ends a session for good: no listener of it fires again, nothing of it stays open. */
  private endSession(s: Session): void {
    if (this.session === s) this.session = null;
    closeSession(s);
    this.local.unpublished();
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
    this.roster.clear();
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
    return cutSocket(this.session);
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
      this.local.publish(w);
      this.roster.connected(otherEndpoints);
      this.renderParticipants();
      this.renderControls();
      chat.setChatEnabled(true);
    });

    // A received track's peer connection is remembered before its tile shows it.
    this.roster.listen(w, live, () => this.capturePc(s));

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
    const targets: QualityTarget[] = [...this.local.qualityTargets(), ...this.roster.qualityTargets()];
    return { pcs: s.pcs.filter((pc) => pc.connectionState !== "closed"), targets };
  }

  /** The last quality sample and level of every tile (test hooks). */
  qualityViews(): QualityView[] {
    return this.quality.views();
  }

  /**
   * The quality picker of a remote tile (and the test hook): asks the server for a layer of the
   * tile's video ("auto" asks for "h"; the server lowers it by itself when this page's bandwidth
   * is short). Returns what was sent, or null without such a track (or when not connected).
   */
  pickQuality(tileId: string, choice: QualityChoice): { trackId: string; variant: TrackEncoding } | null {
    const s = this.session;
    if (this.state !== "connected" || !s) return null;
    const rt = this.roster.tileVideoTrack(tileId);
    if (!rt) return null;
    rt.choice = choice;
    const variant = choiceLayer(choice);
    s.webrtc.setTargetTrackEncoding(rt.trackId, variant);
    this.quality.update(tileId, this.roster.layerOf(tileId));
    return { trackId: rt.trackId, variant };
  }

  // ------------------------------------------------------------------------------------------
  // Chat

  /** Sends a chat message; resolves with the server's verdict (errors are shown too). */
  sendChat(text: string): Promise<ChatResult> {
    return chat.sendChat(this.state === "connected" ? (this.session?.channel ?? null) : null, text);
  }

  // ------------------------------------------------------------------------------------------
  // Participants and tiles

  private renderParticipants(): void {
    const names = [`${this.displayName} (you)`, ...this.roster.names()];
    ui.setParticipants(this.state === "left" || this.state === "failed" ? [] : names);
  }

  private renderControls(): void {
    ui.renderControls(this.local.controlState(this.state === "connected"));
    // Leaving stays possible while reconnecting or after giving up.
    if (this.state === "reconnecting" || (this.state === "failed" && this.gaveUp)) {
      const leave = document.getElementById("leave-button");
      if (leave instanceof HTMLButtonElement) leave.disabled = false;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Controls

  toggleMic(): void {
    this.local.toggle("audio");
  }

  toggleCamera(): void {
    this.local.toggle("camera");
  }

  /** Mute/unmute (audio) or camera off/on (LocalTracks.setActive). */
  setLocalActive(which: "audio" | "camera", active: boolean): void {
    this.local.setActive(which, active);
  }

  /** Device switch mid-call (LocalTracks.replace): false when nothing changed. */
  replaceLocalTrack(which: "audio" | "camera", track: MediaStreamTrack): Promise<boolean> {
    return this.local.replace(which, track);
  }

  toggleScreenShare(): Promise<void> {
    return this.local.toggleScreen();
  }

  startScreenShare(): Promise<void> {
    return this.local.startScreen();
  }

  stopScreenShare(): void {
    this.local.stopScreen();
  }

  unlockAudio(): void {
    ui.showAudioUnlock(false);
    ui.replayAll();
  }

  // ------------------------------------------------------------------------------------------
  // Introspection (test hooks and debugging)

  remoteTrackInfos(): RemoteTrackInfo[] {
    return this.roster.infos();
  }

  /** The video track a remote tile shows (its camera, or the shared screen), null without one. */
  tileVideoTrackInfo(tileId: string): RemoteTrackInfo | null {
    return this.roster.tileVideoTrackInfo(tileId);
  }

  /** The local MediaStreamTracks' ids (the same before and after a reconnect). */
  localMediaTrackIds(): { audio: string | null; camera: string | null; screen: string | null } {
    return this.local.mediaTrackIds();
  }

  localTrackIds(): { audio: string | null; camera: string | null; screen: string | null } {
    return this.local.trackIds();
  }
}
