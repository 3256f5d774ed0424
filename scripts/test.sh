#!/usr/bin/env bash
# Sets up what is missing, then runs every test: Rust unit, protocol and media tests, the
# element plugin tests, and the end-to-end tests in headless Chromium.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh test
scripts/build-web.sh
start=$(date +%s)
status=0
cargo build --locked --workspace --all-targets
cargo test --locked --workspace --no-fail-fast 2>&1 | tee target/cargo-test.log || status=1
LAMINA_BIN="$PWD/target/debug/lamina" tests/e2e/run.sh 2>&1 | tee target/e2e-test.log || status=1
echo
echo "=== summary ($(( $(date +%s) - start )) s) ==="
awk '/^test result:/ {p+=$4; f+=$6; i+=$8} END {printf "rust: %d passed, %d failed, %d ignored\n", p, f, i}' target/cargo-test.log
grep -E '^# (tests|pass|fail|skipped)' target/e2e-test.log | sed 's/^# /e2e: /' || true
exit $status
