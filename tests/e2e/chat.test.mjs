// The room chat against the real Lamina server (LAMINA_BIN) in headless Chromium: two pages
// exchange messages through the chat panel (names, times), markup in a message stays text
// (rendered with textContent: no element is created, no handler runs), and refused messages
// are explained to the sender and reach nobody.
//
// The participants publish nothing (chat needs no media); one server and one browser for the
// file; every wait polls a condition.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { launchBrowser } from "./lib/browser.mjs";
import { chatEntries, chatMessages, sendChat, typeChat, waitForChatEntry } from "./lib/chat.mjs";
import { startLamina } from "./lib/lamina.mjs";
import { Participant } from "./lib/participant.mjs";
import { holdsFor, roomName, waitFor } from "./lib/util.mjs";

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
      err.message += `\n--- server log (tail) ---\n${server ? server.tail(60) : "(no server)"}`;
      throw err;
    } finally {
      await Promise.all([...open].map((p) => p.close()));
      open.clear();
    }
  });
}

/** Alice and Bob in a fresh room, connected, publishing nothing, with a desktop-sized page. */
async function pair(prefix) {
  const room = roomName(prefix);
  const opts = (name) => ({ room, name, video: false, audio: false, viewport: { width: 1000, height: 700 } });
  const [a, b] = await Promise.all(["Alice", "Bob"].map((n) => Participant.open(browser, server.url, opts(n))));
  open.add(a);
  open.add(b);
  await Promise.all([a, b].map((p) => p.waitConnected()));
  return [a, b];
}

const TIME = /^\d{1,2}[:.]\d{2}/;

scenario("a. two pages exchange messages with names and times", async () => {
  const [a, b] = await pair("chat");
  // Alice types and presses Enter; the input empties.
  await typeChat(a, "Hello Bob, how are you?");
  const onB = await waitForChatEntry(b, "Alice's message", (e) => e.text === "Hello Bob, how are you?");
  assert.equal(onB.name, "Alice");
  assert.equal(onB.own, false);
  assert.match(onB.time, TIME);
  const ownOnA = await waitForChatEntry(a, "Alice's own message", (e) => e.text === "Hello Bob, how are you?");
  assert.equal(ownOnA.name, "Alice (you)");
  assert.equal(ownOnA.own, true);
  assert.equal(await a.page.inputValue("#chat-input"), "");

  // Bob answers through the send button.
  await b.page.fill("#chat-input", "Fine, thanks — ça va 🎉");
  await b.click("#chat-send");
  const onA = await waitForChatEntry(a, "Bob's answer", (e) => e.text === "Fine, thanks — ça va 🎉");
  assert.equal(onA.name, "Bob");
  assert.match(onA.time, TIME);

  // Same order on both pages; the wire message carries ids and a unix-ms time.
  const texts = async (p) => (await chatEntries(p)).map((e) => e.text);
  await waitFor("both pages show both messages", async () => (await texts(a)).length === 2 && (await texts(b)).length === 2);
  assert.deepEqual(await texts(a), await texts(b));
  const [first] = await chatMessages(b);
  assert.equal(first.from, await a.eval(() => window.lamina.endpointId()));
  assert.ok(Math.abs(first.at - Date.now()) < 60000, `at ${first.at}`);
  assert.deepEqual(await a.errors(), []);
  assert.deepEqual(await b.errors(), []);
});

scenario("b. markup in a message is shown as literal text and creates no element", async () => {
  const [a, b] = await pair("chat-xss");
  const payloads = [
    `<img src=x onerror="window.__pwned = 'img'">`,
    `<script>window.__pwned = 'script'</script>`,
    `<b onmouseover="window.__pwned = 'b'">bold?</b> &amp; &lt;`,
  ];
  for (const text of payloads) {
    // The first one is typed, as an attacker would; the others through the hook.
    if (text === payloads[0]) await typeChat(a, text);
    else assert.deepEqual(await sendChat(a, text), { ok: true });
  }
  for (const p of [a, b]) {
    for (const text of payloads) await waitForChatEntry(p, `literal ${text}`, (e) => e.text === text);
  }
  const probe = () => ({
    pwned: window.__pwned ?? null,
    imgs: document.querySelectorAll("img").length,
    scripts: document.querySelectorAll("#chat script").length,
    bold: document.querySelectorAll("#chat-messages b").length,
    // Each message is exactly one text node in its .chat-text paragraph.
    textNodesOnly: Array.from(document.querySelectorAll("#chat-messages .chat-text")).every(
      (el) => el.childNodes.length === 1 && el.firstChild.nodeType === Node.TEXT_NODE,
    ),
  });
  const clean = { pwned: null, imgs: 0, scripts: 0, bold: 0, textNodesOnly: true };
  // onerror would fire asynchronously after a failed load: keep checking for a while.
  for (const p of [a, b]) {
    await holdsFor(`${p.name}: no element created, no handler run`, async () => {
      const got = await p.eval(probe);
      assert.deepEqual(got, clean);
      return true;
    }, { duration: 1500 });
  }
});

scenario("c. refused messages are explained to the sender and reach nobody", async () => {
  const [a, b] = await pair("chat-refused");
  assert.deepEqual(await sendChat(a, "x".repeat(1001)), { ok: false, reason: "too_long" });
  const error = async () => a.eval(() => {
    const e = document.getElementById("chat-error");
    return e && !e.hidden ? e.textContent : null;
  });
  assert.match(await error(), /too long/i);
  assert.deepEqual(await sendChat(a, "bell\u0007"), { ok: false, reason: "control_characters" });

  // A burst beyond the rate limit: the excess is refused with rate_limited.
  const results = await a.eval(() => Promise.all(Array.from({ length: 20 }, (_, i) => window.lamina.sendChat(`burst ${i}`))));
  const accepted = results.filter((r) => r.ok).length;
  assert.ok(accepted >= 6 && accepted < 20, `${accepted} of 20 accepted`);
  assert.ok(results.filter((r) => !r.ok).every((r) => r.reason === "rate_limited"), JSON.stringify(results));
  assert.match(await error(), /too fast/i);

  // Bob sees exactly the accepted messages, and the room goes on: Bob can still chat.
  await waitFor("Bob has the accepted burst", async () => (await chatEntries(b)).length === accepted);
  await holdsFor("nothing else reaches Bob", async () => (await chatEntries(b)).length === accepted, { duration: 500 });
  assert.ok((await chatEntries(b)).every((e) => e.text.startsWith("burst ")));
  assert.deepEqual(await sendChat(b, "still here"), { ok: true });
  await waitForChatEntry(a, "Bob still chatting", (e) => e.text === "still here");
  assert.equal(await a.state(), "connected");
  assert.equal(await b.state(), "connected");
});
