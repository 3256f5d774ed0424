// Helpers of lobby.test.mjs and tiles.test.mjs: a participant that starts in the lobby
// (`?test=1&lobby=1`), the lobby's and the grid's state through `window.lamina`, and rectangle
// checks for the tile layout.

import { Participant } from "./participant.mjs";
import { waitFor } from "./util.mjs";

/**
 * A new context and page with `permissions` (default camera + microphone) at `viewport`.
 * The page's console errors are kept like lib/browser.mjs newPage does.
 */
export async function newPageWith(browser, { width = 1280, height = 800, permissions = ["camera", "microphone"] } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, permissions });
  const page = await context.newPage();
  const logs = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") logs.push(`[${m.type()}] ${m.text()}`);
  });
  page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
  page.laminaLogs = logs;
  return { context, page };
}

/**
 * Opens /room/<room>?test=1&lobby=1[&display_name=<name>] and waits until the lobby has opened
 * the devices. opts: room, name (omit: no display_name in the URL), viewport, permissions,
 * initScript and initArg (page.addInitScript), extra (more query parameters).
 * Returns a Participant (its page stays in the lobby until `joinFromLobby`).
 */
export async function openLobby(browser, baseUrl, opts) {
  const { context, page } = await newPageWith(browser, { ...(opts.viewport ?? {}), permissions: opts.permissions });
  const p = new Participant(opts.name ?? "(lobby)", context, page, opts);
  if (opts.initScript) await page.addInitScript(opts.initScript, opts.initArg);
  const q = new URLSearchParams();
  if (opts.name !== undefined) q.set("display_name", opts.name);
  q.set("test", "1");
  q.set("lobby", "1");
  for (const [k, v] of Object.entries(opts.extra ?? {})) q.set(k, String(v));
  await page.goto(`${baseUrl}/room/${encodeURIComponent(opts.room)}?${q}`);
  await waitLobbyReady(p);
  return p;
}

export function lobbyInfo(p) {
  return p.eval(() => (window.lamina && window.lamina.lobby ? window.lamina.lobby() : null));
}

export async function waitLobbyReady(p, timeout = 15000) {
  return waitFor(`${p.name}: lobby ready`, async () => {
    const info = await lobbyInfo(p);
    return info && info.shown && info.ready ? info : null;
  }, { timeout });
}

/** Clicks "Join now" and waits until the room is connected. */
export async function joinFromLobby(p) {
  await p.click("#lobby-join");
  await p.waitConnected();
}

/** The grid's and the tiles' rectangles on the page (window.lamina.tileRects()). */
export function tileRects(p) {
  return p.eval(() => window.lamina.tileRects());
}

/** Waits until the tile rectangles stop moving (layout transitions) and returns them. */
export async function stableTileRects(p, count, timeout = 10000) {
  let prev = null;
  return waitFor(`${p.name}: ${count} tiles laid out`, async () => {
    const r = await tileRects(p);
    const key = JSON.stringify(r.tiles.map((t) => [t.id, Math.round(t.x), Math.round(t.y), Math.round(t.w), Math.round(t.h)]));
    const ok = r.tiles.length === count && prev === key;
    prev = key;
    return ok ? r : null;
  }, { timeout, interval: 300 });
}

/** Problems of a set of rectangles in `area`: overlaps, outside parts, zero sizes ("" if none). */
export function layoutProblems(rects, area, tol = 0.5) {
  const problems = [];
  rects.forEach((a, i) => {
    if (!(a.w > 0 && a.h > 0)) problems.push(`tile ${i} has size ${a.w}x${a.h}`);
    if (a.x < area.x - tol || a.y < area.y - tol || a.x + a.w > area.x + area.w + tol || a.y + a.h > area.y + area.h + tol) {
      problems.push(`tile ${i} ${JSON.stringify(a)} outside ${JSON.stringify(area)}`);
    }
    for (let j = i + 1; j < rects.length; j++) {
      const b = rects[j];
      const ox = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
      const oy = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
      if (ox > tol && oy > tol) problems.push(`tiles ${i} and ${j} overlap by ${ox.toFixed(1)}x${oy.toFixed(1)}`);
    }
  });
  return problems.join("; ");
}
