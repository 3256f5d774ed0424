// Entry point of both pages: the home page form and the room page bootstrap.

import { DISPLAY_NAME_STORAGE_KEY, MAX_DISPLAY_NAME_LENGTH } from "./consts";
import { setupChatForm } from "./chat";
import { savedDevice, setupDevicePanel } from "./devices";
import { LocalMediaRequest } from "./local_media";
import { Lobby } from "./lobby";
import { Room } from "./room";
import * as ui from "./room_ui";
import { installLobbyTestHooks, installPeerConnectionRecorder, installTestHooks } from "./test_hooks";

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
  else displayName = sessionStorage.getItem(DISPLAY_NAME_STORAGE_KEY) ?? "";

  const guestName = `Guest ${Math.random().toString(36).slice(2, 6)}`;
  const test = flag(params, "test", false);
  let room: Room | null = null;
  let lobby: Lobby | null = null;
  if (test) {
    installPeerConnectionRecorder();
    installTestHooks(() => room);
    installLobbyTestHooks(() => lobby);
  }

  let roomId: string;
  try {
    roomId = ui.getRoomId();
  } catch (err) {
    ui.showError(String(err instanceof Error ? err.message : err));
    return;
  }
  ui.setRoomName(roomId);
  // "Copy link": the room's address without the display name (nor test flags).
  ui.setupCopyLink(`${window.location.origin}/room/${encodeURIComponent(roomId)}`);

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
      hue: Number(params.get("hue") ?? hashHue(displayName || guestName)) % 360,
      toneHz: Number(params.get("tone") ?? 440),
      width: 320,
      height: 240,
      fps: 15,
    };
  }
  const rejoin = `/room/${encodeURIComponent(roomId)}${window.location.search}`;
  // The camera goes out in three simulcast layers unless ?simulcast=0 (any page, not only tests).
  const simulcast = flag(params, "simulcast", true);

  const startRoom = (name: string, request: LocalMediaRequest, speaker: string) => {
    room = new Room({ roomId, displayName: name, media: request, rejoinUrl: rejoin, test, simulcast });
    const r = room;
    if (speaker) ui.setAudioOutput(speaker);
    applyInitialActive(r, request.initialActive ?? null);
    ui.setupControls({
      toggleMic: () => r.toggleMic(),
      toggleCamera: () => r.toggleCamera(),
      toggleScreen: () => void r.toggleScreenShare(),
      leave: () => r.leave(),
      unlockAudio: () => r.unlockAudio(),
    });
    // Device switching mid-call needs Room.replaceLocalTrack (MembraneWebRTC replaceTrack);
    // without it the panel saves the choice for the next join.
    const withReplace = r as unknown as { replaceLocalTrack?: (which: "audio" | "camera", track: MediaStreamTrack) => Promise<boolean> };
    const replace = withReplace.replaceLocalTrack;
    setupDevicePanel({
      request: { ...request, preacquired: null },
      replace: typeof replace === "function" ? (which, track) => replace.call(r, which, track) : null,
      localTracks: () => ui.localTileTracks(),
      setSpeaker: (id) => ui.setAudioOutput(id),
    });
    setupChatForm((text) => r.sendChat(text));
    r.join().catch((err) => {
      console.error(err);
      ui.showError(`Cannot join the room: ${err instanceof Error ? err.message : String(err)}`);
    });
  };
  window.addEventListener("pagehide", () => {
    room?.leave();
    lobby?.close();
  });

  // The lobby comes first, except in test mode (?test=1) unless ?lobby=1; ?lobby=0 skips it.
  if (!flag(params, "lobby", !test)) {
    startRoom(displayName || guestName, { ...media, audioDeviceId: savedDevice("audioinput"), videoDeviceId: savedDevice("videoinput") }, savedDevice("audiooutput") ?? "");
    return;
  }
  const l = new Lobby({
    request: media,
    displayName,
    onJoin: (choice) => {
      lobby = null;
      sessionStorage.setItem(DISPLAY_NAME_STORAGE_KEY, choice.displayName);
      startRoom(
        choice.displayName,
        { ...media, preacquired: choice.media, initialActive: { audio: choice.micOn, camera: choice.cameraOn } },
        choice.speaker,
      );
    },
  });
  lobby = l;
  ui.setStatus("Not joined yet", "lobby");
  l.start().catch((err) => {
    console.error(err);
    ui.showError(`Cannot start the camera and microphone: ${err instanceof Error ? err.message : String(err)}`);
  });
}

/**
 * Joined with the microphone or camera off (lobby): the track is handed over disabled, and as
 * soon as the Room is connected (it has added its tracks in that same task) it is marked
 * inactive, before the first offer leaves, so its `active: false` metadata rides in that offer.
 * A no-op once Room.join honours `media.initialActive` itself.
 */
function applyInitialActive(room: Room, initial: { audio: boolean; camera: boolean } | null): void {
  if (!initial || (initial.audio && initial.camera)) return;
  let applied = false;
  ui.onStatus((state) => {
    if (applied || state !== "connected") return;
    applied = true;
    queueMicrotask(() => {
      const local = ui.tileInfos().find((t) => t.kind === "local");
      if (!initial.audio && local?.mic === "on") room.setLocalActive("audio", false);
      if (!initial.camera && local?.camera === "on") room.setLocalActive("camera", false);
    });
  });
}

function main(): void {
  const form = document.getElementById("join-form");
  if (form instanceof HTMLFormElement) setupHomePage(form);
  else if (document.getElementById("room")) setupRoomPage();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
else main();
