// One attempt at being in the room: a Phoenix socket, its channel "room:<id>", a fresh
// WebRTCEndpoint and the peer connection(s) that endpoint creates. The Room wires the events
// and decides when a session ends; this module opens and closes one so that nothing of it stays
// open or fires again.

import { Channel, Socket } from "phoenix";
import { WebRTCEndpoint } from "@jellyfish-dev/membrane-webrtc-js";

export interface Session {
  readonly id: number;
  readonly socket: Socket;
  readonly channel: Channel;
  readonly webrtc: WebRTCEndpoint;
  /** The socket callbacks the Room registered (removed when the session ends). */
  readonly socketRefs: string[];
  /** Peer connections the endpoint created (closed when the session ends). */
  readonly pcs: RTCPeerConnection[];
  readonly startedAt: number;
  connectedAt: number | null;
}

/** The channel events the Room listens to (removed when the session ends). */
const CHANNEL_EVENTS = ["mediaEvent", "chat", "error"];

/** A new session of room `roomId` (nothing connected yet). */
export function openSession(id: number, roomId: string): Session {
  const socket = new Socket("/socket", { params: {} });
  return {
    id,
    socket,
    channel: socket.channel(`room:${roomId}`, {}),
    webrtc: new WebRTCEndpoint(),
    socketRefs: [],
    pcs: [],
    startedAt: Date.now(),
    connectedAt: null,
  };
}

/** The library keeps its RTCPeerConnection in a private field (and never closes it). */
export function endpointConnection(w: WebRTCEndpoint): RTCPeerConnection | undefined {
  return (w as unknown as { connection?: RTCPeerConnection }).connection;
}

/** Remembers the endpoint's peer connection (created lazily) to close it later; returns it when new. */
export function capturePc(s: Session): RTCPeerConnection | null {
  const pc = endpointConnection(s.webrtc);
  if (!pc || s.pcs.includes(pc)) return null;
  s.pcs.push(pc);
  return pc;
}

/** Ends a session for good: no listener of it fires again, nothing of it stays open. */
export function closeSession(s: Session): void {
  s.socket.off(s.socketRefs.splice(0));
  capturePc(s);
  s.webrtc.removeAllListeners();
  try {
    s.webrtc.cleanUp();
  } catch {
    /* nothing to clean */
  }
  // cleanUp() forgets the peer connection without closing it.
  for (const pc of s.pcs.splice(0)) {
    try {
      pc.close();
    } catch {
      /* already closed */
    }
  }
  for (const ev of CHANNEL_EVENTS) s.channel.off(ev);
  try {
    s.channel.leave();
  } catch {
    /* already closed */
  }
  s.socket.disconnect();
}

/** Test hook: drops the WebSocket under the Phoenix client, as a network cut would. */
export function cutSocket(s: Session | null): boolean {
  const conn = (s?.socket as unknown as { conn?: WebSocket } | undefined)?.conn;
  if (!conn) return false;
  conn.close(4000, "test: connection cut");
  return true;
}
