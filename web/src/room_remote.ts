// Remote participants and their tracks: endpoint/track metadata helpers, tiles and media badges,
// the first-frame timing, and the track infos the test hooks read. The Room owns the maps.

import { Endpoint } from "@jellyfish-dev/membrane-webrtc-js";

import { EndpointMetadata, TrackType } from "./consts";
import * as ui from "./room_ui";
import { Participant, RemoteTrack, RemoteTrackInfo, RoomTimings } from "./room_types";

/** The track type from its metadata. */
export function trackType(metadata: unknown): TrackType | "unknown" {
  const t = (metadata as { type?: unknown } | null)?.type;
  return t === "audio" || t === "camera" || t === "screensharing" ? t : "unknown";
}

/** False only when the track metadata says `active: false`. */
export function isActive(metadata: unknown): boolean {
  const a = (metadata as { active?: unknown } | null)?.active;
  return a !== false;
}

/** The server announced the track as simulcast (its `tracks` entry of `tracksAdded`). */
export function isSimulcast(rt: RemoteTrack): boolean {
  return rt.ctx.simulcastConfig?.enabled === true;
}

/**
 * The video track a tile shows: a screen tile's own track, or the camera track of a
 * participant's tile (the one playing, else any announced camera track of that endpoint).
 */
export function tileVideoTrack(
  remoteTracks: Map<string, RemoteTrack>,
  participants: Map<string, Participant>,
  tileId: string,
): RemoteTrack | null {
  const own = remoteTracks.get(tileId);
  if (own && own.type === "screensharing") return own;
  const p = participants.get(tileId);
  if (!p) return null;
  let announced: RemoteTrack | null = null;
  for (const rt of remoteTracks.values()) {
    if (rt.endpointId !== p.id || rt.type === "screensharing") continue;
    const video = rt.track ? rt.track.kind === "video" : rt.type === "camera";
    if (!video) continue;
    if (p.tileTracks.has(rt.trackId)) return rt;
    announced = rt;
  }
  return announced;
}

/** The endpoint's display name, or "Guest <id prefix>". */
export function displayNameOf(endpoint: { id: string; metadata: unknown }): string {
  const m = endpoint.metadata as Partial<EndpointMetadata> | null;
  const name = m && typeof m.displayName === "string" ? m.displayName.trim() : "";
  return name || `Guest ${endpoint.id.slice(0, 4)}`;
}

/** The participant of `ep`, created with its (empty) remote tile if new. */
export function addParticipant(
  participants: Map<string, Participant>,
  ep: Endpoint | { id: string; metadata: unknown },
): Participant {
  const existing = participants.get(ep.id);
  if (existing) return existing;
  const p: Participant = { id: ep.id, name: displayNameOf(ep), tileTracks: new Map(), stream: null };
  participants.set(ep.id, p);
  ui.addTile(p.id, "remote", p.name, p.id);
  ui.setTileMedia(p.id, "none", "none");
  return p;
}

/** Drops a participant, its tile and its remote tracks (and their screen tiles). */
export function removeParticipant(
  participants: Map<string, Participant>,
  remoteTracks: Map<string, RemoteTrack>,
  endpointId: string,
): void {
  const p = participants.get(endpointId);
  participants.delete(endpointId);
  for (const [id, rt] of remoteTracks) {
    if (rt.endpointId !== endpointId) continue;
    remoteTracks.delete(id);
    if (rt.type === "screensharing") ui.removeTile(id);
  }
  if (p) ui.removeTile(p.id);
}

/** Rebuilds the participant's tile stream from its current tile tracks. */
export function refreshParticipantStream(p: Participant, watchFirstFrame: (tileId: string) => void): void {
  const tracks = Array.from(p.tileTracks.values());
  // A new MediaStream each time the track set changes: every browser re-evaluates a
  // replaced srcObject, while in-place addTrack on a playing stream is less reliable.
  p.stream = tracks.length > 0 ? new MediaStream(tracks) : null;
  ui.setTileStream(p.id, p.stream);
  ui.setTileTrackIds(p.id, Array.from(p.tileTracks.keys()));
  if (tracks.some((t) => t.kind === "video")) watchFirstFrame(p.id);
}

/** Sets the tile's mic/camera badges from the endpoint's current remote tracks. */
export function renderParticipantMedia(remoteTracks: Map<string, RemoteTrack>, endpointId: string): void {
  let mic: ui.MediaState = "none";
  let camera: ui.MediaState = "none";
  for (const rt of remoteTracks.values()) {
    if (rt.endpointId !== endpointId) continue;
    const kind = rt.track?.kind ?? (rt.type === "audio" ? "audio" : rt.type === "camera" ? "video" : null);
    const state: ui.MediaState = isActive(rt.ctx.metadata) ? "on" : "off";
    if (rt.type === "screensharing") continue;
    if (kind === "audio") mic = state;
    else if (kind === "video") camera = state;
  }
  ui.setTileMedia(endpointId, mic, camera);
}

/** Updates the badges of the track's endpoint (screen shares have their own tile). */
export function renderTrackState(remoteTracks: Map<string, RemoteTrack>, rt: RemoteTrack): void {
  if (rt.type === "screensharing") return;
  renderParticipantMedia(remoteTracks, rt.endpointId);
}

/** Records the time the first remote video frame was presented (for the join-latency metric). */
export function watchFirstFrame(timings: RoomTimings, isConnected: () => boolean, tileId: string): void {
  if (timings.firstRemoteFrame !== null) return;
  const video = document.querySelector<HTMLVideoElement>(`.tile[data-tile-id="${CSS.escape(tileId)}"] video`);
  if (!video) return;
  const mark = () => {
    if (timings.firstRemoteFrame === null && isConnected()) timings.firstRemoteFrame = Date.now();
  };
  if ("requestVideoFrameCallback" in video) {
    (video as HTMLVideoElement & { requestVideoFrameCallback(cb: () => void): number }).requestVideoFrameCallback(mark);
  } else {
    (video as HTMLVideoElement).addEventListener("loadeddata", mark, { once: true });
  }
}

/** The remote tracks as the test hooks report them. */
export function remoteTrackInfos(
  remoteTracks: Map<string, RemoteTrack>,
  participants: Map<string, Participant>,
): RemoteTrackInfo[] {
  return Array.from(remoteTracks.values()).map((rt) => remoteTrackInfo(rt, participants));
}

/** One remote track as the test hooks report it. */
export function remoteTrackInfo(rt: RemoteTrack, participants: Map<string, Participant>): RemoteTrackInfo {
  return {
    trackId: rt.trackId,
    endpointId: rt.endpointId,
    displayName: participants.get(rt.endpointId)?.name ?? "",
    type: rt.type,
    kind: rt.track?.kind ?? null,
    mediaTrackId: rt.track?.id ?? null,
    tileId: rt.type === "screensharing" ? rt.trackId : rt.endpointId,
    metadata: rt.ctx.metadata,
    simulcast: isSimulcast(rt),
    encoding: rt.ctx.encoding ?? null,
    encodingReason: rt.ctx.encodingReason ?? null,
    choice: rt.choice,
  };
}
