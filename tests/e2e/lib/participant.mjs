// A participant = one browser context + one page of the Lamina client in test mode (`test=1`),
// driven through the page's `window.lamina` test hooks.

import { newPage } from "./browser.mjs";
import { waitFor } from "./util.mjs";

/**
 * The page's query. The client sends a camera of 960x540 or more in three simulcast layers;
 * tests opt out (`simulcast=0`: one encoding, what they were written against) unless they ask
 * for it with `simulcast: true` (the page's default then applies).
 */
function query({ name, video = true, audio = true, synth = false, hue, tone, capture, simulcast = false }) {
  const q = new URLSearchParams();
  if (name !== undefined) q.set("display_name", name);
  q.set("test", "1");
  q.set("video", video ? "1" : "0");
  q.set("audio", audio ? "1" : "0");
  if (!simulcast) q.set("simulcast", "0");
  if (capture) q.set("capture", capture); // camera size and rate, e.g. "1280x720@30"
  if (synth) {
    q.set("synth", "1");
    if (hue !== undefined) q.set("hue", String(hue));
    if (tone !== undefined) q.set("tone", String(tone));
  }
  return q;
}

export class Participant {
  constructor(name, context, page, opts) {
    this.name = name;
    this.context = context;
    this.page = page;
    this.opts = opts;
    this.closed = false;
  }

  /**
   * Opens the room page directly: /room/<room>?display_name=<name>&test=1&...
   * opts.initScript: a function run in the page before its own scripts (page.addInitScript).
   */
  static async open(browser, baseUrl, opts) {
    const { context, page } = await newPage(browser, opts.viewport);
    const p = new Participant(opts.name, context, page, opts);
    if (opts.initScript) await page.addInitScript(opts.initScript);
    const q = query(opts);
    await page.goto(`${baseUrl}/room/${encodeURIComponent(opts.room)}?${q}`);
    return p;
  }

  /**
   * Opens the home page, fills in the form and clicks "Join room".
   * Returns the participant and the time (Date.now()) of the click.
   */
  static async openViaHome(browser, baseUrl, opts) {
    const { context, page } = await newPage(browser, opts.viewport);
    const p = new Participant(opts.name, context, page, opts);
    const q = query({ ...opts, name: undefined });
    await page.goto(`${baseUrl}/?${q}`);
    await page.fill("#room-name-input", opts.room);
    await page.fill("#display-name-input", opts.name);
    const clickedAt = Date.now();
    await page.click("#join-button");
    await page.waitForURL(/\/room\//);
    return { participant: p, clickedAt };
  }

  eval(fn, arg) {
    return this.page.evaluate(fn, arg);
  }

  state() {
    return this.eval(() => (window.lamina ? window.lamina.state() : "no-hooks"));
  }

  async waitConnected(timeout = 20000) {
    await waitFor(`${this.name} connected`, async () => {
      const s = await this.state();
      if (s === "failed") throw new Error(`${this.name} failed: ${JSON.stringify(await this.errors())}`);
      return s === "connected";
    }, { timeout });
  }

  errors() {
    return this.eval(() => (window.lamina ? window.lamina.errors() : []));
  }

  tiles() {
    return this.eval(() => window.lamina.tiles());
  }

  remoteTiles() {
    return this.eval(() => window.lamina.tiles().filter((t) => t.kind === "remote" || t.kind === "screen"));
  }

  stats() {
    return this.eval(() => window.lamina.stats());
  }

  timings() {
    return this.eval(() => window.lamina.timings());
  }

  tileTone(tileId) {
    return this.eval((id) => window.lamina.tileTone(id), tileId);
  }

  tileColour(tileId) {
    return this.eval((id) => window.lamina.tileColour(id), tileId);
  }

  click(selector) {
    return this.page.click(selector);
  }

  logs() {
    return this.page.laminaLogs.slice(-30).join("\n");
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    await this.context.close().catch(() => undefined);
  }
}

/**
 * Waits until `p` sees exactly the expected remote tiles, each receiving exactly the expected
 * media: video `framesDecoded` grows by `minFrames` and audio `totalSamplesReceived` grows by
 * `minSamples` (and `bytesReceived` grows) since first seen; kinds not expected must be absent.
 *
 * expected: [{ name: "Alice", kind: "remote" | "screen", video: bool, audio: bool }]
 * Returns the last stats.
 */
export async function waitForMedia(p, expected, { timeout = 30000, minFrames = 10, minSamples = 4800 } = {}) {
  const base = new Map();
  const key = (t, kind) => `${t.tileId}/${kind}`;
  let lastProblem = "";
  try {
    return await waitFor(`${p.name} to receive ${JSON.stringify(expected)}`, async () => {
      const stats = await p.stats();
      for (const t of stats) {
        for (const kind of ["video", "audio"]) {
          if (t[kind] && !base.has(key(t, kind))) base.set(key(t, kind), { ...t[kind] });
        }
      }
      const problems = [];
      if (stats.length !== expected.length) {
        problems.push(`tiles ${JSON.stringify(stats.map((t) => `${t.kind}:${t.displayName}`))}`);
      }
      for (const e of expected) {
        const kind = e.kind ?? "remote";
        const tileName = kind === "screen" ? `${e.name} (screen)` : e.name;
        const matches = stats.filter((t) => t.kind === kind && t.displayName === tileName);
        if (matches.length !== 1) {
          problems.push(`${matches.length} ${kind} tiles named ${tileName}`);
          continue;
        }
        const t = matches[0];
        if ((e.video || e.audio) && !t.playing) problems.push(`${tileName} not playing`);
        if (e.video) {
          const b = base.get(key(t, "video"));
          const grown = t.video && b ? t.video.framesDecoded - b.framesDecoded : 0;
          if (grown < minFrames) problems.push(`${tileName} video +${grown} frames`);
        } else if (t.video) problems.push(`${tileName} has unexpected video`);
        if (e.audio) {
          const b = base.get(key(t, "audio"));
          const samples = t.audio && b ? t.audio.totalSamplesReceived - b.totalSamplesReceived : 0;
          const bytes = t.audio && b ? t.audio.bytesReceived - b.bytesReceived : 0;
          if (samples < minSamples || bytes <= 0) problems.push(`${tileName} audio +${samples} samples +${bytes} B`);
        } else if (t.audio) problems.push(`${tileName} has unexpected audio`);
      }
      lastProblem = problems.join("; ");
      return problems.length === 0 ? stats : null;
    }, { timeout, interval: 200 });
  } catch (err) {
    err.message += `\n${p.name} problems: ${lastProblem}\n${p.name} page log:\n${p.logs()}`;
    throw err;
  }
}

/** hsl(h, 80%, 50%) as the client's synthetic video draws it, in RGB. */
export function hueToRgb(h) {
  const s = 0.8;
  const l = 0.5;
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const hp = (h % 360) / 60;
  const x = c * (1 - Math.abs((hp % 2) - 1));
  let rgb;
  if (hp < 1) rgb = [c, x, 0];
  else if (hp < 2) rgb = [x, c, 0];
  else if (hp < 3) rgb = [0, c, x];
  else if (hp < 4) rgb = [0, x, c];
  else if (hp < 5) rgb = [x, 0, c];
  else rgb = [c, 0, x];
  const m = l - c / 2;
  return rgb.map((v) => Math.round((v + m) * 255));
}

/** Checks that the tile showing `name` in `p` has the colour of hue `hue` (±tol per channel). */
export async function waitForTileColour(p, name, hue, { tol = 45, timeout = 10000 } = {}) {
  const want = hueToRgb(hue);
  let got = null;
  await waitFor(`${p.name}: tile ${name} colour ~${want}`, async () => {
    const tiles = await p.remoteTiles();
    const t = tiles.find((x) => x.kind === "remote" && x.name === name);
    if (!t) return false;
    got = await p.tileColour(t.id);
    return got && got.every((v, i) => Math.abs(v - want[i]) <= tol);
  }, { timeout, interval: 200 }).catch((err) => {
    err.message += ` (got ${JSON.stringify(got)})`;
    throw err;
  });
  return got;
}

/** Checks that the tile showing `name` in `p` plays a tone of `hz` (±tol Hz). */
export async function waitForTileTone(p, name, hz, { tol = 25, timeout = 10000 } = {}) {
  let got = null;
  await waitFor(`${p.name}: tile ${name} tone ~${hz} Hz`, async () => {
    const tiles = await p.remoteTiles();
    const t = tiles.find((x) => x.kind === "remote" && x.name === name);
    if (!t) return false;
    got = await p.tileTone(t.id);
    return got !== null && Math.abs(got - hz) <= tol;
  }, { timeout, interval: 100 }).catch((err) => {
    err.message += ` (got ${got} Hz)`;
    throw err;
  });
  return got;
}
