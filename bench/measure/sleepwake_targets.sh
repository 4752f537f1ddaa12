#!/usr/bin/env bash
# bench/measure/sleepwake_targets.sh (issue 13, sleeping and waking): prints, as medians of 5
# trials of 200 ms, the one-way wake-up latency of the ping-pong (wake_p50_ns, wake_p99_ns), the
# thundering herd at 64 sleepers (wakeups_per_event, woken_per_event, futile_per_event), the
# counting semaphore at 2 and 8 threads (ops_per_s, and kprim's sleeps_per_op and
# handoffs_per_op: how often a down slept and an up handed its unit to a sleeper) and the
# bounded producer/consumer buffer at 2, 4 and 8 threads (ops_per_s). Bounded: each of the four
# runs is cut at 40 s (about 2 minutes in all on a 2-vCPU machine).
# Run from anywhere: bash bench/measure/sleepwake_targets.sh   (BIN=... another bench_sleepwake)
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
BIN=${BIN:-build/release/bench/bench_sleepwake}
[[ -x $BIN ]] || { echo "missing $BIN (build bench_sleepwake first, or give BIN=...)"; exit 1; }
echo "sleepwake targets: $(date -u +%FT%TZ), nproc $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg), $BIN"
run() {  # filter [extra flags...]
  local f=$1; shift
  timeout 40 "$BIN" --kprim_trial_ms=200 --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
    --benchmark_filter="$f" "$@" 2>&1 | grep -E '_median|error' | sed -E 's/ +/ /g' |
    grep -oE '^sleepwake/[^ ]+/iterations|error.*|(ops_per_s|sleeps_per_op|handoffs_per_op|wake_p50_ns|wake_p99_ns|wakeups_per_event|woken_per_event|futile_per_event)=[^ ]+' |
    paste -sd' ' | sed -E 's#/iterations#:#g; s# sleepwake/#\nsleepwake/#g' | sort; echo
}
echo "== pingpong: one-way wake-up, wake_p50_ns / wake_p99_ns (median of 5)"
run '^sleepwake/pingpong/'
echo "== herd, 64 sleepers: wakeups_per_event, woken_per_event, futile_per_event"
run '^sleepwake/herd/.*sleepers:64'
echo "== counting semaphore, 2 units, cs 0, threads 2 and 8: ops_per_s, sleeps_per_op, handoffs_per_op"
run '^sleepwake/counting/' --kprim_threads=2,8
echo "== prodcons, 16-item buffer, threads 2,4,8: ops_per_s"
run '^sleepwake/prodcons/' --kprim_threads=2,4,8
