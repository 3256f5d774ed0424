// Video room scenarios against the real Lamina server (LAMINA_BIN) and real headless Chromium.
// Media is proven by getStats(): inbound video framesDecoded and audio totalSamplesReceived /
// bytesReceived must grow on every expected remote tile; synthetic participants (coloured
// canvas + tone) also prove that each tile shows the right person's video.
//
// One server and one browser for the file; one browser context per participant; at most four
// pages at a time; every wait polls a condition.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join as pathJoin } from "node:path";
import { after, before, test } from "node:test";

import { launchBrowser } from "./lib/browser.mjs";
import { startLamina } from "./lib/lamina.mjs";
import { Participant, waitForMedia, waitForTileColour, waitForTileTone } from "./lib/participant.mjs";
import { ARTIFACTS, holdsFor, log, metric, roomName, waitFor } from "./lib/util.mjs";

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

/** Runs a scenario; on failure adds the server log tail; always closes its pages. */
function scenario(name, fn) {
  test(name, async () => {
    try {
      await fn();
    } catch (err) {
      err.message += `\n--- server log (tail) ---\n${server ? server.tail(60) : "(no server)"}`;
      throw err;
    } finally {
      await Promise.all([...open].map((p) => p.close()));
      open.clear();
    }
  });
}

async function join(opts) {
  const p = await Participant.open(browser, server.url, opts);
  open.add(p);
  return p;
}

const AV = { video: true, audio: true };
const remote = (name, media = AV) => ({ name, kind: "remote", ...media });

// Synthetic participants: distinct hue (video colour) and tone per person.
const PEOPLE = {
  Alice: { hue: 0, tone: 330 },
  Bob: { hue: 120, tone: 440 },
  Carol: { hue: 240, tone: 550 },
  Dave: { hue: 60, tone: 660 },
};
const synth = (name) => ({ name, synth: true, ...PEOPLE[name] });

scenario("a. three participants see each other's video and audio with the right names", async () => {
  const room = roomName("three");
  const t0 = Date.now();
  const [a, b, c] = await Promise.all(["Alice", "Bob", "Carol"].map((n) => join({ room, ...synth(n) })));
  await Promise.all([a, b, c].map((p) => p.waitConnected()));
  const others = (me) => ["Alice", "Bob", "Carol"].filter((n) => n !== me).map((n) => remote(n));
  await Promise.all([a, b, c].map((p) => waitForMedia(p, others(p.name))));
  metric("three_participants_all_media_ms", Date.now() - t0);

  // Routing: each tile shows its owner's colour and plays its owner's tone.
  const seen = [];
  for (const p of [a, b, c]) {
    for (const o of others(p.name)) {
      const rgb = await waitForTileColour(p, o.name, PEOPLE[o.name].hue);
      const hz = await waitForTileTone(p, o.name, PEOPLE[o.name].tone);
      seen.push(`${p.name}<-${o.name}: rgb(${rgb}) ${Math.round(hz)}Hz`);
    }
  }
  log(`routing: ${seen.join("; ")}`);
  mkdirSync(ARTIFACTS, { recursive: true });
  await a.page.screenshot({ path: pathJoin(ARTIFACTS, "three-participants.png") });
});

scenario("b. a late joiner gets everyone's media quickly and everyone gets its tile", async () => {
  const room = roomName("late");
  const early = await Promise.all(["Alice", "Bob", "Carol"].map((n) => join({ room, ...synth(n) })));
  await Promise.all(early.map((p) => p.waitConnected()));
  const others = (names, me) => names.filter((n) => n !== me).map((n) => remote(n));
  await Promise.all(early.map((p) => waitForMedia(p, others(["Alice", "Bob", "Carol"], p.name))));

  const { participant: d, clickedAt } = await Participant.openViaHome(browser, server.url, { room, ...synth("Dave") });
  open.add(d);
  // First remote frame presented on the late joiner's page (requestVideoFrameCallback).
  const first = await waitFor("late joiner's first remote frame", async () => (await d.timings()).firstRemoteFrame, {
    timeout: 20000,
    interval: 50,
  });
  const ms = first - clickedAt;
  metric("late_joiner_first_frame_ms", ms);
  const t = await d.timings();
  const since = (at) => (at === null ? "n/a" : `${at - clickedAt}`);
  log(`late joiner after the click (ms): join ${since(t.joinStart)}, channel joined ${since(t.channelJoined)}, connected ${since(t.connected)}, first track ${since(t.firstTrackReady)}, first frame ${since(t.firstRemoteFrame)}`);
  const all = ["Alice", "Bob", "Carol", "Dave"];
  await Promise.all([d, ...early].map((p) => waitForMedia(p, others(all, p.name))));
  await waitForTileColour(d, "Alice", PEOPLE.Alice.hue);
  for (const p of early) await waitForTileColour(p, "Dave", PEOPLE.Dave.hue);
  // A bound that catches a broken join (no keyframe asked for: nothing until the publishers'
  // next keyframe), not a latency goal: with the suite's debug server on a 2-core machine the
  // figure moves between 1.1 and 2.6 s from run to run (the click, page load and lobby alone
  // take ~0.5 s). lamina-bench measures join → first frame against Janus.
  assert.ok(ms < 5000, `late joiner's first remote frame after ${ms} ms (limit 5000 ms)`);
});

scenario("c. screen share appears as a new playing tile and disappears when stopped", async () => {
  const room = roomName("screen");
  const [a, b] = await Promise.all([join({ room, name: "Alice" }), join({ room, name: "Bob" })]);
  await Promise.all([a, b].map((p) => p.waitConnected()));
  await waitForMedia(b, [remote("Alice")]);

  const t0 = Date.now();
  await a.click("#screen-button");
  await waitFor("Alice sharing", async () => (await a.eval(() => window.lamina.localTracks().screen)) !== null);
  await waitForMedia(b, [remote("Alice"), { name: "Alice", kind: "screen", video: true, audio: false }]);
  metric("screen_share_visible_ms", Date.now() - t0);
  await waitForMedia(a, [remote("Bob")]);

  const t1 = Date.now();
  await a.click("#screen-button");
  await waitFor("screen tile gone on Bob's page", async () => !(await b.remoteTiles()).some((t) => t.kind === "screen"), {
    timeout: 15000,
  });
  metric("screen_share_removed_ms", Date.now() - t1);
  // Alice's camera and microphone keep playing.
  await waitForMedia(b, [remote("Alice")]);
});

scenario("d. mute and camera off are shown on the others' tiles", async () => {
  const room = roomName("mute");
  const [a, b] = await Promise.all([join({ room, name: "Alice" }), join({ room, name: "Bob" })]);
  await Promise.all([a, b].map((p) => p.waitConnected()));
  await waitForMedia(b, [remote("Alice")]);
  const aliceOnB = async () => (await b.remoteTiles()).find((t) => t.name === "Alice");

  await a.click("#mic-button");
  await waitFor("Alice muted on Bob's page", async () => (await aliceOnB())?.mic === "off", { timeout: 10000 });
  assert.equal((await aliceOnB()).camera, "on");
  await a.click("#camera-button");
  await waitFor("Alice's camera off on Bob's page", async () => (await aliceOnB())?.camera === "off", { timeout: 10000 });
  assert.ok(await b.page.isVisible('.tile[data-kind="remote"][data-name="Alice"] .badge-mic-off'));
  assert.ok(await b.page.isVisible('.tile[data-kind="remote"][data-name="Alice"] .badge-camera-off'));

  await a.click("#mic-button");
  await a.click("#camera-button");
  await waitFor("Alice unmuted, camera on", async () => {
    const t = await aliceOnB();
    return t?.mic === "on" && t?.camera === "on";
  }, { timeout: 10000 });
  // Tracks were only disabled, never removed: media keeps flowing.
  await waitForMedia(b, [remote("Alice")]);
});

scenario("e. leave button and tab close remove the tile for the others", async () => {
  const room = roomName("leave");
  const [a, b, c] = await Promise.all(["Alice", "Bob", "Carol"].map((n) => join({ room, name: n })));
  await Promise.all([a, b, c].map((p) => p.waitConnected()));
  await waitForMedia(b, [remote("Alice"), remote("Carol")]);

  const t0 = Date.now();
  await a.click("#leave-button");
  await Promise.all(
    [b, c].map((p) =>
      waitFor(`Alice's tile gone on ${p.name}'s page`, async () => !(await p.remoteTiles()).some((t) => t.name === "Alice"), {
        timeout: 10000,
        interval: 50,
      }),
    ),
  );
  metric("leave_button_tile_removed_ms", Date.now() - t0);
  assert.equal(await a.state(), "left");
  assert.ok(await a.page.isVisible("#left-panel"));

  const t1 = Date.now();
  await c.page.close();
  await waitFor("Carol's tile gone on Bob's page", async () => !(await b.remoteTiles()).some((t) => t.name === "Carol"), {
    timeout: 15000,
    interval: 50,
  });
  metric("tab_close_tile_removed_ms", Date.now() - t1);
  assert.equal((await b.remoteTiles()).length, 0);

  // "Rejoin" on Alice's page: same name (remembered by the page), media flows again.
  await a.click("#rejoin-link");
  await a.waitConnected();
  await Promise.all([waitForMedia(b, [remote("Alice")]), waitForMedia(a, [remote("Bob")])]);
});

scenario("f. camera only, mic only and nothing: others see exactly what is published", async () => {
  const room = roomName("publish");
  const cfg = {
    Alice: { video: true, audio: true },
    Bob: { video: true, audio: false },
    Carol: { video: false, audio: true },
    Dave: { video: false, audio: false },
  };
  const ps = await Promise.all(Object.entries(cfg).map(([n, m]) => join({ room, ...synth(n), ...m })));
  await Promise.all(ps.map((p) => p.waitConnected()));
  await Promise.all(
    ps.map((p) =>
      waitForMedia(
        p,
        Object.entries(cfg)
          .filter(([n]) => n !== p.name)
          .map(([n, m]) => remote(n, m)),
      ),
    ),
  );
  // The one who publishes nothing still sees everyone (checked above) with the right colours.
  const dave = ps[3];
  await waitForTileColour(dave, "Alice", PEOPLE.Alice.hue);
  await waitForTileColour(dave, "Bob", PEOPLE.Bob.hue);
  await waitForTileTone(dave, "Carol", PEOPLE.Carol.tone);
  const tiles = await ps[0].remoteTiles();
  const daveTile = tiles.find((t) => t.name === "Dave");
  assert.equal(daveTile.mic, "none");
  assert.equal(daveTile.camera, "none");
  assert.equal(tiles.find((t) => t.name === "Bob").mic, "none");
  assert.equal(tiles.find((t) => t.name === "Carol").camera, "none");
});

scenario("g. two rooms at once do not see each other", async () => {
  const r1 = roomName("room-one");
  const r2 = roomName("room-two");
  const [a, b, c, d] = await Promise.all([
    join({ room: r1, ...synth("Alice") }),
    join({ room: r1, ...synth("Bob") }),
    join({ room: r2, ...synth("Carol") }),
    join({ room: r2, ...synth("Dave") }),
  ]);
  await Promise.all([a, b, c, d].map((p) => p.waitConnected()));
  await Promise.all([
    waitForMedia(a, [remote("Bob")]),
    waitForMedia(b, [remote("Alice")]),
    waitForMedia(c, [remote("Dave")]),
    waitForMedia(d, [remote("Carol")]),
  ]);
  await waitForTileColour(a, "Bob", PEOPLE.Bob.hue);
  await waitForTileColour(c, "Dave", PEOPLE.Dave.hue);
  await holdsFor("each page keeps exactly one remote tile", async () => {
    const counts = await Promise.all([a, b, c, d].map(async (p) => (await p.remoteTiles()).length));
    return counts.every((n) => n === 1);
  }, { duration: 1500, interval: 250 });
});

scenario("h. a full room refuses one more participant with a clear message", async () => {
  const small = await startLamina({ extraArgs: ["--max-peers-per-room", "2"] });
  try {
    const room = roomName("full");
    const url = small.url;
    const a = await Participant.open(browser, url, { room, name: "Alice" });
    open.add(a);
    const b = await Participant.open(browser, url, { room, name: "Bob" });
    open.add(b);
    await Promise.all([a, b].map((p) => p.waitConnected()));
    const c = await Participant.open(browser, url, { room, name: "Carol" });
    open.add(c);
    await waitFor("Carol refused", async () => (await c.state()) === "failed");
    const errors = await c.errors();
    assert.ok(errors.some((e) => /full/i.test(e)), JSON.stringify(errors));
    assert.ok(await c.page.isVisible("#error-banner"));
    await holdsFor("Carol never shows up and stays out", async () => {
      const tiles = [...(await a.remoteTiles()), ...(await b.remoteTiles())];
      return !tiles.some((t) => t.name === "Carol") && (await c.state()) === "failed";
    }, { duration: 2500, interval: 250 });
    await Promise.all([waitForMedia(a, [remote("Bob")]), waitForMedia(b, [remote("Alice")])]);
  } catch (err) {
    err.message += `\n--- small server log (tail) ---\n${small.tail(40)}`;
    throw err;
  } finally {
    await Promise.all([...open].map((p) => p.close()));
    open.clear();
    await small.stop();
  }
});
