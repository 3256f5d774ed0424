// Sending the camera in simulcast layers, and living with a server that does not take them.
//
// The library (0.5.3) adds a simulcast track with sendEncodings rid l / m / h at 1/4, 1/2 and
// full size (a=simulcast:send l;m;h). A server that does not take simulcast answers without
// a=simulcast and without the RID header extension. Chromium then
// - keeps only the first encoding, "l", still scaled down by 4: set back to full size here;
// - offers a=simulcast again in every later offer, but no longer the RID header extension the
//   answer stopped, and refuses its own offer ("negotiates simulcast but does not negotiate the
//   RID RTP header extension"): no renegotiation would ever work again (nobody who joins later
//   is received). The extension is offered again after each such answer
//   (setHeaderExtensionsToNegotiate); where that API is missing the room joins again without
//   simulcast.

import type { SimulcastConfig } from "@jellyfish-dev/membrane-webrtc-js";

import { SIMULCAST_ENCODINGS, SIMULCAST_MIN_PIXELS } from "./consts";

/** The header extensions a simulcast m-line needs. */
const RID_EXTENSIONS = [
  "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
  "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
];
/** Offered again with them: Chromium refuses a list that stops this one ("mandatory"). */
const REOFFERED = [...RID_EXTENSIONS, "urn:ietf:params:rtp-hdrext:sdes:mid"];

/** The m-section of `sdp` with `a=mid:<mid>`, as lines (none when absent). */
export function sdpSection(sdp: string | undefined | null, mid: string | null): string[] {
  if (!sdp || mid === null) return [];
  const sections = sdp.split(/\r?\n(?=m=)/);
  const found = sections.find((sec) => sec.split(/\r?\n/).some((l) => l === `a=mid:${mid}`));
  return found ? found.split(/\r?\n/) : [];
}

/** The value of the section's `a=simulcast:` line ("send l;m;h"), null without one. */
export function simulcastLine(sdp: string | undefined | null, mid: string | null): string | null {
  const line = sdpSection(sdp, mid).find((l) => l.startsWith("a=simulcast:"));
  return line ? line.slice("a=simulcast:".length) : null;
}

interface HeaderExtension {
  uri: string;
  direction: RTCRtpTransceiverDirection | "stopped";
}
/** RTCRtpTransceiver with the header extension control (Chromium 11x+, Safari 17+). */
type ExtTransceiver = RTCRtpTransceiver & {
  getHeaderExtensionsToNegotiate?: () => HeaderExtension[];
  setHeaderExtensionsToNegotiate?: (exts: HeaderExtension[]) => void;
};

/**
 * After a negotiation of the camera `track` sent with simulcast:
 * - "none": no such sender (yet), or no answer;
 * - "taken": the answer has a=simulcast (the server takes the layers);
 * - "refused": it has not; the remaining encoding is sent at full size and later offers stay
 *   valid (the RID header extension offered again);
 * - "stuck": refused, and this browser cannot offer the extension again: later offers will
 *   fail, the caller must publish the camera again without simulcast.
 */
export function checkSimulcastAnswer(pc: RTCPeerConnection, track: MediaStreamTrack): "none" | "taken" | "refused" | "stuck" {
  const t = pc.getTransceivers().find((x) => x.sender.track === track) as ExtTransceiver | undefined;
  const answer = pc.currentRemoteDescription?.sdp;
  if (!t || t.mid === null || !answer || sdpSection(answer, t.mid).length === 0) return "none";
  if (simulcastLine(answer, t.mid) !== null) return "taken";

  const params = t.sender.getParameters();
  const [only] = params.encodings;
  if (params.encodings.length === 1 && only && ((only.scaleResolutionDownBy ?? 1) !== 1 || only.active === false)) {
    only.scaleResolutionDownBy = 1;
    only.active = true;
    t.sender.setParameters(params).catch((err: unknown) => console.warn("lamina: cannot send the camera at full size", err));
  }

  // Without a=rid in our own offer (the browser dropped the layers for good) there is nothing to keep valid.
  const offered = sdpSection(pc.currentLocalDescription?.sdp, t.mid).some((l) => l.startsWith("a=rid:"));
  if (!offered) return "refused";
  if (typeof t.getHeaderExtensionsToNegotiate !== "function" || typeof t.setHeaderExtensionsToNegotiate !== "function") return "stuck";
  try {
    const exts = t.getHeaderExtensionsToNegotiate();
    if (!exts.some((e) => RID_EXTENSIONS.includes(e.uri))) return "stuck";
    if (exts.some((e) => RID_EXTENSIONS.includes(e.uri) && e.direction === "stopped")) {
      t.setHeaderExtensionsToNegotiate(exts.map((e) => (REOFFERED.includes(e.uri) && e.direction === "stopped" ? { ...e, direction: "sendrecv" } : e)));
    }
  } catch (err) {
    console.warn("lamina: cannot offer the RID header extension again", err);
    return "stuck";
  }
  return "refused";
}

export type SimulcastVerdict = ReturnType<typeof checkSimulcastAnswer>;

/**
 * The camera's simulcast across a Room's sessions: on unless the page says `?simulcast=0`,
 * decided when the camera is published (large enough: SIMULCAST_MIN_PIXELS), and what the
 * server's last answer said of it.
 */
export class CameraSimulcast {
  /** What the last negotiation said (per session). */
  private verdict: SimulcastVerdict = "none";
  /** A server refused it and this browser cannot renegotiate with it: no more simulcast. */
  private refused = false;
  /** The camera was published in layers (last session); null before publishing it. */
  private layered: boolean | null = null;

  constructor(private readonly enabled: boolean) {}

  /** A new session: no answer yet. */
  newSession(): void {
    this.verdict = "none";
  }

  /** The camera `track` goes out in SIMULCAST_ENCODINGS when wanted and large enough. */
  config(track: MediaStreamTrack): SimulcastConfig | undefined {
    const wanted = this.enabled && !this.refused;
    const { width, height } = track.getSettings();
    const large = !!width && !!height && width * height >= SIMULCAST_MIN_PIXELS;
    this.layered = wanted && large;
    if (wanted && !large) console.info(`lamina: camera ${width}x${height}: one encoding (simulcast from 960x540)`);
    return this.layered ? { enabled: true, activeEncodings: [...SIMULCAST_ENCODINGS] } : undefined;
  }

  /**
   * After a negotiation of `pc` sending the camera `track`: did the server take the layers?
   * If not, the camera goes on in one encoding (checkSimulcastAnswer). True when this browser
   * cannot renegotiate with that server: the caller joins again, without simulcast from then on.
   */
  afterNegotiation(pc: RTCPeerConnection, track: MediaStreamTrack): boolean {
    if (!this.layered) return false;
    const verdict = checkSimulcastAnswer(pc, track);
    if (verdict === this.verdict || verdict === "none") return false;
    this.verdict = verdict;
    if (verdict === "refused") console.info("lamina: the server does not take simulcast: the camera goes out in one encoding");
    if (verdict !== "stuck") return false;
    this.refused = true;
    return true;
  }

  /** How the camera is sent (test hooks): simulcast asked for, decided, and the server's answer. */
  state(): { enabled: boolean; refused: boolean; camera: boolean | null; answer: string } {
    return { enabled: this.enabled, refused: this.refused, camera: this.layered, answer: this.verdict };
  }
}
