#!/usr/bin/env bash
# Soak test: `scripts/soak.sh [minutes] [lamina-soak options…]` (default 30 minutes) builds the
# server and the soak tool, starts `lamina` with debug endpoints on 127.0.0.1, churns rooms
# against it (participants joining and leaving at seeded random times, screen shares, some
# dropped without leaving), samples RSS, threads, fds and GStreamer elements, and fails unless
# every count returns to its baseline once everyone has left. Writes target/soak/samples.csv,
# soak.png, summary.txt and server.log. PROFILE=dev|release (default release) picks the build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
minutes=30
if [[ $# -gt 0 && $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; then
    minutes=$1
    shift
fi
profile=${PROFILE:-release}
dir=$([[ $profile == dev ]] && echo debug || echo "$profile")
# --workspace: the same feature set as a workspace build, so the test command rebuilds nothing.
cargo build --locked --profile "$profile" --workspace --bin lamina --bin lamina-soak
exec nice -n 10 "target/$dir/lamina-soak" --server "target/$dir/lamina" --duration "${minutes}m" "$@"
