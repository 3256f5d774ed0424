#!/usr/bin/env bash
# Installs what Lamina needs on Debian 12, idempotently: only missing apt packages are installed.
#   scripts/setup.sh run      system packages to build and run the server
#   scripts/setup.sh cluster  the above, plus redis-server (scripts/cluster.sh: several nodes, one Redis)
#   scripts/setup.sh test     `run`, plus what the test suite needs (Chromium, Redis, tools)
#   scripts/setup.sh bench    `test`, plus Janus (reference SFU) and perf for lamina-bench
#   scripts/setup.sh profile  `bench`, plus valgrind and what scripts/profile.sh needs to build
#                             GStreamer's forwarding path with debug info (meson, ninja, flex,
#                             bison, libsrtp2-dev, dpkg-dev for `apt-get source`)
set -euo pipefail
mode="${1:-run}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

run_pkgs=(pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-nice
  gstreamer1.0-tools libnice-dev graphviz libssl-dev lld gcc make dpkg-dev xz-utils)
test_pkgs=(chromium iproute2 util-linux nftables gstreamer1.0-plugins-base-apps gdb nginx-light systemd redis-server)
bench_pkgs=(janus linux-perf)
profile_pkgs=(valgrind meson ninja-build flex bison libsrtp2-dev libgnutls28-dev dpkg-dev xz-utils curl)

want=("${run_pkgs[@]}")
if [ "$mode" = "test" ] || [ "$mode" = "bench" ] || [ "$mode" = "profile" ]; then want+=("${test_pkgs[@]}"); fi
if [ "$mode" = "bench" ] || [ "$mode" = "profile" ]; then want+=("${bench_pkgs[@]}"); fi
if [ "$mode" = "profile" ]; then want+=("${profile_pkgs[@]}"); fi
if [ "$mode" = "cluster" ]; then want+=(redis-server); fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; install Rust (https://rustup.rs) and run again" >&2
  exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing nodejs and npm" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi

# libsrtp2 on OpenSSL for the server's SRTP (Debian's is on NSS; docs/performance.md §8).
"$here/scripts/srtp.sh"

# Web client: reinstall only when the lock file changed.
npm_ci() {
  local dir="$1"
  [ -f "$dir/package-lock.json" ] || return 0
  local stamp="$dir/node_modules/.lamina-lock"
  if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
}
npm_ci "$here/web"
if [ "$mode" = "test" ]; then npm_ci "$here/tests/e2e"; npm_ci "$here/tests/node"; fi
