#!/usr/bin/env bash
# Sets up what is missing, then runs the lint gate (rustfmt, clippy) and every test: Rust unit,
# protocol and media tests, the element plugin tests, and the end-to-end tests in headless Chromium.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh test
# The lint gate needs rustfmt and clippy, rustup components a minimal toolchain profile lacks.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  if ! command -v rustup >/dev/null 2>&1; then
    echo "test: rustfmt or clippy is missing; install them with your Rust toolchain" >&2
    exit 1
  fi
  echo "test: installing the rustfmt and clippy components" >&2
  rustup component add rustfmt clippy
fi
# A full run gains nothing from incremental state, which doubles target/ on a clean checkout.
export CARGO_INCREMENTAL=0
scripts/build-web.sh
start=$(date +%s)
status=0
# Lint gate, first because it is quick (clippy's check build: ~2 min cold, seconds warm; the
# build below reuses its build scripts and proc macros): formatting (the fuzz crates are a
# workspace of their own), then clippy with the lints of Cargo.toml, warnings as errors.
lint_failed=()
cargo fmt --all --check || lint_failed+=(rustfmt)
cargo fmt --check --manifest-path fuzz/Cargo.toml || lint_failed+=(rustfmt-fuzz)
cargo clippy --locked --workspace --all-targets -- -D warnings || lint_failed+=(clippy)
if [ "${#lint_failed[@]}" -gt 0 ]; then status=1; fi
cargo build --locked --workspace --all-targets
cargo test --locked --workspace --no-fail-fast 2>&1 | tee target/cargo-test.log || status=1
# 1-minute soak: room churn against the lamina binary; fails unless threads, fds, elements and
# RSS (within its tolerance) return to baseline once everyone has left (scripts/soak.sh). Short
# stays keep the churn of the former 2-minute run (scripts/soak.sh 30 is the long one).
PROFILE=dev scripts/soak.sh 1 --sample 5s --rooms 2 --participants 3 --stay-min 5s \
    --stay-max 20s --out target/soak-short 2>&1 | tee target/soak-test.log || status=1
# Fuzz smoke: the wire-format parsers under libFuzzer, 10 s per target from the seed corpus.
scripts/fuzz.sh 10 2>&1 | tee target/fuzz-test.log || status=1
LAMINA_BIN="$PWD/target/debug/lamina" tests/e2e/run.sh 2>&1 | tee target/e2e-test.log || status=1
echo
echo "=== summary ($(( $(date +%s) - start )) s) ==="
if [ "${#lint_failed[@]}" -gt 0 ]; then echo "lint: FAIL (${lint_failed[*]})"; else echo "lint: PASS"; fi
awk '/^test result:/ {p+=$4; f+=$6; i+=$8} END {printf "rust: %d passed, %d failed, %d ignored\n", p, f, i}' target/cargo-test.log
grep -E '^soak: (PASS|FAIL)' target/soak-test.log || echo "soak: did not finish"
grep -E '^fuzz ' target/fuzz-test.log || echo "fuzz: did not finish"
grep -E '^# (tests|pass|fail|skipped)' target/e2e-test.log | sed 's/^# /e2e: /' || true
exit $status
