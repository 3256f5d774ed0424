// The room chat: its wire format (channel event "chat", not a media event) and its panel.
//
// Client → server: push "chat" {text}, reply ok {} or error {reason}.
// Server → client: push "chat" {from: endpoint id, name, text, at: unix ms} to every connected
// peer, the sender included.
//
// Everything a message carries is shown with textContent only (never innerHTML): a message
// such as `<img src=x onerror=…>` is text, not markup.

import type { Channel } from "phoenix";

/** Longest message the server accepts, in characters. */
export const MAX_CHAT_CHARS = 1000;
/** Messages kept in the panel (older ones are dropped). */
export const MAX_CHAT_SHOWN = 200;

/** A chat message as the server pushes it. */
export interface ChatMessage {
  from: string;
  name: string;
  text: string;
  at: number;
}

/** Outcome of sending a message: ok, or the server's (or the client's) reason. */
export type ChatResult = { ok: true } | { ok: false; reason: string };

/** What the user is told for each refusal reason. */
export const CHAT_ERROR_MESSAGES: Record<string, string> = {
  too_long: `Message too long (at most ${MAX_CHAT_CHARS} characters).`,
  empty: "Empty message.",
  control_characters: "The message contains characters that cannot be sent (line breaks, control characters).",
  rate_limited: "You are sending messages too fast; wait a moment.",
  not_connected: "Not connected to the room yet.",
  invalid_payload: "The message could not be sent.",
  "room closed": "The room has closed.",
  timeout: "The server did not answer; the message may not have been sent.",
};

/** The message of a "chat" push, or null when the payload does not have its shape. */
export function parseChatMessage(payload: unknown): ChatMessage | null {
  if (typeof payload !== "object" || payload === null) return null;
  const p = payload as Record<string, unknown>;
  if (typeof p.from !== "string" || typeof p.name !== "string" || typeof p.text !== "string") return null;
  if (typeof p.at !== "number" || !Number.isFinite(p.at)) return null;
  return { from: p.from, name: p.name, text: p.text, at: p.at };
}

// ---------------------------------------------------------------------------------------------
// The panel

const el = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing element #${id}`);
  return e as T;
};

function formatTime(at: number): string {
  return new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** Appends a message to the panel (text nodes only), keeping at most MAX_CHAT_SHOWN. */
export function showChatMessage(msg: ChatMessage, own: boolean): void {
  const list = el("chat-messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;

  const li = document.createElement("li");
  li.className = "chat-message";
  li.dataset.own = String(own);
  li.dataset.from = msg.from;
  const meta = document.createElement("div");
  meta.className = "chat-meta";
  const name = document.createElement("span");
  name.className = "chat-name";
  name.textContent = own ? `${msg.name || "Guest"} (you)` : msg.name || "Guest";
  const time = document.createElement("time");
  time.className = "chat-time";
  time.dateTime = new Date(msg.at).toISOString();
  time.textContent = formatTime(msg.at);
  meta.append(name, time);
  const text = document.createElement("p");
  text.className = "chat-text";
  text.textContent = msg.text;
  li.append(meta, text);
  list.append(li);

  while (list.children.length > MAX_CHAT_SHOWN) list.firstElementChild?.remove();
  if (atBottom || own) list.scrollTop = list.scrollHeight;
}

/** Shows (or clears, with null) the error line under the chat input. */
export function showChatError(message: string | null): void {
  const e = el("chat-error");
  e.textContent = message ?? "";
  e.hidden = !message;
}

/** Enables the input once connected; disables it otherwise. */
export function setChatEnabled(enabled: boolean): void {
  el<HTMLInputElement>("chat-input").disabled = !enabled;
  el<HTMLButtonElement>("chat-send").disabled = !enabled;
}

/** Wires the form: Enter or the button sends the input's text through `send`. */
export function setupChatForm(send: (text: string) => Promise<ChatResult>): void {
  const form = el<HTMLFormElement>("chat-form");
  const input = el<HTMLInputElement>("chat-input");
  input.maxLength = MAX_CHAT_CHARS;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    if (Array.from(text).length > MAX_CHAT_CHARS) {
      showChatError(CHAT_ERROR_MESSAGES.too_long);
      return;
    }
    input.value = "";
    void send(text).then((r) => {
      if (r.ok) return;
      // Give the text back so nothing typed is lost.
      if (!input.value) input.value = text;
    });
  });
}

/** The panel as shown (for the test hooks): what the user reads, from the DOM. */
export function chatEntries(): { name: string; time: string; text: string; own: boolean; from: string }[] {
  return Array.from(el("chat-messages").querySelectorAll<HTMLElement>(".chat-message")).map((li) => ({
    name: li.querySelector(".chat-name")?.textContent ?? "",
    time: li.querySelector(".chat-time")?.textContent ?? "",
    text: li.querySelector(".chat-text")?.textContent ?? "",
    own: li.dataset.own === "true",
    from: li.dataset.from ?? "",
  }));
}

/** Sends a chat message on `channel` (null: not connected); resolves with the server's verdict (errors are shown too). */
export function sendChat(channel: Channel | null, text: string): Promise<ChatResult> {
  const refuse = (reason: string): ChatResult => {
    showChatError(CHAT_ERROR_MESSAGES[reason] ?? `Message not sent: ${reason}.`);
    return { ok: false, reason };
  };
  if (!channel) return Promise.resolve(refuse("not_connected"));
  return new Promise((resolve) => {
    channel
      .push("chat", { text })
      .receive("ok", () => {
        showChatError(null);
        resolve({ ok: true });
      })
      .receive("error", (resp: { reason?: unknown } | undefined) => {
        const reason = typeof resp?.reason === "string" ? resp.reason : "unknown error";
        resolve(refuse(reason));
      })
      .receive("timeout", () => resolve(refuse("timeout")));
  });
}

/** A "chat" push: kept in `kept` (at most MAX_CHAT_SHOWN) and shown; `ownId` is our endpoint's. */
export function receiveChat(kept: ChatMessage[], payload: unknown, ownId: string | null): void {
  const msg = parseChatMessage(payload);
  if (!msg) {
    console.warn("lamina: malformed chat message", payload);
    return;
  }
  kept.push(msg);
  if (kept.length > MAX_CHAT_SHOWN) kept.shift();
  showChatMessage(msg, msg.from === ownId);
}
