// Connection quality per tile, from the page's own RTCPeerConnection.getStats() (no server help).
//
// - Remote tiles: the inbound-rtp streams of that participant's tracks: loss (packetsLost against
//   packetsReceived over the last interval), received bitrate, frames/s and resolution; the round
//   trip time is the selected ICE candidate pair's (this page <-> TURN <-> server).
// - The local tile: the outbound-rtp streams of our own tracks, with loss and round trip time from
//   the server's receiver reports (remote-inbound-rtp `fractionLost`, `roundTripTime`).
//
// - Remote tiles also get a small badge in the indicator: the received resolution (from the same
//   inbound-rtp sample) and the simulcast layer the server says it forwards (`encodingChanged`,
//   "—" before any), and, when the track is simulcast, a quality picker in the details panel.
//
// This module is pure (stats entries in, samples, levels and texts out: tested with node, see
// tests/e2e/quality.test.mjs and simulcast.test.mjs); quality_widget.ts renders the indicator and
// its details panel into the tile element, and quality_monitor.ts ties both to a timer.

export type QualityLevel = "good" | "fair" | "poor" | "unknown";
export type Direction = "inbound" | "outbound";
/** One entry of an RTCStatsReport, as a plain object. */
export type StatsEntry = { id?: unknown; type?: unknown; timestamp?: unknown } & Record<string, unknown>;

/** Loss (%) at or above which a stream is fair / poor. */
export const FAIR_LOSS_PERCENT = 3;
export const POOR_LOSS_PERCENT = 10;
/** Round trip (ms) at or above which a connection is fair / poor. */
export const FAIR_RTT_MS = 200;
export const POOR_RTT_MS = 500;
/** An active video stream decoded at fewer frames per second than this is stalled: poor. */
export const STALLED_VIDEO_FPS = 0.5;
/** Without a frame rate, an active video stream received below this (kbit/s) is stalled.
 * (Still pictures encode to a few kbit/s while frames keep coming: the frame rate decides.) */
export const STALLED_VIDEO_KBPS = 15;
/** A receiver report (remote-inbound-rtp) older than this is not used. */
export const REMOTE_REPORT_MAX_AGE_MS = 10_000;

/** Counters of one RTP stream at one time, to compute the next sample's deltas. */
export interface StreamCounters {
  bytes: number;
  packets: number;
  /** inbound: packetsLost; outbound: retransmittedPacketsSent (what the server asked again). */
  lost: number;
  frames: number;
  /** ms (the stats entry's timestamp) */
  at: number;
}
/** Per stats id (one per RTP stream). */
export type Counters = Map<string, StreamCounters>;

export interface QualitySample {
  direction: Direction;
  /** Number of RTP streams of the tile found in the report (0: no media). */
  streams: number;
  hasVideo: boolean;
  /** Packets lost over the interval, % of those expected (outbound: the server's fractionLost). */
  lossPercent: number | null;
  rttMs: number | null;
  /** All streams of the tile (audio + video), kbit/s over the interval. */
  bitrateKbps: number | null;
  videoBitrateKbps: number | null;
  fps: number | null;
  width: number | null;
  height: number | null;
  /** outbound-rtp `qualityLimitationReason` of the video ("none", "bandwidth", "cpu", ...). */
  qualityLimitation: string | null;
}

export interface SampleResult {
  sample: QualitySample;
  counters: Counters;
}

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === "string" ? v : null);

function indexById(entries: StatsEntry[]): Map<string, StatsEntry> {
  const m = new Map<string, StatsEntry>();
  for (const e of entries) if (typeof e.id === "string") m.set(e.id, e);
  return m;
}

/** RTT (ms) of the transport's selected candidate pair (or of any nominated, succeeded pair). */
export function transportRttMs(entries: StatsEntry[], transportId: string | null): number | null {
  const byId = indexById(entries);
  const transport = transportId ? byId.get(transportId) : undefined;
  const selected = transport ? str(transport.selectedCandidatePairId) : null;
  const pair = selected ? byId.get(selected) : undefined;
  const rtt = pair ? num(pair.currentRoundTripTime) : null;
  if (rtt !== null) return rtt * 1000;
  for (const e of entries) {
    if (e.type !== "candidate-pair" || e.state !== "succeeded" || e.nominated !== true) continue;
    const r = num(e.currentRoundTripTime);
    if (r !== null) return r * 1000;
  }
  return null;
}

interface Delta {
  bytes: number;
  packets: number;
  lost: number;
  frames: number;
  seconds: number;
}

function delta(prev: StreamCounters | undefined, cur: StreamCounters): Delta | null {
  if (!prev) return null;
  const seconds = (cur.at - prev.at) / 1000;
  if (!(seconds > 0)) return null;
  const d = {
    bytes: cur.bytes - prev.bytes,
    packets: cur.packets - prev.packets,
    lost: cur.lost - prev.lost,
    frames: cur.frames - prev.frames,
    seconds,
  };
  // A counter that went backwards belongs to another stream (or was reset): no delta.
  if (d.bytes < 0 || d.packets < 0 || d.frames < 0) return null;
  return d;
}

function emptySample(direction: Direction): QualitySample {
  return {
    direction,
    streams: 0,
    hasVideo: false,
    lossPercent: null,
    rttMs: null,
    bitrateKbps: null,
    videoBitrateKbps: null,
    fps: null,
    width: null,
    height: null,
    qualityLimitation: null,
  };
}

/** Bitrate, fps and resolution shared by both directions. */
function fillRates(
  sample: QualitySample,
  streams: { entry: StatsEntry; counters: StreamCounters; d: Delta | null; video: boolean }[],
): void {
  let bits = 0;
  let videoBits = 0;
  let seconds = 0;
  let anyDelta = false;
  let anyVideoDelta = false;
  for (const s of streams) {
    if (!s.d) continue;
    anyDelta = true;
    bits += s.d.bytes * 8;
    seconds = Math.max(seconds, s.d.seconds);
    if (s.video) {
      anyVideoDelta = true;
      videoBits += s.d.bytes * 8;
    }
  }
  if (anyDelta && seconds > 0) sample.bitrateKbps = bits / seconds / 1000;
  if (anyVideoDelta && seconds > 0) sample.videoBitrateKbps = videoBits / seconds / 1000;
  // The largest video stream gives fps and resolution (a tile shows one).
  let best: (typeof streams)[number] | null = null;
  for (const s of streams) {
    if (!s.video) continue;
    if (!best || (num(s.entry.frameWidth) ?? 0) > (num(best.entry.frameWidth) ?? 0)) best = s;
  }
  if (best) {
    const fps = num(best.entry.framesPerSecond);
    sample.fps = fps ?? (best.d ? best.d.frames / best.d.seconds : null);
    sample.width = num(best.entry.frameWidth);
    sample.height = num(best.entry.frameHeight);
  }
}

/**
 * The sample of a remote tile: its inbound-rtp streams whose `trackIdentifier` is one of
 * `trackIds` (the received MediaStreamTracks' ids). `prev`: the counters the previous call
 * returned (null at first: rates and loss are then unknown).
 */
export function inboundSample(entries: StatsEntry[], trackIds: string[], prev: Counters | null, now: number): SampleResult {
  const sample = emptySample("inbound");
  const counters: Counters = new Map();
  const wanted = new Set(trackIds);
  const streams: { entry: StatsEntry; counters: StreamCounters; d: Delta | null; video: boolean }[] = [];
  for (const e of entries) {
    if (e.type !== "inbound-rtp" || typeof e.id !== "string") continue;
    const track = str(e.trackIdentifier);
    if (!track || !wanted.has(track)) continue;
    const c: StreamCounters = {
      bytes: num(e.bytesReceived) ?? 0,
      packets: num(e.packetsReceived) ?? 0,
      lost: num(e.packetsLost) ?? 0,
      frames: num(e.framesDecoded) ?? 0,
      at: num(e.timestamp) ?? now,
    };
    counters.set(e.id, c);
    streams.push({ entry: e, counters: c, d: delta(prev?.get(e.id), c), video: e.kind === "video" });
  }
  sample.streams = streams.length;
  sample.hasVideo = streams.some((s) => s.video);
  if (streams.length === 0) return { sample, counters };

  let lost = 0;
  let received = 0;
  let anyDelta = false;
  for (const s of streams) {
    if (!s.d) continue;
    anyDelta = true;
    // packetsLost can shrink when late packets arrive: count no negative loss.
    lost += Math.max(0, s.d.lost);
    received += s.d.packets;
  }
  if (anyDelta && lost + received > 0) sample.lossPercent = (100 * lost) / (lost + received);
  fillRates(sample, streams);
  sample.rttMs = transportRttMs(entries, str(streams[0].entry.transportId));
  return { sample, counters };
}

/**
 * The sample of the local tile: the outbound-rtp streams of `trackIds` (our MediaStreamTracks,
 * found through their media-source entries), with loss and RTT from the matching
 * remote-inbound-rtp (what the server's receiver reports say). Without a recent report (Lamina
 * sends few), loss is the share of packets the server asked for again (NACK → RTX:
 * `retransmittedPacketsSent`) and RTT the ICE candidate pair's.
 */
export function outboundSample(entries: StatsEntry[], trackIds: string[], prev: Counters | null, now: number): SampleResult {
  const sample = emptySample("outbound");
  const counters: Counters = new Map();
  const wanted = new Set(trackIds);
  const sources = new Set<string>();
  for (const e of entries) {
    if (e.type === "media-source" && typeof e.id === "string" && wanted.has(str(e.trackIdentifier) ?? "")) sources.add(e.id);
  }
  const remoteInbound = new Map<string, StatsEntry>();
  for (const e of entries) {
    const local = str(e.localId);
    if (e.type === "remote-inbound-rtp" && local) remoteInbound.set(local, e);
  }
  const streams: { entry: StatsEntry; counters: StreamCounters; d: Delta | null; video: boolean }[] = [];
  for (const e of entries) {
    if (e.type !== "outbound-rtp" || typeof e.id !== "string") continue;
    const source = str(e.mediaSourceId);
    if (!source || !sources.has(source)) continue;
    const c: StreamCounters = {
      bytes: num(e.bytesSent) ?? 0,
      packets: num(e.packetsSent) ?? 0,
      lost: num(e.retransmittedPacketsSent) ?? 0,
      frames: num(e.framesEncoded) ?? 0,
      at: num(e.timestamp) ?? now,
    };
    counters.set(e.id, c);
    streams.push({ entry: e, counters: c, d: delta(prev?.get(e.id), c), video: e.kind === "video" });
  }
  sample.streams = streams.length;
  sample.hasVideo = streams.some((s) => s.video);
  if (streams.length === 0) return { sample, counters };

  let loss: number | null = null;
  let rtt: number | null = null;
  for (const s of streams) {
    const ri = remoteInbound.get(s.entry.id as string);
    if (!ri) continue;
    const reportAt = num(ri.timestamp);
    if (reportAt !== null && s.counters.at - reportAt > REMOTE_REPORT_MAX_AGE_MS) continue;
    const f = num(ri.fractionLost);
    if (f !== null) loss = Math.max(loss ?? 0, f * 100);
    const r = num(ri.roundTripTime);
    if (r !== null) rtt = Math.max(rtt ?? 0, r * 1000);
    if (s.video) sample.qualityLimitation = str(s.entry.qualityLimitationReason);
  }
  for (const s of streams) {
    if (s.video && sample.qualityLimitation === null) sample.qualityLimitation = str(s.entry.qualityLimitationReason);
  }
  if (loss === null) {
    let resent = 0;
    let sent = 0;
    for (const s of streams) {
      if (!s.d || !s.video) continue;
      resent += Math.max(0, s.d.lost);
      sent += s.d.packets;
    }
    if (sent > 0) loss = Math.min(100, (100 * resent) / sent);
  }
  sample.lossPercent = loss;
  sample.rttMs = rtt ?? transportRttMs(entries, str(streams[0].entry.transportId));
  fillRates(sample, streams);
  return { sample, counters };
}

/**
 * What a remote tile's quality picker asks for: "auto" (the server picks, asked for "h" and
 * lowering it by itself when the subscriber's bandwidth is short) or one simulcast layer.
 */
export type QualityChoice = "auto" | "h" | "m" | "l";
export const QUALITY_CHOICES: { value: QualityChoice; label: string }[] = [
  { value: "auto", label: "Auto" },
  { value: "h", label: "High" },
  { value: "m", label: "Medium" },
  { value: "l", label: "Low" },
];

/** The layer a choice asks the server for (`setTargetTrackEncoding`). */
export function choiceLayer(choice: QualityChoice): "h" | "m" | "l" {
  return choice === "auto" ? "h" : choice;
}

/** The simulcast layer a remote tile receives, as the server last said (`encodingSwitched`). */
export interface LayerInfo {
  /** "l" / "m" / "h"; null before the server said any. */
  encoding: string | null;
  /** Why the server switched ("other", "encoding_inactive", "low_bandwidth"; camelCase in the typings). */
  reason: string | null;
}

const LAYER_NAMES: Record<string, string> = { l: "low", m: "medium", h: "high" };
/** Reasons as the 0.5.3 typings spell them, and as Membrane servers (and Lamina) send them. */
const REASON_TEXT: Record<string, string> = {
  other: "picked or first layer",
  encodingInactive: "the layer asked for is not being sent",
  encoding_inactive: "the layer asked for is not being sent",
  lowBandwidth: "not enough bandwidth for a higher layer",
  low_bandwidth: "not enough bandwidth for a higher layer",
};

/** The badge of a remote tile: "1280×720 · h" and its tooltip (with the layer's reason). */
export function formatBadge(sample: QualitySample, layer: LayerInfo | null): { text: string; title: string } {
  const res = sample.width && sample.height ? `${sample.width}×${sample.height}` : "—";
  const enc = layer?.encoding ?? null;
  const text = `${res} · ${enc ?? "—"}`;
  let layerText = "layer —";
  if (enc) {
    layerText = `layer ${enc} (${LAYER_NAMES[enc] ?? enc})`;
    const why = layer?.reason;
    if (why) layerText += `, reason: ${why}${REASON_TEXT[why] ? ` (${REASON_TEXT[why]})` : ""}`;
  }
  return { text, title: `Receiving ${res}, ${layerText}` };
}

export interface Classification {
  level: QualityLevel;
  /** Why it is not good (empty when good or unknown). */
  reasons: string[];
}

const RANK: Record<QualityLevel, number> = { unknown: -1, good: 0, fair: 1, poor: 2 };

/** The worse of two levels ("unknown" loses to any known level). */
export function worse(a: QualityLevel, b: QualityLevel): QualityLevel {
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * good / fair / poor from one sample. `videoActive`: the tile's video is supposed to flow (camera
 * on): a near-zero video bitrate then means a stall. Unknown while nothing can be measured.
 */
export function classify(sample: QualitySample, opts: { videoActive?: boolean } = {}): Classification {
  const reasons: string[] = [];
  if (sample.streams === 0 || (sample.lossPercent === null && sample.rttMs === null && sample.bitrateKbps === null)) {
    return { level: "unknown", reasons };
  }
  let level: QualityLevel = "good";
  const bump = (l: QualityLevel, why: string) => {
    level = worse(level, l);
    reasons.push(why);
  };
  const loss = sample.lossPercent;
  if (loss !== null && loss >= POOR_LOSS_PERCENT) bump("poor", `loss ${loss.toFixed(1)} %`);
  else if (loss !== null && loss >= FAIR_LOSS_PERCENT) bump("fair", `loss ${loss.toFixed(1)} %`);
  const rtt = sample.rttMs;
  if (rtt !== null && rtt >= POOR_RTT_MS) bump("poor", `round trip ${Math.round(rtt)} ms`);
  else if (rtt !== null && rtt >= FAIR_RTT_MS) bump("fair", `round trip ${Math.round(rtt)} ms`);
  if (
    sample.direction === "inbound" &&
    opts.videoActive &&
    sample.hasVideo &&
    (sample.fps !== null
      ? sample.fps < STALLED_VIDEO_FPS
      : sample.videoBitrateKbps !== null && sample.videoBitrateKbps < STALLED_VIDEO_KBPS)
  ) {
    bump("poor", sample.fps !== null ? `video stalled (${sample.fps.toFixed(1)} frames/s)` : `video stalled (${Math.round(sample.videoBitrateKbps ?? 0)} kbit/s)`);
  }
  if (sample.direction === "outbound" && sample.qualityLimitation === "bandwidth") bump("fair", "sending limited by bandwidth");
  return { level, reasons };
}

/** Shown level: the worst of the last `window` known levels (no flicker on one good sample). */
export function smoothed(history: QualityLevel[], window = 2): QualityLevel {
  const known = history.filter((l) => l !== "unknown").slice(-window);
  return known.reduce<QualityLevel>((acc, l) => worse(acc, l), "unknown");
}

/** Display texts of a sample's details (loss %, RTT ms, kbit/s, frames/s, resolution). */
export function formatDetails(sample: QualitySample): { field: string; label: string; value: number | null; text: string }[] {
  const f = (v: number | null, digits: number, unit: string) => (v === null ? "–" : `${v.toFixed(digits)}${unit}`);
  const res = sample.width && sample.height ? `${sample.width}×${sample.height}` : "–";
  return [
    { field: "loss", label: "Loss", value: sample.lossPercent, text: f(sample.lossPercent, 1, " %") },
    { field: "rtt", label: "Round trip", value: sample.rttMs, text: f(sample.rttMs, 0, " ms") },
    {
      field: "bitrate",
      label: sample.direction === "inbound" ? "Receiving" : "Sending",
      value: sample.bitrateKbps,
      text: f(sample.bitrateKbps, 0, " kbit/s"),
    },
    { field: "fps", label: "Frames/s", value: sample.fps, text: f(sample.fps, 0, "") },
    { field: "resolution", label: "Resolution", value: sample.width && sample.height ? sample.width * sample.height : null, text: res },
  ];
}
