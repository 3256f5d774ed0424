// Simulcast in a room of three (issue #17, item 7): every page publishes its 1280x720 camera in
// layers l/m/h (the page's default), the server forwards one layer per subscriber.
//
// 1. Bob picks "Low" on Alice's tile; Carol keeps "Auto". Bob receives Alice's l layer, whose
//    frame width is at most half of what Carol receives (her h layer).
// 2. Once Carol has decoded Alice's h steadily for a while (a new frame at every poll), her downlink is
//    constrained: in the test's network namespace nftables polices the datagrams sent to her
//    TURN relay address (the server's socket for her allocation: only her downlink) to
//    RATE_KBYTES kB/s. The server sees her loss (her NACKs) and, later, its estimate of her
//    downlink falls; it switches her down with `encodingSwitched` reason `low_bandwidth` within
//    10 s, and she decodes the lower layer with at most 1 s of freezes more than Bob
//    (unconstrained) saw of Alice meanwhile. Figures: time to the switch, the estimates her
//    page got, her freezes and Bob's.
// 3. The constraint is lifted: within 20 s she is back on h, or on the highest layer Alice
//    still sends (probes lift the cut).
//
// Frame sizes, layers, reasons, estimates and freezes come from the pages' own getStats and
// media events (window.lamina.videoReceive / bandwidthEstimate).
// When the freezes miss their goal (or with LAMINA_E2E_TIMELINE=1) the test prints the
// server's layer decisions (debug log) and a 100 ms timeline of Carol's and Bob's tiles of
// Alice and of what Alice encodes, to tell the SFU's doing from a stalled browser.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { launchBrowser } from "./lib/browser.mjs";
import { startLamina } from "./lib/lamina.mjs";
import { inPrivateNetns, nft } from "./lib/loss.mjs";
import { Participant } from "./lib/participant.mjs";
import { log, roomName, waitFor } from "./lib/util.mjs";

const TABLE = "lamina_e2e_shape";
/**
 * Carol's downlink while constrained, kB/s (560 kbit/s). It carries her lowest layers: the two
 * l layers (120–180 kbit/s each as measured by the server) and two Opus streams come to about
 * 0.4 Mbit/s with headers. Nothing higher fits (m is 270–430 kbit/s, h over 1 Mbit/s). At
 * 50 kB/s even the l layers lost 20–55 % of their packets after the switch: no layer choice
 * can keep a link that cannot carry the lowest layers free of freezes.
 */
const RATE_KBYTES = 70;
/**
 * Most freezes (Chromium's totalFreezesDuration) Carol may see on Alice's tile from the
 * constraint until she decodes the lower layer, beyond those Bob (unconstrained) saw of Alice
 * meanwhile, s.
 */
const FREEZE_GOAL_S = 1;
/** Carol must have decoded Alice's h this long, new frames at every poll, before the constraint. */
const STEADY_MS = 3000;
/** How long Carol may take to get steady on Alice's h after step 1. */
const STEADY_WAIT_MS = 45000;
const SWITCH_DOWN_MS = 10000;
const CLIMB_BACK_MS = 20000;
// Alice's Chromium sends her h layer only once its own uplink estimate allows; with three
// 720p simulcast encoders on two cores that took over 20 s in one of five runs (the server
// had her h marked inactive all along), so step 1 waits longer than that.
const H_LAYER_MS = 45000;
// Policing takes her link from ~2.5 Mbit/s to 0.56 at once (the policer's one-second bucket lets
// a few hundred ms through first): the server sees her NACKs for most packets and cuts her
// layers to the lowest at once, dropping the old layer while the new one's keyframe comes (loss
// cut, layers.rs); a first cut that was too shallow is followed by heavy loss, which goes to the
// lowest layers without waiting, and loss that goes on 0.3 s after a cut cuts again.
// Her climb back to h within 20 s is asserted (3.1–4.8 s in five runs here once passed probes
// seed the estimate and follow each other quickly; before, 0.6–18.3 s, twice over 20 s when
// the estimator's loss controller collapsed the estimate after the lift). Her freezes on
// Alice's tile, from the constraint until she has decoded 15 frames of the lower layer, are
// asserted net of Bob's: all three pages share one Chromium on two cores, and a stall of the
// machine, of the browser or of Alice's encoder stops Bob's tile of Alice too; that is not the
// constraint's doing. Release server, 2-core machine, 42 runs alone since the last fixes:
// Carol 0–0.74 s (median 0.25 s) but once 2.26 s while Bob froze 3.57 s; Bob 0 in 23 of the 26
// runs that measured him; in the full suite 0.24 and 0.47 s. Once, before the last fixes, Carol
// froze 4.39 s against Bob's 2.39 s. The climb back missed 20 s once in the 42 runs (estimate
// 1.04 Mbit/s).

let server;
let browser;
const pages = [];

/** The server's layer decisions, logged at debug (layers.rs, downlink.rs), for the printed timeline. */
const DECISIONS = /layer rates measured|downlink loss|loss cut|layers cut|layer switched|sharp drop|downlink estimate|bandwidth probe|keyframe/;

before(async () => {
  server = await startLamina({ logFilter: process.env.LAMINA_LOG || "info,lamina_core=debug" });
  browser = await launchBrowser({ fakeDevice: "fps=15" });
});

after(async () => {
  await nft(["delete", "table", "inet", TABLE]).catch(() => undefined);
  await Promise.all(pages.map((p) => p.close()));
  await browser?.close().catch(() => undefined);
  await server?.stop();
});

/**
 * Every 100 ms until stop(): Alice's tile at `subject` and, as a control on an unconstrained
 * link, at `control` (frames decoded, layer, width, freezes, keyframes decoded, NACKs, PLIs,
 * packets lost), and what `publisher` (Alice) encodes per layer. A row is kept when the
 * subject's layer, width or freezes changed, or when no frame came for 200 ms: a machine
 * stall shows on both tiles, a publisher's on both and in its layers, the SFU's doing on the
 * subject's tile only.
 */
function sampleTimeline(subject, control, publisher, t0) {
  const rows = [];
  let running = true;
  const cell = (x) =>
    x ? `${x.framesDecoded} ${x.layer} ${x.frameWidth}w ${x.freezeCount}f ${x.totalFreezesDuration?.toFixed(2)}s key ${x.keyFramesDecoded} nack ${x.nackCount} pli ${x.pliCount} lost ${x.packetsLost}` : "-";
  const loop = (async () => {
    let prev = null;
    let lastFrame = { subject: -1, at: Date.now() };
    while (running) {
      const [s, c, sent] = await Promise.all([
        tileOf(subject, "Alice").catch(() => null),
        tileOf(control, "Alice").catch(() => null),
        publisher.eval(() => window.lamina.sendEncodings()).catch(() => []),
      ]);
      const now = Date.now();
      const key = s ? `${s.layer} ${s.frameWidth} ${s.freezeCount}` : "-";
      const stalled = s && s.framesDecoded === lastFrame.subject && now - lastFrame.at >= 200;
      if (s && s.framesDecoded !== lastFrame.subject) lastFrame = { subject: s.framesDecoded, at: now };
      if (key !== prev || stalled) {
        const layers = sent.find((e) => e.type === "camera")?.outbound ?? [];
        const sends = layers.map((o) => `${o.rid} ${o.framesEncoded} ${o.frameWidth}w ${o.bytesSent}B key ${o.keyFramesEncoded} pli ${o.pliCount}`).join(", ");
        rows.push({ s: ((now - t0) / 1000).toFixed(2), [subject.name]: cell(s), [control.name]: cell(c), [`${publisher.name} sends`]: sends });
      }
      prev = key;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return rows;
    },
  };
}

/** The receive state of `p`'s tile of `name`'s camera (videoReceive hook), or undefined. */
async function tileOf(p, name) {
  const all = await p.eval(() => window.lamina.videoReceive());
  return all.find((t) => t.displayName === name && t.kind === "remote");
}

test("three simulcast publishers: layer per subscriber, switched down on a constrained downlink and back up", async (t) => {
  const room = roomName("simulcast-room");
  for (const name of ["Alice", "Bob", "Carol"]) {
    const p = await Participant.open(browser, server.url, { room, name, capture: "1280x720@15", simulcast: true, viewport: { width: 640, height: 480 } });
    pages.push(p);
  }
  const [alice, bob, carol] = pages;
  await Promise.all(pages.map((p) => p.waitConnected(30000)));
  // Everyone decodes both others.
  for (const p of pages) {
    await waitFor(`${p.name} decodes both others`, async () => {
      const v = await p.eval(() => window.lamina.videoReceive());
      return v.filter((x) => x.kind === "remote" && x.framesDecoded > 5).length === 2;
    }, { timeout: 30000, interval: 250 });
  }
  const aliceTileAtBob = await tileOf(bob, "Alice");
  assert.ok(aliceTileAtBob?.simulcast, "Alice's camera is announced as simulcast");

  // 1. Bob on l, Carol on auto (h).
  await bob.eval((id) => window.lamina.pickQuality(id, "l"), aliceTileAtBob.tileId);
  const picked = Date.now();
  const [low, high] = await waitFor("Bob on Alice's l, Carol on her h", async () => {
    const b = await tileOf(bob, "Alice");
    const c = await tileOf(carol, "Alice");
    return b?.layer === "l" && c?.layer === "h" && b.frameWidth > 0 && 2 * b.frameWidth <= c.frameWidth ? [b, c] : null;
  }, { timeout: H_LAYER_MS, interval: 250 }).catch(async (err) => {
    // Which of Alice's layers her Chromium sends, and what limits them.
    const enc = await alice.eval(() => window.lamina.sendEncodings()).catch((e) => String(e));
    err.message += `\nAlice's encodings: ${JSON.stringify(enc)}`;
    throw err;
  });
  log(`Bob receives Alice at ${low.badge} (${low.layerReason}); Carol at ${high.badge} (${high.layerReason}) ${Date.now() - picked} ms after Bob picked l`);
  assert.ok(2 * low.frameWidth <= high.frameWidth);

  if (!(await inPrivateNetns())) {
    t.diagnostic("not in a private network namespace: the downlink part is skipped");
    return;
  }

  // 2. Carol's downlink constrained.
  const relayPort = await carol.eval(() => window.lamina.relayPort());
  assert.ok(Number.isInteger(relayPort), `Carol's relay port: ${relayPort}`);
  // A steady start: the freezes counted are the constraint's, not the end of one from before
  // (Chromium adds a freeze to totalFreezesDuration only when it ends). Steady: every poll saw
  // new frames, so no freeze is under way when the constraint starts (a freeze is a gap of
  // over 217 ms at 15 fps; polls are 250 ms apart). A short freeze that ended inside the window
  // is already in `before` (and Bob's control covers the machine's own stalls). Requiring no
  // new freeze as well timed out once in the full suite: 30 s without 3 s free of one.
  let last = null;
  let steadySince = Date.now();
  await waitFor(`Carol decodes Alice's h, a new frame at every poll for ${STEADY_MS} ms`, async () => {
    const c = await tileOf(carol, "Alice");
    // On h (or the highest layer Alice sends): her estimate may have sat below it for a while
    // (then probes bring her back), and the switch down must be the constraint's. Not on l:
    // when Alice's Chromium sends only l there is nothing to switch down from, and once her
    // upper layers came back during the constraint Carol was moved up into it (one run: 4.5 s
    // of freezes on m before the switch down), which measures the climb, not the switch.
    const onTop = c && (c.layer === "h" || (c.layerReason === "encoding_inactive" && c.layer !== "l"));
    const advancing = onTop && last && c.framesDecoded > last.framesDecoded;
    if (!advancing) steadySince = Date.now();
    last = c;
    return Date.now() - steadySince >= STEADY_MS;
  }, { timeout: STEADY_WAIT_MS, interval: 250 }).catch((err) => {
    err.message += `\nCarol's last tile of Alice: ${JSON.stringify(last)}`;
    throw err;
  });
  const before = await tileOf(carol, "Alice");
  const controlBefore = await tileOf(bob, "Alice");
  const estimateBefore = await carol.eval(() => window.lamina.bandwidthEstimate());
  await nft(["-f", "-"], `table inet ${TABLE} {
  chain input {
    type filter hook input priority 0; policy accept;
    iif "lo" udp dport ${relayPort} limit rate over ${RATE_KBYTES} kbytes/second drop
  }
}
`);
  const constrainedAt = Date.now();
  const decisions = server.collect(DECISIONS);
  const timeline = sampleTimeline(carol, bob, alice, constrainedAt);
  const estimates = [];
  const down = await waitFor("Carol switched down for low bandwidth", async () => {
    const e = await carol.eval(() => window.lamina.bandwidthEstimate());
    if (e && estimates.at(-1)?.bps !== e.bps) estimates.push({ bps: e.bps, s: (Date.now() - constrainedAt) / 1000 });
    const c = await tileOf(carol, "Alice");
    return c && c.layer !== "h" && c.layerReason === "low_bandwidth" ? c : null;
  }, { timeout: SWITCH_DOWN_MS, interval: 200 });
  const switchMs = Date.now() - constrainedAt;
  // Let the lower layer settle, then read her freezes over the constrained period.
  await waitFor("Carol decodes the lower layer", async () => {
    const c = await tileOf(carol, "Alice");
    return c && c.framesDecoded > down.framesDecoded + 15 ? c : null;
  }, { timeout: 10000, interval: 250 });
  const settled = await tileOf(carol, "Alice");
  const controlAfter = await tileOf(bob, "Alice");
  const rows = await timeline.stop();
  const constrainedDecisions = decisions.lines.length;
  const freezeS = settled.totalFreezesDuration - before.totalFreezesDuration;
  // What Bob, unconstrained, saw of Alice over the same window: a stall of the machine, of the
  // browser or of Alice's encoder, not the constraint's doing.
  const controlS = controlAfter.totalFreezesDuration - controlBefore.totalFreezesDuration;
  const excessS = freezeS - controlS;
  log(`constrained to ${RATE_KBYTES} kB/s at ${new Date(constrainedAt).toISOString()}: switched to ${down.layer} after ${switchMs} ms; estimates ${JSON.stringify(estimates)} (before: ${JSON.stringify(estimateBefore)}); freezes ${freezeS.toFixed(2)} s (${settled.freezeCount - before.freezeCount}), Bob's of Alice meanwhile ${controlS.toFixed(2)} s: ${excessS.toFixed(2)} s the constraint's (at most ${FREEZE_GOAL_S} s${excessS > FREEZE_GOAL_S ? ", MISSED" : ""})`);
  if (excessS > FREEZE_GOAL_S || process.env.LAMINA_E2E_TIMELINE) {
    for (const d of decisions.lines.slice(0, constrainedDecisions)) log(`server +${((d.at - constrainedAt) / 1000).toFixed(2)} s: ${d.line}`);
    for (const r of rows) log(`page ${JSON.stringify(r)}`);
  }
  assert.ok(excessS <= FREEZE_GOAL_S, `Carol's freezes while switched down: ${freezeS.toFixed(2)} s, ${excessS.toFixed(2)} s more than Bob's (at most ${FREEZE_GOAL_S} s)`);
  assert.equal(controlAfter.layer, "l", "Bob keeps his choice");
  assert.ok(settled.framesDecoded > down.framesDecoded, "Carol decodes the lower layer");

  // 3. Lifted: back to h within CLIMB_BACK_MS.
  await nft(["delete", "table", "inet", TABLE]);
  const liftedAt = Date.now();
  // Back up: on h, or on the highest layer Alice's Chromium still sends (it turns its upper
  // layers off by itself at times, for up to 35 s here; reason encoding_inactive).
  const up = await waitFor("Carol back on Alice's h (or her highest layer sent)", async () => {
    const c = await tileOf(carol, "Alice");
    return c?.layer === "h" || c?.layerReason === "encoding_inactive" ? c : null;
  }, { timeout: CLIMB_BACK_MS, interval: 250 }).catch(() => null);
  const estimate = JSON.stringify(await carol.eval(() => window.lamina.bandwidthEstimate()));
  decisions.stop();
  log(up ? `lifted: back on ${up.badge} (${up.layerReason}) after ${Date.now() - liftedAt} ms; estimate ${estimate}` : `lifted: not back up within ${CLIMB_BACK_MS} ms; estimate ${estimate}`);
  if (!up || process.env.LAMINA_E2E_TIMELINE) {
    for (const d of decisions.lines.filter((d) => d.at >= liftedAt)) log(`server lifted +${((d.at - liftedAt) / 1000).toFixed(2)} s: ${d.line}`);
  }
  assert.ok(up, `Carol back up within ${CLIMB_BACK_MS} ms of the lift (estimate ${estimate})`);
});
