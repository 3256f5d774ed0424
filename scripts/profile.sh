#!/usr/bin/env bash
# Profiles the server's forwarding path with symbols for GStreamer (issue #14; docs/performance.md §3).
#   1. builds, once, into target/gst-debug/ the GStreamer 1.22.0 libraries and plugins on the
#      forwarding path with debug info, from Debian's own source packages (`apt-get source`
#      through a private deb-src list under target/gst-debug/apt/; the system's apt configuration
#      is not touched): gstreamer core, gst-plugins-base (libs), gst-plugins-good (rtpmanager),
#      gst-plugins-bad (webrtc, srtp, dtls and their libs), libnice (+ its nice plugin);
#      Debian's own compiler flags (`dpkg-buildflags`: -g -O2 …), so the code is Debian's code;
#   2. `perf record -g` of the server (target/release/lamina, run by lamina-bench with those
#      libraries first) over a steady-state window of a room of 8;
#   3. a short fixed scenario (room of 4, two bitrates) with the server under
#      `valgrind --tool=callgrind`: instructions per forwarded packet, by component.
# Results: target/profile/ (report.md, perf and callgrind outputs); the figure is printed.
#   scripts/profile.sh                    build if needed, perf + callgrind (about 15 minutes after the build)
#   scripts/profile.sh --build-only       only the GStreamer debug build
#   scripts/profile.sh --perf-only        skip callgrind
#   scripts/profile.sh --callgrind-only   skip perf
#   scripts/profile.sh --no-cargo         use the release binaries as they are (no cargo build)
#   PERF_ROOM=8 PERF_S=15 CG_ROOM=4 CG_S=10 CG_KBPS="150 450" scripts/profile.sh
# Environment for running anything else on the debug build: `source target/gst-debug/env.sh`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
gd="$root/target/gst-debug"
prefix="$gd/prefix"
out="$root/target/profile"
do_cargo=1 do_perf=1 do_cg=1
for a in "$@"; do
  case "$a" in
    --build-only) do_perf=0 do_cg=0 ;;
    --perf-only) do_cg=0 ;;
    --callgrind-only) do_perf=0 ;;
    --no-cargo) do_cargo=0 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "profile: unknown option $a" >&2; exit 2 ;;
  esac
done
PERF_ROOM="${PERF_ROOM:-8}" PERF_S="${PERF_S:-15}" PERF_FREQ="${PERF_FREQ:-499}"
CG_ROOM="${CG_ROOM:-4}" CG_S="${CG_S:-10}" CG_KBPS="${CG_KBPS:-150 450}"

scripts/setup.sh profile
[ "$do_cargo" = 0 ] || nice -n 10 cargo build --release --locked -p lamina --bin lamina -p lamina-bench --bin lamina-bench

# ---------------------------------------------------------------------------------------------
# 1. GStreamer with debug info, from Debian's source packages of the installed versions.
# ---------------------------------------------------------------------------------------------
# Source package → binary package whose installed version we want.
declare -A bin_of=(
  [gstreamer1.0]=libgstreamer1.0-0
  [gst-plugins-base1.0]=libgstreamer-plugins-base1.0-0
  [gst-plugins-good1.0]=gstreamer1.0-plugins-good
  [gst-plugins-bad1.0]=libgstreamer-plugins-bad1.0-0
  [libnice]=libnice10
)
order=(gstreamer1.0 gst-plugins-base1.0 gst-plugins-good1.0 libnice gst-plugins-bad1.0)
apt_opts=(-o "Dir::Etc::sourcelist=$gd/apt/sources.list" -o Dir::Etc::sourceparts=/nonexistent
  -o "Dir::State::Lists=$gd/apt/lists" -o "Dir::Cache=$gd/apt/cache"
  -o "Dir::Cache::archives=$gd/apt/archives" -o APT::Sandbox::User=root)

# Meson options per source package: only what the forwarding path needs.
common=(-Dauto_features=disabled)
declare -A meson_opts=(
  [gstreamer1.0]="-Dtools=enabled -Dtests=disabled -Dexamples=disabled -Dbenchmarks=disabled -Dintrospection=disabled -Ddoc=disabled -Dlibunwind=disabled -Dlibdw=disabled -Dnls=disabled"
  [gst-plugins-base1.0]="-Dtools=disabled -Dtests=disabled -Dexamples=disabled -Dintrospection=disabled -Ddoc=disabled -Dorc=enabled -Dgl=disabled -Dapp=enabled -Dnls=disabled"
  [gst-plugins-good1.0]="-Dtests=disabled -Dexamples=disabled -Ddoc=disabled -Dorc=enabled -Drtpmanager=enabled -Dnls=disabled"
  [libnice]="-Dgstreamer=enabled -Dgupnp=disabled -Dintrospection=disabled -Dtests=disabled -Dexamples=disabled -Dgtk_doc=disabled -Dcrypto-library=gnutls"
  [gst-plugins-bad1.0]="-Dtests=disabled -Dexamples=disabled -Dintrospection=disabled -Ddoc=disabled -Dorc=enabled -Dwebrtc=enabled -Dsrtp=enabled -Ddtls=enabled -Dsctp=enabled -Dnls=disabled"
)

fetch_sources() {
  mkdir -p "$gd/apt/lists/partial" "$gd/apt/archives/partial" "$gd/apt/cache" "$gd/src"
  # deb.debian.org main (bookworm point releases) and security; only deb-src lines.
  cat >"$gd/apt/sources.list" <<'EOF'
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian bookworm-updates main
deb-src http://deb.debian.org/debian-security bookworm-security main
EOF
  apt-get "${apt_opts[@]}" update -qq
  local src inst
  for src in "${order[@]}"; do
    inst="$(dpkg-query -W -f='${Version}' "${bin_of[$src]}")"
    if ls -d "$gd/src/$src"-[0-9]*/ >/dev/null 2>&1; then continue; fi
    # The exact installed version first; if the mirror cannot serve it (the security pool's
    # sources are not reachable from this VM), the newest other version of the same upstream
    # release, and say so in the build log.
    if ! (cd "$gd/src" && apt-get "${apt_opts[@]}" source -qq "$src=$inst" >/dev/null 2>&1); then
      local alt
      alt="$(apt-cache "${apt_opts[@]}" showsrc "$src" | awk '/^Version:/{print $2}' |
        grep -F "$(echo "$inst" | sed 's/-[^-]*$//')-" | grep -vxF "$inst" | sort -V | tail -1)"
      echo "profile: source $src=$inst not downloadable; using $src=$alt (same upstream release)" | tee -a "$gd/build.log" >&2
      (cd "$gd/src" && apt-get "${apt_opts[@]}" source -qq "$src=$alt" >/dev/null)
    fi
  done
}

# Targets per source package (paths in its build tree); empty: build and install everything.
# Only these libraries and plugins come from the debug build; anything else the server loads
# (libgstvideo, other plugins, …) stays the system's, which is ABI-identical (same release).
declare -A targets=(
  [gstreamer1.0]=""
  [gst-plugins-base1.0]="gst-libs/gst/rtp/libgstrtp-1.0.so.0.2200.0 gst-libs/gst/sdp/libgstsdp-1.0.so.0.2200.0"
  [gst-plugins-good1.0]="gst/rtpmanager/libgstrtpmanager.so"
  [libnice]=""
  [gst-plugins-bad1.0]="gst-libs/gst/webrtc/libgstwebrtc-1.0.so.0.2200.0 gst-libs/gst/webrtc/nice/libgstwebrtcnice-1.0.so.0.2200.0 ext/webrtc/libgstwebrtc.so ext/srtp/libgstsrtp.so ext/dtls/libgstdtls.so"
)

build_one() {
  local src="$1" dir
  dir="$(ls -d "$gd/src/$src"-[0-9]*/ | head -1)"
  local b="$dir/_build" t
  if [ ! -f "$b/build.ninja" ]; then
    # Debian's flags (-g -O2 -fstack-protector-strong -D_FORTIFY_SOURCE=2 …, buildtype plain as
    # dh_auto_configure does); headers and .pc files of packages not fully installed here
    # come from the system's -dev packages (same upstream release).
    # shellcheck disable=SC2086
    CFLAGS="$(dpkg-buildflags --get CFLAGS) -Wno-error" CPPFLAGS="$(dpkg-buildflags --get CPPFLAGS)" \
      LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" PKG_CONFIG_PATH="$prefix/lib/pkgconfig" \
      nice -n 10 meson setup "$b" "$dir" --prefix="$prefix" --libdir=lib --buildtype=plain \
      --wrap-mode=nofallback "${common[@]}" ${meson_opts[$src]} >>"$gd/build.log"
  fi
  if [ -z "${targets[$src]}" ]; then
    nice -n 10 ninja -C "$b" -j2 install >>"$gd/build.log"
    return
  fi
  # shellcheck disable=SC2086
  nice -n 10 ninja -C "$b" -j2 ${targets[$src]} >>"$gd/build.log"
  mkdir -p "$prefix/lib/gstreamer-1.0"
  for t in ${targets[$src]}; do
    case "$t" in
      */libgst*-1.0.so.*)   # a library: install it with its SONAME link
        install -m 755 "$b/$t" "$prefix/lib/"
        ln -sf "$(basename "$t")" "$prefix/lib/$(basename "$t" | sed 's/\(\.so\.[0-9]*\)\..*/\1/')" ;;
      *) install -m 755 "$b/$t" "$prefix/lib/gstreamer-1.0/" ;;
    esac
  done
}

stamp="$gd/prefix/.built"
if [ ! -f "$stamp" ]; then
  echo "profile: building GStreamer with debug info into $prefix (log: $gd/build.log)" >&2
  fetch_sources
  for src in "${order[@]}"; do echo "profile: building $src" >&2; build_one "$src"; done
  # Which Debian source versions went in.
  (cd "$gd/src" && ls -1 ./*.dsc) >"$gd/prefix/sources.txt"
  date -u +%FT%TZ >"$stamp"
fi
[ "$do_perf" = 1 ] || [ "$do_cg" = 1 ] || exit 0

# ---------------------------------------------------------------------------------------------
# Environment and server wrapper: the debug libraries first, system plugins after ours (the
# registry keeps the first plugin of a name), a private registry file.
# ---------------------------------------------------------------------------------------------
cat >"$gd/env.sh" <<EOF
# source this: GStreamer's forwarding path from $prefix (debug info), the rest from the system
export LD_LIBRARY_PATH="$prefix/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export GST_PLUGIN_SYSTEM_PATH="$prefix/lib/gstreamer-1.0:/usr/lib/x86_64-linux-gnu/gstreamer-1.0"
export GST_PLUGIN_SCANNER="$prefix/libexec/gstreamer-1.0/gst-plugin-scanner"
export GST_REGISTRY="$gd/registry.x86_64.bin"
# What the server sets for itself by re-executing (src/main.rs); set here so that valgrind
# does not have to follow that exec.
export G_SLICE=always-malloc
EOF
cat >"$gd/lamina-wrapped" <<EOF
#!/usr/bin/env bash
# lamina-bench's --lamina-bin for scripts/profile.sh: the server on the debug libraries,
# optionally under callgrind (LAMINA_PROFILE_TOOL=callgrind). Writes its pid to
# \$LAMINA_PROFILE_PIDFILE.
source "$gd/env.sh"
[ -z "\${LAMINA_PROFILE_PIDFILE:-}" ] || echo \$\$ >"\$LAMINA_PROFILE_PIDFILE"
if [ "\${LAMINA_PROFILE_TOOL:-}" = callgrind ]; then
  exec valgrind --tool=callgrind --instr-atstart=no --fair-sched=yes \\
    --callgrind-out-file="\$LAMINA_PROFILE_CGOUT" "$out/bin/lamina" "\$@"
fi
exec "$out/bin/lamina" "\$@"
EOF
chmod +x "$gd/lamina-wrapped"

# Copies of the release binaries: a build elsewhere in the tree cannot swap them mid-run.
mkdir -p "$out/bin"
cp target/release/lamina target/release/lamina-bench "$out/bin/"
pidfile="$out/server.pid"

# Server helpers; the server runs inside lamina-bench's network namespace.
server_port() { tr '\0' ' ' <"/proc/$1/cmdline" | sed -n 's/.*--listen 127\.0\.0\.1:\([0-9]*\).*/\1/p'; }
scrape() { nsenter --net="/proc/$1/ns/net" curl -s --max-time 20 "http://127.0.0.1:$(server_port "$1")/metrics"; }
metric() { awk -v m="$2" '$1 == m { print $2 }' <<<"$1"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# Starts lamina-bench in the background for one room of $1 at $2 kbit/s, then waits until the
# server has all peers and forwards steadily. Sets bench_pid, spid.
start_load() {
  local room="$1" kbps="$2" window="$3" tag="$4"
  rm -f "$pidfile"
  LAMINA_PROFILE_PIDFILE="$pidfile" "$out/bin/lamina-bench" --servers lamina \
    --scenarios "room$room" --repeats 1 --late-joins 0 --warmup-s 3 --measure-s "$window" \
    --video-kbps "$kbps" --lamina-bin "$gd/lamina-wrapped" --out "$out/bench-$tag" \
    >"$out/bench-$tag.out" 2>&1 &
  bench_pid=$!
  local i
  for i in $(seq 1200); do [ -s "$pidfile" ] && break; sleep 0.5; done  # media generation first
  spid="$(cat "$pidfile")"
  local prev=0 steady=0 m peers fwd
  for i in $(seq 240); do
    sleep 1
    kill -0 "$spid" 2>/dev/null || { echo "profile: server exited; see $out/bench-$tag.out" >&2; return 1; }
    m="$(scrape "$spid" || true)"
    peers="$(metric "$m" lamina_peers)"; fwd="$(metric "$m" lamina_forwarded_packets_total)"
    if [ "${peers:-0}" -ge "$room" ] && [ "${fwd:-0}" -gt "$prev" ] && [ "$prev" -gt 0 ]; then
      steady=$((steady + 1))
    else
      steady=0
    fi
    prev="${fwd:-0}"
    [ "$steady" -ge 5 ] && return 0
  done
  echo "profile: no steady forwarding after 240 s" >&2
  return 1
}

# Which file each forwarding-path library was loaded from.
check_maps() {
  local p="$1" lib f bad=0
  for lib in libgstreamer-1.0.so libgstbase-1.0.so libgstrtp-1.0.so libgstsdp-1.0.so \
    libgstwebrtc-1.0.so libgstwebrtcnice-1.0.so libnice.so libgstcoreelements.so \
    libgstrtpmanager.so libgstwebrtc.so libgstsrtp.so libgstdtls.so libgstnice.so; do
    f="$(awk -v l="/$lib" 'index($6, l) { print $6; exit }' "/proc/$p/maps")"
    printf '%-26s %s\n' "$lib" "${f:-(not loaded)}"
    case "$f" in "$prefix"/*) ;; *) bad=1 ;; esac
  done
  return "$bad"
}

python_classify="$root/target/gst-debug/classify.py"
cat >"$python_classify" <<'EOF'
"""Groups profile entries (object file, symbol) into components (docs/performance.md §3)."""
import os, re, sys

def component(dso, sym):
    d = os.path.basename(dso)
    s = sym
    if d.startswith('[kernel') or d.startswith('[vdso') or d == '[unknown]' and s.startswith('0xffff'):
        return 'kernel (UDP send/recv, futex, epoll, scheduler)'
    if d == 'lamina':
        if 'lamina_elements' in s: return 'ours: elements/ (Rust elements)'
        if 'lamina_pipelines' in s: return 'ours: pipelines/'
        if re.search(r'\b(gstreamer|gstreamer_rtp|gstreamer_base|gstreamer_webrtc|glib|gobject)(_sys)?::', s):
            return 'ours: gstreamer-rs / glib-rs bindings'
        if re.search(r'\b(tokio|mio|hyper|warp|tungstenite|tokio_tungstenite|h2|futures_\w+)::', s):
            return 'ours: tokio / warp / signalling'
        if re.search(r'\b(lamina|lamina_core|lamina_protocol|lamina_seam)::', s):
            return 'ours: server (rooms, signalling, metrics)'
        if re.search(r'(malloc|free|realloc|calloc|__rust_alloc|__rust_dealloc|alloc::alloc)', s):
            return 'allocation (malloc/free)'
        return 'ours: other Rust (std, core, crates)'
    if d.startswith('libgstrtpmanager'):
        if re.match(r'(rtp_session|rtp_source|rtp_stats|gst_rtp_session|rtp_twcc|rtp_jitter|rtp_timer)', s):
            return 'GStreamer: rtpsession (RTP/RTCP bookkeeping, TWCC)'
        if s.startswith('gst_rtp_funnel'): return 'GStreamer: rtpfunnel'
        return 'GStreamer: rtpbin, demuxers, rtx (rtpmanager)'
    if d.startswith('libgstwebrtc') or d.startswith('libgstwebrtcnice'):
        return 'GStreamer: webrtcbin (+libgstwebrtc)'
    if d.startswith('libgstsrtp'): return 'SRTP: srtpenc/srtpdec elements'
    if d.startswith('libsrtp2'): return 'SRTP: libsrtp2'
    if d.startswith('libcrypto'): return 'SRTP/DTLS crypto: OpenSSL libcrypto'
    if d.startswith('libssl'): return 'DTLS: OpenSSL libssl'
    if d.startswith('libgstdtls'): return 'DTLS: dtls elements'
    if d.startswith('libgstnice') or d.startswith('libnice'): return 'libnice (agent, nicesrc/nicesink)'
    if d.startswith('libgio'): return 'GLib: gio (GSocket)'
    if d.startswith('libgobject'): return 'GLib: gobject (signals, refs, type checks)'
    if d.startswith('libglib'):
        if re.match(r'g_(mutex|rec_mutex|rw_lock|cond|private)', s): return 'GLib: locks'
        return 'GLib: main loop, hash tables, misc'
    if d.startswith('libgstreamer-1.0'):
        if re.match(r'(gst_pad|gst_proxy_pad|gst_ghost_pad|pad_|gst_flow|gst_probe|do_probe|probe_|check_sticky|push_sticky|store_sticky|events_foreach|default_)', s):
            return 'GStreamer core: pad push, probes, sticky events'
        if re.match(r'(gst_buffer|gst_memory|gst_mini_object|gst_allocator|_sysmem|_gst_buffer|_gst_memory|gst_meta|_gst_meta|_fallback_mem|gst_parent_buffer_meta|_memory_)', s):
            return 'GStreamer core: buffers, memory, metas'
        if re.match(r'(gst_object|gst_element|gst_bin|gst_clock|gst_system_clock|gst_bus|gst_message|gst_task|gst_iterator)', s):
            return 'GStreamer core: objects, clock, bus'
        if re.match(r'(gst_debug|_gst_debug|gst_info)', s):
            return 'GStreamer core: debug logging checks'
        return 'GStreamer core: events, caps, structures, other'
    if d.startswith('libgstbase'): return 'GStreamer base classes (basesrc/basetransform/…)'
    if d.startswith('libgstrtp-1.0') or d.startswith('libgstrtp.so'): return 'GStreamer: RTP buffer library (headers, extensions)'
    if d.startswith('libgstcoreelements'): return 'GStreamer: core elements (queue, funnel, identity)'
    if d.startswith('libc.so') or d.startswith('libc-'):
        if re.search(r'(malloc|free|realloc|calloc|_int_|tcache|arena|sysmalloc|unlink_chunk|alloc_perturb)', s):
            return 'allocation (malloc/free)'
        if re.search(r'(memcpy|memmove|memset|memcmp|strlen|strcmp|__mem|__str)', s): return 'libc: memcpy/memset/str'
        if re.search(r'(pthread|lll_|futex|mutex|cond_|__GI___lll)', s): return 'libc: locks (pthread)'
        return 'libc: syscall wrappers, other'
    if d.startswith('ld-linux'): return 'dynamic linker'
    if d.startswith('libgstsdp') : return 'GStreamer: SDP library'
    return 'other: ' + d

def group(component):
    if component.startswith('ours'): return 'ours (lamina binary)'
    if component.startswith('GStreamer') or component.startswith('SRTP: srtp') or component.startswith('DTLS: dtls') or component.startswith('libnice'):
        return 'GStreamer and its plugins (incl. libnice)'
    if component.startswith('GLib'): return 'GLib/GObject'
    if component.startswith('kernel'): return 'kernel'
    return 'system libraries (libc, allocation, libsrtp2, OpenSSL)'
EOF

cat >"$gd/cg_parse.py" <<'EOF'
"""Self and inclusive Ir per (object, function) from a callgrind.out file (no annotate needed)."""
import collections, re, sys

def parse(path):
    names = {'ob': {}, 'fl': {}, 'fn': {}}
    def name(kind, val):
        m = re.match(r'\((\d+)\)\s*(.*)', val)
        if not m: return val
        i, n = m.group(1), m.group(2)
        if n: names[kind][i] = n
        return names[kind].get(i, '?')
    selfc = collections.Counter(); incl = collections.Counter()
    ob = fn = '?'; cob = None; after_calls = False; total = 0
    callee = None
    for line in open(path, errors='replace'):
        c = line[0]
        if c.isdigit() or c in '+-*':
            if after_calls:
                parts = line.split()
                v = int(parts[1]) if len(parts) > 1 else 0
                if callee != (ob, fn): incl[(ob, fn)] += v   # not for direct recursion
                after_calls = False; cob = None
            else:
                parts = line.split()
                v = int(parts[1]) if len(parts) > 1 else 0
                selfc[(ob, fn)] += v; incl[(ob, fn)] += v
            continue
        after_calls = False
        if line.startswith('ob='): ob = name('ob', line[3:].strip()); cob = None
        elif line.startswith('fn='): fn = name('fn', line[3:].strip()); cob = None
        elif line.startswith('cob='): cob = name('ob', line[4:].strip())
        elif line.startswith('cfn='): callee = (cob or ob, name('fn', line[4:].strip()))
        elif line.startswith(('fl=', 'fi=', 'fe=')): name('fl', line[3:].strip())
        elif line.startswith(('cfl=', 'cfi=')): name('fl', line[4:].strip())
        elif line.startswith('calls='): after_calls = True
        elif line.startswith(('summary:', 'totals:')): total = max(total, int(line.split()[1]))
    return selfc, incl, total
EOF

# ---------------------------------------------------------------------------------------------
# 2. perf record of the server, steady state of a room of $PERF_ROOM.
# ---------------------------------------------------------------------------------------------
run_perf() {
  echo "profile: perf: room of $PERF_ROOM, ${PERF_S} s of steady state" >&2
  start_load "$PERF_ROOM" 500 $((PERF_S + 20)) perf
  check_maps "$spid" >"$out/maps-perf.txt" || echo "profile: WARNING: not every forwarding-path library is from $prefix (see $out/maps-perf.txt)" >&2
  local m0 m1 c0 c1 t0 t1
  m0="$(scrape "$spid")"; c0="$(cpu_ticks "$spid")"; t0="$(date +%s.%N)"
  perf record -q -F "$PERF_FREQ" --call-graph dwarf,16384 -p "$spid" -o "$out/perf.data" -- sleep "$PERF_S" 2>>"$out/perf-record.err"
  m1="$(scrape "$spid")"; c1="$(cpu_ticks "$spid")"; t1="$(date +%s.%N)"
  ps -L -o tid=,comm= -p "$spid" | awk '{print $2}' | sed 's/[0-9]*$//' | sort | uniq -c | sort -rn >"$out/perf-threads.txt"
  wait "$bench_pid" || true
  cat >"$out/perf-window.env" <<EOF
fwd=$(( $(metric "$m1" lamina_forwarded_packets_total) - $(metric "$m0" lamina_forwarded_packets_total) ))
cpu_s=$(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" 'BEGIN { print (b - a) / hz }')
wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
peers=$(metric "$m1" lamina_peers)
EOF
  echo "profile: perf report (dwarf unwinding; a few minutes)" >&2
  nice -n 10 perf report -i "$out/perf.data" --no-children --sort dso,sym -g none --stdio -q \
    --percent-limit 0 2>/dev/null >"$out/perf-self.txt"
  nice -n 10 perf report -i "$out/perf.data" --no-children --sort comm -g none --stdio -q \
    2>/dev/null >"$out/perf-threads-share.txt"
  nice -n 10 perf report -i "$out/perf.data" --children --sort sym -g none --stdio -q \
    --percent-limit 1.5 2>/dev/null >"$out/perf-children.txt"
  nice -n 10 perf report -i "$out/perf.data" --no-children --sort sym --stdio -q \
    -g caller,0.5,callee --percent-limit 1.5 2>/dev/null | head -3000 >"$out/perf-callers.txt" || true
  python3 - "$out" <<'EOF'
import collections, os, re, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[1] + '/../gst-debug/x')))
from classify import component, group
out = sys.argv[1]
env = dict(l.strip().split('=', 1) for l in open(f'{out}/perf-window.env') if '=' in l)
fwd, cpu = int(env['fwd']), float(env['cpu_s'])
comp = collections.Counter(); grp = collections.Counter(); syms = collections.defaultdict(collections.Counter)
for line in open(f'{out}/perf-self.txt'):
    m = re.match(r'\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*$', line)
    if not m: continue
    pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4)
    if kind == 'k': dso = '[kernel]'
    c = component(dso, sym); comp[c] += pct; grp[group(c)] += pct; syms[c][sym] += pct
us = cpu / fwd * 1e6
with open(f'{out}/perf-components.md', 'w') as f:
    f.write(f"Window: {env['wall_s'][:5]} s, server CPU {cpu:.2f} s, {fwd} packets forwarded "
            f"({fwd/float(env['wall_s']):.0f}/s, {fwd/cpu:.0f} per CPU-s, {us:.1f} µs of CPU each), {env['peers']} peers\n\n")
    f.write('| group | % of samples | µs per forwarded packet |\n|---|---|---|\n')
    for g, p in grp.most_common(): f.write(f'| {g} | {p:.1f} | {p/100*us:.2f} |\n')
    f.write('\n| component | % of samples | µs per forwarded packet | top symbols (self %) |\n|---|---|---|---|\n')
    for c, p in comp.most_common():
        top = ', '.join(f'`{s[:60]}` {v:.1f}' for s, v in syms[c].most_common(4))
        f.write(f'| {c} | {p:.1f} | {p/100*us:.2f} | {top} |\n')
print(open(f'{out}/perf-components.md').read())
EOF
}

# ---------------------------------------------------------------------------------------------
# 3. Instruction counts: room of $CG_ROOM, server under callgrind, two video bitrates (so the
#    packet-proportional and the time-proportional parts can be told apart).
# ---------------------------------------------------------------------------------------------
run_callgrind() {
  local kbps m0 m1 t0 t1 f
  for kbps in $CG_KBPS; do
    echo "profile: callgrind: room of $CG_ROOM at $kbps kbit/s, ${CG_S} s" >&2
    rm -f "$out/callgrind.out.$kbps"*
    export LAMINA_PROFILE_TOOL=callgrind LAMINA_PROFILE_CGOUT="$out/callgrind.out.$kbps"
    start_load "$CG_ROOM" "$kbps" $((CG_S + 30)) "cg$kbps"
    unset LAMINA_PROFILE_TOOL LAMINA_PROFILE_CGOUT
    check_maps "$spid" >"$out/maps-cg$kbps.txt" || echo "profile: WARNING: see $out/maps-cg$kbps.txt" >&2
    callgrind_control -i on "$spid" >/dev/null
    m0="$(scrape "$spid")"; t0="$(date +%s.%N)"
    sleep "$CG_S"
    m1="$(scrape "$spid")"; t1="$(date +%s.%N)"
    callgrind_control -d "$spid" >/dev/null
    callgrind_control -i off "$spid" >/dev/null || true
    cat >"$out/cg$kbps-window.env" <<EOF
fwd=$(( $(metric "$m1" lamina_forwarded_packets_total) - $(metric "$m0" lamina_forwarded_packets_total) ))
wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
peers=$(metric "$m1" lamina_peers)
room=$CG_ROOM
kbps=$kbps
EOF
    wait "$bench_pid" || true
    f="$(ls -1 "$out/callgrind.out.$kbps".* 2>/dev/null | grep -v '\.txt$' | head -1)"
    [ -n "$f" ] || { echo "profile: no callgrind dump for $kbps kbit/s" >&2; continue; }
    mv "$f" "$out/callgrind.out.$kbps.window"
    callgrind_annotate --inclusive=no --threshold=99 "$out/callgrind.out.$kbps.window" 2>/dev/null |
      head -120 >"$out/callgrind-annotate-self-$kbps.txt" || true   # head closes the pipe early
    callgrind_annotate --inclusive=yes --threshold=99 "$out/callgrind.out.$kbps.window" 2>/dev/null |
      head -160 >"$out/callgrind-annotate-incl-$kbps.txt" || true
  done
  python3 - "$out" $CG_KBPS <<'EOF'
import collections, os, re, sys
sys.path.insert(0, os.path.abspath(sys.argv[1] + '/../gst-debug'))
from classify import component, group
from cg_parse import parse
out, rates = sys.argv[1], sys.argv[2:]
runs = []
for k in rates:
    p = f'{out}/callgrind.out.{k}.window'
    if not os.path.exists(p): continue
    env = dict(l.strip().split('=', 1) for l in open(f'{out}/cg{k}-window.env') if '=' in l)
    selfc, incl, total = parse(p)
    runs.append((k, env, selfc, incl, total))
lines = []
for k, env, selfc, incl, total in runs:
    fwd, wall = int(env['fwd']), float(env['wall_s'])
    comp = collections.Counter(); grp = collections.Counter(); syms = collections.defaultdict(collections.Counter)
    for (ob, fn), v in selfc.items():
        c = component(ob, fn); comp[c] += v; grp[group(c)] += v; syms[c][fn] += v
    tot = sum(selfc.values()) or total
    lines.append(f"### room of {env['room']}, video {k} kbit/s: {wall:.1f} s, {fwd} packets forwarded "
                 f"({fwd/wall:.0f}/s), {tot/1e9:.2f} G instructions ({tot/wall/1e6:.0f} M/s): "
                 f"**{tot/fwd:,.0f} instructions per forwarded packet**\n")
    lines.append('| group | % of Ir | instructions per forwarded packet |\n|---|---|---|')
    for g, v in grp.most_common(): lines.append(f'| {g} | {100*v/tot:.1f} | {v/fwd:,.0f} |')
    lines.append('\n| component | % of Ir | instructions per forwarded packet | top functions (self, per packet) |\n|---|---|---|---|')
    for c, v in comp.most_common():
        top = ', '.join(f'`{s[:55]}` {x/fwd:,.0f}' for s, x in syms[c].most_common(4))
        lines.append(f'| {c} | {100*v/tot:.1f} | {v/fwd:,.0f} | {top} |')
    # Inclusive costs of entry points on the forwarding path (nested: do not add up).
    keys = ['srtp_protect', 'srtp_unprotect', 'srtp_protect_rtcp', 'srtp_unprotect_rtcp',
            'gst_srtp_enc_chain_rtp', 'gst_srtp_dec_chain_rtp', 'nice_agent_send_messages_nonblocking',
            'nice_agent_recv_messages', 'gst_nice_sink_render', 'gst_nice_src_create',
            'gst_rtp_session_chain_recv_rtp', 'gst_rtp_session_chain_send_rtp',
            'gst_rtp_session_chain_recv_rtcp', 'rtp_session_on_timeout', 'rtp_session_process_rtp',
            'rtp_session_send_rtp', 'gst_rtp_funnel_sink_chain', 'gst_rtp_funnel_sink_chain_object',
            'gst_pad_push', 'gst_buffer_copy_into', 'gst_rtp_buffer_map', 'g_main_context_iteration',
            'rtp_twcc_manager_send_packet', 'rtp_twcc_manager_recv_packet', 'malloc', 'free',
            'sendmsg', '__libc_sendmsg', 'recvmsg', '__libc_recvmsg', 'g_socket_send_message',
            'g_socket_receive_message', 'gst_webrtc_bin_change_state']
    inc = collections.Counter()
    for (ob, fn), v in incl.items():
        base = fn.split('(')[0].split('<')[0]
        if base in keys: inc[base] += v
    ours = collections.Counter()
    for (ob, fn), v in incl.items():
        if os.path.basename(ob) == 'lamina' and re.search(r'lamina_(elements|pipelines)::.*(chain|sink_chain|forward|push|render|transform|handle_buffer)', fn):
            ours[fn] = max(ours[fn], v)
    lines.append('\n| function (inclusive; nested, so these overlap) | instructions per forwarded packet |\n|---|---|')
    for fn, v in inc.most_common(): lines.append(f'| `{fn}` | {v/fwd:,.0f} |')
    for fn, v in ours.most_common(8): lines.append(f'| `{fn[:110]}` | {v/fwd:,.0f} |')
    lines.append('')
if len(runs) >= 2:
    (ka, ea, sa, _, ta), (kb, eb, sb, _, tb) = runs[0], runs[-1]
    Ia, Ib = sum(sa.values()) / float(ea['wall_s']), sum(sb.values()) / float(eb['wall_s'])
    Pa, Pb = int(ea['fwd']) / float(ea['wall_s']), int(eb['fwd']) / float(eb['wall_s'])
    if Pb != Pa:
        c = (Ib - Ia) / (Pb - Pa); F = Ia - c * Pa
        lines.append(f"### Two-point split (I/s = F + c × forwarded/s; {ka} vs {kb} kbit/s)\n")
        lines.append(f"- marginal cost c = **{c:,.0f} instructions per forwarded packet**")
        lines.append(f"- time-proportional cost F = **{F/1e6:,.1f} M instructions/s** for {ea['room']} peers "
                     f"= {F/int(ea['room'])/1e6:,.2f} M/s per peer (timers, RTCP, ICE/DTLS keep-alives, wake-ups, audio is in c)")
        lines.append('')
open(f'{out}/callgrind-components.md', 'w').write('\n'.join(lines) + '\n')
print('\n'.join(lines))
EOF
}

[ "$do_perf" = 1 ] && run_perf
[ "$do_cg" = 1 ] && run_callgrind
{
  echo "# Lamina forwarding profile ($(date -u +%F), $(git rev-parse --short HEAD)$(git diff --quiet || echo ', dirty tree'))"
  echo
  echo "GStreamer from $prefix: $(tr '\n' ' ' <"$prefix/sources.txt" 2>/dev/null)"
  echo
  for f in maps-perf.txt; do [ -f "$out/$f" ] && { echo '```'; cat "$out/$f"; echo '```'; echo; }; done
  [ -f "$out/perf-components.md" ] && { echo "## perf (room of $PERF_ROOM)"; echo; cat "$out/perf-components.md"; echo; }
  [ -f "$out/callgrind-components.md" ] && { echo "## callgrind (room of $CG_ROOM)"; echo; cat "$out/callgrind-components.md"; }
} >"$out/report.md"
echo "profile: report in $out/report.md" >&2
grep -h 'instructions per forwarded packet\*\*' "$out/callgrind-components.md" 2>/dev/null || true
