// The room: Phoenix channel signalling + the Membrane WebRTC endpoint + the tiles.
//
// Signalling is the Membrane videoroom protocol: channel "room:<id>" on socket "/socket", the
// library's media events travel as channel event "mediaEvent" with payload {data: "<json>"}.
// One tile per remote endpoint (camera and microphone play in one MediaStream), plus one tile
// per screen share track. The room chat is a channel event of its own ("chat", see chat.ts),
// which the Membrane library never sees.

import { Channel, Socket } from "phoenix";
import { Endpoint, TrackContext, WebRTCEndpoint } from "@jellyfish-dev/membrane-webrtc-js";

import {
  EndpointMetadata,
  JOIN_ERROR_MESSAGES,
  LOCAL_SCREEN_TILE_ID,
  LOCAL_TILE_ID,
  SCREENSHARING_CONSTRAINTS,
  TEST_SCREENSHARING_CONSTRAINTS,
  TrackMetadata,
} from "./consts";
import * as chat from "./chat";
import { ChatMessage, ChatResult } from "./chat";
import { LocalMedia, getLocalMedia } from "./local_media";
import * as remote from "./room_remote";
import { LocalTrack, Participant, RemoteTrack, RemoteTrackInfo, RoomOptions, RoomState, RoomTimings } from "./room_types";
import * as ui from "./room_ui";

export type { RemoteTrackInfo, RoomOptions, RoomState, RoomTimings } from "./room_types";

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

  private readonly opts: RoomOptions;
  private readonly socket: Socket;
  private readonly channel: Channel;
  private readonly webrtc: WebRTCEndpoint;
  private localMedia: LocalMedia | null = null;
  private readonly local: { audio: LocalTrack | null; camera: LocalTrack | null; screen: LocalTrack | null } = {
    audio: null,
    camera: null,
    screen: null,
  };
  private readonly participants = new Map<string, Participant>();
  private readonly remoteTracks = new Map<string, RemoteTrack>();
  private screenShareStarting = false;
  private readonly socketCallbackRefs: string[] = [];

  constructor(opts: RoomOptions) {
    this.opts = opts;
    this.roomId = opts.roomId;
    this.displayName = opts.displayName;

    this.socket = new Socket("/socket", { params: {} });
    this.channel = this.socket.channel(`room:${this.roomId}`, {});
    this.webrtc = new WebRTCEndpoint();

    this.channel.on("mediaEvent", (payload: { data?: unknown }) => {
      if (typeof payload?.data !== "string") {
        console.warn("lamina: mediaEvent without string data", payload);
        return;
      }
      try {
        this.webrtc.receiveMediaEvent(payload.data);
      } catch (err) {
        // The library throws on events it cannot place (unknown endpoint/track): keep going.
        console.error("lamina: media event failed", err, payload.data);
      }
    });
    this.channel.on("chat", (payload: unknown) => this.onChat(payload));
    // Sent by some servers when our endpoint crashed; the channel then closes.
    this.channel.on("error", (payload: { message?: string }) => {
      this.fail(payload?.message || "The server reported an error.");
    });
    this.channel.onError(() => {
      if (this.state === "connected" || this.state === "joining") this.fail("Connection lost: the room channel failed.");
    });
    this.channel.onClose(() => {
      if (this.state === "connected" || this.state === "joining") this.fail("Connection lost: the server closed the room.");
    });

    this.setupWebRTCHandlers();
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

    const ref1 = this.socket.onError(() => this.onSocketLost("Connection lost: cannot reach the server."));
    const ref2 = this.socket.onClose(() => this.onSocketLost("Connection lost: the server closed the connection."));
    this.socketCallbackRefs.push(ref1, ref2);
    this.socket.connect();

    ui.setStatus("Joining…", "joining");
    this.channel
      .join()
      .receive("ok", () => {
        if (this.state !== "joining") return;
        this.timings.channelJoined = Date.now();
        const metadata: EndpointMetadata = { displayName: this.displayName };
        this.webrtc.connect(metadata);
      })
      .receive("error", (resp: { reason?: string } | undefined) => {
        const reason = resp?.reason ?? "unknown error";
        const text = JOIN_ERROR_MESSAGES[reason] ?? `Cannot join the room: ${reason}.`;
        // channel.leave() stops Phoenix from retrying the join forever.
        this.fail(text);
      })
      .receive("timeout", () => {
        this.fail("Cannot join the room: the server did not answer.");
      });
    this.renderControls();
  }

  /** Leave button: tell the server, close everything, show the "left" panel. */
  leave(): void {
    if (this.state === "left") return;
    if (this.state === "connected") {
      try {
        this.webrtc.disconnect(); // sends the "disconnect" media event
      } catch (err) {
        console.warn("lamina: disconnect failed", err);
      }
    }
    this.state = "left";
    this.teardown();
    ui.setStatus("Left the room", "left");
    ui.showLeft(this.opts.rejoinUrl);
  }

  private fail(message: string): void {
    if (this.state === "left" || this.state === "failed") return;
    this.state = "failed";
    this.showError(message);
    this.teardown();
    ui.setStatus("Disconnected", "failed");
    ui.showLeft(this.opts.rejoinUrl);
  }

  private onSocketLost(message: string): void {
    if (this.state === "joining" || this.state === "connected") this.fail(message);
  }

  /** Stops local media, drops tiles, leaves the channel and closes the socket (no reconnects). */
  private teardown(): void {
    try {
      this.webrtc.cleanUp();
    } catch {
      /* nothing to clean */
    }
    for (const lt of [this.local.audio, this.local.camera, this.local.screen]) lt?.track.stop();
    this.localMedia?.dispose();
    this.local.audio = this.local.camera = this.local.screen = null;
    // The library keeps its RTCPeerConnection after disconnect(); stopping the received tracks
    // at least stops decoding here. The server tears down its side on "disconnect"/channel close.
    for (const rt of this.remoteTracks.values()) rt.track?.stop();
    this.remoteTracks.clear();
    this.participants.clear();
    ui.removeAllTiles();
    ui.showAudioUnlock(false);
    this.renderParticipants();
    this.renderControls();
    chat.setChatEnabled(false);
    this.socket.off(this.socketCallbackRefs.splice(0));
    try {
      this.channel.leave();
    } catch {
      /* already closed */
    }
    this.socket.disconnect();
  }

  private showError(message: string): void {
    this.errors.push(message);
    ui.showError(message);
  }

  // ------------------------------------------------------------------------------------------
  // WebRTC endpoint events

  private setupWebRTCHandlers(): void {
    const w = this.webrtc;

    w.on("sendMediaEvent", (mediaEvent: string) => {
      if (this.state === "left" || this.state === "failed") return;
      this.channel.push("mediaEvent", { data: mediaEvent });
    });

    w.on("connected", (endpointId: string, otherEndpoints: Endpoint[]) => {
      if (this.state !== "joining") return;
      this.state = "connected";
      this.endpointId = endpointId;
      this.timings.connected = Date.now();
      ui.setStatus("Connected", "connected");
      for (const lt of [this.local.audio, this.local.camera]) {
        if (!lt) continue;
        lt.trackId = w.addTrack(lt.track, lt.stream, { ...lt.metadata });
      }
      for (const ep of otherEndpoints) remote.addParticipant(this.participants, ep);
      this.renderParticipants();
      this.renderControls();
      chat.setChatEnabled(true);
    });

    w.on("endpointAdded", (ep: Endpoint) => {
      remote.addParticipant(this.participants, ep);
      this.renderParticipants();
    });

    w.on("endpointUpdated", (ep: Endpoint) => {
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
      remote.removeParticipant(this.participants, this.remoteTracks, ep.id);
      this.renderParticipants();
    });

    w.on("trackAdded", (ctx: TrackContext) => {
      if (!ctx) return;
      const endpointId = ctx.endpoint.id;
      const rt: RemoteTrack = { trackId: ctx.trackId, endpointId, type: remote.trackType(ctx.metadata), ctx, track: null };
      this.remoteTracks.set(ctx.trackId, rt);
      ctx.on("voiceActivityChanged", (c: TrackContext) => {
        if (this.participants.has(endpointId)) ui.setTileSpeaking(endpointId, c.vadStatus === "speech");
      });
      remote.renderTrackState(this.remoteTracks, rt);
    });

    w.on("trackReady", (ctx: TrackContext) => {
      if (!ctx || !ctx.track) return;
      let rt = this.remoteTracks.get(ctx.trackId);
      if (!rt) {
        rt = { trackId: ctx.trackId, endpointId: ctx.endpoint.id, type: remote.trackType(ctx.metadata), ctx, track: null };
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
      if (!ctx) return;
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
      if (!ctx) return;
      const rt = this.remoteTracks.get(ctx.trackId);
      if (!rt) return;
      rt.type = remote.trackType(ctx.metadata) === "unknown" ? rt.type : remote.trackType(ctx.metadata);
      remote.renderTrackState(this.remoteTracks, rt);
    });

    w.on("connectionError", (message: string) => {
      this.showError(`Media connection problem: ${message}`);
    });

    w.on("disconnected", () => {
      // Our own endpoint was removed by the server.
      this.fail("You were removed from the room.");
    });
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
    if (this.state !== "connected") return Promise.resolve(refuse("not_connected"));
    return new Promise((resolve) => {
      this.channel
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
    if (lt.trackId) this.webrtc.updateTrackMetadata(lt.trackId, { ...lt.metadata });
    if (which === "audio") ui.setTileMedia(LOCAL_TILE_ID, active ? "on" : "off", null);
    else ui.setTileMedia(LOCAL_TILE_ID, null, active ? "on" : "off");
    this.renderControls();
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
    if (!track || this.state !== "connected") {
      stream.getTracks().forEach((t) => t.stop());
      this.renderControls();
      return;
    }
    const metadata: TrackMetadata = { type: "screensharing", active: true };
    const trackId = this.webrtc.addTrack(track, stream, { ...metadata });
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
  private removeLocalTrack(trackId: string, attempt: number): void {
    if (this.state !== "connected") return;
    try {
      this.webrtc.removeTrack(trackId);
    } catch (err) {
      if (attempt >= 40) {
        console.warn("lamina: removeTrack failed", err);
        return;
      }
      window.setTimeout(() => this.removeLocalTrack(trackId, attempt + 1), 250);
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

  localTrackIds(): { audio: string | null; camera: string | null; screen: string | null } {
    return {
      audio: this.local.audio?.trackId ?? null,
      camera: this.local.camera?.trackId ?? null,
      screen: this.local.screen?.trackId ?? null,
    };
  }
}
