#!/bin/bash
# The interleaved runs of this directory (issue #14). /tmp/rtcp/lamina-before: release build of
# 875f9d9 (no pipelines/src/rtcp.rs); /tmp/rtcp/lamina-final: the same with it. Kept as run.
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
B=target/release/lamina-bench
pidwatch() { # $1 binary, $2 out file
  for i in $(seq 1 120); do
    pid=$(pgrep -f "^$1 --listen" | head -1); [ -n "$pid" ] && break; sleep 0.5
  done
  [ -z "$pid" ] && return
  sleep 25
  pidstat -w -t -p "$pid" 10 1 > "$2" 2>&1
}
n=0
for v in before final final before; do
  n=$((n+1))
  echo "== room8 $v (run $n) $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  nice -n 10 $B --scenarios room8 --servers lamina,janus --repeats 1 \
    --lamina-bin /tmp/rtcp/lamina-$v --out /tmp/rtcp/final/room8-$n-$v 2>&1 | grep -E "^   streams|failed"
done
n=0
for v in final before before final; do
  n=$((n+1))
  echo "== room4 $v (run $n) $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  pidwatch /tmp/rtcp/lamina-$v /tmp/rtcp/final/room4-$n-$v.pidstat &
  nice -n 10 $B --scenarios room4 --servers lamina --repeats 1 \
    --lamina-bin /tmp/rtcp/lamina-$v --out /tmp/rtcp/final/room4-$n-$v 2>&1 | grep -E "^   streams|failed"
  wait
done
echo done $(date +%T)
