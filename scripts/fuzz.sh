#!/usr/bin/env bash
# Runs every fuzz target for N seconds each (default 20): scripts/fuzz.sh [seconds]
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 enables them on the stable toolchain.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-20}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cd fuzz
mkdir -p target
for target in phoenix_frame media_event sdp_offer; do
  mkdir -p "corpus/$target"
  # Work on a copy so a run does not grow the committed seed corpus.
  work="target/corpus-$target"
  rm -rf "$work" && cp -r "corpus/$target" "$work"
  log="target/fuzz-$target.log"
  if cargo fuzz run --sanitizer none "$target" "$work" -- -max_total_time="$secs" -max_len=65536 >"$log" 2>&1; then
    echo "fuzz $target: $(grep -E '^Done [0-9]+ runs' "$log" | tail -1)"
  else
    tail -40 "$log"
    echo "fuzz target $target failed (crash input under fuzz/artifacts/$target)"
    exit 1
  fi
done
