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
// The first half of this module is pure (stats entries in, samples and levels out: tested with
// node, see tests/e2e/quality.test.mjs and simulcast.test.mjs); the second renders the indicator
// and its details panel into the tile element, and QualityMonitor ties both to a timer.

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

// ----------------------------------------------------------------------------------------------
// DOM: an indicator (button) in the tile's top right corner, its details panel below it.

export interface QualityView {
  tileId: string;
  level: QualityLevel;
  reasons: string[];
  sample: QualitySample;
  /** Remote tiles: the layer received (the badge shows it); null on local tiles. */
  layer: LayerInfo | null;
  /** The picker's choice when the tile's video is simulcast (picker shown), else null. */
  picker: QualityChoice | null;
}

/** Called when the user picks a quality in a tile's picker. */
export type PickHandler = (tileId: string, choice: QualityChoice) => void;

const LEVEL_TEXT: Record<QualityLevel, string> = { good: "good", fair: "fair", poor: "poor", unknown: "…" };

function tileElement(tileId: string): HTMLElement | null {
  return document.querySelector<HTMLElement>(`.tile[data-tile-id="${CSS.escape(tileId)}"]`);
}

function ensureWidget(tile: HTMLElement, onPick: PickHandler | null): HTMLElement {
  const existing = tile.querySelector<HTMLElement>(":scope > .quality");
  if (existing) return existing;
  const root = document.createElement("div");
  root.className = "quality";
  root.dataset.level = "unknown";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "quality-indicator";
  button.setAttribute("aria-expanded", "false");
  const bars = document.createElement("span");
  bars.className = "quality-bars";
  bars.setAttribute("aria-hidden", "true");
  for (let i = 0; i < 3; i++) bars.appendChild(document.createElement("i"));
  const label = document.createElement("span");
  label.className = "quality-label";
  // Remote tiles: received resolution and simulcast layer.
  const badge = document.createElement("span");
  badge.className = "quality-badge";
  badge.hidden = true;
  button.append(bars, label, badge);
  const details = document.createElement("div");
  details.className = "quality-details";
  details.hidden = true;
  const title = document.createElement("p");
  title.className = "quality-title";
  const list = document.createElement("dl");
  // Simulcast tracks: which layer to receive.
  const pick = document.createElement("label");
  pick.className = "quality-pick";
  pick.hidden = true;
  pick.append("Video quality ");
  const select = document.createElement("select");
  for (const c of QUALITY_CHOICES) {
    const o = document.createElement("option");
    o.value = c.value;
    o.textContent = c.label;
    select.appendChild(o);
  }
  select.addEventListener("change", () => {
    const id = tile.dataset.tileId;
    const choice = QUALITY_CHOICES.find((c) => c.value === select.value)?.value;
    if (id && choice && onPick) onPick(id, choice);
  });
  pick.appendChild(select);
  details.append(title, list, pick);
  button.addEventListener("click", (ev) => {
    ev.stopPropagation();
    const open = details.hidden;
    closeAllDetails();
    details.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) placeDetails(root);
  });
  details.addEventListener("click", (ev) => ev.stopPropagation());
  root.append(button, details);
  tile.appendChild(root);
  installCloseHandlers();
  return root;
}

function closeAllDetails(): void {
  document.querySelectorAll<HTMLElement>(".tile .quality").forEach((root) => {
    const details = root.querySelector<HTMLElement>(".quality-details");
    if (!details || details.hidden) return;
    details.hidden = true;
    root.querySelector(".quality-indicator")?.setAttribute("aria-expanded", "false");
  });
}

let closeHandlersInstalled = false;
/** A click elsewhere or Escape closes the open details panel. */
function installCloseHandlers(): void {
  if (closeHandlersInstalled) return;
  closeHandlersInstalled = true;
  document.addEventListener("click", () => closeAllDetails());
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") closeAllDetails();
  });
}

/**
 * The details panel is `position: fixed` (tiles clip their content and can be small): below the
 * indicator, right-aligned with it, kept inside the window (above it when there is no room below).
 */
function placeDetails(root: HTMLElement): void {
  const button = root.querySelector<HTMLElement>(".quality-indicator");
  const details = root.querySelector<HTMLElement>(".quality-details");
  if (!button || !details || details.hidden) return;
  const r = button.getBoundingClientRect();
  const w = details.offsetWidth;
  const h = details.offsetHeight;
  const margin = 4;
  const left = Math.max(margin, Math.min(r.right - w, window.innerWidth - w - margin));
  let top = r.bottom + margin;
  if (top + h > window.innerHeight - margin) top = Math.max(margin, r.top - h - margin);
  details.style.left = `${Math.round(left)}px`;
  details.style.top = `${Math.round(top)}px`;
}

/** Renders (creating if needed) the indicator of the view's tile. */
export function renderQuality(view: QualityView, onPick: PickHandler | null = null): void {
  const tile = tileElement(view.tileId);
  if (!tile) return;
  const root = ensureWidget(tile, onPick);
  root.dataset.level = view.level;
  // Small tiles: bars only (the level stays in the tooltip and the accessible name).
  root.dataset.compact = String(tile.clientWidth < 200 || tile.clientHeight < 110);
  const button = root.querySelector(".quality-indicator") as HTMLButtonElement;
  const what = view.sample.direction === "inbound" ? "Receiving" : "Sending";
  const text = view.level === "unknown" ? (view.sample.streams === 0 ? "no media" : "measuring") : view.level;
  button.title = `Connection: ${text}${view.reasons.length ? ` (${view.reasons.join(", ")})` : ""}`;
  button.setAttribute("aria-label", `${what} quality: ${text}`);
  (root.querySelector(".quality-label") as HTMLElement).textContent = LEVEL_TEXT[view.level];
  (root.querySelector(".quality-title") as HTMLElement).textContent =
    `${what}: ${text}${view.reasons.length ? ` — ${view.reasons.join(", ")}` : ""}`;
  const list = root.querySelector(".quality-details dl") as HTMLElement;
  const rows = formatDetails(view.sample);
  if (list.children.length !== rows.length * 2) {
    list.replaceChildren(
      ...rows.flatMap((r) => {
        const dt = document.createElement("dt");
        dt.textContent = r.label;
        const dd = document.createElement("dd");
        dd.dataset.field = r.field;
        return [dt, dd];
      }),
    );
  }
  for (const r of rows) {
    const dd = list.querySelector<HTMLElement>(`dd[data-field="${r.field}"]`);
    if (!dd) continue;
    const dt = dd.previousElementSibling as HTMLElement | null;
    if (dt) dt.textContent = r.label;
    dd.textContent = r.text;
    dd.dataset.value = r.value === null ? "" : String(r.value);
  }
  // The badge is inside the button, whose aria-label hides it: say it there too.
  const badge = renderBadge(root, view);
  if (badge) button.setAttribute("aria-label", `${what} quality: ${text}; ${badge.charAt(0).toLowerCase()}${badge.slice(1)}`);
  placeDetails(root);
}

/**
 * The badge (remote tiles with video, or once a layer was announced) and the picker. Returns the
 * badge's tooltip when shown.
 */
function renderBadge(root: HTMLElement, view: QualityView): string | null {
  let shown: string | null = null;
  const badge = root.querySelector<HTMLElement>(".quality-badge");
  if (badge) {
    const show = view.layer !== null && (view.sample.hasVideo || view.layer.encoding !== null);
    badge.hidden = !show;
    if (show) {
      const b = formatBadge(view.sample, view.layer);
      if (badge.textContent !== b.text) badge.textContent = b.text;
      badge.title = b.title;
      badge.dataset.width = String(view.sample.width ?? "");
      badge.dataset.height = String(view.sample.height ?? "");
      badge.dataset.layer = view.layer?.encoding ?? "";
      badge.dataset.reason = view.layer?.reason ?? "";
      shown = b.title;
    }
  }
  const pick = root.querySelector<HTMLElement>(".quality-pick");
  const select = pick?.querySelector("select");
  if (pick && select) {
    pick.hidden = view.picker === null;
    root.dataset.simulcast = String(view.picker !== null);
    if (view.picker !== null && select.value !== view.picker) select.value = view.picker;
  }
  return shown;
}

/** Removes the indicator of a tile (if it still exists). */
export function removeQuality(tileId: string): void {
  tileElement(tileId)?.querySelector(":scope > .quality")?.remove();
}

// ----------------------------------------------------------------------------------------------
// The monitor: samples every tile once a second.

/** One tile to watch: whose streams, which way. */
export interface QualityTarget {
  tileId: string;
  direction: Direction;
  /** MediaStreamTrack ids of the tile's tracks (received ones, or our own). */
  trackIds: string[];
  /** The tile's video should be flowing (camera on). */
  videoActive: boolean;
  /** Remote tiles: the layer received (badge); absent or null on local tiles. */
  layer?: LayerInfo | null;
  /** The picker's choice when the tile's video is simulcast (picker shown); else absent or null. */
  picker?: QualityChoice | null;
}

export const QUALITY_INTERVAL_MS = 1000;

export class QualityMonitor {
  private timer: number | null = null;
  private running = false;
  /** Bumped by reset(): a tick that started before it drops its results. */
  private generation = 0;
  private readonly counters = new Map<string, Counters>();
  private readonly history = new Map<string, QualityLevel[]>();
  private readonly latest = new Map<string, QualityView>();

  constructor(
    private readonly source: () => { pcs: RTCPeerConnection[]; targets: QualityTarget[] },
    private readonly onPick: PickHandler | null = null,
  ) {}

  start(intervalMs = QUALITY_INTERVAL_MS): void {
    if (this.timer !== null) return;
    this.timer = window.setInterval(() => void this.tick(), intervalMs);
  }

  stop(): void {
    if (this.timer !== null) window.clearInterval(this.timer);
    this.timer = null;
    this.reset();
  }

  /** Forgets counters and levels (a new session has new streams) and removes the indicators. */
  reset(): void {
    this.generation += 1;
    for (const id of this.latest.keys()) removeQuality(id);
    this.counters.clear();
    this.history.clear();
    this.latest.clear();
  }

  /** The last view of every watched tile. */
  views(): QualityView[] {
    return Array.from(this.latest.values());
  }

  /**
   * A tile's layer or picker changed (`encodingChanged`, a pick): shown at once instead of at
   * the next sample. No-op for a tile not sampled yet (its first sample shows it).
   */
  update(tileId: string, patch: { layer?: LayerInfo | null; picker?: QualityChoice | null }): void {
    const view = this.latest.get(tileId);
    if (!view) return;
    if (patch.layer !== undefined) view.layer = patch.layer;
    if (patch.picker !== undefined) view.picker = patch.picker;
    renderQuality(view, this.onPick);
  }

  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const generation = this.generation;
    try {
      const { pcs } = this.source();
      const entries: StatsEntry[] = [];
      for (const pc of pcs) {
        if (pc.connectionState === "closed") continue;
        try {
          const report = await pc.getStats();
          report.forEach((s) => entries.push(s as StatsEntry));
        } catch {
          /* closed meanwhile */
        }
      }
      if (generation !== this.generation) return;
      // The targets as they are now (a layer may have changed while getStats ran).
      const { targets } = this.source();
      const now = Date.now();
      const seen = new Set<string>();
      for (const t of targets) {
        seen.add(t.tileId);
        const prev = this.counters.get(t.tileId) ?? null;
        const sampler = t.direction === "inbound" ? inboundSample : outboundSample;
        const { sample, counters } = sampler(entries, t.trackIds, prev, now);
        this.counters.set(t.tileId, counters);
        const c = classify(sample, { videoActive: t.videoActive });
        const h = this.history.get(t.tileId) ?? [];
        h.push(c.level);
        if (h.length > 5) h.shift();
        this.history.set(t.tileId, h);
        const view: QualityView = {
          tileId: t.tileId,
          level: smoothed(h),
          reasons: c.reasons,
          sample,
          layer: t.layer ?? null,
          picker: t.picker ?? null,
        };
        this.latest.set(t.tileId, view);
        renderQuality(view, this.onPick);
      }
      for (const id of Array.from(this.latest.keys())) {
        if (seen.has(id)) continue;
        // Not measured any more (reconnecting, tile gone): no stale verdict stays on screen.
        this.latest.delete(id);
        this.counters.delete(id);
        this.history.delete(id);
        removeQuality(id);
      }
    } finally {
      this.running = false;
    }
  }
}
