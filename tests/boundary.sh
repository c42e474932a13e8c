#!/bin/sh
# The privilege boundary, checked on the objects: no function or variable
# that monitor/ defines is used by child/, and none of child/'s by monitor/.
# (The include paths already keep each side's headers from the other; this
# also catches a prototype written by hand.) Both may use common/.
#
# Usage: boundary.sh NM LIBMONITOR.a LIBCHILD.a
set -eu
nm=$1 mon=$2 child=$3

defined() { "$nm" --defined-only -g "$1" | awk 'NF == 3 { print $3 }' | sort -u; }
undefined() { "$nm" --undefined-only -g "$1" | awk '{ print $NF }' | sort -u; }

status=0
check() { # FROM-LIB FROM-NAME TO-LIB TO-NAME
    crossing=$(comm -12 "$tmp/$2.undef" "$tmp/$4.def")
    if [ -n "$crossing" ]; then
        echo "$2 uses what $4 defines:" $crossing
        status=1
    fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
defined "$mon" >"$tmp/monitor.def"
undefined "$mon" >"$tmp/monitor.undef"
defined "$child" >"$tmp/child.def"
undefined "$child" >"$tmp/child.undef"
# Sanity: the lists are not empty (a wrong path or nm must not pass).
for f in monitor.def child.def monitor.undef child.undef; do
    [ -s "$tmp/$f" ] || { echo "no symbols in $f"; exit 1; }
done
check "$mon" monitor "$child" child
check "$child" child "$mon" monitor
[ "$status" -eq 0 ] && echo "boundary: $(wc -l <"$tmp/monitor.def") monitor and $(wc -l <"$tmp/child.def") child symbols, none used across"
exit "$status"
