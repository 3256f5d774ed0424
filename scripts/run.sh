#!/usr/bin/env bash
# Sets up what is missing, builds the web client and the release server, and runs Lamina at
# http://localhost:4000 (extra arguments go to `lamina`, see `lamina --help`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh run
scripts/build-web.sh
cargo build --release --locked --bin lamina
exec target/release/lamina --web-dir web/dist "$@"
