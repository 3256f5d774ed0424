#!/usr/bin/env bash
# Builds the server and the load generator in release mode and runs the side-by-side benchmark
# of Lamina and Janus VideoRoom (Janus and perf come from apt through `setup.sh bench`).
# Results: stdout table, target/bench/results.{json,csv,md}, target/bench/chart.png.
#   scripts/bench.sh                      all scenarios, both servers, 3 interleaved runs each
#                                         (medians with min–max; about 35 minutes)
#   scripts/bench.sh --repeats 1          one run each (about 15–20 minutes)
#   scripts/bench.sh --quick              Lamina only, one small room, one run (under a minute)
#   scripts/bench.sh --scenarios room8 --servers lamina --measure-s 30
#   scripts/bench.sh --scenarios loss --loss-percent 5    repaired vs unrepaired losses
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh bench
# Name both binaries: `--bin lamina` alone would limit the build to that one target.
cargo build --release --locked -p lamina --bin lamina -p lamina-bench --bin lamina-bench
exec target/release/lamina-bench "$@"
