#!/bin/sh
# Runs one fuzz target (libFuzzer fork mode, going on after a crash, which is saved under
# artifacts/<target>/) until it has used CPU_SECONDS of CPU time (not wall time: the machines
# this was run on are shared), then stops it with SIGINT and prints libFuzzer's final stats.
# New inputs go to work/<target>/ (not committed); corpus/<target>/ is read as seeds.
# Build first: cargo +nightly fuzz build -s none
#
#   ./run-cpu.sh TARGET [CPU_SECONDS=600] [extra libFuzzer flags...]
set -eu
cd "$(dirname "$0")"
t=$1; cpu=${2:-600}; shift; [ $# -gt 0 ] && shift
bin=target/x86_64-unknown-linux-gnu/release/$t
mkdir -p work/$t artifacts/$t logs
"$bin" work/$t corpus/$t -artifact_prefix=artifacts/$t/ -rss_limit_mb=4096 -timeout=10 \
  -print_final_stats=1 -max_total_time=36000 -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 "$@" > logs/$t.log 2>&1 &
pid=$!
tick=$(getconf CLK_TCK)
used=0
while kill -0 $pid 2>/dev/null; do
  sleep 10
  # utime + stime of the fuzzer and its finished fork-mode children, in seconds
  used=$(awk -v t="$tick" '{print int(($14+$15+$16+$17)/t)}' /proc/$pid/stat 2>/dev/null || echo "$used")
  if [ "$used" -ge "$cpu" ]; then
    # fork mode ignores SIGINT: stop the job in flight (sh -c + fuzzer), then the parent
    for c in $(pgrep -P $pid); do pkill -TERM -P $c 2>/dev/null || true; kill -TERM $c 2>/dev/null || true; done
    kill -TERM $pid 2>/dev/null || true
  fi
done
wait $pid || true
echo "$t: cpu_seconds=$used"
grep -E "^#[0-9]+" logs/$t.log | tail -1
grep -E "stat::|ERROR|panicked|deadly|Timeout|out-of-memory|SUMMARY" logs/$t.log | head -20
echo "$t cpu_seconds=$used" >> logs/$t.log
