// Connection quality indicator (web/src/quality.ts).
//
// Unit part: quality.ts is bundled with the web client's esbuild and its pure functions are fed
// hand-made getStats() entries: loss, round trip, bitrate, fps and resolution of a sample, and
// the good / fair / poor thresholds.
// End to end (real server, headless Chromium): two participants; the remote tile has an
// indicator that says "good" on loopback, and its details panel (opened by a click) shows the
// loss, round trip, bitrate, frames/s and resolution measured by the page's getStats() (the
// resolution and frame rate agree with what the test hooks read from getStats themselves); the
// local tile has one too, fed by the outbound side (remote-inbound-rtp).

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";

import { launchBrowser } from "./lib/browser.mjs";
import { startLamina } from "./lib/lamina.mjs";
import { Participant, waitForMedia } from "./lib/participant.mjs";
import { REPO_DIR, log, roomName, waitFor } from "./lib/util.mjs";

// ---------------------------------------------------------------------------------------------
// Unit tests of the pure part

async function loadQuality() {
  const require = createRequire(join(REPO_DIR, "web/package.json"));
  const esbuild = require("esbuild");
  const dir = mkdtempSync(join(tmpdir(), "lamina-quality-"));
  const out = join(dir, "quality.mjs");
  await esbuild.build({
    entryPoints: [join(REPO_DIR, "web/src/quality.ts")],
    outfile: out,
    bundle: true,
    format: "esm",
    platform: "neutral",
    logLevel: "warning",
  });
  try {
    return await import(pathToFileURL(out).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Stats entries as Chromium reports them: one inbound video + audio stream over a relay pair. */
function inboundReport(t, { packets, lost, bytes, frames, audioBytes, audioPackets, rtt = 0.004, fps = 15 }) {
  return [
    { id: "T01", type: "transport", timestamp: t, selectedCandidatePairId: "CP1" },
    { id: "CP1", type: "candidate-pair", timestamp: t, state: "succeeded", nominated: true, currentRoundTripTime: rtt },
    {
      id: "IV1", type: "inbound-rtp", kind: "video", timestamp: t, trackIdentifier: "vt", transportId: "T01",
      packetsReceived: packets, packetsLost: lost, bytesReceived: bytes, framesDecoded: frames,
      framesPerSecond: fps, frameWidth: 320, frameHeight: 240,
    },
    {
      id: "IA1", type: "inbound-rtp", kind: "audio", timestamp: t, trackIdentifier: "at", transportId: "T01",
      packetsReceived: audioPackets, packetsLost: 0, bytesReceived: audioBytes,
    },
    // Someone else's stream: never counted.
    { id: "IV2", type: "inbound-rtp", kind: "video", timestamp: t, trackIdentifier: "other", packetsReceived: 1, packetsLost: 999, bytesReceived: 1 },
  ];
}

describe("quality.ts (pure functions)", () => {
  let q;
  before(async () => {
    q = await loadQuality();
  });

  test("inbound sample: loss, bitrate, fps, resolution and RTT from two reports", () => {
    const r0 = q.inboundSample(inboundReport(1000, { packets: 100, lost: 0, bytes: 100000, frames: 10, audioBytes: 5000, audioPackets: 50 }), ["vt", "at"], null, 1000);
    assert.equal(r0.sample.streams, 2);
    assert.equal(r0.sample.lossPercent, null, "no loss before a delta");
    assert.equal(r0.sample.bitrateKbps, null);
    assert.equal(q.classify(r0.sample, { videoActive: true }).level, "good", "RTT alone is known");
    const r1 = q.inboundSample(
      inboundReport(3000, { packets: 290, lost: 10, bytes: 350000, frames: 40, audioBytes: 15000, audioPackets: 150 }),
      ["vt", "at"], r0.counters, 3000,
    );
    const s = r1.sample;
    // 10 lost of 10 + 190 + 100 expected over 2 s.
    assert.ok(Math.abs(s.lossPercent - (100 * 10) / 300) < 1e-9, String(s.lossPercent));
    assert.equal(s.bitrateKbps, ((250000 + 10000) * 8) / 2 / 1000);
    assert.equal(s.videoBitrateKbps, (250000 * 8) / 2 / 1000);
    assert.equal(s.fps, 15);
    assert.equal(s.width, 320);
    assert.equal(s.height, 240);
    assert.equal(s.rttMs, 4);
    assert.deepEqual(q.classify(s, { videoActive: true }), { level: "fair", reasons: ["loss 3.3 %"] });
  });

  test("thresholds: good, fair, poor", () => {
    const base = {
      direction: "inbound", streams: 2, hasVideo: true, lossPercent: 0, rttMs: 20, bitrateKbps: 400,
      videoBitrateKbps: 350, fps: 15, width: 320, height: 240, qualityLimitation: null,
    };
    const level = (over, opts = { videoActive: true }) => q.classify({ ...base, ...over }, opts).level;
    assert.equal(level({}), "good");
    assert.equal(level({ lossPercent: 2.9 }), "good");
    assert.equal(level({ lossPercent: 3 }), "fair");
    assert.equal(level({ lossPercent: 10 }), "poor");
    assert.equal(level({ rttMs: 199 }), "good");
    assert.equal(level({ rttMs: 200 }), "fair");
    assert.equal(level({ rttMs: 500 }), "poor");
    assert.equal(level({ fps: 0, videoBitrateKbps: 0 }), "poor", "stalled video");
    assert.equal(level({ videoBitrateKbps: 5 }), "good", "a still picture: few bits, frames keep coming");
    assert.equal(level({ fps: null, videoBitrateKbps: 5 }), "poor", "no frame rate: the bitrate decides");
    assert.equal(level({ fps: 0, videoBitrateKbps: 0 }, { videoActive: false }), "good", "camera off: no video expected");
    assert.equal(level({ streams: 0 }), "unknown");
    assert.equal(level({ lossPercent: null, rttMs: null, bitrateKbps: null }), "unknown");
    assert.equal(level({ direction: "outbound", qualityLimitation: "bandwidth" }), "fair");
    assert.equal(level({ lossPercent: 4, rttMs: 600 }), "poor");
    assert.deepEqual(q.classify({ ...base, lossPercent: 4, rttMs: 600 }).reasons, ["loss 4.0 %", "round trip 600 ms"]);
  });

  test("counters that go backwards or a missing stream give no delta", () => {
    const r0 = q.inboundSample(inboundReport(1000, { packets: 500, lost: 5, bytes: 500000, frames: 50, audioBytes: 0, audioPackets: 0 }), ["vt"], null, 1000);
    const r1 = q.inboundSample(inboundReport(2000, { packets: 10, lost: 0, bytes: 1000, frames: 1, audioBytes: 0, audioPackets: 0 }), ["vt"], r0.counters, 2000);
    assert.equal(r1.sample.lossPercent, null);
    assert.equal(r1.sample.bitrateKbps, null);
    assert.equal(r1.sample.fps, 15, "framesPerSecond needs no delta");
    const none = q.inboundSample(inboundReport(2000, { packets: 1, lost: 0, bytes: 1, frames: 1, audioBytes: 0, audioPackets: 0 }), ["nope"], null, 2000);
    assert.equal(none.sample.streams, 0);
    assert.equal(q.classify(none.sample).level, "unknown");
  });

  const outboundReport = (t, bytes, fractionLost, rtt, { reportAt = t, resent = 0 } = {}) => [
    { id: "T01", type: "transport", timestamp: t, selectedCandidatePairId: "CP1" },
    { id: "CP1", type: "candidate-pair", timestamp: t, state: "succeeded", nominated: true, currentRoundTripTime: 0.003 },
    { id: "MS1", type: "media-source", kind: "video", trackIdentifier: "cam" },
    { id: "MS2", type: "media-source", kind: "audio", trackIdentifier: "mic" },
    {
      id: "OV1", type: "outbound-rtp", kind: "video", timestamp: t, mediaSourceId: "MS1", bytesSent: bytes, packetsSent: bytes / 1000,
      retransmittedPacketsSent: resent, framesEncoded: t / 100, framesPerSecond: 20, frameWidth: 640, frameHeight: 360,
      qualityLimitationReason: "none", transportId: "T01",
    },
    { id: "OA1", type: "outbound-rtp", kind: "audio", timestamp: t, mediaSourceId: "MS2", bytesSent: bytes / 10, packetsSent: 50, transportId: "T01" },
    { id: "RV1", type: "remote-inbound-rtp", kind: "video", timestamp: reportAt, localId: "OV1", fractionLost, roundTripTime: rtt },
    { id: "RA1", type: "remote-inbound-rtp", kind: "audio", timestamp: reportAt, localId: "OA1", fractionLost: 0, roundTripTime: rtt / 2 },
  ];

  test("outbound sample without a recent receiver report: loss from RTX, RTT from the candidate pair", () => {
    const stale = { reportAt: 1000 };
    const r0 = q.outboundSample(outboundReport(20000, 100000, 0.5, 0.9, { ...stale, resent: 0 }), ["cam", "mic"], null, 20000);
    assert.equal(r0.sample.lossPercent, null, "a report 19 s old is ignored");
    assert.equal(r0.sample.rttMs, 3);
    // 100 video packets sent, 5 of them sent again on the server's request.
    const r1 = q.outboundSample(outboundReport(21000, 200000, 0.5, 0.9, { ...stale, resent: 5 }), ["cam", "mic"], r0.counters, 21000);
    assert.equal(r1.sample.lossPercent, 5);
    assert.equal(q.classify(r1.sample).level, "fair");
  });

  test("outbound sample: loss and RTT from remote-inbound-rtp, bitrate from outbound-rtp", () => {
    const report = outboundReport;
    const r0 = q.outboundSample(report(1000, 100000, 0, 0.01), ["cam", "mic"], null, 1000);
    const r1 = q.outboundSample(report(2000, 200000, 0.125, 0.25), ["cam", "mic"], r0.counters, 2000);
    assert.equal(r1.sample.direction, "outbound");
    assert.equal(r1.sample.lossPercent, 12.5);
    assert.equal(r1.sample.rttMs, 250);
    assert.equal(r1.sample.bitrateKbps, ((100000 + 10000) * 8) / 1000);
    assert.equal(r1.sample.fps, 20);
    assert.equal(r1.sample.qualityLimitation, "none");
    assert.equal(q.classify(r1.sample).level, "poor");
    assert.equal(q.classify(r0.sample).level, "good");
  });

  test("smoothing: the worst of the last two known levels", () => {
    assert.equal(q.smoothed([]), "unknown");
    assert.equal(q.smoothed(["unknown", "good"]), "good");
    assert.equal(q.smoothed(["poor", "good"]), "poor");
    assert.equal(q.smoothed(["poor", "good", "good"]), "good");
    assert.equal(q.smoothed(["fair", "unknown", "good"]), "fair");
  });

  test("backoff of reconnect.ts: 0.5 s doubling to 5 s, give-up after a minute", async () => {
    // Not quality, but the same kind of pure policy; bundled the same way.
    const require = createRequire(join(REPO_DIR, "web/package.json"));
    const esbuild = require("esbuild");
    const dir = mkdtempSync(join(tmpdir(), "lamina-reconnect-"));
    const out = join(dir, "reconnect.mjs");
    await esbuild.build({ entryPoints: [join(REPO_DIR, "web/src/reconnect.ts")], outfile: out, bundle: true, format: "esm", platform: "neutral", logLevel: "warning" });
    const r = await import(pathToFileURL(out).href);
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((n) => r.backoffDelay(n)), [500, 1000, 2000, 4000, 5000, 5000, 5000]);
    const b = new r.Backoff();
    b.begin(0);
    const delays = [];
    let t = 0;
    for (;;) {
      const d = b.next(t);
      if (d === null) break;
      delays.push(d);
      t += d;
    }
    assert.ok(t <= 60000 && t > 55000, `last attempt at ${t} ms`);
    assert.deepEqual(delays.slice(0, 5), [500, 1000, 2000, 4000, 5000]);
    const w = new r.PeerWatch();
    assert.equal(w.observe("connecting", 0), null);
    assert.equal(w.observe("connected", 1000), null);
    assert.equal(w.observe("disconnected", 2000), null);
    assert.equal(w.observe("disconnected", 6000), null);
    assert.match(w.observe("disconnected", 7000), /interrupted/);
    assert.match(w.observe("failed", 7100), /failed/);
    assert.equal(r.isRetriableJoinRefusal("room_full"), true);
    assert.equal(r.isRetriableJoinRefusal("unauthorized"), false);
  });
});

// ---------------------------------------------------------------------------------------------
// End to end

describe("quality indicator in Chromium", () => {
  let browser;
  let server;
  const open = new Set();

  before(async () => {
    server = await startLamina();
    browser = await launchBrowser();
  });

  after(async () => {
    await Promise.all([...open].map((p) => p.close()));
    await browser?.close().catch(() => undefined);
    await server?.stop();
  });

  /** The indicator of a tile as the user sees it, with the details panel's fields. */
  const indicator = (p, tileId) =>
    p.eval((id) => {
      const tile = document.querySelector(`.tile[data-tile-id="${CSS.escape(id)}"]`);
      const root = tile?.querySelector(".quality");
      if (!root) return null;
      const button = root.querySelector(".quality-indicator");
      const details = root.querySelector(".quality-details");
      const r = button.getBoundingClientRect();
      const fields = {};
      details.querySelectorAll("dd[data-field]").forEach((dd) => {
        fields[dd.dataset.field] = { text: dd.textContent, value: dd.dataset.value === "" ? null : Number(dd.dataset.value) };
      });
      return {
        level: root.dataset.level,
        label: root.querySelector(".quality-label").textContent,
        ariaLabel: button.getAttribute("aria-label"),
        visible: r.width > 0 && r.height > 0,
        detailsOpen: !details.hidden && details.getBoundingClientRect().height > 0,
        expanded: button.getAttribute("aria-expanded"),
        fields,
      };
    }, tileId);

  test("remote and local tiles: 'good' on loopback, details from getStats", async () => {
    const room = roomName("quality");
    const AV = { video: true, audio: true };
    const viewport = { width: 800, height: 600 };
    const [a, b] = await Promise.all(["Alice", "Bob"].map((name) => Participant.open(browser, server.url, { room, name, ...AV, viewport })));
    open.add(a);
    open.add(b);
    await Promise.all([a, b].map((p) => p.waitConnected()));
    await waitForMedia(a, [{ name: "Bob", kind: "remote", ...AV }]);
    const bobTile = (await a.remoteTiles()).find((t) => t.name === "Bob");

    // The remote tile's indicator: "good" (no loss, ~0 ms round trip, video flowing).
    const shown = await waitFor("Bob's tile indicator says good", async () => {
      const i = await indicator(a, bobTile.id);
      return i && i.visible && i.level === "good" && i.label === "good" ? i : null;
    }, { timeout: 15000, interval: 250 });
    assert.match(shown.ariaLabel, /Receiving quality: good/);
    assert.equal(shown.detailsOpen, false);

    // Click: the details panel opens with numbers.
    await a.page.click(`.tile[data-tile-id="${bobTile.id}"] .quality-indicator`);
    const details = await waitFor("details with every number", async () => {
      const i = await indicator(a, bobTile.id);
      const f = i?.fields ?? {};
      const ok = i?.detailsOpen && ["loss", "rtt", "bitrate", "fps", "resolution"].every((k) => f[k] && f[k].value !== null);
      return ok ? i : null;
    }, { timeout: 10000, interval: 250 });
    log(`Bob's tile as Alice sees it: ${JSON.stringify(details)}`);
    assert.equal(details.expanded, "true");
    const f = details.fields;
    assert.ok(f.fps.value > 0, `fps ${f.fps.text}`);
    assert.ok(f.bitrate.value > 0, `bitrate ${f.bitrate.text}`);
    assert.ok(f.loss.value >= 0 && f.loss.value < 3, `loss ${f.loss.text}`);
    assert.ok(f.rtt.value >= 0 && f.rtt.value < 200, `rtt ${f.rtt.text}`);
    assert.match(f.loss.text, /^\d+\.\d %$/);
    assert.match(f.rtt.text, /^\d+ ms$/);
    assert.match(f.bitrate.text, /^\d+ kbit\/s$/);
    assert.match(f.resolution.text, /^\d+×\d+$/);

    // The numbers are getStats' own: resolution as the test hooks read it from inbound-rtp.
    const stats = (await a.stats()).find((t) => t.tileId === bobTile.id);
    const view = (await a.eval(() => window.lamina.quality())).find((v) => v.tileId === bobTile.id);
    assert.equal(`${stats.video.frameWidth}×${stats.video.frameHeight}`, f.resolution.text);
    assert.equal(view.sample.width, stats.video.frameWidth);
    assert.equal(view.sample.direction, "inbound");
    assert.equal(view.sample.streams, 2, "video and audio of Bob");

    // Click again: closed.
    await a.page.click(`.tile[data-tile-id="${bobTile.id}"] .quality-indicator`);
    assert.equal((await indicator(a, bobTile.id)).detailsOpen, false);

    // The local tile: the sending side (outbound-rtp; loss and RTT from remote-inbound-rtp).
    const local = await waitFor("Alice's own indicator", async () => {
      const i = await indicator(a, "local-endpoint");
      const v = (await a.eval(() => window.lamina.quality())).find((x) => x.tileId === "local-endpoint");
      return i && v && i.level !== "unknown" && v.sample.bitrateKbps > 0 ? { i, v } : null;
    }, { timeout: 15000, interval: 250 });
    log(`Alice's own tile: ${JSON.stringify(local)}`);
    assert.equal(local.v.sample.direction, "outbound");
    assert.match(local.i.ariaLabel, /^Sending quality: /);
    assert.ok(["good", "fair"].includes(local.i.level), local.i.level);
    assert.ok(local.v.sample.fps > 0);
  });
});
