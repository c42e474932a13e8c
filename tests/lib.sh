# Shared by tests/run.sh, tests/demo.sh and tests/bench/run.sh: messages,
# installing Debian packages that are missing, configuring a build dir.
# shellcheck shell=bash

say() { printf '==> %s\n' "$*" >&2; }

# install_deps PACKAGE...: apt-get install what is not installed yet (as
# root on Debian; otherwise only say what is missing).
install_deps() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        say "not a Debian system: not checking packages ($*)"
        return 0
    fi
    local missing=() p
    for p in "$@"; do
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

# configure DIR [meson options...]: set up, or reconfigure a build dir.
configure() {
    local dir=$1
    shift
    if [ -f "$dir/meson-private/coredata.dat" ]; then
        # Reuse the build dir; start over if it cannot be reconfigured
        # (e.g. it was made by another meson version).
        meson setup --reconfigure "$dir" "$@" || meson setup --wipe "$dir" "$@"
    else
        meson setup "$dir" "$@"
    fi
}

# What building ftpsd needs (used by the scripts that source this file).
# shellcheck disable=SC2034
build_deps=(
    meson ninja-build pkg-config gcc
    libgnutls28-dev libseccomp-dev libcrypt-dev libpam0g-dev
)
