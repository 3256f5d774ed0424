#!/usr/bin/env bash
# Fuzzes the wire formats (lamina-protocol): every target for N seconds (default 20), starting
# from the committed seed corpus. scripts/fuzz.sh [seconds]
#
# The targets are libFuzzer binaries (libfuzzer-sys) built with plain cargo on the stable
# toolchain: the coverage instrumentation cargo-fuzz would add is passed as RUSTFLAGS (no
# sanitizer, which would need nightly; Rust's own checks, overflow included, catch the bugs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
secs="${1:-20}"
targets=(phoenix_frame media_event server_event sdp_offer)
export CARGO_TARGET_DIR="$PWD/target"
export CARGO_INCREMENTAL=0
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps the instrumentation off build scripts.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --locked --release --bins --target "$host"
# Each target for `secs`, two at a time (libFuzzer runs on one core): each gets the same
# fuzzing time, the smoke takes half as long.
fuzz_one() {
  local target=$1
  # Work on a copy so a run does not grow the committed seed corpus.
  local work="target/corpus-$target"
  rm -rf "$work" && mkdir -p "artifacts/$target" && cp -r "corpus/$target" "$work"
  "target/$host/release/$target" "$work" -max_total_time="$secs" -max_len=65536 \
      -artifact_prefix="artifacts/$target/" >"target/fuzz-$target.log" 2>&1
}
report() {
  local target=$1 status=$2 log="target/fuzz-$1.log"
  if [ "$status" -eq 0 ]; then
    echo "fuzz $target: $(grep -E '^Done [0-9]+ runs' "$log" | tail -1)"
  else
    tail -40 "$log"
    echo "fuzz $target: FAILED (crash input under fuzz/artifacts/$target)"
    failed=1
  fi
}
failed=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  pair=("${targets[@]:i:2}")
  pids=()
  for target in "${pair[@]}"; do fuzz_one "$target" & pids+=($!); done
  for j in "${!pair[@]}"; do
    status=0
    wait "${pids[$j]}" || status=$?
    report "${pair[$j]}" "$status"
  done
done
exit "$failed"
