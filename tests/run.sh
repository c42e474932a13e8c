#!/usr/bin/env bash
# The test command: installs what is missing (Debian, as root), builds with
# meson, runs every test (C unit tests and the pytest integration suite) and
# ends with one line: "N passed, N failed" (skipped cases on the line before).
#
# Usage: tests/run.sh [BUILD_DIR]      (or BUILD_DIR=... tests/run.sh; default: build)
# A relative BUILD_DIR is taken relative to the repository root.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

build=${1:-${BUILD_DIR:-build}}
# The second build: clang with AddressSanitizer and UBSan, and the fuzz
# targets. FTPSD_SANITIZE=0 skips it (quicker, for development only).
sanitize_build=${SANITIZE_BUILD_DIR:-$build-sanitize}
sanitize=${FTPSD_SANITIZE:-1}

# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

deps=(
    "${build_deps[@]}"
    clang libclang-rt-14-dev
    python3-pytest python3-cryptography curl lftp gnutls-bin openssl systemd xinetd procps haproxy
    fail2ban groff-base man-db strace
    # tests/integration/test_real_clients.py: real FTPS clients (php-cli brings
    # ext/ftp in php8.2-common; javac compiles the commons-net client)
    rclone wget php-cli default-jre-headless default-jdk-headless libcommons-net-java
)
# Node for basic-ftp (test_real_clients.py installs it with npm under the build
# directory): Debian's nodejs and npm, unless a node and npm are on PATH already
# (NodeSource's nodejs package brings its own npm and conflicts with Debian's).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    deps+=(nodejs npm)
fi

install_deps "${deps[@]}"

# Test builds carry the test hooks (SITE TESTHOOK) that the sandbox tests use.
# The first is optimised with debug info, as a plain `meson setup` builds
# (-O2, _FORTIFY_SOURCE); the sanitizer build is unoptimised.
say "building in $build"
configure "$build" --buildtype=debugoptimized -Dtest-hooks=true
meson compile -C "$build"
builds=("$build")
if [ "$sanitize" != 0 ]; then
    say "building in $sanitize_build (clang, ASan+UBSan, fuzz targets)"
    CC=clang configure "$sanitize_build" --buildtype=debug -Dtest-hooks=true -Db_sanitize=address,undefined \
        -Db_lundef=false -Dfuzzing=true
    meson compile -C "$sanitize_build"
    builds+=("$sanitize_build")
fi

status=0
for b in "${builds[@]}"; do
    # Results from an earlier run must not be counted again.
    rm -f "$b/meson-logs/testlog.json" "$b/meson-logs/integration.xml"
    say "testing $b"
    meson test -C "$b" --print-errorlogs || status=$?
done

summary=0
/usr/bin/python3 tests/summary.py "${builds[@]}" || summary=$?

if [ "$status" -ne 0 ] || [ "$summary" -ne 0 ]; then
    exit 1
fi
