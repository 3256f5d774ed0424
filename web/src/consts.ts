// Media constraints and other constants of the Lamina client.

import type { TrackEncoding } from "@jellyfish-dev/membrane-webrtc-js";

/** Default capture constraints (what a real user gets). */
export const MEDIA_CONSTRAINTS: MediaStreamConstraints = {
  audio: true,
  video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 24 } },
};

/**
 * Simulcast of the camera (on unless `?simulcast=0`): the library sends the layers with rids
 * l / m / h at 1/4, 1/2 and full size; the server forwards one of them to each subscriber.
 * Screen shares are sent in one encoding.
 */
export const SIMULCAST_ENCODINGS: TrackEncoding[] = ["l", "m", "h"];
/**
 * Smallest camera picture (pixels) sent in simulcast. Chromium sends fewer layers below
 * 960x540 and drops the top ones (640x480: l and m only, 320x240 at most; 320x240: l alone,
 * 80x60): a smaller camera goes out in one encoding at its full size instead.
 */
export const SIMULCAST_MIN_PIXELS = 960 * 540;

/** Test mode (`?test=1`): small frames, and no audio processing so test tones stay intact. */
export const TEST_VIDEO_CONSTRAINTS: MediaTrackConstraints = {
  width: { ideal: 320 },
  height: { ideal: 240 },
  frameRate: { ideal: 15 },
};
export const TEST_AUDIO_CONSTRAINTS: MediaTrackConstraints = {
  echoCancellation: false,
  noiseSuppression: false,
  autoGainControl: false,
};

/** Screen share capture constraints. */
export const SCREENSHARING_CONSTRAINTS: DisplayMediaStreamOptions = {
  video: { width: { max: 1280 }, height: { max: 720 }, frameRate: { ideal: 10, max: 15 } },
  audio: false,
};
export const TEST_SCREENSHARING_CONSTRAINTS: DisplayMediaStreamOptions = {
  video: { width: { max: 320 }, height: { max: 240 }, frameRate: { ideal: 10, max: 15 } },
  audio: false,
};

/** Tile id of the local camera/microphone preview. */
export const LOCAL_TILE_ID = "local-endpoint";
/** Tile id of the local screen share preview. */
export const LOCAL_SCREEN_TILE_ID = "local-screensharing";

/** Track metadata types, as used on the wire (labs videoroom convention). */
export type TrackType = "audio" | "camera" | "screensharing";
export interface TrackMetadata {
  type: TrackType;
  active: boolean;
}
export interface EndpointMetadata {
  displayName: string;
}

/** Session storage key that remembers the display name for a rejoin after reload. */
export const DISPLAY_NAME_STORAGE_KEY = "lamina.displayName";
/** Longest display name we send. */
export const MAX_DISPLAY_NAME_LENGTH = 64;

/** Human readable texts for join errors the server may reply with. */
export const JOIN_ERROR_MESSAGES: Record<string, string> = {
  room_full: "This room is full. Try again later or pick another room.",
  "too many channels joined": "Too many rooms open in this tab.",
  "unmatched topic": "The server does not know this room.",
  invalid_room: "This room name is not valid.",
  too_many_rooms: "The server has no room left for a new room.",
};
