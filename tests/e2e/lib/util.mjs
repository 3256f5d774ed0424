// Small helpers shared by the e2e tests: condition polling (never fixed sleeps), paths, logs.

import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const E2E_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_DIR = resolve(E2E_DIR, "../..");
export const WEB_DIST = process.env.LAMINA_WEB_DIST || join(REPO_DIR, "web/dist");
export const ARTIFACTS = join(E2E_DIR, "artifacts");

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until it returns a truthy value, and returns that value.
 * On timeout throws with `what` and the last probe result (or error) to make failures readable.
 */
export async function waitFor(what, probe, { timeout = 15000, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await probe();
      lastErr = undefined;
      if (last) return last;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) break;
    await delay(interval);
  }
  const detail = lastErr ? `last error: ${lastErr.stack || lastErr}` : `last value: ${JSON.stringify(last)}`;
  throw new Error(`timed out after ${timeout} ms waiting for ${what}; ${detail}`);
}

/** Asserts that `probe` stays truthy for `duration` ms (used for "nothing else happens" checks). */
export async function holdsFor(what, probe, { duration = 2000, interval = 100 } = {}) {
  const end = Date.now() + duration;
  while (Date.now() < end) {
    const v = await probe();
    if (!v) throw new Error(`condition broke: ${what}`);
    await delay(interval);
  }
}

export function log(...args) {
  // node --test shows the stdout of test files under the test's name; keep it short.
  console.log(...args);
}

export function metric(name, value) {
  console.log(`[metric] ${name}=${value}`);
}

let counter = 0;
/** Unique room name per test run, so tests never share a room by accident. */
export function roomName(prefix) {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}-${Date.now().toString(36)}`;
}
