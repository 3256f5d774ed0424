// Clustering (several Lamina nodes behind one Redis) in headless Chromium.
//
// One redis-server and three nodes: A on 127.0.0.1, B on 127.0.0.2, C on 127.0.0.3 (HTTP, TURN
// and ICE candidates each on its own loopback address; the test's network namespace has lo only;
// each node's URL is the default one, ws://<bound address>).
//   a. A `lamina publish` (videotestsrc) through C places the room on C. Participant 1 opens A's
//      page, participant 2 B's page: both sockets are relayed to C, media goes to C directly;
//      both decode each other and the publisher. Then C is SIGKILLed: A and B close the relayed
//      sockets, both pages reconnect by themselves, the room is re-created on A or B, and both
//      decode each other again within 10 s of the kill.
//   b. `lamina drain` marks B draining: /cluster shows it; a new room's first join through B's
//      page lands on a node that is not draining; the page (relayed by B) still gets media; B
//      exits once the room it owns is empty.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { launchBrowser } from "./lib/browser.mjs";
import { clusterState, drainNode, killNode, roomOwner, startNode, startPublisher, startRedis } from "./lib/cluster.mjs";
import { Participant, waitForMedia } from "./lib/participant.mjs";
import { endpointId, reconnects, waitRejoined } from "./lib/reconnect.mjs";
import { log, metric, roomName, waitFor } from "./lib/util.mjs";

const BACK_WITHIN_MS = 10000;
const AV = { video: true, audio: true };
const remote = (name, media = AV) => ({ name, kind: "remote", ...media });

let browser;
let redis;
const nodes = {};
const open = new Set();
const extras = []; // publishers: stopped after each test, logs on failure

before(async () => {
  redis = await startRedis();
  // Distinct ICE port ranges, so the nodes never race for the same media ports.
  const spec = { a: "127.0.0.1", b: "127.0.0.2", c: "127.0.0.3" };
  const started = await Promise.all(
    Object.entries(spec).map(([k, ip], i) =>
      startNode({
        redisUrl: redis.url,
        id: `node-${k}`,
        ip,
        extraArgs: ["--ice-port-min", String(50000 + i * 1000), "--ice-port-max", String(50999 + i * 1000)],
      }),
    ),
  );
  for (const n of started) nodes[n.id.slice(5)] = n;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await Promise.all(extras.map((x) => x.stop()));
  await Promise.all(Object.values(nodes).map((n) => n.stop()));
  await redis?.stop();
});

function scenario(name, fn) {
  test(name, async () => {
    try {
      await fn();
    } catch (err) {
      for (const n of Object.values(nodes)) err.message += `\n--- ${n.id} log (tail) ---\n${n.tail(40)}`;
      for (const x of extras) err.message += `\n--- ${x.name} log (tail) ---\n${x.tail(20)}`;
      for (const p of open) err.message += `\n--- ${p.name} page log ---\n${p.logs()}`;
      throw err;
    } finally {
      await Promise.all([...open].map((p) => p.close()));
      open.clear();
      await Promise.all(extras.splice(0).map((x) => x.stop()));
    }
  });
}

async function join(node, room, name) {
  const p = await Participant.open(browser, node.url, { room, name, ...AV });
  open.add(p);
  return p;
}

/** Page time from the start of the join to the first presented remote video frame. */
async function firstFrameMs(p) {
  const t = await waitFor(`${p.name}'s first remote frame`, async () => {
    const tm = await p.timings();
    return tm.firstRemoteFrame ? tm : null;
  }, { timeout: 20000, interval: 50 });
  return t.firstRemoteFrame - t.joinStart;
}

const summary = (state) => state.nodes.map((n) => `${n.id}${n.draining ? " (draining)" : ""}: ${JSON.stringify(n.rooms)}`).join("; ");

scenario("a. a room on C joined through A and B; C killed: both pages rejoin on A or B and decode again within 10 s", async () => {
  const { a: A, b: B, c: C } = nodes;
  // Every node lists the three, at their bound addresses (the default --public-url).
  for (const n of [A, B, C]) {
    const s = await clusterState(n);
    assert.equal(s.node, n.id);
    const seen = Object.fromEntries(s.nodes.map((x) => [x.id, `${x.url}${x.draining ? " draining" : ""}`]));
    assert.deepEqual(seen, { "node-a": A.wsUrl, "node-b": B.wsUrl, "node-c": C.wsUrl }, `/cluster of ${n.id}`);
  }
  const room = roomName("cluster");
  const pub = Object.assign(startPublisher({ url: C.socketUrl, room, name: "Publisher" }), { name: "publisher" });
  extras.push(pub);
  await waitFor(`room ${room} on node-c`, async () => (await roomOwner(C, room)) === "node-c", { timeout: 20000, interval: 100 });

  const [p1, p2] = await Promise.all([join(A, room, "Alice"), join(B, room, "Bob")]);
  await Promise.all([p1, p2].map((p) => p.waitConnected()));
  await Promise.all([
    waitForMedia(p1, [remote("Bob"), remote("Publisher", { video: true, audio: false })]),
    waitForMedia(p2, [remote("Alice"), remote("Publisher", { video: true, audio: false })]),
  ]);
  for (const [p, via] of [[p1, "A"], [p2, "B"]]) {
    const ms = await firstFrameMs(p);
    metric(`cluster_join_first_frame_via_${via}_ms`, ms);
    log(`cluster: ${p.name} (page on node ${via}, room on C): join -> first decoded frame ${ms} ms`);
  }
  // Every node sees the room on C.
  for (const n of [A, B]) assert.equal(await roomOwner(n, room), "node-c", summary(await clusterState(n)));

  const [old1, old2] = await Promise.all([endpointId(p1), endpointId(p2)]);
  const tKill = Date.now();
  await killNode(C);
  const back = async (p, oldId, other) => {
    await waitRejoined(p, oldId, { timeout: BACK_WITHIN_MS });
    await waitForMedia(p, [remote(other)], { timeout: Math.max(1000, tKill + BACK_WITHIN_MS - Date.now()), minFrames: 5, minSamples: 2400 });
    return Date.now() - tKill;
  };
  const [ms1, ms2] = await Promise.all([back(p1, old1, "Bob"), back(p2, old2, "Alice")]);
  const recovery = Math.max(ms1, ms2);
  metric("cluster_owner_kill_recovery_ms", recovery);
  log(`cluster: recovery after owner kill: ${(recovery / 1000).toFixed(1)} s (Alice ${ms1} ms, Bob ${ms2} ms)`);
  assert.ok(recovery <= BACK_WITHIN_MS, `decoding again ${recovery} ms after the kill`);

  // The pages noticed the loss and reconnected (no reload): one loss each, reconnected.
  for (const p of [p1, p2]) {
    const recs = await reconnects(p);
    assert.ok(recs.length >= 1 && recs[recs.length - 1].reconnectedAt !== null, `${p.name}: ${JSON.stringify(recs)}`);
    log(`cluster: ${p.name} reconnects ${JSON.stringify(recs)}`);
  }
  // The room lives on A or B now, as both of them see it.
  const owner = await waitFor(`room ${room} on node-a or node-b`, async () => {
    const o = await roomOwner(A, room);
    return o === "node-a" || o === "node-b" ? o : null;
  }, { timeout: 5000 });
  assert.equal(await roomOwner(B, room), owner);
  log(`cluster: room re-created on ${owner}; /cluster: ${summary(await clusterState(A))}`);
  log(`cluster: publisher (was on C) ${pub.child.exitCode !== null || pub.child.signalCode !== null ? "exited" : "still running"}`);
});

scenario("b. drain: a draining node takes no new room, still relays its pages, exits once its rooms are empty", async () => {
  const { a: A, b: B } = nodes;
  // Loads alike (the room of a. ended, and every node's record, refreshed each second, says so):
  // a first join through B then places the room on B itself, and that room keeps B running.
  await waitFor("/cluster: every node idle", async () => {
    const s = await clusterState(B);
    return s.nodes.every((n) => n.peers === 0 && n.rooms.length === 0) ? s : null;
  }, { timeout: 10000, interval: 100 });
  const keepRoom = roomName("cluster-keep");
  const keeper = await join(B, keepRoom, "Keeper");
  await keeper.waitConnected();
  const keepOwner = await waitFor(`room ${keepRoom} placed`, () => roomOwner(B, keepRoom), { timeout: 5000 });
  assert.equal(keepOwner, "node-b", `the first join through B placed the room on ${keepOwner}`);

  const out = await drainNode({ redisUrl: redis.url, id: "node-b" });
  if (out.trim()) log(`cluster: lamina drain: ${out.trim()}`);
  const state = await waitFor("/cluster: node-b draining", async () => {
    const s = await clusterState(A);
    return s.nodes.find((n) => n.id === "node-b")?.draining === true ? s : null;
  }, { timeout: 5000 });
  assert.equal((await clusterState(B)).nodes.find((n) => n.id === "node-b")?.draining, true);

  const room = roomName("cluster-drain");
  const p3 = await join(B, room, "Carol");
  await p3.waitConnected();
  const owner = await waitFor(`room ${room} placed`, () => roomOwner(A, room), { timeout: 5000 });
  const live = (await clusterState(A)).nodes;
  assert.notEqual(owner, "node-b", "a draining node took a new room");
  assert.equal(live.find((n) => n.id === owner)?.draining, false, `owner ${owner}: ${summary({ nodes: live })}`);
  log(`cluster: new room through draining node-b placed on ${owner}; /cluster: ${summary(state)}`);

  // The draining node still relays: Carol (page on B) and Dave (page on A) see each other.
  const p4 = await join(A, room, "Dave");
  await p4.waitConnected();
  await Promise.all([waitForMedia(p3, [remote("Dave")]), waitForMedia(p4, [remote("Carol")])]);

  // Its last room empty, the draining node exits.
  await Promise.all([p3, p4].map((p) => p.close()));
  const tEmpty = Date.now();
  await keeper.close();
  await waitFor("node-b to exit after draining", () => B.child.exitCode !== null || B.child.signalCode !== null, { timeout: 15000, interval: 100 });
  log(`cluster: node-b exited ${Date.now() - tEmpty} ms after its last room emptied (code ${B.child.exitCode}, signal ${B.child.signalCode})`);
  assert.equal(B.child.exitCode, 0);
});
