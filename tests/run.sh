#!/usr/bin/env bash
# The test command: installs what is missing (Debian, as root), builds with
# meson, runs every test (C unit tests and the pytest integration suite) and
# ends with one line: "N passed, N failed[, N skipped]".
#
# Usage: tests/run.sh [BUILD_DIR]      (or BUILD_DIR=... tests/run.sh; default: build)
# A relative BUILD_DIR is taken relative to the repository root.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

build=${1:-${BUILD_DIR:-build}}

deps=(
    meson ninja-build pkg-config gcc clang
    libgnutls28-dev libsystemd-dev libseccomp-dev libcrypt-dev libpam0g-dev
    python3-pytest curl lftp gnutls-bin openssl systemd xinetd procps
)

say() { printf '==> %s\n' "$*" >&2; }

install_deps() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        say "not a Debian system: not checking packages (${deps[*]})"
        return 0
    fi
    local missing=() p
    for p in "${deps[@]}"; do
        # shellcheck disable=SC2016 # dpkg-query's own format syntax
        if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        say "not root: not installing missing packages: ${missing[*]}"
        return 0
    fi
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -q -y --no-install-recommends "${missing[@]}"
}

configure() {
    if [ -f "$build/meson-private/coredata.dat" ]; then
        # Reuse the build dir; start over if it cannot be reconfigured
        # (e.g. it was made by another meson version).
        meson setup --reconfigure "$build" || meson setup --wipe "$build"
    else
        meson setup "$build"
    fi
}

install_deps

say "building in $build"
configure
meson compile -C "$build"

# Results from an earlier run must not be counted again.
rm -f "$build/meson-logs/testlog.json" "$build/meson-logs/integration.xml"

say "testing"
status=0
meson test -C "$build" --print-errorlogs || status=$?

summary=0
/usr/bin/python3 tests/summary.py "$build" || summary=$?

if [ "$status" -ne 0 ] || [ "$summary" -ne 0 ]; then
    exit 1
fi
