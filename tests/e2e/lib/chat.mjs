// Room chat helpers: drive and read the chat panel of a Participant through the page's
// `window.lamina` test hooks (chatEntries reads the DOM as the user sees it).

import { waitFor } from "./util.mjs";

/** The panel's entries: [{ name, time, text, own, from }], oldest first. */
export function chatEntries(p) {
  return p.eval(() => window.lamina.chatEntries());
}

/** The messages the client received ({ from, name, text, at }), oldest first. */
export function chatMessages(p) {
  return p.eval(() => window.lamina.chat());
}

/** Sends through the Room (as the form does); resolves with { ok } or { ok: false, reason }. */
export function sendChat(p, text) {
  return p.eval((t) => window.lamina.sendChat(t), text);
}

/** Types `text` into the chat input and presses Enter, as a user does. */
export async function typeChat(p, text) {
  await p.page.fill("#chat-input", text);
  await p.page.press("#chat-input", "Enter");
}

/** Waits until `p`'s panel shows an entry matching `pred`; returns it. */
export async function waitForChatEntry(p, what, pred, { timeout = 10000 } = {}) {
  let last = [];
  try {
    return await waitFor(`${p.name}: chat entry ${what}`, async () => {
      last = await chatEntries(p);
      return last.find(pred) ?? null;
    }, { timeout, interval: 50 });
  } catch (err) {
    err.message += `\n${p.name} chat panel: ${JSON.stringify(last)}`;
    throw err;
  }
}
