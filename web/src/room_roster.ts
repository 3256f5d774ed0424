// The other endpoints of the room and their tracks as one session knows them: the library's
// endpoint and track events become participants, tiles and badges (room_remote.ts does the
// per-item work). `listen` follows an endpoint's events while its session is the current one.

import { Endpoint, TrackContext, WebRTCEndpoint } from "@jellyfish-dev/membrane-webrtc-js";

import { LayerInfo, QualityChoice } from "./quality";
import { QualityTarget } from "./quality_monitor";
import * as remote from "./room_remote";
import * as ui from "./room_ui";
import { Participant, RemoteTrack, RemoteTrackInfo, RoomTimings } from "./room_types";

/** What the Roster needs of its Room. */
export interface RosterHost {
  readonly timings: RoomTimings;
  /** The Room is connected (first-frame timing counts only then). */
  connected(): boolean;
  /** The list of participants changed. */
  changed(): void;
  /** The server switched the layer it forwards to a tile's video. */
  layerChanged(tileId: string): void;
}

export class Roster {
  readonly participants = new Map<string, Participant>();
  readonly tracks = new Map<string, RemoteTrack>();

  constructor(private readonly host: RosterHost) {}

  /** The participants' display names, in order of arrival. */
  names(): string[] {
    return Array.from(this.participants.values(), (p) => p.name);
  }

  /**
   * Follows the endpoint and track events of `w` while `live()` (its session is the current
   * one); `beforeReady` runs before a received track is shown.
   */
  listen(w: WebRTCEndpoint, live: () => boolean, beforeReady: () => void): void {
    w.on("endpointAdded", (ep: Endpoint) => {
      if (live()) this.endpointAdded(ep);
    });
    w.on("endpointUpdated", (ep: Endpoint) => {
      if (live()) this.endpointUpdated(ep);
    });
    w.on("endpointRemoved", (ep: Endpoint) => {
      if (live()) this.endpointRemoved(ep);
    });
    w.on("trackAdded", (ctx: TrackContext) => {
      if (live() && ctx) this.trackAdded(ctx, live);
    });
    w.on("trackReady", (ctx: TrackContext) => {
      if (!live() || !ctx?.track) return;
      beforeReady();
      this.trackReady(ctx as TrackContext & { track: MediaStreamTrack });
    });
    w.on("trackRemoved", (ctx: TrackContext) => {
      if (live() && ctx) this.trackRemoved(ctx);
    });
    w.on("trackUpdated", (ctx: TrackContext) => {
      if (live() && ctx) this.trackUpdated(ctx);
    });
  }

  /** The endpoints already in the room when this session connected. */
  connected(endpoints: Endpoint[]): void {
    for (const ep of endpoints) remote.addParticipant(this.participants, ep);
  }

  private endpointAdded(ep: Endpoint): void {
    remote.addParticipant(this.participants, ep);
    this.host.changed();
  }

  private endpointUpdated(ep: Endpoint): void {
    const p = this.participants.get(ep.id);
    if (!p) {
      remote.addParticipant(this.participants, ep);
      return;
    }
    p.name = remote.displayNameOf(ep);
    ui.setTileName(p.id, p.name);
    for (const rt of this.tracks.values()) {
      if (rt.endpointId === ep.id && rt.type === "screensharing") ui.setTileName(rt.trackId, `${p.name} (screen)`);
    }
    this.host.changed();
  }

  private endpointRemoved(ep: Endpoint): void {
    remote.removeParticipant(this.participants, this.tracks, ep.id);
    this.host.changed();
  }

  /** A track announced (not yet received); `live` says whether its session is still current. */
  private trackAdded(ctx: TrackContext, live: () => boolean): void {
    const rt = this.announce(ctx);
    const endpointId = rt.endpointId;
    ctx.on("voiceActivityChanged", (c: TrackContext) => {
      if (live() && this.participants.has(endpointId)) ui.setTileSpeaking(endpointId, c.vadStatus === "speech");
    });
    ctx.on("encodingChanged", () => {
      if (live()) this.encodingChanged(ctx.trackId);
    });
    remote.renderTrackState(this.tracks, rt);
  }

  private announce(ctx: TrackContext): RemoteTrack {
    const rt: RemoteTrack = {
      trackId: ctx.trackId,
      endpointId: ctx.endpoint.id,
      type: remote.trackType(ctx.metadata),
      ctx,
      track: null,
      choice: "auto",
    };
    this.tracks.set(ctx.trackId, rt);
    return rt;
  }

  /** A track's media arrived: into its participant's tile, or a tile of its own (screen). */
  private trackReady(ctx: TrackContext & { track: MediaStreamTrack }): void {
    const rt = this.tracks.get(ctx.trackId) ?? this.announce(ctx);
    rt.track = ctx.track;
    if (this.host.timings.firstTrackReady === null) this.host.timings.firstTrackReady = Date.now();
    if (rt.type === "screensharing") {
      const owner = this.participants.get(rt.endpointId);
      const name = owner ? owner.name : remote.displayNameOf(ctx.endpoint);
      ui.addTile(rt.trackId, "screen", `${name} (screen)`, rt.endpointId);
      ui.setTileTrackIds(rt.trackId, [rt.trackId]);
      ui.setTileMedia(rt.trackId, "none", "on");
      ui.setTileStream(rt.trackId, new MediaStream([ctx.track]));
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
    remote.renderTrackState(this.tracks, rt);
  }

  private trackRemoved(ctx: TrackContext): void {
    const rt = this.tracks.get(ctx.trackId);
    this.tracks.delete(ctx.trackId);
    const type = rt?.type ?? remote.trackType(ctx.metadata);
    if (type === "screensharing") {
      ui.removeTile(ctx.trackId);
      return;
    }
    const p = this.participants.get(ctx.endpoint.id);
    if (!p) return;
    if (p.tileTracks.delete(ctx.trackId)) remote.refreshParticipantStream(p, (id) => this.watchFirstFrame(id));
    remote.renderParticipantMedia(this.tracks, p.id);
  }

  private trackUpdated(ctx: TrackContext): void {
    const rt = this.tracks.get(ctx.trackId);
    if (!rt) return;
    const type = remote.trackType(ctx.metadata);
    if (type !== "unknown") rt.type = type;
    remote.renderTrackState(this.tracks, rt);
  }

  /** Removes every participant, track and tile (their endpoints are gone with the session). */
  clear(): void {
    for (const id of Array.from(this.participants.keys())) remote.removeParticipant(this.participants, this.tracks, id);
    for (const rt of this.tracks.values()) {
      if (rt.type === "screensharing") ui.removeTile(rt.trackId);
    }
    this.tracks.clear();
    this.participants.clear();
  }

  /** Records the time the first remote video frame was presented (for the join-latency metric). */
  private watchFirstFrame(tileId: string): void {
    remote.watchFirstFrame(this.host.timings, () => this.host.connected(), tileId);
  }

  /** The server switched the layer of a remote track: its tile's badge changes if it shows it. */
  private encodingChanged(trackId: string): void {
    const rt = this.tracks.get(trackId);
    if (!rt) return;
    const tileId = rt.type === "screensharing" ? rt.trackId : rt.endpointId;
    if (this.tileVideoTrack(tileId) === rt) this.host.layerChanged(tileId);
  }

  /** The video track a tile shows (its camera, or the shared screen). */
  tileVideoTrack(tileId: string): RemoteTrack | null {
    return remote.tileVideoTrack(this.tracks, this.participants, tileId);
  }

  /** A remote tile's received layer (badge) and, for a simulcast video, the picker's choice. */
  layerOf(tileId: string): { layer: LayerInfo; picker: QualityChoice | null } {
    const rt = this.tileVideoTrack(tileId);
    return {
      layer: { encoding: rt?.ctx.encoding ?? null, reason: rt?.ctx.encodingReason ?? null },
      picker: rt && remote.isSimulcast(rt) ? rt.choice : null,
    };
  }

  /** Every remote tile for the quality monitor. */
  qualityTargets(): QualityTarget[] {
    const targets: QualityTarget[] = [];
    for (const p of this.participants.values()) {
      let videoActive = false;
      for (const id of p.tileTracks.keys()) {
        const rt = this.tracks.get(id);
        if (rt?.track?.kind === "video" && remote.isActive(rt.ctx.metadata)) videoActive = true;
      }
      const trackIds = Array.from(p.tileTracks.values(), (t) => t.id);
      targets.push({ tileId: p.id, direction: "inbound", trackIds, videoActive, ...this.layerOf(p.id) });
    }
    for (const rt of this.tracks.values()) {
      if (rt.type !== "screensharing" || !rt.track) continue;
      const videoActive = remote.isActive(rt.ctx.metadata);
      targets.push({ tileId: rt.trackId, direction: "inbound", trackIds: [rt.track.id], videoActive, ...this.layerOf(rt.trackId) });
    }
    return targets;
  }

  /** The remote tracks as the test hooks report them. */
  infos(): RemoteTrackInfo[] {
    return remote.remoteTrackInfos(this.tracks, this.participants);
  }

  /** The video track a remote tile shows, as the test hooks report it; null without one. */
  tileVideoTrackInfo(tileId: string): RemoteTrackInfo | null {
    const rt = this.tileVideoTrack(tileId);
    return rt ? remote.remoteTrackInfo(rt, this.participants) : null;
  }
}
