// Reconnection of the web client (web/src/reconnect.ts, room.ts) in headless Chromium.
//
// Against the real server (LAMINA_BIN, started with --debug-endpoints): two participants with
// the fake camera and microphone decode each other; then
//   a. one page's WebSocket is cut,
//   b. the server fails that page's peer (debug fault route: an `error` media event),
//   c. the server is restarted on the same port,
//   d. every TURN datagram is dropped (nftables, in the test's network namespace) while the
//      WebSockets stay up: only the peer connection state shows it,
//   e. the page's camera was switched (Room.replaceLocalTrack) before its socket is cut;
// each time the dropped page must show "Reconnecting…", rejoin with a new endpoint id, republish
// the same MediaStreamTracks (no new getUserMedia call), and decode the other's video again
// within 10 s; the other page must decode it again; nobody has a duplicate tile, and every
// replaced RTCPeerConnection is closed (the test-mode recorder sees one live one per page).
// Against the fake Phoenix server (lib/fake_server.mjs), without media:
//   f. a socket closed by the server: banner, then a fresh socket and join with the same name;
//   g. giving up (after ?reconnect_giveup_ms=, one minute by default): message and "Rejoin".

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { launchBrowser, newPage } from "./lib/browser.mjs";
import { startFakeServer } from "./lib/fake_server.mjs";
import { restartLamina, startLamina } from "./lib/lamina.mjs";
import { inPrivateNetns } from "./lib/loss.mjs";
import { Participant, waitForMedia, waitForTileColour } from "./lib/participant.mjs";
import {
  blackholeUdpPort,
  countGetUserMedia,
  endpointId,
  gumCalls,
  peerConnections,
  reconnectBanner,
  reconnects,
  remoteTileNames,
  waitRejoined,
} from "./lib/reconnect.mjs";
import { holdsFor, log, metric, roomName, waitFor } from "./lib/util.mjs";

const BACK_WITHIN_MS = 10000;

let browser;
let server;
const open = new Set();

before(async () => {
  server = await startLamina({ extraArgs: ["--debug-endpoints"] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await server?.stop();
});

function scenario(name, fn) {
  test(name, async (t) => {
    try {
      await fn(t);
    } catch (err) {
      err.message += `\n--- server log (tail) ---\n${server ? server.tail(60) : "(no server)"}`;
      for (const p of open) err.message += `\n--- ${p.name} page log ---\n${p.logs()}`;
      throw err;
    } finally {
      await Promise.all([...open].map((p) => p.close()));
      open.clear();
    }
  });
}

const AV = { video: true, audio: true };

/** Alice and Bob (fake camera + microphone) in a fresh room, decoding each other. */
async function pair(prefix) {
  const room = roomName(prefix);
  const [a, b] = await Promise.all(
    ["Alice", "Bob"].map((name) => Participant.open(browser, server.url, { room, name, ...AV, initScript: countGetUserMedia })),
  );
  open.add(a);
  open.add(b);
  await Promise.all([a, b].map((p) => p.waitConnected()));
  await waitForMedia(a, [{ name: "Bob", kind: "remote", ...AV }]);
  await waitForMedia(b, [{ name: "Alice", kind: "remote", ...AV }]);
  return { room, a, b };
}

/** What must not change across a rejoin: the local tracks and the number of device prompts. */
async function localSnapshot(p) {
  return { tracks: await p.eval(() => window.lamina.localMediaTracks()), gum: await gumCalls(p) };
}

/**
 * After `p` dropped at `t0`: it rejoins with a new id and decodes `other` within 10 s, `other`
 * decodes it again, one remote tile each, one live peer connection each, same local tracks.
 */
async function checkBack(p, other, { t0, oldId, before: snap, what }) {
  const newId = await waitRejoined(p, oldId, { timeout: BACK_WITHIN_MS });
  await waitForMedia(p, [{ name: other.name, kind: "remote", ...AV }], {
    timeout: Math.max(1000, t0 + BACK_WITHIN_MS - Date.now()),
    minFrames: 5,
    minSamples: 2400,
  });
  const backMs = Date.now() - t0;
  metric(`reconnect_${what}_decoding_ms`, backMs);
  assert.ok(backMs <= BACK_WITHIN_MS, `${p.name} decoding again after ${backMs} ms`);

  // The other side sees the rejoined participant again, once, under its new endpoint id.
  await waitForMedia(other, [{ name: p.name, kind: "remote", ...AV }], { timeout: BACK_WITHIN_MS });
  const otherTiles = (await other.tiles()).filter((t) => t.kind === "remote");
  assert.deepEqual(otherTiles.map((t) => t.endpointId), [newId]);
  assert.deepEqual(await remoteTileNames(p), [other.name]);
  assert.equal((await p.tiles()).filter((t) => t.kind === "local").length, 1);

  // Same MediaStreamTracks, no new prompt; the old peer connection closed.
  assert.deepEqual(await localSnapshot(p), snap);
  const pcs = await peerConnections(p);
  assert.equal(pcs.live, 1, `${p.name} peer connections ${JSON.stringify(pcs.states)}`);
  assert.ok(pcs.total >= 2, `${p.name} made a new peer connection (${JSON.stringify(pcs.states)})`);
  const recs = await reconnects(p);
  assert.ok(recs.length >= 1 && recs[recs.length - 1].reconnectedAt !== null, JSON.stringify(recs));
  assert.equal(recs[recs.length - 1].endpointId, newId);
  assert.equal((await reconnectBanner(p.page)).visible, false);
  log(`${p.name}: back as ${newId} after ${backMs} ms: ${JSON.stringify(recs)}`);
  return newId;
}

scenario("a. socket cut: the page rejoins, republishes the same tracks and decodes again within 10 s", async () => {
  const { a, b } = await pair("reconnect-cut");
  // Alice is muted: the rejoin must publish her microphone muted again.
  await a.eval(() => window.lamina.room.setLocalActive("audio", false));
  const micOnBob = async () => (await b.remoteTiles()).find((t) => t.name === "Alice")?.mic;
  await waitFor("Bob sees Alice muted", async () => (await micOnBob()) === "off");
  const oldId = await endpointId(a);
  const snap = await localSnapshot(a);
  assert.ok(snap.gum >= 1 && snap.tracks.audio && snap.tracks.camera, JSON.stringify(snap));

  const t0 = Date.now();
  assert.equal(await a.eval(() => window.lamina.cutSocket()), true);
  // The first attempt waits 0.5 s: polling every 20 ms sees the banner.
  await waitFor("Alice's reconnect banner", async () => {
    const [state, banner] = await Promise.all([a.state(), reconnectBanner(a.page)]);
    return state === "reconnecting" && banner.visible && /Connection lost: the connection to the room dropped\. Reconnecting/.test(banner.text);
  }, { timeout: 3000, interval: 20 });
  await checkBack(a, b, { t0, oldId, before: snap, what: "socket_cut" });
  assert.equal(await micOnBob(), "off", "still muted after the rejoin");
  assert.equal(await a.eval(() => window.lamina.tiles().find((t) => t.kind === "local").mic), "off");

  // Bob never lost his own connection.
  assert.equal((await reconnects(b)).length, 0);
  assert.equal((await peerConnections(b)).live, 1);
  // Nothing flaps afterwards: no further loss, still one tile each.
  await holdsFor("no second loss", async () => (await reconnects(a)).length === 1 && (await remoteTileNames(b)).length === 1, {
    duration: 2000,
  });
});

scenario("b. the server fails the peer (error media event): the page rejoins and decodes again", async () => {
  const { room, a, b } = await pair("reconnect-fault");
  const oldId = await endpointId(b);
  const snap = await localSnapshot(b);
  const t0 = Date.now();
  const res = await fetch(`${server.url}/debug/rooms/${encodeURIComponent(room)}/fault?peer=${oldId}`, { method: "POST" });
  assert.equal(res.status, 200, await res.text());
  await checkBack(b, a, { t0, oldId, before: snap, what: "peer_fault" });
  const recs = await reconnects(b);
  assert.equal(recs.length, 1);
  assert.match(recs[0].reason, /^the server ended the session: .*injected fault/);
});

scenario("c. server restart on the same port: both pages rejoin and decode each other again", async () => {
  const { a, b } = await pair("reconnect-restart");
  const oldA = await endpointId(a);
  const oldB = await endpointId(b);
  const snapA = await localSnapshot(a);
  const snapB = await localSnapshot(b);
  const t0 = Date.now();
  server = await restartLamina(server);
  log(`server away for ${server.readyAt - t0} ms (stopped after ${server.stoppedAt - t0} ms)`);
  metric("reconnect_server_restart_away_ms", server.readyAt - t0);
  // The server's absence is not the client's to make up for: 10 s from when it is back.
  const tBack = server.readyAt;
  const [idA, idB] = await Promise.all([waitRejoined(a, oldA), waitRejoined(b, oldB)]);
  assert.notEqual(idA, idB);
  await Promise.all([
    waitForMedia(a, [{ name: "Bob", kind: "remote", ...AV }], { timeout: Math.max(1000, tBack + BACK_WITHIN_MS - Date.now()), minFrames: 5 }),
    waitForMedia(b, [{ name: "Alice", kind: "remote", ...AV }], { timeout: Math.max(1000, tBack + BACK_WITHIN_MS - Date.now()), minFrames: 5 }),
  ]);
  metric("reconnect_server_restart_decoding_ms", Date.now() - t0);
  metric("reconnect_server_restart_decoding_after_ready_ms", Date.now() - tBack);
  for (const [p, snap, other] of [
    [a, snapA, "Bob"],
    [b, snapB, "Alice"],
  ]) {
    assert.deepEqual(await remoteTileNames(p), [other]);
    assert.deepEqual(await localSnapshot(p), snap);
    const pcs = await peerConnections(p);
    assert.equal(pcs.live, 1, `${p.name} peer connections ${JSON.stringify(pcs.states)}`);
    assert.equal((await reconnectBanner(p.page)).visible, false);
  }
});

scenario("d. media path cut (every TURN datagram dropped), sockets up: the pages notice, rejoin and decode again", async (t) => {
  if (!(await inPrivateNetns())) {
    t.skip("not in a private network namespace (LAMINA_E2E_NO_NETNS?): no firewall rules on this host's lo");
    return;
  }
  const { a, b } = await pair("reconnect-ice");
  const oldA = await endpointId(a);
  const oldB = await endpointId(b);
  const snapA = await localSnapshot(a);
  const turnPort = Number(server.turnAddr.split(":")[1]);
  const cut = await blackholeUdpPort(turnPort);
  let t0;
  try {
    const cutAt = Date.now();
    // The WebSockets stay up: only the peer connections' state can tell.
    const recs = await waitFor("both pages to notice the dead media path", async () => {
      const [ra, rb] = await Promise.all([reconnects(a), reconnects(b)]);
      return ra.length > 0 && rb.length > 0 ? [ra[0], rb[0]] : null;
    }, { timeout: 45000, interval: 100 });
    metric("reconnect_media_cut_detected_ms", Math.max(...recs.map((r) => r.lostAt)) - cutAt);
    log(`losses: ${JSON.stringify(recs)}`);
    for (const r of recs) assert.match(r.reason, /media connection/);
  } finally {
    await cut.stop();
    t0 = Date.now();
  }
  await checkBack(a, b, { t0, oldId: oldA, before: snapA, what: "media_cut" });
  const idB = await waitRejoined(b, oldB, { timeout: BACK_WITHIN_MS });
  assert.notEqual(idB, oldB);
  assert.equal((await peerConnections(b)).live, 1);
});

scenario("e. after a camera switch (Room.replaceLocalTrack) a rejoin publishes the new track", async () => {
  const { a, b } = await pair("reconnect-switch");
  const gum = await gumCalls(a);
  // A blue canvas stands in for the other camera (the fake camera is green).
  const canvasTrack = await a.eval(async () => {
    const c = document.createElement("canvas");
    c.width = 320;
    c.height = 240;
    const ctx = c.getContext("2d");
    const draw = () => {
      ctx.fillStyle = "hsl(240, 80%, 50%)";
      ctx.fillRect(0, 0, 320, 240);
      ctx.fillStyle = "#fff";
      ctx.fillRect((Date.now() / 10) % 300, 0, 20, 30);
    };
    draw();
    window.__laminaCanvasTimer = setInterval(draw, 66);
    const track = c.captureStream(15).getVideoTracks()[0];
    return (await window.lamina.room.replaceLocalTrack("camera", track)) ? track.id : null;
  });
  assert.ok(canvasTrack, "replaceLocalTrack refused");
  await waitForTileColour(b, "Alice", 240);
  const snap = await localSnapshot(a);
  assert.equal(snap.tracks.camera, canvasTrack);
  const oldId = await endpointId(a);
  const t0 = Date.now();
  await a.eval(() => window.lamina.cutSocket());
  await checkBack(a, b, { t0, oldId, before: snap, what: "after_switch" });
  await waitForTileColour(b, "Alice", 240, { timeout: 5000 });
  assert.equal(await gumCalls(a), gum);
});

// ---------------------------------------------------------------------------------------------
// Against the fake server (no media)

/** Fake server that answers `connect` like the real one (no other endpoints), id per connect. */
function answeringServer(port = 0) {
  let n = 0;
  return startFakeServer({
    port,
    onMediaEvent(c, ev) {
      if (ev.type !== "connect") return;
      n += 1;
      c.pushMediaEvent({ type: "connected", data: { id: `ep-${port}-${n}`, otherEndpoints: [] } });
    },
  });
}

async function openFakeRoom(srv, extra = "") {
  const { context, page } = await newPage(browser);
  await page.goto(`${srv.url}/room/fake?display_name=Me&test=1&video=0&audio=0${extra}`);
  return { context, page };
}

const pageState = (page) => page.evaluate(() => window.lamina.state());

test("f. socket closed by the server: 'Reconnecting…', then a fresh socket joins with the same name", async () => {
  const srv = await answeringServer();
  const { context, page } = await openFakeRoom(srv);
  try {
    await waitFor("connected", async () => (await pageState(page)) === "connected");
    srv.clients[0].close();
    await waitFor("reconnect banner", async () => {
      const b = await reconnectBanner(page);
      return b.visible && /Connection lost.*Reconnecting/.test(b.text);
    }, { timeout: 3000, interval: 20 });
    await waitFor("connected again", async () => (await pageState(page)) === "connected" && srv.clients.length === 2);
    const second = srv.clients[1];
    const connect = second.mediaEvents.find((e) => e.type === "connect");
    assert.deepEqual(connect?.data?.metadata, { displayName: "Me" });
    assert.equal(second.joins().length, 1);
    assert.equal(srv.clients[0].ws.readyState, 3 /* CLOSED */);
    assert.equal((await reconnectBanner(page)).visible, false);
    assert.equal(await page.isVisible("#left-panel"), false);
    // Exactly one new socket, no second join on it (Phoenix's own rejoin is off with the old socket).
    await holdsFor("no further connection", () => srv.clients.length === 2 && second.joins().length === 1, { duration: 1500 });
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("g. gives up after the deadline with a 'Rejoin' button that starts over", async () => {
  const srv = await answeringServer();
  const port = Number(new URL(srv.url).port);
  const { context, page } = await openFakeRoom(srv, "&reconnect_giveup_ms=2500");
  let srv2 = null;
  try {
    await waitFor("connected", async () => (await pageState(page)) === "connected");
    await srv.stop(); // gone: every attempt fails
    await waitFor("reconnecting", async () => (await pageState(page)) === "reconnecting");
    const gaveUp = await waitFor("the give-up message", async () => {
      const b = await reconnectBanner(page);
      return (await pageState(page)) === "failed" && b.state === "gave-up" && b.rejoinVisible ? b : null;
    }, { timeout: 8000 });
    assert.match(gaveUp.text, /Could not reconnect/);
    const attempts = (await page.evaluate(() => window.lamina.reconnects()))[0].attempts;
    assert.ok(attempts >= 2, `attempts before giving up: ${attempts}`);
    assert.equal(await page.isEnabled("#leave-button"), true);

    // The server is back, but nothing retries on its own any more.
    srv2 = await answeringServer(port);
    await holdsFor("no attempt after giving up", () => srv2.clients.length === 0, { duration: 1500 });
    await page.click("#reconnect-rejoin-button");
    await waitFor("connected after Rejoin", async () => (await pageState(page)) === "connected");
    assert.equal(srv2.clients.length, 1);
    assert.deepEqual(srv2.clients[0].mediaEvents.find((e) => e.type === "connect")?.data?.metadata, { displayName: "Me" });
    assert.equal((await reconnectBanner(page)).visible, false);
  } finally {
    await context.close();
    await srv2?.stop();
  }
});
