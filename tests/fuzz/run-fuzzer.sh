#!/bin/sh
# Run one libFuzzer target for a bounded time:
#   run-fuzzer.sh EXE SEEDS CORPUS SECONDS [LIBFUZZER_OPTION...]
# New inputs are written to CORPUS (in the build tree), never to SEEDS.
set -eu
exe=$1 seeds=$2 corpus=$3 seconds=$4
shift 4
mkdir -p "$corpus"
exec "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -error_exitcode=1 \
	"$@" "$corpus" "$seeds"
