// Client-only tests: the real web client in headless Chromium against a scripted fake
// Phoenix server (lib/fake_server.mjs). They check the client's signalling and UI logic —
// the wire format it sends, tiles, names, badges, banners, leave — without any media server.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { launchBrowser, newPage } from "./lib/browser.mjs";
import { startFakeServer } from "./lib/fake_server.mjs";
import { holdsFor, waitFor } from "./lib/util.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

const track = (type, active = true) => ({
  metadata: { type, active },
  simulcastConfig: { enabled: false, activeEncodings: ["h"], disabledEncodings: [] },
});
const bobTracks = {
  "ep-bob:a": track("audio"),
  "ep-bob:v": track("camera"),
};
const bob = {
  id: "ep-bob",
  type: "webrtc",
  metadata: { displayName: "Bob" },
  trackIdToMetadata: { "ep-bob:a": { type: "audio", active: true }, "ep-bob:v": { type: "camera", active: true } },
  tracks: bobTracks,
};

/** Fake server that answers `connect` like the real one: connected, then tracksAdded per endpoint. */
function answeringServer(others = []) {
  return startFakeServer({
    onMediaEvent(c, ev) {
      if (ev.type !== "connect") return;
      c.pushMediaEvent({ type: "connected", data: { id: "ep-me", otherEndpoints: others } });
      for (const o of others) {
        if (Object.keys(o.tracks).length === 0) continue;
        c.pushMediaEvent({
          type: "tracksAdded",
          data: { endpointId: o.id, trackIdToMetadata: o.trackIdToMetadata, tracks: o.tracks },
        });
      }
    },
  });
}

async function openRoom(srv, room, name, extra = "") {
  const { context, page } = await newPage(browser);
  await page.goto(`${srv.url}/room/${room}?display_name=${encodeURIComponent(name)}&test=1${extra}`);
  return { context, page };
}

const state = (page) => page.evaluate(() => window.lamina.state());
const tiles = (page) => page.evaluate(() => window.lamina.tiles());

test("home page form opens /room/<name> and the client joins room:<name> with its display name", async () => {
  const srv = await answeringServer();
  const { context, page } = await newPage(browser);
  try {
    await page.goto(`${srv.url}/?test=1`);
    await page.fill("#room-name-input", "demo-room");
    await page.fill("#display-name-input", "Ana Lúcia");
    await page.click("#join-button");
    await page.waitForURL(/\/room\/demo-room/);
    await waitFor("connected", async () => (await state(page)) === "connected");

    const search = await page.evaluate(() => window.location.search);
    assert.ok(!search.includes("display_name"), `display_name must be removed from the URL: ${search}`);
    assert.ok(search.includes("test=1"), search);

    const c = srv.clients[0];
    assert.equal(c.joins().length, 1);
    assert.equal(c.joins()[0][2], "room:demo-room");
    const connect = c.mediaEvents.find((e) => e.type === "connect");
    assert.deepEqual(connect.data.metadata, { displayName: "Ana Lúcia" });
    // Camera and microphone are published: one renegotiateTracks per addTrack (0.5.3).
    await waitFor("two renegotiateTracks", () => c.mediaEvents.filter((e) => e.type === "renegotiateTracks").length === 2);

    const local = (await tiles(page)).find((t) => t.kind === "local");
    assert.equal(local.name, "Ana Lúcia (you)");
    assert.equal(local.mic, "on");
    assert.equal(local.camera, "on");
    const names = await page.$$eval("#participants-list li", (lis) => lis.map((l) => l.textContent));
    assert.deepEqual(names, ["Ana Lúcia (you)"]);
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("remote endpoints get named tiles; trackUpdated shows mute / camera off; endpointRemoved drops the tile", async () => {
  const srv = await answeringServer([bob]);
  const { context, page } = await openRoom(srv, "r2", "Me");
  try {
    await waitFor("connected", async () => (await state(page)) === "connected");
    const c = srv.clients[0];
    await waitFor("Bob's tile with mic and camera on", async () => {
      const t = (await tiles(page)).find((x) => x.kind === "remote" && x.name === "Bob");
      return t && t.mic === "on" && t.camera === "on";
    });

    c.pushMediaEvent({ type: "endpointAdded", data: { id: "ep-carol", type: "webrtc", metadata: { displayName: "Carol" } } });
    await waitFor("Carol's tile, no media", async () => {
      const t = (await tiles(page)).find((x) => x.kind === "remote" && x.name === "Carol");
      return t && t.mic === "none" && t.camera === "none";
    });
    assert.deepEqual(
      await page.$$eval("#participants-list li", (lis) => lis.map((l) => l.textContent)),
      ["Me (you)", "Bob", "Carol"],
    );

    c.pushMediaEvent({
      type: "trackUpdated",
      data: { endpointId: "ep-bob", trackId: "ep-bob:a", metadata: { type: "audio", active: false } },
    });
    await waitFor("Bob muted", async () => (await tiles(page)).find((x) => x.name === "Bob")?.mic === "off");
    c.pushMediaEvent({
      type: "trackUpdated",
      data: { endpointId: "ep-bob", trackId: "ep-bob:v", metadata: { type: "camera", active: false } },
    });
    await waitFor("Bob camera off", async () => (await tiles(page)).find((x) => x.name === "Bob")?.camera === "off");
    assert.ok(await page.isVisible('.tile[data-endpoint-id="ep-bob"] .badge-mic-off'));
    assert.ok(await page.isVisible('.tile[data-endpoint-id="ep-bob"] .badge-camera-off'));

    c.pushMediaEvent({
      type: "trackUpdated",
      data: { endpointId: "ep-bob", trackId: "ep-bob:a", metadata: { type: "audio", active: true } },
    });
    await waitFor("Bob unmuted", async () => (await tiles(page)).find((x) => x.name === "Bob")?.mic === "on");

    c.pushMediaEvent({ type: "endpointUpdated", data: { id: "ep-carol", metadata: { displayName: "Caroline" } } });
    await waitFor("Carol renamed", async () => (await tiles(page)).some((x) => x.name === "Caroline"));

    c.pushMediaEvent({ type: "endpointRemoved", data: { id: "ep-carol" } });
    await waitFor("Caroline's tile gone", async () => !(await tiles(page)).some((x) => x.endpointId === "ep-carol"));
    assert.equal((await tiles(page)).filter((t) => t.kind === "remote").length, 1);
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("mute and camera buttons disable the local tracks and update the local tile", async () => {
  const srv = await answeringServer();
  const { context, page } = await openRoom(srv, "r3", "Me");
  try {
    await waitFor("connected", async () => (await state(page)) === "connected");
    await page.click("#mic-button");
    await page.click("#camera-button");
    const local = (await tiles(page)).find((t) => t.kind === "local");
    assert.equal(local.mic, "off");
    assert.equal(local.camera, "off");
    const enabled = await page.evaluate(() => {
      const v = document.querySelector('.tile[data-kind="local"] video');
      return v.srcObject.getTracks().map((t) => `${t.kind}:${t.enabled}`).sort();
    });
    assert.deepEqual(enabled, ["audio:false", "video:false"]);
    assert.equal(await page.textContent("#mic-button"), "Unmute");
    assert.equal(await page.textContent("#camera-button"), "Camera on");
    await page.click("#mic-button");
    assert.equal((await tiles(page)).find((t) => t.kind === "local").mic, "on");
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("join refused with room_full: banner, and the client stops rejoining", async () => {
  const srv = await startFakeServer({ onJoin: () => ({ ok: false, reason: "room_full" }) });
  const { context, page } = await openRoom(srv, "full", "Late");
  try {
    await waitFor("error banner", async () => {
      const text = await page.textContent("#error-banner");
      return (await page.isVisible("#error-banner")) && /full/i.test(text);
    });
    assert.equal(await state(page), "failed");
    // Phoenix would retry a refused join after 1 s, 2 s, 5 s...; the client must have left.
    await holdsFor("no second phx_join", () => srv.clients.every((c) => c.joins().length <= 1) && srv.clients.length === 1, {
      duration: 2500,
    });
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("leave button sends disconnect and phx_leave, then shows the left state", async () => {
  const srv = await answeringServer([bob]);
  const { context, page } = await openRoom(srv, "leave", "Me");
  try {
    await waitFor("connected", async () => (await state(page)) === "connected");
    await page.click("#leave-button");
    const c = srv.clients[0];
    await waitFor("disconnect media event", () => c.mediaEvents.some((e) => e.type === "disconnect"));
    await waitFor("phx_leave", () => c.received.some((f) => f[3] === "phx_leave"));
    assert.equal(await state(page), "left");
    assert.ok(await page.isVisible("#left-panel"));
    assert.equal((await tiles(page)).length, 0);
    const live = await page.evaluate(() =>
      window.lamina.remoteTracks().length + document.querySelectorAll(".tile").length,
    );
    assert.equal(live, 0);
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("camera refused: clear message, joins with the microphone only", async () => {
  const srv = await answeringServer([bob]);
  const { context, page } = await newPage(browser);
  try {
    await page.addInitScript(() => {
      const md = navigator.mediaDevices;
      const orig = md.getUserMedia.bind(md);
      md.getUserMedia = (c) =>
        c && c.video ? Promise.reject(new DOMException("Permission denied", "NotAllowedError")) : orig(c);
    });
    await page.goto(`${srv.url}/room/nocam?display_name=NoCam&test=1`);
    await waitFor("connected", async () => (await state(page)) === "connected");
    const notice = await page.textContent("#notice-banner");
    assert.match(notice, /Camera unavailable: permission denied/);
    const c = srv.clients[0];
    await waitFor("one renegotiateTracks", () => c.mediaEvents.filter((e) => e.type === "renegotiateTracks").length === 1);
    assert.equal(await page.textContent("#camera-button"), "No camera");
    const local = (await tiles(page)).find((t) => t.kind === "local");
    assert.equal(local.camera, "none");
    assert.equal(local.mic, "on");
    // Still sees the others.
    assert.ok((await tiles(page)).some((t) => t.kind === "remote" && t.name === "Bob"));
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("nothing published (video=0&audio=0): joins receive-only", async () => {
  const srv = await answeringServer([bob]);
  const { context, page } = await openRoom(srv, "recvonly", "Watcher", "&video=0&audio=0");
  try {
    await waitFor("connected", async () => (await state(page)) === "connected");
    const c = srv.clients[0];
    await holdsFor("no renegotiateTracks", () => !c.mediaEvents.some((e) => e.type === "renegotiateTracks"), {
      duration: 500,
    });
    assert.ok((await tiles(page)).some((t) => t.kind === "remote" && t.name === "Bob"));
    assert.equal(await page.textContent("#mic-button"), "No microphone");
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("vadNotification toggles the speaking indicator of the owner's tile", async () => {
  const srv = await answeringServer([bob]);
  const { context, page } = await openRoom(srv, "vad", "Me");
  try {
    await waitFor("Bob's tile", async () => (await tiles(page)).some((t) => t.name === "Bob" && t.mic === "on"));
    const c = srv.clients[0];
    c.pushMediaEvent({ type: "custom", data: { type: "vadNotification", data: { trackId: "ep-bob:a", status: "speech" } } });
    await waitFor("Bob speaking", async () => (await tiles(page)).find((t) => t.name === "Bob")?.speaking === true);
    assert.ok(await page.$('.tile.speaking[data-endpoint-id="ep-bob"]'));
    c.pushMediaEvent({ type: "custom", data: { type: "vadNotification", data: { trackId: "ep-bob:a", status: "silence" } } });
    await waitFor("Bob silent", async () => (await tiles(page)).find((t) => t.name === "Bob")?.speaking === false);
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("server error media event: banner, and the client sends disconnect", async () => {
  const srv = await answeringServer();
  const { context, page } = await openRoom(srv, "err", "Me");
  try {
    await waitFor("connected", async () => (await state(page)) === "connected");
    const c = srv.clients[0];
    c.pushMediaEvent({ type: "error", data: { message: "Room is full" } });
    await waitFor("error banner", async () => /Room is full/.test(await page.textContent("#error-banner")));
    await waitFor("disconnect sent", () => c.mediaEvents.some((e) => e.type === "disconnect"));
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("unknown or out-of-order media events do not break the page", async () => {
  const srv = await answeringServer([bob]);
  const { context, page } = await openRoom(srv, "junk", "Me");
  try {
    await waitFor("Bob's tile", async () => (await tiles(page)).some((t) => t.name === "Bob"));
    const c = srv.clients[0];
    c.pushMediaEvent({ type: "somethingNew", data: {} });
    c.pushMediaEvent({ type: "trackUpdated", data: { endpointId: "ep-nobody", trackId: "x", metadata: {} } });
    c.send([c.joinRef, null, c.topic, "mediaEvent", { data: "not json" }]);
    c.send([c.joinRef, null, c.topic, "mediaEvent", { data: { not: "a string" } }]);
    c.pushMediaEvent({ type: "endpointAdded", data: { id: "ep-dan", type: "webrtc", metadata: { displayName: "Dan" } } });
    await waitFor("Dan's tile after the junk", async () => (await tiles(page)).some((t) => t.name === "Dan"));
    assert.equal(await state(page), "connected");
  } finally {
    await context.close();
    await srv.stop();
  }
});
