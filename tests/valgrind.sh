#!/usr/bin/env bash
# Memcheck over the C unit tests and over real sessions of the integration
# suite's control-channel, configuration and client-certificate tests (login,
# TLS, the parser and the monitor's IPC). Usage: tests/valgrind.sh [BUILD_DIR]  (a test-hooks build)
#
# valgrind cannot run under seccomp and does not know openat2, so the server
# runs with FTPSD_TEST_VALGRIND=1 (honoured by test builds only), which turns
# the filters off, and the file-serving tests are left to the ASan build.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "$repo" && realpath "${1:-build}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

status=0
for t in "$build"/tests/unit/test-*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    # Paths resolved with openat2, which valgrind answers ENOSYS: the ASan
    # build runs these.
    case "$(basename "$t")" in
        test-monitor|test-quota) echo "valgrind: $t skipped (openat2)"; continue ;;
    esac
    valgrind -q --error-exitcode=99 --leak-check=full "$t" || { echo "valgrind: $t failed"; status=1; }
done

cp "$build/ftpsd/ftpsd" "$work/ftpsd.real"
cat > "$work/ftpsd" <<WRAP
#!/bin/sh
export FTPSD_TEST_VALGRIND=1
exec valgrind -q --vgdb=no --error-exitcode=99 --log-file=$work/log.%p $work/ftpsd.real "\$@"
WRAP
chmod +x "$work/ftpsd"
FTPSD_BIN="$work/ftpsd" /usr/bin/python3 -m pytest -p no:cacheprovider -q \
    "$repo/tests/integration/test_control_tls.py" "$repo/tests/integration/test_config.py" || status=1
# Client certificates: the monitor's check of the client's signature over
# the handshake the child recorded (tls_proof.c).
FTPSD_BIN="$work/ftpsd" /usr/bin/python3 -m pytest -p no:cacheprovider -q \
    "$repo/tests/integration/test_policy.py" \
    -k "rsa_and_ed25519 or pin_without or child_claiming or invalid_certificate or certificate_only or valid_certificate_does_not or with_gnutls_cli" || status=1

# Reports, less valgrind's note that it does not know openat2 (437).
if grep -v -e 'syscall: 437' -e 'own handler' -e 'README_MISSING' -e 'consider this a bug' \
        -e 'bug_reports' -e '^==[0-9]*== *$' "$work"/log.* 2>/dev/null | grep .; then
    echo "valgrind reported errors (above)"
    status=1
fi
[ "$status" -eq 0 ] && echo "valgrind: clean"
exit "$status"
