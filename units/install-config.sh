#!/bin/sh
# meson install script for files an administrator edits (ftpsd.conf, the PAM
# service): installed only where none is yet, so that `meson install` over a
# running system never replaces a configured file. DESTDIR is honoured.
#
# Usage: install-config.sh SOURCE TARGET [SOURCE TARGET ...]   (TARGET absolute)
set -eu

while [ "$#" -ge 2 ]; do
    src=$1
    dest=${DESTDIR:-}$2
    shift 2
    if [ -e "$dest" ] || [ -L "$dest" ]; then
        echo "Keeping existing $dest"
        continue
    fi
    if [ -n "${MESON_INSTALL_DRY_RUN:-}" ]; then
        echo "Would install $src to $dest"
        continue
    fi
    install -d -m 755 "$(dirname "$dest")"
    install -m 644 "$src" "$dest"
    [ -n "${MESON_INSTALL_QUIET:-}" ] || echo "Installing $src to $dest"
done
if [ "$#" -ne 0 ]; then
    echo "install-config.sh: SOURCE without TARGET: $1" >&2
    exit 2
fi
