#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 300) seconds, one after another, and logs libFuzzer's
# final statistics to fuzz/logs/<target>.log. Usage: fuzz/run_all.sh [SECONDS] [TARGET...]
set -u
cd "$(dirname "$0")/.."
secs="${1:-300}"; shift || true
targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(idx idx_gzip csv weights checkpoint)
mkdir -p fuzz/logs
for t in "${targets[@]}"; do
  start=$(date +%s)
  # -malloc_limit_mb: an input of at most 4 KiB has no business allocating more than 64 MiB; a
  # parser that trusts a declared size fails here as an out-of-memory crash.
  cargo +nightly fuzz run -O "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -malloc_limit_mb=64 \
    -rss_limit_mb=512 -print_final_stats=1 > "fuzz/logs/$t.log" 2>&1
  rc=$?
  echo "$t: exit $rc, wall $(( $(date +%s) - start )) s" | tee -a fuzz/logs/summary.txt
done
