#!/usr/bin/env bash
# Builds libsrtp2 on OpenSSL and installs it as /usr/local/lib/lamina/libsrtp2.so.1, which the
# server loads instead of Debian's NSS build (`--srtp-library`; docs/performance.md §8).
# The source is Debian's own package of the installed release (`apt-get source` through a
# private deb-src list: the system's apt configuration is not touched), configured as Debian
# does except for the crypto backend. Skips the work when that release is already installed.
# Needs dpkg-dev, gcc, make and libssl-dev (scripts/setup.sh installs them).
set -euo pipefail
dest=/usr/local/lib/lamina
pkg=libsrtp2
version="$(dpkg-query -W -f='${Version}' libsrtp2-1)"
stamp="$dest/libsrtp2.version"
if [ -f "$dest/libsrtp2.so.1" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version+openssl" ]; then
  exit 0
fi
sudo_cmd=()
if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
echo "deb-src http://deb.debian.org/debian bookworm main" >"$work/apt/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
  -o APT::Sandbox::User=root)
echo "srtp: building $pkg $version on OpenSSL" >&2
apt-get "${apt_opts[@]}" update -qq
(cd "$work/src" && apt-get "${apt_opts[@]}" source -qq "$pkg=$version" >/dev/null)
src="$(ls -d "$work/src/$pkg"-[0-9]*/ | head -1)"
# Debian's flags (debian/rules: no debug logging, -D_REENTRANT), OpenSSL instead of --enable-nss.
(cd "$src" && ./configure -q --disable-debug-logging --enable-openssl CFLAGS="-O2 -g -D_REENTRANT" &&
  make -s -j"$(nproc)" shared_library) >"$work/build.log" 2>&1 || {
  cat "$work/build.log" >&2
  exit 1
}
"${sudo_cmd[@]}" install -d "$dest"
"${sudo_cmd[@]}" install -m 0644 "$src/libsrtp2.so.1" "$dest/libsrtp2.so.1"
echo "$version+openssl" | "${sudo_cmd[@]}" tee "$stamp" >/dev/null
echo "srtp: installed $dest/libsrtp2.so.1" >&2
