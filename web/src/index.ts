// Entry point of both pages: the home page form and the room page bootstrap.

import { DISPLAY_NAME_STORAGE_KEY, MAX_DISPLAY_NAME_LENGTH } from "./consts";
import { setupChatForm } from "./chat";
import { LocalMediaRequest } from "./local_media";
import { Room } from "./room";
import * as ui from "./room_ui";
import { installPeerConnectionRecorder, installTestHooks } from "./test_hooks";

function setupHomePage(form: HTMLFormElement): void {
  const room = form.querySelector<HTMLInputElement>("#room-name-input")!;
  const name = form.querySelector<HTMLInputElement>("#display-name-input")!;
  const remembered = sessionStorage.getItem(DISPLAY_NAME_STORAGE_KEY);
  if (remembered && !name.value) name.value = remembered;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const roomName = room.value.trim();
    const displayName = name.value.trim().slice(0, MAX_DISPLAY_NAME_LENGTH);
    if (!roomName || !displayName) return;
    const q = new URLSearchParams({ display_name: displayName });
    // Keep test flags of the home page URL (e.g. /?test=1&video=0) for the room page.
    new URLSearchParams(window.location.search).forEach((v, k) => {
      if (k !== "display_name") q.set(k, v);
    });
    window.location.assign(`/room/${encodeURIComponent(roomName)}?${q.toString()}`);
  });
}

function flag(params: URLSearchParams, key: string, dflt: boolean): boolean {
  const v = params.get(key);
  if (v === null) return dflt;
  return v === "1" || v === "true" || v === "yes";
}

function hashHue(s: string): number {
  let h = 0;
  for (const ch of s) h = (h * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
  return h % 360;
}

function setupRoomPage(): void {
  const params = new URLSearchParams(window.location.search);

  // Display name: from ?display_name= (then removed from the address bar), or remembered.
  let displayName = (params.get("display_name") ?? "").trim().slice(0, MAX_DISPLAY_NAME_LENGTH);
  if (params.has("display_name")) {
    params.delete("display_name");
    const rest = params.toString();
    history.replaceState(history.state, "", window.location.pathname + (rest ? `?${rest}` : "") + window.location.hash);
  }
  if (displayName) sessionStorage.setItem(DISPLAY_NAME_STORAGE_KEY, displayName);
  else displayName = sessionStorage.getItem(DISPLAY_NAME_STORAGE_KEY) ?? `Guest ${Math.random().toString(36).slice(2, 6)}`;

  const test = flag(params, "test", false);
  let room: Room | null = null;
  if (test) {
    installPeerConnectionRecorder();
    installTestHooks(() => room);
  }

  let roomId: string;
  try {
    roomId = ui.getRoomId();
  } catch (err) {
    ui.showError(String(err instanceof Error ? err.message : err));
    return;
  }

  const media: LocalMediaRequest = {
    audio: test ? flag(params, "audio", true) : true,
    video: test ? flag(params, "video", true) : true,
    test,
    synth: null,
  };
  // Test mode: ?capture=1280x720@30 asks the camera for that size and rate.
  const capture = test ? /^(\d+)x(\d+)@(\d+)$/.exec(params.get("capture") ?? "") : null;
  if (capture) media.capture = { width: Number(capture[1]), height: Number(capture[2]), fps: Number(capture[3]) };
  if (test && flag(params, "synth", false)) {
    media.synth = {
      hue: Number(params.get("hue") ?? hashHue(displayName)) % 360,
      toneHz: Number(params.get("tone") ?? 440),
      width: 320,
      height: 240,
      fps: 15,
    };
  }

  const rejoin = `/room/${encodeURIComponent(roomId)}${window.location.search}`;
  room = new Room({ roomId, displayName, media, rejoinUrl: rejoin, test });
  const r = room;
  ui.setupControls({
    toggleMic: () => r.toggleMic(),
    toggleCamera: () => r.toggleCamera(),
    toggleScreen: () => void r.toggleScreenShare(),
    leave: () => r.leave(),
    unlockAudio: () => r.unlockAudio(),
  });
  setupChatForm((text) => r.sendChat(text));
  window.addEventListener("pagehide", () => r.leave());
  r.join().catch((err) => {
    console.error(err);
    ui.showError(`Cannot join the room: ${err instanceof Error ? err.message : String(err)}`);
  });
}

function main(): void {
  const form = document.getElementById("join-form");
  if (form instanceof HTMLFormElement) setupHomePage(form);
  else if (document.getElementById("room")) setupRoomPage();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
else main();
