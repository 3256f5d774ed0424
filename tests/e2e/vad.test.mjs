// Speaker detection against the real Lamina server in headless Chromium, with the unmodified
// Membrane client: three participants with synthetic media (a canvas camera and a sine tone
// per person, `synth=1`); the tones are muted and unmuted through the test hooks. Chrome sends
// the RFC 6464 audio level on its Opus packets, the server's laminavad turns it into
// `vadNotification`, and the others' pages mark the speaker's tile (`data-speaking`) and, on a
// small screen (Bob's 320x480 page), put the active speaker's tile first. Prints the delays
// from unmuting/muting a tone to the other page showing it.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { launchBrowser } from "./lib/browser.mjs";
import { startLamina } from "./lib/lamina.mjs";
import { stableTileRects } from "./lib/lobby.mjs";
import { Participant, waitForMedia } from "./lib/participant.mjs";
import { log, roomName, waitFor } from "./lib/util.mjs";

let browser;
let server;
const open = new Set();

before(async () => {
  server = await startLamina();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await server?.stop();
});

const PEOPLE = { Alice: { hue: 0, tone: 330 }, Bob: { hue: 120, tone: 440 }, Carol: { hue: 240, tone: 550 } };
const remote = (name) => ({ name, kind: "remote", video: true, audio: true });

async function join(room, name, viewport) {
  const p = await Participant.open(browser, server.url, { room, name, synth: true, ...PEOPLE[name], viewport });
  open.add(p);
  return p;
}

const speakingOn = async (p, name) => (await p.remoteTiles()).find((t) => t.name === name)?.speaking ?? null;
const toneGain = (p, value) => p.eval((v) => window.lamina.setToneGain(v), value);

/** Waits until `p` shows `name` speaking (or not); returns the ms it took since `since`. */
async function waitSpeaking(p, name, speaking, since, timeout = 5000) {
  await waitFor(`${p.name} sees ${name} ${speaking ? "speaking" : "silent"}`, async () => (await speakingOn(p, name)) === speaking, {
    timeout,
    interval: 20,
  });
  return Date.now() - since;
}

/** The name of the tile laid out first (top, then left) on `p`'s page. */
async function firstTile(p) {
  const r = await stableTileRects(p, 3);
  const sorted = [...r.tiles].sort((a, b) => a.y - b.y || a.x - b.x);
  return sorted[0].name;
}

test("the speaker's tile lights up on the other pages and comes first on a small screen", async () => {
  try {
    const room = roomName("vad");
    const [a, b, c] = await Promise.all([join(room, "Alice"), join(room, "Bob"), join(room, "Carol")]);
    await Promise.all([a, b, c].map((p) => p.waitConnected()));
    await waitForMedia(b, [remote("Alice"), remote("Carol")]);
    // Everybody silent first.
    for (const p of [a, b, c]) assert.equal(await toneGain(p, 0), true, `${p.name} has a synthetic tone`);
    const quiet = Date.now();
    await waitSpeaking(b, "Alice", false, quiet);
    await waitSpeaking(b, "Carol", false, quiet);

    // Alice speaks.
    let t = Date.now();
    await toneGain(a, 0.3);
    const [onB, onC] = await Promise.all([waitSpeaking(b, "Alice", true, t), waitSpeaking(c, "Alice", true, t)]);
    log(`[metric] vad tone on -> tile speaking: Bob ${onB} ms, Carol ${onC} ms`);
    assert.equal(await firstTile(b), "Alice", "the active speaker comes first on Bob's small page");
    assert.equal(await speakingOn(b, "Carol"), false);

    // Alice stops.
    t = Date.now();
    await toneGain(a, 0);
    const off = await waitSpeaking(b, "Alice", false, t);
    log(`[metric] vad tone off -> tile silent: Bob ${off} ms`);

    // Carol speaks: she is the active speaker now.
    t = Date.now();
    await toneGain(c, 0.3);
    const carol = await waitSpeaking(b, "Carol", true, t);
    log(`[metric] vad second speaker -> tile speaking: Bob ${carol} ms`);
    assert.equal(await firstTile(b), "Carol");
    assert.equal(await speakingOn(b, "Alice"), false);
    assert.ok(onB < 2000 && onC < 2000 && carol < 2000, "speech shows within 2 s");
  } catch (err) {
    const logs = [...open].map((p) => `${p.name}: ${p.logs()}`).join("\n");
    err.message += `\n--- page logs ---\n${logs}\n--- server log (tail) ---\n${server ? server.tail(40) : "(no server)"}`;
    throw err;
  } finally {
    await Promise.all([...open].map((p) => p.close()));
    open.clear();
  }
});
