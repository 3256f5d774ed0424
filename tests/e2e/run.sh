#!/bin/sh
# Lamina end-to-end tests in headless Chromium, inside a private network namespace that has
# only loopback (every ICE candidate pair is 127.0.0.1 -> 127.0.0.1; nothing leaves the box).
#
#   tests/e2e/run.sh                     all test files
#   tests/e2e/run.sh client.test.mjs     some of them (names relative to tests/e2e)
#
# Needs: web/dist built (cd web && npm ci && npm run build), npm ci in tests/e2e, Chromium at
# /usr/bin/chromium (or CHROMIUM_PATH), and for videoroom, chat, lobby, tiles, reconnect, quality,
# loss, cluster, vad, simulcast and simulcast_room.test.mjs the server binary LAMINA_BIN (default
# target/release/lamina, relative to the repository root); loss.test.mjs and reconnect.test.mjs also need nft (nftables) and drop
# packets on lo of the namespace only; cluster.test.mjs also needs redis-server (REDIS_SERVER,
# default /usr/bin/redis-server) and runs its nodes on 127.0.0.1, .2 and .3.
# Tests start the server themselves (127.0.0.1:0) and one shared browser.
# LAMINA_E2E_NO_NETNS=1 skips the namespace (when unshare is not permitted).
# LAMINA_E2E_SERVER_LOG=1 echoes the server log.
# LAMINA_E2E_TIMELINE=1 prints simulcast_room's 100 ms timeline and the server's layer decisions
# (otherwise printed only when the subscriber's freezes miss their goal).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

bin=${LAMINA_BIN:-target/release/lamina}
case "$bin" in /*) ;; *) bin="$repo/$bin" ;; esac
export LAMINA_BIN="$bin"

if [ "$#" -gt 0 ]; then files="$*"; else files="client.test.mjs videoroom.test.mjs chat.test.mjs lobby.test.mjs tiles.test.mjs reconnect.test.mjs quality.test.mjs loss.test.mjs cluster.test.mjs vad.test.mjs simulcast.test.mjs simulcast_room.test.mjs"; fi

fail=0
if [ ! -f "$repo/web/dist/room.html" ] || [ ! -f "$repo/web/dist/assets/index.js" ]; then
  echo "e2e: web/dist is missing: run (cd web && npm ci && npm run build)" >&2
  fail=1
fi
case " $files " in
  *videoroom*|*chat*|*lobby*|*tiles*|*reconnect*|*quality*|*loss*|*cluster*|*vad*|*simulcast*)
    if [ ! -x "$bin" ]; then
      echo "e2e: server binary not found: $bin (cargo build --release, or set LAMINA_BIN)" >&2
      fail=1
    fi
    ;;
esac
if [ ! -d "$here/node_modules/playwright-core" ]; then
  echo "e2e: node modules missing: run (cd tests/e2e && npm ci)" >&2
  fail=1
fi
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  echo "e2e: Chromium not found at $chromium (apt-get install chromium)" >&2
  fail=1
fi
case " $files " in
  *loss*|*reconnect*|*simulcast_room*)
    if ! command -v nft >/dev/null 2>&1; then
      echo "e2e: nft not found, loss, reconnect and simulcast_room.test.mjs need it (apt-get install nftables)" >&2
      fail=1
    fi
    ;;
esac
case " $files " in
  *cluster*)
    if [ ! -x "${REDIS_SERVER:-/usr/bin/redis-server}" ]; then
      echo "e2e: redis-server not found, cluster.test.mjs needs it (apt-get install redis-server)" >&2
      fail=1
    fi
    ;;
esac
[ "$fail" = 0 ] || exit 1

mkdir -p "$here/artifacts"
cd "$here"
run='exec node --test --test-concurrency=1 --test-timeout=180000 "$@"'
if [ "${LAMINA_E2E_NO_NETNS:-0}" = 1 ]; then
  # shellcheck disable=SC2086
  sh -c "$run" sh $files
else
  # shellcheck disable=SC2086
  unshare -n sh -c "ip link set lo up && $run" sh $files
fi
