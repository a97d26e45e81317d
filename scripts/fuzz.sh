#!/bin/sh
# Runs every fuzz target for SECONDS (default 150) over its corpus in
# fuzz/corpus/<target>/; findings land in fuzz/artifacts/<target>/. New
# inputs go to fuzz/work/<target>/ (ignored by git), so the committed corpus
# stays small: copy the few worth keeping (crashes, regressions) by hand.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# SANITIZER=address scripts/fuzz.sh ... builds with AddressSanitizer; the
# default `none` skips it: the code under test is safe Rust (panics, hangs
# and memory growth are what libFuzzer catches without it), and an ASan
# build compiles the bundled SQLite (sqlite3.c) instrumented at -O3, which
# takes longer than a whole fuzz session on a shared 2-core machine.
set -e
cd "$(dirname "$0")/../fuzz"
secs=${1:-150}
[ $# -gt 0 ] && shift
targets=${*:-"csv tsv json xml mapping queue_item trash_file config scim_response scheme ldap_filter"}
sanitizer=${SANITIZER:-none}
cargo +nightly fuzz build -s "$sanitizer"
for t in $targets; do
  echo "== $t (${secs}s)"
  mkdir -p "work/$t"
  cargo +nightly fuzz run -s "$sanitizer" "$t" "work/$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -max_len=8192 -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb|#[0-9]+[[:space:]]+DONE.*)|panicked|ERROR|SUMMARY|Test unit written|deadly signal" || true
  echo "new inputs kept: $(ls "work/$t" | wc -l) (fuzz/work/$t)"
done
