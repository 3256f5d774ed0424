// Types of the Room: its public options, state, timings and track infos (re-exported by
// room.ts), and the bookkeeping records it keeps for local tracks, remote tracks and participants.

import { TrackContext } from "@jellyfish-dev/membrane-webrtc-js";

import { TrackMetadata, TrackType } from "./consts";
import { LocalMediaRequest } from "./local_media";
import type { QualityChoice } from "./quality";

/**
 * Lifecycle of a Room. "reconnecting": the connection dropped, a new session is on its way
 * (back to "connected", or "failed" after giving up, when "Rejoin" starts over).
 */
export type RoomState = "idle" | "joining" | "connected" | "reconnecting" | "left" | "failed";

/** What a Room is created with. */
export interface RoomOptions {
  roomId: string;
  displayName: string;
  media: LocalMediaRequest;
  /** Where "Rejoin" points to. */
  rejoinUrl: string;
  /** Test mode extras (timings, first-frame callbacks). */
  test: boolean;
  /** Stop reconnecting after this long (default one minute; test mode: `?reconnect_giveup_ms=`). */
  reconnectGiveUpMs?: number;
  /** Send the camera in three simulcast layers (default true; `?simulcast=0` turns it off). */
  simulcast?: boolean;
}

/** One loss of the connection and how it ended. */
export interface ReconnectRecord {
  /** Date.now() of the loss. */
  lostAt: number;
  reason: string;
  /** Sessions started since the loss. */
  attempts: number;
  /** Date.now() of the `connected` that ended it, or null (still trying, or gave up). */
  reconnectedAt: number | null;
  /** The new endpoint id. */
  endpointId: string | null;
}

/** A track this client publishes (trackId once the library added it). */
export interface LocalTrack {
  trackId: string | null;
  track: MediaStreamTrack;
  stream: MediaStream;
  metadata: TrackMetadata;
}

/** A track of another endpoint as the library announced it. */
export interface RemoteTrack {
  trackId: string;
  endpointId: string;
  type: TrackType | "unknown";
  ctx: TrackContext;
  /** The received MediaStreamTrack once `trackReady` fired. */
  track: MediaStreamTrack | null;
  /** The quality picked for it (simulcast): "auto" until the user picks one. */
  choice: QualityChoice;
}

/** Another endpoint and its main tile. */
export interface Participant {
  id: string;
  name: string;
  /** Tracks of this endpoint shown in its main tile (camera + microphone). */
  tileTracks: Map<string, MediaStreamTrack>;
  stream: MediaStream | null;
}

/** Timings in ms since the epoch (Date.now()), for tests and diagnostics. */
export interface RoomTimings {
  joinStart: number | null;
  channelJoined: number | null;
  connected: number | null;
  firstTrackReady: number | null;
  firstRemoteFrame: number | null;
}

/** A remote track as the test hooks report it. */
export interface RemoteTrackInfo {
  trackId: string;
  endpointId: string;
  displayName: string;
  type: string;
  kind: string | null;
  mediaTrackId: string | null;
  tileId: string;
  metadata: unknown;
  /** The server announced the track as simulcast (`simulcastConfig.enabled`). */
  simulcast: boolean;
  /** The layer received (`encodingChanged`), null before any. */
  encoding: string | null;
  encodingReason: string | null;
  /** The quality picked ("auto" until the user picks one). */
  choice: QualityChoice;
}
