// QualityMonitor: samples every watched tile's streams once a second (quality.ts) and shows the
// verdict in the tile (quality_widget.ts).

import { classify, inboundSample, outboundSample, smoothed } from "./quality";
import type { Counters, Direction, LayerInfo, QualityChoice, QualityLevel, StatsEntry } from "./quality";
import { removeQuality, renderQuality } from "./quality_widget";
import type { PickHandler, QualityView } from "./quality_widget";

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
