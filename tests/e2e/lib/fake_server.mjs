// A stand-in for the Lamina server, for client-only tests: serves web/dist with the server's
// routes (/ , /room/<id>, /assets/*) and speaks just enough of the Phoenix Channels v2 protocol
// (join/leave/heartbeat/push) for a test to script the media events a page receives.
// It does no WebRTC: tests that need media run against the real server.

import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { WebSocketServer } from "ws";

import { WEB_DIST } from "./util.mjs";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

async function serveStatic(req, res) {
  const path = new URL(req.url, "http://x").pathname;
  let file = null;
  if (path === "/") file = "index.html";
  else if (/^\/room\/[^/]+\/?$/.test(path)) file = "room.html";
  else if (path.startsWith("/assets/")) {
    const rel = normalize(path.slice(1));
    if (!rel.startsWith("assets/") || rel.includes("..")) file = null;
    else file = rel;
  }
  if (!file) {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    return;
  }
  try {
    const body = await readFile(join(WEB_DIST, file));
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(body);
  } catch {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found");
  }
}

/** One connected page (WebSocket) as seen by the fake server. */
class FakeClient {
  constructor(ws, server) {
    this.ws = ws;
    this.server = server;
    this.received = []; // every frame: [join_ref, ref, topic, event, payload]
    this.joinRef = null;
    this.topic = null;
    this.mediaEvents = []; // parsed client media events (custom ones unwrapped)
  }

  send(frame) {
    this.ws.send(JSON.stringify(frame));
  }

  /** Pushes a media event (object) to this client as {data: "<json>"}. */
  pushMediaEvent(event) {
    this.send([this.joinRef, null, this.topic, "mediaEvent", { data: JSON.stringify(event) }]);
  }

  close() {
    this.ws.close(1011, "test");
  }

  joins() {
    return this.received.filter((f) => f[3] === "phx_join");
  }
}

/** port: listen on this port (a restarted fake server keeps its pages' URL); default a free one. */
export async function startFakeServer({ onJoin, onMediaEvent, port = 0 } = {}) {
  const clients = [];
  const http = createServer((req, res) => void serveStatic(req, res));
  const wss = new WebSocketServer({ noServer: true });
  http.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname !== "/socket/websocket") return socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
  });
  wss.on("connection", (ws) => {
    const c = new FakeClient(ws, server);
    clients.push(c);
    ws.on("message", (buf) => {
      let frame;
      try {
        frame = JSON.parse(buf.toString());
      } catch {
        return;
      }
      c.received.push(frame);
      const [joinRef, ref, topic, event, payload] = frame;
      const reply = (status, response = {}) => c.send([joinRef, ref, topic, "phx_reply", { status, response }]);
      if (topic === "phoenix" && event === "heartbeat") return reply("ok");
      if (event === "phx_join") {
        const decision = onJoin ? onJoin(c, topic, payload) : { ok: true };
        if (decision.ok) {
          c.joinRef = joinRef;
          c.topic = topic;
          reply("ok");
        } else reply("error", { reason: decision.reason });
        return;
      }
      if (event === "phx_leave") {
        reply("ok");
        c.send([joinRef, joinRef, topic, "phx_close", {}]);
        return;
      }
      if (event === "mediaEvent") {
        let ev = JSON.parse(payload.data);
        while (ev && ev.type === "custom") ev = ev.data;
        c.mediaEvents.push(ev);
        if (onMediaEvent) onMediaEvent(c, ev);
      }
    });
  });
  await new Promise((r, rej) => {
    http.once("error", rej);
    http.listen(port, "127.0.0.1", r);
  });
  const server = {
    url: `http://127.0.0.1:${http.address().port}`,
    clients,
    async stop() {
      for (const c of clients) c.ws.terminate();
      wss.close();
      await new Promise((r) => http.close(r));
    },
  };
  return server;
}
