#!/bin/sh
# Runs every fuzz target for SECONDS (default 150) over its corpus in
# fuzz/corpus/<target>/; findings land in fuzz/artifacts/<target>/.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -e
cd "$(dirname "$0")/../fuzz"
secs=${1:-150}
[ $# -gt 0 ] && shift
targets=${*:-"csv tsv json xml mapping queue_item trash_file config scim_response scheme"}
for t in $targets; do
  echo "== $t (${secs}s)"
  cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -max_len=8192 -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ *DONE)|panicked|ERROR|SUMMARY|Test unit written" || true
done
