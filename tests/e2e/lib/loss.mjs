// Packet loss on the browser <-> TURN leg, with nftables, inside the test's network namespace.
//
// Browsers are relay-only: every datagram between a browser and the server goes browser <->
// TURN (the lamina process, UDP on one port) <-> webrtcbin. The rules drop a random share of the
// UDP datagrams to and from the TURN port in the *input* hook of `lo` (dropping in the output
// hook would make the sender's sendto() fail with EPERM, which real loss never does). Each media
// packet crosses that port once on its way up (publisher -> TURN) and once on its way down
// (TURN -> subscriber), so with a drop probability p per crossing the end-to-end loss is
// 1 - (1 - p)^2. The TURN <-> webrtcbin leg (relay ports, ICE ports) is not touched.

import { spawn } from "node:child_process";

const TABLE = "lamina_e2e_loss";
/** Drop probabilities are in units of 1/SCALE (numgen random mod SCALE < n). */
export const SCALE = 100000;

function run(cmd, args, input = null) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === null ? "ignore" : "pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (b) => (out += b));
    child.stderr.on("data", (b) => (err += b));
    child.on("error", (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(" ")}: exit ${code}: ${err.trim()}`))));
    if (input !== null) child.stdin.end(input);
  });
}

/** Runs `nft` with `args` (and `input` on stdin); resolves with its output. */
export function nft(args, input = null) {
  return run("nft", args, input);
}

/** True when this process is in a network namespace whose only interface is `lo`. */
export async function inPrivateNetns() {
  const names = (await run("ip", ["-o", "link", "show"]))
    .split("\n")
    .map((l) => l.match(/^\d+:\s+([^:@\s]+)/)?.[1])
    .filter(Boolean);
  return names.length === 1 && names[0] === "lo";
}

/** Per-crossing drop probability (in 1/SCALE) giving `e2ePermille` end to end over two crossings. */
export function perCrossing(e2ePermille) {
  return Math.round(SCALE * (1 - Math.sqrt(1 - e2ePermille / 1000)));
}

/**
 * Installs the rules: drop `n`/SCALE of the UDP datagrams to (`udp dport`) and from
 * (`udp sport`) `port` on lo, counting what they see and what they drop.
 * Returns { counters(), stop() }; stop() removes the table (idempotent).
 */
export async function startUdpLoss(port, n) {
  if (!Number.isInteger(port) || port <= 0) throw new Error(`bad TURN port ${port}`);
  if (!Number.isInteger(n) || n < 0 || n > SCALE) throw new Error(`bad drop share ${n}/${SCALE}`);
  const drop = `numgen random mod ${SCALE} < ${n}`;
  await run(
    "nft",
    ["-f", "-"],
    `table inet ${TABLE} {
  counter to_turn_seen {}
  counter to_turn_drop {}
  counter from_turn_seen {}
  counter from_turn_drop {}
  chain input {
    type filter hook input priority 0; policy accept;
    iif "lo" udp dport ${port} counter name "to_turn_seen"
    iif "lo" udp dport ${port} ${drop} counter name "to_turn_drop" drop
    iif "lo" udp sport ${port} counter name "from_turn_seen"
    iif "lo" udp sport ${port} ${drop} counter name "from_turn_drop" drop
  }
}
`,
  );
  let stopped = false;
  return {
    /** Packets seen and dropped per direction: { to_turn_seen, to_turn_drop, from_turn_seen, from_turn_drop }. */
    async counters() {
      const json = JSON.parse(await run("nft", ["-j", "list", "counters", "table", "inet", TABLE]));
      const out = {};
      for (const o of json.nftables) if (o.counter) out[o.counter.name] = o.counter.packets;
      return out;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await run("nft", ["delete", "table", "inet", TABLE]);
    },
  };
}
