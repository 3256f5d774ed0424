// Helpers of the cluster tests: a throwaway redis-server, Lamina nodes joined to it (through
// startLamina), killing a node, the /cluster view, and `lamina publish` / `lamina drain` runs.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { LAMINA_BIN, startLamina } from "./lamina.mjs";
import { REPO_DIR, waitFor } from "./util.mjs";

export const REDIS_BIN = process.env.REDIS_SERVER || "/usr/bin/redis-server";

/** A TCP port that was free on `host` a moment ago (bind to :0, read the port, close). */
export function freePort(host = "127.0.0.1") {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** One RESP PING; resolves true on +PONG. */
export function redisPing(port, host = "127.0.0.1", timeout = 1000) {
  return new Promise((resolve) => {
    const sock = createConnection({ host, port });
    let buf = "";
    const finish = (ok) => {
      clearTimeout(t);
      sock.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => finish(false), timeout);
    sock.on("connect", () => sock.write("*1\r\n$4\r\nPING\r\n"));
    sock.on("data", (b) => {
      buf += b;
      if (buf.includes("\r\n")) finish(buf.startsWith("+PONG"));
    });
    sock.on("error", () => finish(false));
  });
}

/** A spawned process with its output kept (the last 2000 lines) for failure messages. */
function spawnLogged(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { cwd: REPO_DIR, stdio: ["ignore", "pipe", "pipe"], ...opts });
  const lines = [];
  const onData = (b) => {
    for (const l of b.toString().split("\n")) {
      if (!l.trim()) continue;
      lines.push(l.trimEnd());
      if (lines.length > 2000) lines.shift();
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  return { child, lines, exited, tail: (n = 30) => lines.slice(-n).join("\n") };
}

const running = (child) => child.exitCode === null && child.signalCode === null;

/** redis-server on 127.0.0.1:<free port>, no persistence, data in a temp dir. */
export async function startRedis({ timeout = 10000 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "lamina-redis-"));
  const port = await freePort();
  const p = spawnLogged(REDIS_BIN, ["--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no", "--dir", dir]);
  const stop = async () => {
    if (running(p.child)) {
      p.child.kill("SIGTERM");
      const t = setTimeout(() => p.child.kill("SIGKILL"), 5000);
      await p.exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor("redis-server to answer PING", async () => {
      if (!running(p.child)) throw new Error(`redis-server exited:\n${p.tail()}`);
      return redisPing(port);
    }, { timeout, interval: 50 });
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, url: `redis://127.0.0.1:${port}`, dir, child: p.child, tail: p.tail, stop };
}

/**
 * A Lamina node in the cluster of `redisUrl`: HTTP and TURN on ip:0 (free ports), ICE candidates
 * on ip; no --public-url (the default is ws://<bound address>). Waits for `cluster node registered`.
 */
export async function startNode({ redisUrl, id, ip = "127.0.0.1", extraArgs = [], timeout = 20000 }) {
  const node = await startLamina({
    listen: `${ip}:0`,
    turnListen: `${ip}:0`,
    timeout,
    extraArgs: ["--public-ip", ip, "--redis-url", redisUrl, "--node-id", id, ...extraArgs],
  });
  try {
    await node.waitLog(new RegExp(`cluster node registered.*node="?${id}\\b`), timeout);
  } catch (err) {
    await node.stop();
    throw new Error(`${id}: ${err.message}\n--- ${id} log ---\n${node.tail()}`);
  }
  return Object.assign(node, { id, ip, redisUrl, wsUrl: `ws://${node.addr}`, socketUrl: `ws://${node.addr}/socket/websocket` });
}

/** SIGKILL (no goodbye to Redis or peers); resolves when the process is gone. */
export async function killNode(node) {
  if (!running(node.child)) return;
  const exited = new Promise((r) => node.child.once("exit", r));
  node.child.kill("SIGKILL");
  await exited;
}

/** GET /cluster of a node: {node, nodes: [{id, url, draining, rooms, peers, ...}]}. */
export async function clusterState(node) {
  const res = await fetch(`${node.url}/cluster`);
  if (res.status !== 200) throw new Error(`GET ${node.url}/cluster: ${res.status} ${await res.text()}`);
  return res.json();
}

/** The id of the node that /cluster (as `node` sees it) lists `room` on, or null. */
export async function roomOwner(node, room) {
  const { nodes } = await clusterState(node);
  const owners = nodes.filter((n) => (n.rooms || []).includes(room)).map((n) => n.id);
  if (owners.length > 1) throw new Error(`room ${room} listed on several nodes: ${owners.join(", ")}`);
  return owners[0] ?? null;
}

/**
 * `lamina publish` into `room` through the socket URL `url` (a videotestsrc publisher).
 * Returns { child, tail, stop() }.
 */
export function startPublisher({ url, room, name = "Publisher", video = "videotestsrc is-live=true ! video/x-raw,width=320,height=240 ! vp8enc deadline=1 ! rtpvp8pay" }) {
  const p = spawnLogged(LAMINA_BIN, ["publish", "--url", url, "--room", room, "--name", name, "--video", video], {
    env: { ...process.env, NO_COLOR: "1", LAMINA_LOG: process.env.LAMINA_LOG || "info" },
  });
  return {
    child: p.child,
    tail: p.tail,
    async stop() {
      if (!running(p.child)) return;
      p.child.kill("SIGTERM");
      const t = setTimeout(() => p.child.kill("SIGKILL"), 5000);
      await p.exited;
      clearTimeout(t);
    },
  };
}

/** `lamina drain --redis-url URL --node-id ID`; resolves with its output, throws on a non-zero exit. */
export async function drainNode({ redisUrl, id, timeout = 10000 }) {
  const p = spawnLogged(LAMINA_BIN, ["drain", "--redis-url", redisUrl, "--node-id", id], { env: { ...process.env, NO_COLOR: "1" } });
  const t = setTimeout(() => p.child.kill("SIGKILL"), timeout);
  const { code, signal } = await p.exited;
  clearTimeout(t);
  if (code !== 0) throw new Error(`lamina drain --node-id ${id}: exit ${code} (signal ${signal})\n${p.tail()}`);
  return p.lines.join("\n");
}
