#!/usr/bin/env bash
# Side-by-side benchmark of ftpsd, vsftpd and ProFTPD on this machine.
#
#   tests/bench/run.sh [--quick] [bench.py options...]
#
# Installs what is missing (Debian 12, as root): vsftpd, curl, lftp,
# gnutls-bin, python3, the build dependencies, and linux-perf if available;
# fetches ProFTPD with `apt-get download proftpd-core proftpd-mod-crypto` and
# unpacks it with dpkg -x into build-bench/proftpd-root (proftpd-core
# conflicts with vsftpd as a package); builds ftpsd in build-bench/
# (--buildtype=release), then runs tests/bench/bench.py, which prints the
# table and writes it as CSV (default build-bench/bench-results.csv).
#
# Environment: BENCH_BUILD_DIR (build-bench). The full run takes about 10-15
# minutes on 2 cores; --quick (small files, one run) about 2. Everything runs
# on 127.0.0.1 in a temporary directory that is removed at the end.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
build=${BENCH_BUILD_DIR:-build-bench}

say() { printf '==> %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    say "run as root: the benchmark starts servers, creates a user and cgroups"
    exit 1
fi

deps=(
    meson ninja-build pkg-config gcc
    libgnutls28-dev libseccomp-dev libcrypt-dev libpam0g-dev
    vsftpd curl lftp gnutls-bin openssl python3 systemd passwd
    # libraries the unpacked proftpd-core binary links against
    libhiredis0.14 libmemcached11 libmemcachedutil2 libpcre2-posix3 libsodium23 libacl1 libcap2
)
optional=(linux-perf)

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

missing=() missing_optional=()
for p in "${deps[@]}"; do
    installed "$p" || missing+=("$p")
done
for p in "${optional[@]}"; do
    installed "$p" || missing_optional+=("$p")
done
export DEBIAN_FRONTEND=noninteractive
updated=0
if [ "${#missing[@]}" -gt 0 ] || [ "${#missing_optional[@]}" -gt 0 ]; then
    say "installing: ${missing[*]} ${missing_optional[*]}"
    timeout 600 apt-get update -q >/dev/null
    updated=1
fi
if [ "${#missing[@]}" -gt 0 ]; then
    timeout 900 apt-get install -q -y --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi
for p in "${missing_optional[@]}"; do
    # only if the archive has it
    timeout 600 apt-get install -q -y --no-install-recommends "$p" </dev/null >/dev/null 2>&1 ||
        say "optional package $p not installed"
done

# ProFTPD, unpacked beside the build (not installed: it conflicts with vsftpd).
proftpd_root="$repo/$build/proftpd-root"
if [ ! -x "$proftpd_root/usr/sbin/proftpd" ] || [ ! -e "$proftpd_root/usr/lib/proftpd/mod_tls.so" ]; then
    say "fetching proftpd-core and proftpd-mod-crypto into $proftpd_root"
    mkdir -p "$build"
    debs=$(mktemp -d)
    trap 'rm -rf "$debs"' EXIT
    if [ "$updated" -eq 0 ]; then
        timeout 600 apt-get update -q >/dev/null
    fi
    (cd "$debs" && timeout 600 apt-get download -q proftpd-core proftpd-mod-crypto >/dev/null 2>&1)
    rm -rf "$proftpd_root"
    mkdir -p "$proftpd_root"
    for deb in "$debs"/*.deb; do
        dpkg -x "$deb" "$proftpd_root"
    done
fi

# ftpsd, optimised. -Dwerror=false: gcc -O3 warns where -O0 does not.
say "building ftpsd in $build (release)"
if [ -f "$build/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$build" --buildtype=release -Dwerror=false >/dev/null
else
    meson setup "$build" --buildtype=release -Dwerror=false >/dev/null
fi
meson compile -C "$build" ftpsd/ftpsd:executable >/dev/null

exec /usr/bin/python3 "$repo/tests/bench/bench.py" \
    --ftpsd "$repo/$build/ftpsd/ftpsd" \
    --proftpd-root "$proftpd_root" \
    --csv "$repo/$build/bench-results.csv" \
    "$@"
