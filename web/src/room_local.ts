// This page's own tracks: the microphone and camera (the same MediaStreamTracks in every
// session, so a rejoin never asks for the devices again), the shared screen, muting, device
// switches mid-call and the camera's simulcast. The Room owns sessions: it gives the current
// endpoint through LocalHost and redraws the controls when told.

import { WebRTCEndpoint } from "@jellyfish-dev/membrane-webrtc-js";

import { LOCAL_SCREEN_TILE_ID, LOCAL_TILE_ID, SCREENSHARING_CONSTRAINTS, TEST_SCREENSHARING_CONSTRAINTS, TrackMetadata } from "./consts";
import { LocalMedia } from "./local_media";
import { QualityTarget } from "./quality_monitor";
import { ControlState } from "./room_ui";
import * as ui from "./room_ui";
import { LocalTrack } from "./room_types";
import { CameraSimulcast } from "./simulcast";

/** What LocalTracks needs of its Room. */
export interface LocalHost {
  readonly displayName: string;
  readonly test: boolean;
  /** The Room is connected (tracks can be published and changed). */
  connected(): boolean;
  /** The Room is between sessions (a device swap waits for the next one). */
  reconnecting(): boolean;
  /** The current session's endpoint, null between sessions. */
  endpoint(): WebRTCEndpoint | null;
  /** Something shown on the controls changed. */
  changed(): void;
  /** An error for the user. */
  error(message: string): void;
}

type Which = "audio" | "camera";
type TrackIds = { audio: string | null; camera: string | null; screen: string | null };

export class LocalTracks {
  audio: LocalTrack | null = null;
  camera: LocalTrack | null = null;
  screen: LocalTrack | null = null;
  readonly simulcast: CameraSimulcast;
  /** getDisplayMedia is pending. */
  private screenStarting = false;
  private media: LocalMedia | null = null;

  constructor(
    private readonly host: LocalHost,
    simulcast: boolean,
  ) {
    this.simulcast = new CameraSimulcast(simulcast);
  }

  /** Takes the devices opened at join and shows them in the local tile. */
  adopt(media: LocalMedia): void {
    this.media = media;
    const { audio, video, stream } = media;
    if (audio) this.audio = { trackId: null, track: audio, stream, metadata: { type: "audio", active: true } };
    if (video) this.camera = { trackId: null, track: video, stream, metadata: { type: "camera", active: true } };
    ui.addTile(LOCAL_TILE_ID, "local", `${this.host.displayName} (you)`, null);
    ui.setTileStream(LOCAL_TILE_ID, stream);
    ui.setTileMedia(LOCAL_TILE_ID, audio ? "on" : "none", video ? "on" : "none");
  }

  private all(): LocalTrack[] {
    return [this.audio, this.camera, this.screen].filter((lt): lt is LocalTrack => !!lt);
  }

  /** Publishes every track on a newly connected endpoint (the camera in simulcast when it may). */
  publish(w: WebRTCEndpoint): void {
    for (const lt of this.all()) {
      const simulcast = lt === this.camera ? this.simulcast.config(lt.track) : undefined;
      lt.trackId = w.addTrack(lt.track, lt.stream, { ...lt.metadata }, simulcast);
    }
  }

  /** The session ended: nothing is published any more. */
  unpublished(): void {
    for (const lt of this.all()) lt.trackId = null;
  }

  /** Leaving: stops every device. */
  stop(): void {
    for (const lt of this.all()) lt.track.stop();
    this.media?.dispose();
    this.audio = this.camera = this.screen = null;
  }

  /** After a negotiation: true when the browser must join again without simulcast. */
  afterNegotiation(pc: RTCPeerConnection): boolean {
    return !!this.camera && this.simulcast.afterNegotiation(pc, this.camera.track);
  }

  /** What the controls show of our tracks. */
  controlState(connected: boolean): ControlState {
    return {
      connected,
      hasMic: !!this.audio,
      micOn: !!this.audio?.metadata.active,
      hasCamera: !!this.camera,
      cameraOn: !!this.camera?.metadata.active,
      screenSupported: !!navigator.mediaDevices?.getDisplayMedia,
      sharing: !!this.screen || this.screenStarting,
    };
  }

  /** The local tiles for the quality monitor. */
  qualityTargets(): QualityTarget[] {
    const own = [this.audio, this.camera].filter((lt): lt is LocalTrack => !!lt);
    const targets: QualityTarget[] = [
      { tileId: LOCAL_TILE_ID, direction: "outbound", trackIds: own.map((lt) => lt.track.id), videoActive: !!this.camera?.metadata.active },
    ];
    if (this.screen) {
      targets.push({ tileId: LOCAL_SCREEN_TILE_ID, direction: "outbound", trackIds: [this.screen.track.id], videoActive: true });
    }
    return targets;
  }

  toggle(which: Which): void {
    this.setActive(which, !this.track(which)?.metadata.active);
  }

  private track(which: Which): LocalTrack | null {
    return which === "audio" ? this.audio : this.camera;
  }

  /** Mute/unmute (audio) or camera off/on: `track.enabled` plus a metadata update for the others. */
  setActive(which: Which, active: boolean): void {
    const lt = this.track(which);
    const w = this.host.endpoint();
    if (!lt || !this.host.connected()) return;
    lt.track.enabled = active;
    lt.metadata = { ...lt.metadata, active };
    if (lt.trackId && w) w.updateTrackMetadata(lt.trackId, { ...lt.metadata });
    if (which === "audio") ui.setTileMedia(LOCAL_TILE_ID, active ? "on" : "off", null);
    else ui.setTileMedia(LOCAL_TILE_ID, null, active ? "on" : "off");
    this.host.changed();
  }

  /**
   * Device switch mid-call: publishes `track` instead of the microphone or camera track (the
   * sender's track is replaced, no renegotiation), stops the old one and shows the new one in
   * the local tile; later rejoins publish the new one. While reconnecting it is only swapped
   * (the next session publishes it). False (nothing changed, the caller keeps `track`) when
   * there is no such track, or the library cannot replace it yet (before the first negotiation).
   */
  async replace(which: Which, track: MediaStreamTrack): Promise<boolean> {
    const lt = this.track(which);
    if (!lt || track.kind !== lt.track.kind || track.readyState === "ended") return false;
    track.enabled = lt.metadata.active;
    const w = this.host.endpoint();
    if (this.host.connected() && w && lt.trackId) {
      let ok = false;
      try {
        ok = await w.replaceTrack(lt.trackId, track, { ...lt.metadata });
      } catch {
        ok = false; // no peer connection yet
      }
      if (!ok || w !== this.host.endpoint() || lt !== this.track(which)) return false;
    } else if (!this.host.reconnecting()) {
      return false;
    }
    const old = lt.track;
    lt.track = track;
    // One stream for the local tile and the msid of both tracks (a new one: srcObject re-evaluated).
    const stream = new MediaStream([this.audio?.track, this.camera?.track].filter((t): t is MediaStreamTrack => !!t));
    for (const l of [this.audio, this.camera]) if (l) l.stream = stream;
    ui.setTileStream(LOCAL_TILE_ID, stream);
    old.stop();
    return true;
  }

  async toggleScreen(): Promise<void> {
    if (this.screen) this.stopScreen();
    else await this.startScreen();
  }

  async startScreen(): Promise<void> {
    if (!this.host.connected() || this.screen || this.screenStarting) return;
    this.screenStarting = true;
    this.host.changed();
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia(this.host.test ? TEST_SCREENSHARING_CONSTRAINTS : SCREENSHARING_CONSTRAINTS);
    } catch (err) {
      this.screenStarting = false;
      this.host.changed();
      const name = err instanceof DOMException ? err.name : "";
      if (name !== "NotAllowedError" && name !== "AbortError") {
        this.host.error(`Cannot share the screen: ${err instanceof Error ? err.message : String(err)}`);
      }
      return;
    }
    this.screenStarting = false;
    const track = stream.getVideoTracks()[0];
    const w = this.host.endpoint();
    if (!track || !this.host.connected() || !w) {
      stream.getTracks().forEach((t) => t.stop());
      this.host.changed();
      return;
    }
    const metadata: TrackMetadata = { type: "screensharing", active: true };
    const trackId = w.addTrack(track, stream, { ...metadata });
    this.screen = { trackId, track, stream, metadata };
    // The browser's own "Stop sharing" bar ends the track.
    track.addEventListener("ended", () => this.stopScreen());
    ui.addTile(LOCAL_SCREEN_TILE_ID, "local-screen", `${this.host.displayName} (your screen)`, null);
    ui.setTileMedia(LOCAL_SCREEN_TILE_ID, "none", "on");
    ui.setTileStream(LOCAL_SCREEN_TILE_ID, stream);
    this.host.changed();
  }

  stopScreen(): void {
    const lt = this.screen;
    if (!lt) return;
    this.screen = null;
    const w = this.host.endpoint();
    if (lt.trackId && w && this.host.connected()) this.unpublish(w, lt.trackId, 0);
    lt.track.stop();
    ui.removeTile(LOCAL_SCREEN_TILE_ID);
    this.host.changed();
  }

  /**
   * `removeTrack` throws (without changing the library's state) while the track has no sender
   * yet, i.e. before the first negotiation created the peer connection: retry a little later.
   */
  private unpublish(w: WebRTCEndpoint, trackId: string, attempt: number): void {
    if (!this.host.connected() || w !== this.host.endpoint()) return;
    try {
      w.removeTrack(trackId);
    } catch (err) {
      if (attempt >= 40) {
        console.warn("lamina: removeTrack failed", err);
        return;
      }
      window.setTimeout(() => this.unpublish(w, trackId, attempt + 1), 250);
    }
  }

  /** The MediaStreamTracks' ids (the same before and after a reconnect). */
  mediaTrackIds(): TrackIds {
    return { audio: this.audio?.track.id ?? null, camera: this.camera?.track.id ?? null, screen: this.screen?.track.id ?? null };
  }

  /** The library's track ids of this session (null where not published). */
  trackIds(): TrackIds {
    return { audio: this.audio?.trackId ?? null, camera: this.camera?.trackId ?? null, screen: this.screen?.trackId ?? null };
  }
}
