// Simulcast, the page's side (issue #17, item 6): what works with the page alone, whatever the
// server does with the layers.
//
// Unit part: the badge text and tooltip, the picker's layer for each choice, the SDP helpers
// (web/src/quality.ts and simulcast.ts bundled with esbuild).
// Real server: Alice publishes a 1280x720 camera with the page's default (simulcast): her
// camera transceiver asked for rids l / m / h at 1/4, 1/2 and full size and offered
// a=simulcast:send l;m;h. A server that takes the layers answers a=simulcast (the sender keeps
// three encodings and sends all three); one that does not leaves one encoding, which the page
// sends at full size and keeps renegotiating with (Bob, who joins later, is received by
// Alice: her re-offer stays valid). Bob's remote tile of Alice shows the received resolution
// in its badge; `pickQuality` sends `setTargetTrackVariant` on the WebSocket ("auto" → "h"),
// and when the server forwards layers, "l" gets Bob Alice's 320x180 layer.
// Bob's small camera (320x240) and a `?simulcast=0` page (1280x720) publish one encoding. A
// camera switch keeps the layers. Without RTCRtpTransceiver.setHeaderExtensionsToNegotiate a
// page whose layers were refused joins again without simulcast (and then renegotiates fine).
// Fake server (scripted media events): the picker shows only on a track announced with
// simulcastConfig.enabled; choosing in it sends setTargetTrackVariant; encodingSwitched sets
// the badge's layer (reason in its tooltip); bandwidthEstimation reaches the test hook.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";

import { launchBrowser, newPage } from "./lib/browser.mjs";
import { startFakeServer } from "./lib/fake_server.mjs";
import { startLamina } from "./lib/lamina.mjs";
import { Participant, waitForMedia } from "./lib/participant.mjs";
import { REPO_DIR, log, roomName, waitFor } from "./lib/util.mjs";

// ---------------------------------------------------------------------------------------------
// Unit tests of the pure part

async function bundle(entry) {
  const require = createRequire(join(REPO_DIR, "web/package.json"));
  const esbuild = require("esbuild");
  const dir = mkdtempSync(join(tmpdir(), "lamina-simulcast-"));
  const out = join(dir, "m.mjs");
  await esbuild.build({ entryPoints: [join(REPO_DIR, entry)], outfile: out, bundle: true, format: "esm", platform: "neutral", logLevel: "warning" });
  try {
    return await import(pathToFileURL(out).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("badge, picker and SDP helpers (pure)", () => {
  test("formatBadge, choiceLayer, simulcastLine", async () => {
    const q = await bundle("web/src/quality.ts");
    const sample = { direction: "inbound", streams: 2, hasVideo: true, width: 1280, height: 720 };
    assert.deepEqual(q.formatBadge(sample, { encoding: null, reason: null }), { text: "1280×720 · —", title: "Receiving 1280×720, layer —" });
    const b = q.formatBadge({ ...sample, width: 640, height: 360 }, { encoding: "m", reason: "lowBandwidth" });
    assert.equal(b.text, "640×360 · m");
    assert.match(b.title, /layer m \(medium\), reason: lowBandwidth/);
    assert.equal(q.formatBadge({ ...sample, width: null, height: null }, { encoding: "h", reason: "other" }).text, "— · h");
    // Membrane servers (and Lamina) send the reason in snake_case.
    assert.match(q.formatBadge(sample, { encoding: "l", reason: "low_bandwidth" }).title, /reason: low_bandwidth \(not enough bandwidth/);
    assert.deepEqual(["auto", "h", "m", "l"].map(q.choiceLayer), ["h", "h", "m", "l"]);
    assert.deepEqual(q.QUALITY_CHOICES.map((c) => c.value), ["auto", "h", "m", "l"]);

    const s = await bundle("web/src/simulcast.ts");
    const sdp = ["v=0", "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:1", "a=rid:l send", "a=simulcast:send l;~m;~h", ""].join("\r\n");
    assert.equal(s.simulcastLine(sdp, "1"), "send l;~m;~h");
    assert.equal(s.simulcastLine(sdp, "0"), null);
    assert.equal(s.simulcastLine(sdp, "2"), null);
    assert.deepEqual(s.sdpSection(sdp, "0"), ["m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Real server

/** The rids of an a=simulcast value ("send l;~m;~h" → ["l", "m", "h"]), paused ones included. */
const ridsOf = (line) => (line ?? "").replace(/^send\s+/, "").split(/\s/)[0].split(";").filter(Boolean).map((r) => r.replace(/^~/, ""));

/** The camera entry of sendEncodings() once a negotiation has completed. */
async function cameraEncodings(p) {
  return waitFor(`${p.name}: camera sender negotiated`, async () => {
    const all = await p.eval(() => window.lamina.sendEncodings());
    const cam = all.find((e) => e.type === "camera");
    const state = await p.eval(() => window.lamina.simulcastState());
    // A camera sent in layers: its m-line must be in the applied local description (during a
    // renegotiation `currentLocalDescription` is still the previous one).
    const layered = (cam?.requested?.length ?? 0) > 1;
    const negotiated = state?.camera === false || (state?.answer !== "none" && (!layered || cam?.offerSimulcast != null));
    return cam && state && state.camera !== null && negotiated ? { cam, state } : null;
  }, { timeout: 15000, interval: 200 });
}

describe("simulcast with the real server", () => {
  let browser;
  let server;
  const open = new Set();

  before(async () => {
    server = await startLamina();
    browser = await launchBrowser({ fakeDevice: "fps=24" });
  });

  after(async () => {
    await Promise.all([...open].map((p) => p.close()));
    await browser?.close().catch(() => undefined);
    await server?.stop();
  });

  test("a 1280x720 camera goes out in layers l/m/h; the badge and the picker's media event on the other page", async () => {
    const room = roomName("simulcast");
    // Alice: the page's defaults (simulcast on) with a 720p camera.
    const alice = await Participant.open(browser, server.url, { room, name: "Alice", capture: "1280x720@24", simulcast: true, viewport: { width: 640, height: 480 } });
    open.add(alice);
    await alice.waitConnected();
    const { cam, state } = await cameraEncodings(alice);
    log(`Alice: ${JSON.stringify(state)} requested ${JSON.stringify(cam.requested)} current ${JSON.stringify(cam.current)} offer ${cam.offerSimulcast} answer ${cam.answerSimulcast}`);
    assert.deepEqual(state, { enabled: true, refused: false, camera: true, answer: state.answer });
    assert.deepEqual(cam.requested.map((e) => [e.rid, e.scaleResolutionDownBy ?? 1, e.active]), [["l", 4, true], ["m", 2, true], ["h", 1, true]]);
    assert.deepEqual(ridsOf(cam.offerSimulcast), ["l", "m", "h"], `offer a=simulcast:${cam.offerSimulcast}`);

    // Bob joins later (Alice must renegotiate to receive him), with the test camera (320x240)
    // and the page's defaults; his WebSocket frames are watched.
    const { context, page } = await newPage(browser, { width: 640, height: 480 });
    const bob = new Participant("Bob", context, page, {});
    open.add(bob);
    const sent = [];
    page.on("websocket", (ws) => ws.on("framesent", (f) => sent.push(String(f.payload))));
    await page.goto(`${server.url}/room/${encodeURIComponent(room)}?${new URLSearchParams({ display_name: "Bob", test: "1" })}`);
    await bob.waitConnected();
    await Promise.all([waitForMedia(alice, [{ name: "Bob", kind: "remote", video: true, audio: true }]), waitForMedia(bob, [{ name: "Alice", kind: "remote", video: true, audio: true }])]);

    const bobCam = await cameraEncodings(bob);
    assert.equal(bobCam.state.camera, false, "a 320x240 camera goes out in one encoding");
    assert.equal(bobCam.cam.requested.length, 1);
    assert.equal(bobCam.cam.offerSimulcast, null);

    // What the server made of Alice's layers.
    const after = await cameraEncodings(alice);
    if (after.cam.answerSimulcast !== null) {
      // Taken: three encodings, each sent (the top one once the bandwidth allows it).
      assert.equal(after.state.answer, "taken");
      assert.deepEqual(after.cam.current.map((e) => e.rid), ["l", "m", "h"]);
      const out = await waitFor("Alice sends l, m and h", async () => {
        const c = (await alice.eval(() => window.lamina.sendEncodings())).find((e) => e.type === "camera");
        const live = c.outbound.filter((o) => o.framesEncoded > 0).map((o) => o.rid);
        return ["l", "m", "h"].every((r) => live.includes(r)) ? c.outbound : null;
      }, { timeout: 30000, interval: 500 });
      log(`server took the layers: ${JSON.stringify(out.map((o) => `${o.rid}:${o.frameWidth}x${o.frameHeight}`))}`);
    } else {
      // Refused (today's server): one encoding, at full size, and renegotiation still works
      // (Alice receives Bob, checked above).
      assert.equal(after.state.answer, "refused");
      assert.equal(after.cam.current.length, 1);
      assert.equal(after.cam.current[0].scaleResolutionDownBy ?? 1, 1, "the one encoding left is not scaled down");
      log(`server refused the layers: current ${JSON.stringify(after.cam.current)}, offer a=simulcast:${after.cam.offerSimulcast}`);
    }

    // Bob's tile of Alice: the badge shows the resolution getStats reports.
    const aliceTile = (await bob.remoteTiles()).find((t) => t.name === "Alice");
    const seen = await waitFor("Bob's badge on Alice's tile", async () => {
      const v = (await bob.eval(() => window.lamina.videoReceive())).find((x) => x.tileId === aliceTile.id);
      const dom = await bob.eval((id) => {
        const b = document.querySelector(`.tile[data-tile-id="${CSS.escape(id)}"] .quality-badge`);
        const r = b?.getBoundingClientRect();
        const aria = b?.closest(".quality-indicator")?.getAttribute("aria-label");
        return b ? { text: b.textContent, visible: !b.hidden && r.width > 0 && r.height > 0, aria } : null;
      }, aliceTile.id);
      const ok = v && v.frameWidth > 0 && dom?.visible && v.badge === `${v.frameWidth}×${v.frameHeight} · ${v.layer ?? "—"}` && dom.text === v.badge;
      return ok ? { v, dom } : null;
    }, { timeout: 15000, interval: 250 });
    log(`Bob sees Alice: ${JSON.stringify(seen.v)}`);
    assert.ok(seen.v.framesDecoded > 0);
    assert.equal(typeof seen.v.freezeCount, "number");
    assert.equal(typeof seen.v.totalFreezesDuration, "number");
    assert.match(seen.v.badgeTitle, /^Receiving \d+×\d+, layer /);
    assert.match(seen.dom.aria, /^Receiving quality: .*; receiving \d+×\d+, layer /, "the badge is in the indicator's accessible name");
    // The picker shows only for a track the server announced as simulcast.
    const pickerShown = await bob.eval((id) => !document.querySelector(`.tile[data-tile-id="${CSS.escape(id)}"] .quality-pick`).hidden, aliceTile.id);
    assert.equal(pickerShown, seen.v.simulcast);

    // Picking a quality (the picker's path) sends setTargetTrackVariant for Alice's camera track.
    const variantFrames = () =>
      sent
        .filter((f) => f.includes("setTargetTrackVariant"))
        .map((f) => JSON.parse(JSON.parse(f)[4].data).data.data);
    for (const [choice, variant] of [["l", "l"], ["m", "m"], ["auto", "h"]]) {
      const r = await bob.eval(([id, c]) => window.lamina.pickQuality(id, c), [aliceTile.id, choice]);
      assert.deepEqual(r, { trackId: seen.v.trackId, variant });
      await waitFor(`setTargetTrackVariant ${variant} on the WebSocket`, () => variantFrames().some((d) => d.trackId === seen.v.trackId && d.variant === variant), { timeout: 5000 });
    }
    assert.deepEqual(variantFrames(), [["l"], ["m"], ["h"]].map(([v]) => ({ trackId: seen.v.trackId, variant: v })));
    if (seen.v.simulcast) {
      // A server that forwards layers: "Low" switches Bob to Alice's l layer (1280/4 wide).
      await bob.eval(([id]) => window.lamina.pickQuality(id, "l"), [aliceTile.id]);
      const low = await waitFor("Bob receives Alice's l layer", async () => {
        const x = (await bob.eval(() => window.lamina.videoReceive())).find((t) => t.tileId === aliceTile.id);
        return x.layer === "l" && x.frameWidth === 320 && x.badge === "320×180 · l" ? x : null;
      }, { timeout: 10000, interval: 200 });
      log(`after picking Low: ${low.badge} (${low.layerReason})`);
      await bob.eval(([id]) => window.lamina.pickQuality(id, "auto"), [aliceTile.id]);
    }
    const v = (await bob.eval(() => window.lamina.videoReceive())).find((x) => x.tileId === aliceTile.id);
    assert.equal(v.choice, "auto");
    // The server keeps both in the room, Alice's video keeps flowing.
    await waitForMedia(bob, [{ name: "Alice", kind: "remote", video: true, audio: true }], { timeout: 10000 });
    assert.equal(await bob.state(), "connected");
    log(`bandwidth estimate on Bob's page: ${JSON.stringify(await bob.eval(() => window.lamina.bandwidthEstimate()))}`);

    // A camera switch (Devices panel: Room.replaceLocalTrack) keeps the simulcast sender.
    const before = (await cameraEncodings(alice)).cam;
    const switched = await alice.eval(async () => {
      const s = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720, frameRate: 24 } });
      const t = s.getVideoTracks()[0];
      const ok = await window.lamina.room.replaceLocalTrack("camera", t);
      return { ok, id: t.id };
    });
    assert.equal(switched.ok, true);
    const now = (await cameraEncodings(alice)).cam;
    assert.equal(now.mediaTrackId, switched.id);
    assert.deepEqual(now.current.map((e) => e.rid), before.current.map((e) => e.rid));
    await waitForMedia(bob, [{ name: "Alice", kind: "remote", video: true, audio: true }], { timeout: 10000 });
  });

  test("a browser that cannot offer the RID extension again rejoins without simulcast when the server refuses it", async () => {
    const room = roomName("stuck");
    // Take away RTCRtpTransceiver.setHeaderExtensionsToNegotiate (as in browsers without it).
    const initScript = () => {
      delete RTCRtpTransceiver.prototype.setHeaderExtensionsToNegotiate;
    };
    const dan = await Participant.open(browser, server.url, { room, name: "Dan", capture: "1280x720@24", simulcast: true, initScript });
    open.add(dan);
    await dan.waitConnected();
    const first = await cameraEncodings(dan);
    if (first.state.answer === "taken") {
      log("the server takes simulcast: nothing to fall back from");
      return;
    }
    // Refused: the page joined again, publishing one encoding, and stays there.
    const state = await waitFor("Dan joined again without simulcast", async () => {
      const st = await dan.eval(() => window.lamina.simulcastState());
      return st.refused && st.camera === false && (await dan.state()) === "connected" ? st : null;
    }, { timeout: 15000, interval: 200 });
    assert.deepEqual(state, { enabled: true, refused: true, camera: false, answer: "none" });
    const rec = await dan.eval(() => window.lamina.reconnects());
    assert.equal(rec.length, 1);
    assert.match(rec[0].reason, /does not take simulcast/);
    const { cam } = await cameraEncodings(dan);
    assert.equal(cam.requested.length, 1);
    assert.equal(cam.offerSimulcast, null);
    // Erin joins later: both receive each other (Dan renegotiates fine).
    const erin = await Participant.open(browser, server.url, { room, name: "Erin", simulcast: true });
    open.add(erin);
    await erin.waitConnected();
    await Promise.all([
      waitForMedia(dan, [{ name: "Erin", kind: "remote", video: true, audio: true }]),
      waitForMedia(erin, [{ name: "Dan", kind: "remote", video: true, audio: true }]),
    ]);
    assert.equal((await dan.eval(() => window.lamina.reconnects())).length, 1, "no further rejoin");
  });

  test("?simulcast=0: a 1280x720 camera goes out in one encoding", async () => {
    const carol = await Participant.open(browser, server.url, { room: roomName("nosimulcast"), name: "Carol", capture: "1280x720@24" });
    open.add(carol);
    assert.match(await carol.eval(() => window.location.search), /simulcast=0/);
    await carol.waitConnected();
    const { cam, state } = await cameraEncodings(carol);
    assert.deepEqual(state, { enabled: false, refused: false, camera: false, answer: "none" });
    assert.equal(cam.requested.length, 1);
    assert.equal(cam.requested[0].rid, null);
    assert.equal(cam.current.length, 1);
    assert.equal(cam.offerSimulcast, null);
  });
});

// ---------------------------------------------------------------------------------------------
// Fake server: the picker and the badge's layer from scripted media events

describe("picker and layer badge (fake server)", () => {
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  const track = (type, simulcast) => ({
    metadata: { type, active: true },
    simulcastConfig: simulcast ? { enabled: true, activeEncodings: ["l", "m", "h"], disabledEncodings: [] } : { enabled: false, activeEncodings: [], disabledEncodings: [] },
  });
  const endpoint = (id, name, simulcast) => ({
    id,
    type: "webrtc",
    metadata: { displayName: name },
    trackIdToMetadata: { [`${id}:a`]: { type: "audio", active: true }, [`${id}:v`]: { type: "camera", active: true } },
    tracks: { [`${id}:a`]: track("audio", false), [`${id}:v`]: track("camera", simulcast) },
  });
  const others = [endpoint("ep-bob", "Bob", true), endpoint("ep-carol", "Carol", false)];

  test("the picker shows for a simulcast track only and sends setTargetTrackVariant; encodingSwitched sets the layer", async () => {
    const srv = await startFakeServer({
      onMediaEvent(c, ev) {
        if (ev.type !== "connect") return;
        c.pushMediaEvent({ type: "connected", data: { id: "ep-me", otherEndpoints: others } });
        for (const o of others) c.pushMediaEvent({ type: "tracksAdded", data: { endpointId: o.id, trackIdToMetadata: o.trackIdToMetadata, tracks: o.tracks } });
      },
    });
    const { context, page } = await newPage(browser, { width: 900, height: 600 });
    try {
      await page.goto(`${srv.url}/room/picker?display_name=Me&test=1`);
      await waitFor("connected", async () => (await page.evaluate(() => window.lamina.state())) === "connected");
      const c = srv.clients[0];
      const pick = (id) => `.tile[data-tile-id="${id}"] .quality-pick`;
      await waitFor("quality widgets on both tiles", async () => (await page.$$(".tile .quality")).length >= 3);
      const hidden = (sel) => page.$eval(sel, (e) => e.hidden);
      assert.equal(await hidden(pick("ep-bob")), false, "Bob's camera is simulcast: picker");
      assert.equal(await hidden(pick("ep-carol")), true, "Carol's is not: no picker");
      assert.equal(await page.$eval('.tile[data-tile-id="ep-bob"] .quality', (e) => e.dataset.simulcast), "true");

      // The user opens Bob's details and picks "Low", then "Auto".
      await page.click('.tile[data-tile-id="ep-bob"] .quality-indicator');
      await page.waitForSelector(`${pick("ep-bob")} select`, { state: "visible" });
      const variants = () => c.mediaEvents.filter((e) => e.type === "setTargetTrackVariant").map((e) => e.data);
      await page.selectOption(`${pick("ep-bob")} select`, "l");
      await waitFor("setTargetTrackVariant l", () => variants().length === 1);
      assert.deepEqual(variants()[0], { trackId: "ep-bob:v", variant: "l" });
      await page.selectOption(`${pick("ep-bob")} select`, "auto");
      await waitFor("setTargetTrackVariant h", () => variants().length === 2);
      assert.deepEqual(variants()[1], { trackId: "ep-bob:v", variant: "h" });
      // The test hook takes the same path.
      assert.deepEqual(await page.evaluate(() => window.lamina.pickQuality("ep-bob", "m")), { trackId: "ep-bob:v", variant: "m" });
      await waitFor("setTargetTrackVariant m", () => variants().length === 3);
      assert.equal(await page.$eval(`${pick("ep-bob")} select`, (s) => s.value), "m");
      // Carol's camera is not simulcast: the hook still sends (the server decides), no picker.
      assert.deepEqual(await page.evaluate(() => window.lamina.pickQuality("ep-carol", "l")), { trackId: "ep-carol:v", variant: "l" });
      assert.equal(await page.evaluate(() => window.lamina.pickQuality("nobody", "l")), null);

      // The server switches Bob's layer: the badge shows it, the reason in its tooltip.
      const badge = () => page.$eval('.tile[data-tile-id="ep-bob"] .quality-badge', (b) => ({ hidden: b.hidden, text: b.textContent, title: b.title, layer: b.dataset.layer }));
      assert.equal((await badge()).hidden, true, "no video and no layer yet: no badge");
      c.pushMediaEvent({ type: "custom", data: { type: "encodingSwitched", data: { endpointId: "ep-bob", trackId: "ep-bob:v", encoding: "m", reason: "lowBandwidth" } } });
      const b = await waitFor("badge with layer m", async () => {
        const x = await badge();
        return !x.hidden && x.layer === "m" ? x : null;
      });
      assert.equal(b.text, "— · m");
      assert.match(b.title, /layer m \(medium\), reason: lowBandwidth/);
      const rx = (await page.evaluate(() => window.lamina.videoReceive())).find((x) => x.tileId === "ep-bob");
      assert.deepEqual(
        { simulcast: rx.simulcast, choice: rx.choice, layer: rx.layer, layerReason: rx.layerReason, trackId: rx.trackId },
        { simulcast: true, choice: "m", layer: "m", layerReason: "lowBandwidth", trackId: "ep-bob:v" },
      );
      const carol = (await page.evaluate(() => window.lamina.videoReceive())).find((x) => x.tileId === "ep-carol");
      assert.equal(carol.simulcast, false);
      assert.equal(carol.layer, null);

      // The server's bandwidth estimate reaches the hook.
      assert.equal(await page.evaluate(() => window.lamina.bandwidthEstimate()), null);
      c.pushMediaEvent({ type: "custom", data: { type: "bandwidthEstimation", data: { estimation: 1234567 } } });
      const bwe = await waitFor("bandwidth estimate", () => page.evaluate(() => window.lamina.bandwidthEstimate()));
      assert.equal(bwe.bps, 1234567);
      assert.ok(Math.abs(bwe.at - Date.now()) < 10000);
    } finally {
      await context.close();
      await srv.stop();
    }
  });
});
