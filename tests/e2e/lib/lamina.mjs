// Starts the Lamina server binary on 127.0.0.1:0 (or another listen address) and finds its
// address in the log.
//
// The server logs (tracing fmt) a line containing `lamina listening` and `addr=127.0.0.1:PORT`,
// after `embedded TURN server listening addr=127.0.0.1:PORT`.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

import { REPO_DIR, WEB_DIST } from "./util.mjs";

export const LAMINA_BIN = resolve(REPO_DIR, process.env.LAMINA_BIN || "target/release/lamina");

// Strip ANSI colour codes that tracing may add.
const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * listen: the HTTP address (default 127.0.0.1:0, a free port); restartLamina reuses the old one.
 * turnListen: the embedded TURN server's UDP address (default 127.0.0.1:0).
 * logFilter: the server's LAMINA_LOG (default: the environment's, else "info").
 */
export async function startLamina({ timeout = 20000, extraArgs = [], listen = "127.0.0.1:0", turnListen = "127.0.0.1:0", logFilter } = {}) {
  if (!existsSync(LAMINA_BIN)) throw new Error(`server binary not found: ${LAMINA_BIN} (set LAMINA_BIN)`);
  if (!existsSync(resolve(WEB_DIST, "room.html"))) throw new Error(`web client not built: ${WEB_DIST}`);
  const args = ["--listen", listen, "--turn-listen", turnListen, "--web-dir", WEB_DIST, ...extraArgs];
  const child = spawn(LAMINA_BIN, args, {
    cwd: REPO_DIR,
    env: { ...process.env, NO_COLOR: "1", LAMINA_LOG: logFilter || process.env.LAMINA_LOG || "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines = [];
  const watchers = new Set();
  let turnAddr = null;
  let resolveAddr;
  let rejectAddr;
  const addrPromise = new Promise((res, rej) => {
    resolveAddr = res;
    rejectAddr = rej;
  });
  const onData = (buf) => {
    for (const raw of buf.toString().split("\n")) {
      const line = raw.replace(ANSI, "").trimEnd();
      if (!line) continue;
      lines.push(line);
      if (lines.length > 5000) lines.shift();
      if (process.env.LAMINA_E2E_SERVER_LOG) console.log(`[lamina] ${line}`);
      for (const w of watchers) w(line);
      if (line.includes("embedded TURN server listening")) {
        const m = line.match(/addr=([0-9.]+:\d+)/);
        if (m) turnAddr = m[1];
      }
      if (line.includes("lamina listening")) {
        const m = line.match(/addr=([0-9.]+:\d+)/);
        if (m) resolveAddr(m[1]);
      }
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  child.on("exit", (code, signal) => rejectAddr(new Error(`lamina exited early (code ${code}, signal ${signal})`)));
  child.on("error", (err) => rejectAddr(err));

  const timer = setTimeout(() => rejectAddr(new Error(`no "lamina listening" line within ${timeout} ms`)), timeout);
  let addr;
  try {
    addr = await addrPromise;
  } catch (err) {
    child.kill("SIGKILL");
    throw new Error(`${err.message}\n--- server log ---\n${lines.slice(-40).join("\n")}`);
  } finally {
    clearTimeout(timer);
  }
  return {
    addr,
    url: `http://${addr}`,
    /** The embedded TURN server's UDP address (logged before `lamina listening`), or null. */
    turnAddr,
    child,
    /** Last lines of the server log (for failure messages). */
    tail: (n = 40) => lines.slice(-n).join("\n"),
    /** What it was started with (restartLamina starts the next one alike). */
    options: { timeout, extraArgs, turnListen, logFilter },
    /** Resolves with the first log line (past or future) matching `re`; rejects after `ms`. */
    waitLog(re, ms = timeout) {
      const seen = lines.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((res, rej) => {
        const done = (fn, v) => {
          watchers.delete(w);
          clearTimeout(t);
          fn(v);
        };
        const w = (line) => re.test(line) && done(res, line);
        const t = setTimeout(() => done(rej, new Error(`no log line matching ${re} within ${ms} ms`)), ms);
        watchers.add(w);
      });
    },
    /** Collects the log lines matching `re` from now on, with their arrival time, until stop(). */
    collect(re) {
      const got = [];
      const w = (line) => re.test(line) && got.push({ at: Date.now(), line });
      watchers.add(w);
      return { lines: got, stop: () => watchers.delete(w) };
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * Restarts a server from startLamina on the same HTTP address (pages keep their URL; the TURN
 * port is new, clients get it with their next join): SIGTERM, wait for the exit, start again
 * (retrying while the port is still taken). Returns the new server; `stoppedAt` and `readyAt`
 * (Date.now()) tell how long it was away.
 */
export async function restartLamina(server, { retryForMs = 10000 } = {}) {
  await server.stop();
  const stoppedAt = Date.now();
  let lastErr;
  while (Date.now() - stoppedAt < retryForMs) {
    try {
      const next = await startLamina({ ...server.options, listen: server.addr });
      return Object.assign(next, { stoppedAt, readyAt: Date.now() });
    } catch (err) {
      lastErr = err;
      if (!/Address already in use|AddrInUse|os error 98/i.test(String(err.message))) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw lastErr;
}
