// Tiles against the real Lamina server in headless Chromium: the muted-microphone icon and the
// camera-off placeholder (initials on a colour of the name) follow the track metadata the
// server relays; the grid fills the window without overlap (4 real tiles at 1280x800, and the
// layout function for 1-16 tiles), a shared screen stays large; "Copy link" copies the room URL
// without the display name.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join as pathJoin } from "node:path";
import { after, before, test } from "node:test";

import { launchBrowser } from "./lib/browser.mjs";
import { startLamina } from "./lib/lamina.mjs";
import { layoutProblems, lobbyInfo, openLobby, stableTileRects, tileRects } from "./lib/lobby.mjs";
import { Participant, waitForMedia } from "./lib/participant.mjs";
import { REPO_DIR, log, roomName, waitFor } from "./lib/util.mjs";

const SCREENSHOTS = pathJoin(REPO_DIR, "docs/screenshots");
const BIG = { width: 1280, height: 800 };

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

function scenario(name, fn) {
  test(name, async () => {
    try {
      await fn();
    } catch (err) {
      const logs = [...open].map((p) => `${p.name}: ${p.logs()}`).join("\n");
      err.message += `\n--- page logs ---\n${logs}\n--- server log (tail) ---\n${server ? server.tail(40) : "(no server)"}`;
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

const PEOPLE = {
  Alice: { hue: 0, tone: 330 },
  Bob: { hue: 120, tone: 440 },
  Carol: { hue: 240, tone: 550 },
  Dave: { hue: 60, tone: 660 },
};
const synth = (name) => ({ name, synth: true, ...PEOPLE[name] });
const remote = (name) => ({ name, kind: "remote", video: true, audio: true });

scenario("mute shows the muted-microphone icon on the other page, unmute removes it; camera off shows the initials", async () => {
  const room = roomName("tiles-mute");
  const [a, b] = await Promise.all([
    join({ room, name: "Alice Smith" }),
    join({ room, name: "Bob", viewport: BIG }),
  ]);
  await Promise.all([a, b].map((p) => p.waitConnected()));
  await waitForMedia(b, [remote("Alice Smith")]);
  const aliceOnB = async () => (await tileRects(b)).tiles.find((t) => t.name === "Alice Smith");
  let t = await aliceOnB();
  assert.equal(t.micOffIcon, false);
  assert.equal(t.placeholder, false);

  await a.click("#mic-button");
  t = await waitFor("muted icon on Bob's page", async () => {
    const x = await aliceOnB();
    return x?.micOffIcon ? x : null;
  }, { timeout: 10000 });
  const icon = await b.eval(() => {
    const el = document.querySelector('.tile[data-name="Alice Smith"] .badge-mic-off');
    const r = el.getBoundingClientRect();
    return { svg: !!el.querySelector("svg"), label: el.getAttribute("aria-label"), w: r.width, h: r.height, bg: getComputedStyle(el).backgroundColor };
  });
  log(`muted icon: ${JSON.stringify(icon)}`);
  assert.ok(icon.svg && icon.w >= 12 && icon.h >= 12, JSON.stringify(icon));
  assert.equal(icon.label, "Microphone muted");
  // Her own tile shows it too.
  assert.ok((await tileRects(a)).tiles.find((x) => x.kind === "local").micOffIcon);

  await a.click("#mic-button");
  await waitFor("muted icon gone on Bob's page", async () => (await aliceOnB())?.micOffIcon === false, { timeout: 10000 });
  assert.equal((await b.remoteTiles()).find((x) => x.name === "Alice Smith").mic, "on");

  // Camera off: the placeholder with her initials on a colour, the video hidden; on: gone.
  await a.click("#camera-button");
  t = await waitFor("camera-off placeholder on Bob's page", async () => {
    const x = await aliceOnB();
    return x?.placeholder ? x : null;
  }, { timeout: 10000 });
  assert.equal(t.initials, "AS");
  assert.ok(t.cameraOffIcon);
  assert.notEqual(t.placeholderColour, "rgb(0, 0, 0)");
  assert.equal(await b.page.isVisible('.tile[data-name="Alice Smith"] video'), false);
  await a.click("#camera-button");
  await waitFor("placeholder gone on Bob's page", async () => (await aliceOnB())?.placeholder === false, { timeout: 10000 });
  await waitForMedia(b, [remote("Alice Smith")]);
});

scenario("Devices panel mid-call: the speaker switches at once; the microphone switches (or is saved for the next join)", async () => {
  const room = roomName("tiles-devices");
  const [a, b] = await Promise.all([join({ room, name: "Alice" }), join({ room, name: "Bob", viewport: BIG })]);
  await Promise.all([a, b].map((p) => p.waitConnected()));
  await waitForMedia(b, [remote("Alice")]);
  await b.click("#devices-button");
  assert.ok(await b.page.isVisible("#devices-panel"));
  await waitFor("pickers filled", async () => (await b.page.$$("#room-mic-select option")).length >= 2);

  // Speaker (setSinkId): every remote tile plays on the chosen output.
  const outputs = await b.eval(() => Array.from(document.querySelectorAll("#room-speaker-select option")).map((o) => o.value));
  const sinkSupported = await b.eval(() => "setSinkId" in HTMLMediaElement.prototype);
  if (sinkSupported && outputs.length >= 2) {
    await b.page.selectOption("#room-speaker-select", outputs[1]);
    await waitFor("Alice's tile plays on the chosen output", async () =>
      (await b.eval(() => document.querySelector('.tile[data-name="Alice"] video').sinkId)) === outputs[1]);
    assert.equal(await b.eval(() => localStorage.getItem("lamina.device.audiooutput")), outputs[1]);
  } else log(`speaker switching not checked (setSinkId ${sinkSupported}, ${outputs.length} outputs)`);

  // Microphone: switched with the Room's replaceLocalTrack when it has one, else saved.
  const mics = await b.eval(() => Array.from(document.querySelectorAll("#room-mic-select option")).map((o) => o.value));
  const current = await b.eval(() => document.querySelector('.tile[data-kind="local"] video').srcObject.getAudioTracks()[0].getSettings().deviceId);
  const other = mics.find((id) => id !== current);
  await b.page.selectOption("#room-mic-select", other);
  const canReplace = await b.eval(() => typeof window.lamina.room.replaceLocalTrack === "function");
  if (canReplace) {
    await waitFor("Bob's published microphone switched", async () =>
      (await b.eval(() => document.querySelector('.tile[data-kind="local"] video').srcObject.getAudioTracks()[0].getSettings().deviceId)) === other);
    await waitForMedia(a, [remote("Bob")]);
  } else {
    await waitFor("saved-for-next-join note", async () => /next time you join/.test(await b.page.textContent("#devices-note")));
    log("Room has no replaceLocalTrack yet: the microphone choice is saved for the next join");
  }
  assert.equal(await b.eval(() => localStorage.getItem("lamina.device.audioinput")), other);
  await b.click("#devices-close");
  assert.equal(await b.page.isVisible("#devices-panel"), false);
});

scenario("four tiles fill a 1280x800 window without overlap; a shared screen stays large", async () => {
  const room = roomName("tiles-four");
  const a = await join({ room, ...synth("Alice"), viewport: BIG });
  const others = await Promise.all(["Bob", "Carol", "Dave"].map((n) => join({ room, ...synth(n) })));
  await Promise.all([a, ...others].map((p) => p.waitConnected()));
  await waitForMedia(a, ["Bob", "Carol", "Dave"].map(remote));

  const r = await stableTileRects(a, 4);
  const area = r.grid;
  const problems = layoutProblems(r.tiles, area);
  assert.equal(problems, "", problems);
  const cover = r.tiles.reduce((s, x) => s + x.w * x.h, 0) / (area.w * area.h);
  log(`grid ${Math.round(area.w)}x${Math.round(area.h)}: tiles ${r.tiles.map((x) => `${Math.round(x.w)}x${Math.round(x.h)}@${Math.round(x.x)},${Math.round(x.y)}`).join(" ")}, ${(cover * 100).toFixed(0)} % covered`);
  assert.ok(cover >= 0.7, `tiles cover ${(cover * 100).toFixed(0)} % of the grid`);
  for (const x of r.tiles) {
    assert.ok(x.x + x.w <= r.viewport.w && x.y + x.h <= r.viewport.h, `tile ${x.name} outside the window`);
    assert.ok(x.w >= 0.4 * area.w && x.h >= 0.4 * area.h, `tile ${x.name} too small: ${x.w}x${x.h}`);
    assert.equal(x.placeholder, false);
  }
  // 2 x 2.
  assert.equal(new Set(r.tiles.map((x) => Math.round(x.y))).size, 2);
  assert.equal(new Set(r.tiles.map((x) => Math.round(x.x))).size, 2);
  // For the screenshot: Carol turns her camera off (placeholder), Dave mutes (icon).
  await others[1].click("#camera-button");
  await others[2].click("#mic-button");
  await waitFor("Carol's placeholder and Dave's muted icon on Alice's page", async () => {
    const t = (await tileRects(a)).tiles;
    return t.find((x) => x.name === "Carol")?.placeholder && t.find((x) => x.name === "Dave")?.micOffIcon;
  }, { timeout: 10000 });
  mkdirSync(SCREENSHOTS, { recursive: true });
  await a.page.screenshot({ path: pathJoin(SCREENSHOTS, "room-4.png") });
  await others[1].click("#camera-button");

  // Bob shares his screen: on Alice's page it takes the main area, the others a strip.
  await others[0].click("#screen-button");
  await waitForMedia(a, [...["Bob", "Carol", "Dave"].map(remote), { name: "Bob", kind: "screen", video: true, audio: false }]);
  const s = await stableTileRects(a, 5);
  assert.equal(layoutProblems(s.tiles, s.grid), "");
  const screen = s.tiles.find((x) => x.kind === "screen");
  const rest = s.tiles.filter((x) => x.kind !== "screen");
  log(`with a screen: ${s.tiles.map((x) => `${x.kind}:${Math.round(x.w)}x${Math.round(x.h)}`).join(" ")}`);
  assert.ok(screen.w >= 0.65 * s.grid.w && screen.h >= 0.9 * s.grid.h, `screen tile ${screen.w}x${screen.h} in ${s.grid.w}x${s.grid.h}`);
  for (const x of rest) assert.ok(x.w * x.h < 0.25 * screen.w * screen.h, `${x.name} not smaller than the screen`);
});

scenario("the layout fills the area for 1 to 16 tiles, with and without a screen", async () => {
  const room = roomName("tiles-layout");
  // A page in the lobby is enough: the layout function is pure.
  const p = await openLobby(browser, server.url, { room, name: "Layout", viewport: BIG });
  open.add(p);
  const sizes = [
    [1000, 700],
    [1264, 690],
    [700, 900],
    [300, 160],
  ];
  const report = [];
  for (const [w, h] of sizes) {
    for (let n = 1; n <= 16; n++) {
      for (const screenAt of [-1, 0]) {
        if (screenAt === 0 && n === 1) continue;
        const screens = Array.from({ length: n }, (_, i) => i === screenAt);
        const rects = await p.eval(([s, W, H]) => window.lamina.layout(s, W, H), [screens, w, h]);
        assert.equal(rects.length, n);
        const box = { x: 0, y: 0, w, h };
        const big = w >= 600;
        // Strips may scroll (overflow) when they hold many tiles: only the grid case must fit.
        if (screenAt < 0 && big) assert.equal(layoutProblems(rects, box), "", `${n} tiles in ${w}x${h}`);
        else {
          const overlaps = layoutProblems(rects, { x: 0, y: 0, w: 1e6, h: 1e6 });
          assert.equal(overlaps, "", `${n} tiles (screen ${screenAt}) in ${w}x${h}`);
        }
        if (screenAt < 0 && big) {
          const cover = rects.reduce((s2, r) => s2 + r.w * r.h, 0) / (w * h);
          assert.ok(cover >= 0.5, `${n} tiles cover ${(cover * 100).toFixed(0)} % of ${w}x${h}`);
          for (const r of rects) {
            const aspect = r.w / r.h;
            assert.ok(aspect >= 4 / 3 - 0.01 && aspect <= 16 / 9 + 0.01, `aspect ${aspect}`);
          }
          if (w === 1264) report.push(`${n}:${(cover * 100).toFixed(0)}%`);
        }
        if (screenAt === 0 && big) {
          const sc = rects[0];
          for (const r of rects.slice(1)) assert.ok(r.w * r.h < sc.w * sc.h, `screen not the largest with ${n} tiles in ${w}x${h}`);
          assert.ok(sc.w * sc.h >= 0.45 * w * h, `screen ${sc.w}x${sc.h} in ${w}x${h}`);
        }
      }
    }
  }
  log(`coverage at 1264x690: ${report.join(" ")}`);
});

scenario("Copy link copies the room URL without the display name", async () => {
  const room = roomName("tiles-link");
  const p = await openLobby(browser, server.url, {
    room,
    name: "Zoë",
    viewport: BIG,
    permissions: ["camera", "microphone", "clipboard-read", "clipboard-write"],
  });
  open.add(p);
  assert.ok(await p.page.isVisible("#copy-link-button"));
  await p.click("#copy-link-button");
  await waitFor("copied", async () => (await p.page.getAttribute("#copy-link-button", "data-copied")) === "true");
  assert.equal(await p.page.textContent("#copy-link-button"), "Link copied");
  const copied = await p.eval(() => navigator.clipboard.readText());
  assert.equal(copied, `${server.url}/room/${encodeURIComponent(room)}`);
  assert.ok(!/display_name|Zo/.test(copied), copied);
  assert.ok((await lobbyInfo(p)).shown);
});
