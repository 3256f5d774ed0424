#!/usr/bin/env bash
# A local Lamina cluster: one redis-server (127.0.0.1, a free port, data in a temp dir) and N
# nodes (default 3) node-1..N on 127.0.0.1: HTTP 4000+i, TURN 3478+i, ICE and TURN relay ports in
# ranges of their own. Sets up what is missing and builds like scripts/run.sh; Ctrl-C stops the
# nodes, then Redis, and removes the temp dir.
#   scripts/cluster.sh [N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n="${1:-3}"
scripts/setup.sh cluster
scripts/build-web.sh
cargo build --release --locked --bin lamina

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]:1}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]:1}"; do wait "$p" 2>/dev/null || true; done
  if [ "${#pids[@]}" -gt 0 ]; then kill "${pids[0]}" 2>/dev/null || true; wait "${pids[0]}" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
set -m # each process in its own process group: Ctrl-C reaches only this script, which stops them in order

# Redis on the first port from 6379 up that nothing answers on.
port=6379
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$tmp" </dev/null >"$tmp/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$port" ping >/dev/null 2>&1; do
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$tmp/redis.log" >&2; exit 1; }
  sleep 0.1
done
redis="redis://127.0.0.1:$port"
echo "cluster: redis $redis"

for ((i = 0; i < n; i++)); do
  http=$((4000 + i))
  ice=$((50000 + i * 1000))
  relay=$((49152 + i * (800 / n)))
  target/release/lamina --web-dir web/dist --redis-url "$redis" --node-id "node-$((i + 1))" \
    --listen "127.0.0.1:$http" --public-url "ws://127.0.0.1:$http" --turn-listen "127.0.0.1:$((3478 + i))" \
    --ice-port-min "$ice" --ice-port-max "$((ice + 999))" \
    --turn-relay-port-min "$relay" --turn-relay-port-max "$((relay + 800 / n - 1))" </dev/null &
  pids+=($!)
  echo "cluster: node-$((i + 1)) http://127.0.0.1:$http"
done
echo "cluster: state at http://127.0.0.1:4000/cluster (any node); Ctrl-C stops everything"
wait -n "${pids[@]}" || true
echo "cluster: a process exited; stopping" >&2
exit 1
