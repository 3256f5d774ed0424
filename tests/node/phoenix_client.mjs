// Drives a Lamina server with the real `phoenix` JS client (the one the browser bundle uses).
//
// usage: node phoenix_client.mjs <socket url, e.g. ws://127.0.0.1:4000/socket> [--expect connected|ok]
//
// Connects, joins `room:x`, exchanges a heartbeat, pushes a `connect` media event and waits for
// the room's `connected` media event (`--expect connected`, the default) or only for the ok
// reply to that push (`--expect ok`), then leaves the channel and disconnects.
// Exit code 0 on success; 1 with a message on stderr otherwise.

import { Socket } from "phoenix";
import WebSocket from "ws";

const TIMEOUT_MS = 20000;

const args = process.argv.slice(2);
const url = args[0];
const expectIdx = args.indexOf("--expect");
const expect = expectIdx >= 0 ? args[expectIdx + 1] : "connected";
if (!url || !["connected", "ok"].includes(expect)) {
  console.error("usage: node phoenix_client.mjs <socket url> [--expect connected|ok]");
  process.exit(1);
}

function fail(message) {
  console.error(`phoenix_client: ${message}`);
  process.exit(1);
}

const timer = setTimeout(() => fail(`timed out after ${TIMEOUT_MS} ms`), TIMEOUT_MS);

const socket = new Socket(url, { transport: WebSocket, reconnectAfterMs: () => 60000 });
socket.onError((e) => fail(`socket error: ${e && e.message ? e.message : e}`));

// Resolves when a condition is met; fails the run on an error.
function step(name, run) {
  return new Promise((resolve) => {
    console.log(`phoenix_client: ${name}`);
    run(resolve);
  });
}

async function main() {
  await step("connect", (done) => {
    socket.onOpen(() => done());
    socket.connect();
  });

  const channel = socket.channel("room:x", {});
  let connected = null;
  let connectedWaiter = null;
  channel.on("mediaEvent", (payload) => {
    if (typeof payload.data !== "string") fail(`mediaEvent data is not a string: ${JSON.stringify(payload)}`);
    const event = JSON.parse(payload.data);
    if (event.type === "connected") {
      connected = event;
      if (connectedWaiter) connectedWaiter();
    } else if (event.type === "error") {
      fail(`room sent an error: ${payload.data}`);
    }
  });
  channel.onError((reason) => fail(`channel error: ${JSON.stringify(reason)}`));

  await step("join room:x", (done) => {
    channel
      .join()
      .receive("ok", () => done())
      .receive("error", (resp) => fail(`join refused: ${JSON.stringify(resp)}`))
      .receive("timeout", () => fail("join timed out"));
  });

  await step("heartbeat", (done) => {
    const unsubscribe = socket.onMessage((msg) => {
      if (msg.topic === "phoenix" && msg.event === "phx_reply" && msg.ref === ref) {
        if (msg.payload.status !== "ok") fail(`heartbeat reply: ${JSON.stringify(msg.payload)}`);
        socket.off([unsubscribe]);
        done();
      }
    });
    socket.sendHeartbeat();
    const ref = socket.pendingHeartbeatRef;
    if (!ref) fail("sendHeartbeat did not send");
  });

  const connect = JSON.stringify({ type: "connect", data: { metadata: { displayName: "node" } } });
  await step("push connect", (done) => {
    channel
      .push("mediaEvent", { data: connect })
      .receive("ok", () => done())
      .receive("error", (resp) => fail(`mediaEvent refused: ${JSON.stringify(resp)}`))
      .receive("timeout", () => fail("mediaEvent push timed out"));
  });

  if (expect === "connected") {
    await step("wait for connected", (done) => {
      if (connected) done();
      else connectedWaiter = done;
    });
    const id = connected.data && connected.data.id;
    if (typeof id !== "string" || !/^[0-9a-f-]{36}$/.test(id)) fail(`connected without a UUID id: ${JSON.stringify(connected)}`);
    if (!Array.isArray(connected.data.otherEndpoints)) fail(`connected without otherEndpoints: ${JSON.stringify(connected)}`);
    console.log(`phoenix_client: connected as ${id}`);
  }

  await step("leave", (done) => {
    channel
      .leave()
      .receive("ok", () => done())
      .receive("timeout", () => fail("leave timed out"));
  });

  await step("disconnect", (done) => socket.disconnect(() => done()));
  clearTimeout(timer);
  console.log("phoenix_client: ok");
  process.exit(0);
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
