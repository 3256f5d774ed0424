// Helpers of the reconnection tests: counting getUserMedia prompts, the page's peer connections
// (from the test-mode recorder), and waiting for a rejoin (a new endpoint id).

import { nft } from "./loss.mjs";
import { waitFor } from "./util.mjs";

/**
 * Init script (Participant.open's `initScript`): counts getUserMedia calls in
 * `window.__laminaGumCalls`, to prove that a rejoin reuses the local tracks (no new prompt).
 */
export function countGetUserMedia() {
  window.__laminaGumCalls = 0;
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) return;
  const original = md.getUserMedia.bind(md);
  md.getUserMedia = (constraints) => {
    window.__laminaGumCalls += 1;
    return original(constraints);
  };
}

export function gumCalls(p) {
  return p.eval(() => window.__laminaGumCalls ?? 0);
}

/** Every RTCPeerConnection the page ever created: {total, live (not closed), states}. */
export async function peerConnections(p) {
  const pcs = await p.eval(() => window.lamina.peerConnections());
  return {
    total: pcs.length,
    live: pcs.filter((s) => s.connectionState !== "closed").length,
    states: pcs.map((s) => s.connectionState),
  };
}

export function endpointId(p) {
  return p.eval(() => window.lamina.endpointId());
}

export function reconnects(p) {
  return p.eval(() => window.lamina.reconnects());
}

/** Waits until `p` is connected again with an endpoint id other than `oldId`; returns the new id. */
export async function waitRejoined(p, oldId, { timeout = 15000 } = {}) {
  return waitFor(`${p.name} to rejoin with a new endpoint id`, async () => {
    const [state, id] = await p.eval(() => [window.lamina.state(), window.lamina.endpointId()]);
    return state === "connected" && id && id !== oldId ? id : null;
  }, { timeout, interval: 100 });
}

/** The reconnect banner as the user sees it: {visible, state, text, rejoinVisible}. */
export function reconnectBanner(page) {
  return page.evaluate(() => {
    const b = document.getElementById("reconnect-banner");
    const button = document.getElementById("reconnect-rejoin-button");
    return {
      visible: !!b && !b.hidden,
      state: b?.dataset.state ?? null,
      text: b?.textContent ?? "",
      rejoinVisible: !!button && !button.hidden,
    };
  });
}

/** Remote tiles per name (kind "remote"), to catch duplicates. */
export async function remoteTileNames(p) {
  const tiles = await p.tiles();
  return tiles.filter((t) => t.kind === "remote").map((t) => t.name).sort();
}

/**
 * Drops every UDP datagram to and from `port` on lo (nftables, input hook; only inside the
 * test's network namespace, see lib/loss.mjs): the browsers' TURN relay, so the media path dies
 * while the WebSockets (TCP) stay up. Returns { stop() } (idempotent).
 */
export async function blackholeUdpPort(port) {
  if (!Number.isInteger(port) || port <= 0) throw new Error(`bad port ${port}`);
  const table = "lamina_e2e_cut";
  await nft(["-f", "-"], `table inet ${table} {
  chain input {
    type filter hook input priority 0; policy accept;
    iif "lo" udp dport ${port} drop
    iif "lo" udp sport ${port} drop
  }
}
`);
  let stopped = false;
  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      await nft(["delete", "table", "inet", table]);
    },
  };
}

