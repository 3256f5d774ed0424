#!/usr/bin/env bash
# Video under packet loss at several rates: runs tests/e2e/loss.test.mjs (clean phase, then a
# 40 s lossy phase; nothing leaves the machine) once per end-to-end loss rate and collects its
# `[metric] loss ...` figures. Not part of scripts/test.sh (about 80 s per rate).
#
#   scripts/loss-matrix.sh            1 %, 3 %, 5 % and 10 %
#   scripts/loss-matrix.sh 20 70      rates in per mille
#
# Needs what tests/e2e/run.sh needs (scripts/setup.sh test, scripts/build-web.sh, the server);
# LAMINA_BIN defaults to target/debug/lamina. Writes target/loss-matrix/results.txt (a summary
# table, then every figure line) and one full log per rate next to it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LAMINA_BIN="${LAMINA_BIN:-$PWD/target/debug/lamina}"
out=target/loss-matrix
mkdir -p "$out"
rates=("$@")
[ "${#rates[@]}" -gt 0 ] || rates=(10 30 50 100)

figures="$out/figures.txt"
: >"$figures"
for r in "${rates[@]}"; do
  log="$out/loss-${r}permille.log"
  echo "loss-matrix: ${r} per mille ..." >&2
  if LAMINA_E2E_LOSS_PERMILLE="$r" tests/e2e/run.sh loss.test.mjs >"$log" 2>&1; then s=pass; else s=fail; fi
  { echo "## ${r} per mille: $s ($log)"; grep -o '\[metric\] loss .*' "$log" || echo "(no figures)"; } >>"$figures"
done

{
  echo "# loss matrix, $(date -u +%FT%TZ), $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (dirty)')"
  # One row per rate, phase and receiver: key=value fields of the figure lines.
  awk '
    /^## / { rate = $2 }
    /phase=lossy applied/ { for (i = 1; i <= NF; i++) if ($i ~ /^e2e_pct=/) applied[rate] = substr($i, 9) }
    /receiver=/ {
      delete f
      for (i = 1; i <= NF; i++) if ((p = index($i, "=")) > 0) f[substr($i, 1, p - 1)] = substr($i, p + 1)
      rows[++n] = sprintf("%-9s %-6s %-6s %6s %-9s %5s %8s %7s %6s %5s %12s", rate, f["phase"], f["receiver"],
        f["fps"], f["size"], f["freezes"], f["freeze_s"], f["rx_loss_pct"], f["nack"], f["pli"], f["rtx_received"])
      rowrate[n] = rate
    }
    END {
      printf "%-9s %-6s %-6s %6s %-9s %5s %8s %7s %6s %5s %12s %9s\n", "permille", "phase", "rx", "fps", "size",
        "frz", "frz_s", "rxloss%", "nack", "pli", "rtx_received", "applied%"
      for (i = 1; i <= n; i++) printf "%s %9s\n", rows[i], (rows[i] ~ / lossy /) ? applied[rowrate[i]] : "-"
    }' "$figures"
  echo
  cat "$figures"
} >"$out/results.txt"
cat "$out/results.txt"
