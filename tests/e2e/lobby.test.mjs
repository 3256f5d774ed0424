// The lobby (before joining) against the real Lamina server in headless Chromium with fake
// devices (two fake cameras: `--use-fake-device-for-media-stream=device-count=2`): pickers,
// preview, level meter, remembered devices, joining with the camera off (the others see the
// camera-off placeholder with initials, never the camera) and joining when the camera and
// microphone are blocked or missing.
//
// The lobby is skipped in test mode unless `lobby=1`, so the other e2e files go straight in.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join as pathJoin } from "node:path";
import { after, before, test } from "node:test";

import { launchBrowser } from "./lib/browser.mjs";
import { startLamina } from "./lib/lamina.mjs";
import { joinFromLobby, lobbyInfo, openLobby, tileRects, waitLobbyReady } from "./lib/lobby.mjs";
import { Participant } from "./lib/participant.mjs";
import { REPO_DIR, holdsFor, log, roomName, waitFor } from "./lib/util.mjs";

const SCREENSHOTS = pathJoin(REPO_DIR, "docs/screenshots");

let browser;
let server;
const open = new Set();

before(async () => {
  server = await startLamina();
  browser = await launchBrowser({ fakeDevice: "device-count=2" });
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

async function lobby(opts) {
  const p = await openLobby(browser, server.url, opts);
  open.add(p);
  return p;
}

async function join(opts) {
  const p = await Participant.open(browser, server.url, opts);
  open.add(p);
  return p;
}

/** Samples the lobby's level meter every 50 ms for `ms`. */
async function sampleLevels(p, ms) {
  return p.eval(async (duration) => {
    const out = [];
    const end = performance.now() + duration;
    while (performance.now() < end) {
      out.push(window.lamina.lobby().level);
      await new Promise((r) => setTimeout(r, 50));
    }
    return out;
  }, ms);
}

/** Blocks getUserMedia: every request fails with `name` for the kinds in `kinds`. */
function blockScript({ name, kinds }) {
  const md = navigator.mediaDevices;
  const orig = md.getUserMedia.bind(md);
  md.getUserMedia = (c) =>
    kinds.some((k) => c && c[k]) ? Promise.reject(new DOMException(`blocked by the test (${name})`, name)) : orig(c);
}

scenario("devices are listed, the preview plays, the level meter moves, the choice is remembered", async () => {
  const room = roomName("lobby");
  const a = await lobby({ room, name: "Alice", viewport: { width: 1280, height: 800 } });
  let info = await lobbyInfo(a);
  assert.ok(info.cameras.length >= 2, `cameras: ${JSON.stringify(info.cameras)}`);
  assert.ok(info.microphones.length >= 1, `microphones: ${JSON.stringify(info.microphones)}`);
  assert.equal(info.message, "");
  assert.ok(info.joinEnabled);
  assert.ok(info.cameraOn && info.micOn);
  // The pickers show the device labels.
  const options = await a.eval(() => ({
    camera: Array.from(document.querySelectorAll("#lobby-camera-select option")).map((o) => o.textContent),
    mic: Array.from(document.querySelectorAll("#lobby-mic-select option")).map((o) => o.textContent),
    speaker: Array.from(document.querySelectorAll("#lobby-speaker-select option")).map((o) => o.textContent),
    speakerShown: !document.getElementById("lobby-speaker-row").hidden,
  }));
  assert.deepEqual(options.camera, info.cameras);
  assert.deepEqual(options.mic, info.microphones);
  if (info.sinkSupported && info.speakers.length > 0) {
    assert.ok(options.speakerShown, "speaker picker shown where setSinkId exists");
    assert.deepEqual(options.speaker, info.speakers);
  }
  log(`devices: cameras ${JSON.stringify(info.cameras)}, microphones ${JSON.stringify(info.microphones)}, speakers ${JSON.stringify(info.speakers)}`);

  // The preview plays: frames of a real size, time advancing.
  info = await waitFor("preview playing", async () => {
    const i = await lobbyInfo(a);
    return i.preview.videoWidth > 0 && i.preview.playing ? i : null;
  });
  const t0 = info.preview.currentTime;
  await waitFor("preview time advances", async () => (await lobbyInfo(a)).preview.currentTime > t0 + 0.3);
  assert.ok(await a.page.isVisible("#lobby-video"));
  assert.ok(!(await a.page.isVisible("#lobby-preview .placeholder")));

  // The level meter follows the fake microphone (a beep a second): it rises and falls.
  const levels = await sampleLevels(a, 3000);
  const max = Math.max(...levels);
  const min = Math.min(...levels);
  log(`level meter over 3 s: min ${min.toFixed(3)} max ${max.toFixed(3)} (${levels.length} samples)`);
  assert.ok(max > 0.3, `level never above 0.3 (max ${max})`);
  assert.ok(max - min > 0.2, `level does not move (min ${min}, max ${max})`);
  const barWidth = await a.eval(() => document.getElementById("lobby-mic-level-bar").style.width);
  assert.match(barWidth, /^\d+%$/);

  mkdirSync(SCREENSHOTS, { recursive: true });
  await a.page.screenshot({ path: pathJoin(SCREENSHOTS, "lobby.png") });

  // Pick the second camera and another microphone: the preview follows.
  const cameraIds = await a.eval(() => Array.from(document.querySelectorAll("#lobby-camera-select option")).map((o) => o.value));
  const micIds = await a.eval(() => Array.from(document.querySelectorAll("#lobby-mic-select option")).map((o) => o.value));
  const camera2 = cameraIds.find((id) => id !== info.open.camera);
  const mic2 = micIds.find((id) => id !== info.open.microphone) ?? micIds[0];
  await a.page.selectOption("#lobby-camera-select", camera2);
  await a.page.selectOption("#lobby-mic-select", mic2);
  await waitFor("second camera and other microphone open", async () => {
    const i = await lobbyInfo(a);
    return i.open.camera === camera2 && i.open.microphone === mic2 && i.preview.videoWidth > 0 && i.preview.playing;
  });

  // Next visit (same browser profile): the same devices are picked and opened.
  await a.page.reload();
  info = await waitLobbyReady(a);
  assert.equal(info.selected.camera, camera2);
  assert.equal(info.selected.microphone, mic2);
  await waitFor("remembered devices open", async () => {
    const i = await lobbyInfo(a);
    return i.open.camera === camera2 && i.open.microphone === mic2;
  });
  const stored = await a.eval(() => ({ ...localStorage }));
  assert.equal(stored["lamina.device.videoinput"], camera2);
  assert.equal(stored["lamina.device.audioinput"], mic2);

  // Joining hands the lobby's tracks to the room: the room publishes that camera.
  await joinFromLobby(a);
  assert.equal(await lobbyInfo(a), null);
  const publishing = await a.eval(() => {
    const v = document.querySelector('.tile[data-kind="local"] video');
    return v.srcObject.getTracks().map((t) => [t.kind, t.getSettings().deviceId, t.readyState]);
  });
  assert.deepEqual(publishing.find((t) => t[0] === "video"), ["video", camera2, "live"]);
});

scenario("joining with the camera off: the others see the camera-off placeholder with initials, then the camera", async () => {
  const room = roomName("lobby-camoff");
  // Bob is in the room first and records every camera state Alice's tile ever has.
  const b = await join({
    room,
    name: "Bob",
    viewport: { width: 1280, height: 800 },
    initScript: () => {
      window.__cameraHistory = [];
      new MutationObserver((records) => {
        for (const r of records) {
          const t = r.target;
          if (t.classList?.contains("tile") && t.dataset.kind === "remote") window.__cameraHistory.push(t.dataset.camera);
        }
      }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-camera"] });
    },
  });
  await b.waitConnected();

  const a = await lobby({ room, name: "Alice Liddell" });
  await a.click("#lobby-camera-toggle");
  await waitFor("camera off in the lobby", async () => (await lobbyInfo(a)).cameraOn === false);
  assert.ok(await a.page.isVisible("#lobby-preview .placeholder"));
  assert.equal(await a.page.textContent("#lobby-initials"), "AL");
  assert.equal(await a.page.getAttribute("#lobby-camera-toggle", "aria-checked"), "false");
  await joinFromLobby(a);

  // Alice's own controls: the camera is published but off, the microphone on.
  await waitFor("Alice's camera button says Camera on", async () => (await a.page.textContent("#camera-button")) === "Camera on");
  assert.equal(await a.page.textContent("#mic-button"), "Mute");

  const aliceOnB = async () => (await tileRects(b)).tiles.find((t) => t.name === "Alice Liddell");
  const tile = await waitFor("Alice's tile on Bob's page with the placeholder", async () => {
    const t = await aliceOnB();
    const info = (await b.remoteTiles()).find((x) => x.name === "Alice Liddell");
    // One snapshot decides: the placeholder also shows while her camera is not yet known ("none").
    return t && info && t.camera === "off" && info.mic === "on" && t.placeholder ? t : null;
  });
  assert.equal(tile.initials, "AL");
  assert.ok(tile.cameraOffIcon, "camera-off icon shown");
  assert.notEqual(tile.placeholderColour, "rgb(0, 0, 0)");
  // Her microphone plays on Bob's page.
  await waitFor("Alice's audio reaches Bob", async () => {
    const s = (await b.stats()).find((x) => x.displayName === "Alice Liddell");
    return s && s.audio && s.audio.totalSamplesReceived > 9600;
  }, { timeout: 20000 });
  await holdsFor("Alice's camera stays off on Bob's page", async () => (await aliceOnB())?.placeholder, { duration: 1000 });

  // Camera on in the room: Bob sees her video.
  await a.click("#camera-button");
  await waitFor("Alice's video on Bob's page", async () => {
    const t = await aliceOnB();
    const s = (await b.stats()).find((x) => x.displayName === "Alice Liddell");
    return t && !t.placeholder && s?.video?.framesDecoded > 10;
  }, { timeout: 20000 });
  const history = await b.eval(() => window.__cameraHistory);
  log(`camera states of Alice's tile on Bob's page: ${history.join(" → ")}`);
  // Never "on" before she turned the camera on: no flash of her camera at join.
  const firstOn = history.indexOf("on");
  assert.ok(firstOn > 0 && history.slice(0, firstOn).every((s) => s === "none" || s === "off"), history.join(","));
  assert.ok(history.slice(0, firstOn).includes("off"), history.join(","));
});

scenario("camera and microphone blocked: a clear message, and joining works without them", async () => {
  const room = roomName("lobby-denied");
  const b = await join({ room, name: "Bob" });
  await b.waitConnected();

  // No display_name in the URL (a shared link): the lobby asks for the name.
  const a = await lobby({ room, initScript: blockScript, initArg: { name: "NotAllowedError", kinds: ["audio", "video"] } });
  const info = await lobbyInfo(a);
  log(`lobby message: ${info.message}`);
  assert.match(info.message, /blocked/i);
  assert.match(info.message, /permission denied/i);
  assert.match(info.message, /still join/i);
  assert.ok(await a.page.isVisible("#lobby-message"));
  assert.equal(info.cameraOn, false);
  assert.equal(info.micOn, false);
  assert.ok(info.joinEnabled, "join stays possible");
  assert.ok(await a.page.isVisible("#lobby-preview .placeholder"));
  assert.match(await a.page.textContent("#lobby-camera-toggle"), /try again/);

  // The name is required.
  assert.equal(await a.page.inputValue("#lobby-name"), "");
  await a.click("#lobby-join");
  await holdsFor("still in the lobby without a name", async () => (await lobbyInfo(a))?.shown === true, { duration: 500 });
  await a.page.fill("#lobby-name", "Zoë Denied");
  await joinFromLobby(a);

  // In the room: told again, receive-only, and Bob sees her placeholder.
  const notice = await a.page.textContent("#notice-banner");
  assert.match(notice, /Camera unavailable/);
  assert.match(notice, /Microphone unavailable/);
  assert.equal(await a.page.textContent("#camera-button"), "No camera");
  await waitFor("Bob's tile on Zoë's page", async () => (await a.remoteTiles()).some((t) => t.name === "Bob"));
  const tile = await waitFor("Zoë's tile on Bob's page", async () =>
    (await tileRects(b)).tiles.find((t) => t.name === "Zoë Denied" && t.placeholder),
  );
  assert.equal(tile.initials, "ZD");
  const info2 = (await b.remoteTiles()).find((t) => t.name === "Zoë Denied");
  assert.equal(info2.mic, "none");
  assert.equal(info2.camera, "none");
});

scenario("no camera: the lobby says so, the microphone works, joining publishes the microphone", async () => {
  const room = roomName("lobby-nocam");
  const a = await lobby({ room, name: "Nora", initScript: blockScript, initArg: { name: "NotFoundError", kinds: ["video"] } });
  const info = await lobbyInfo(a);
  log(`lobby message: ${info.message}`);
  assert.match(info.message, /no camera was found/i);
  assert.match(info.message, /join without it/i);
  assert.equal(info.cameraOn, false);
  assert.equal(info.micOn, true);
  const levels = await sampleLevels(a, 2000);
  assert.ok(Math.max(...levels) > 0.3, `microphone level ${Math.max(...levels)}`);
  await joinFromLobby(a);
  const local = (await a.tiles()).find((t) => t.kind === "local");
  assert.equal(local.camera, "none");
  assert.equal(local.mic, "on");
  assert.ok((await a.eval(() => window.lamina.localTracks())).audio, "microphone published");
});
